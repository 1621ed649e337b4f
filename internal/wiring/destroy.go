package wiring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/infra"
	awsinfra "github.com/loadramp/loadramp/infra/aws"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
)

// Destroy tears down every fleet run records (it ran in runDir), and every
// Terraform workspace whose references are in runDir/terraform even if
// run.json never got them (a run killed during its first apply). It says
// what it does on out, skips what is already gone, and returns every failure.
func Destroy(ctx context.Context, cfg Config, runDir string, run *record.Run, out io.Writer, log zerolog.Logger) error {
	var errs []error
	seen := map[string]bool{}
	did := 0
	for _, ref := range run.Infra {
		switch ref.Provider {
		case plan.ProviderTerraform:
			seen[ref.Fleet] = true
			did++
			if err := destroyTerraform(ctx, cfg, runDir, ref.Fleet, ref.Module, ref.Workspace, out, log); err != nil {
				errs = append(errs, err)
			}
		case plan.ProviderLocal:
			names := make([]string, 0, len(ref.Pids))
			for n := range ref.Pids {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				did++
				pid := ref.Pids[n]
				rec, ok := ref.Processes[n]
				if !ok || rec.Pid != pid || rec.Start == 0 {
					// An older run.json: nothing proves the pid is still
					// the process loadramp started.
					fmt.Fprintf(out, "fleet %s: process %s (pid %d): not signalled: run.json records no identity for it (start time), so it cannot be told apart from a process that reused the pid; stop it yourself if it is still the fleet's\n", ref.Fleet, n, pid)
					continue
				}
				id := hoststat.Identity{Pid: rec.Pid, Start: rec.Start, Boot: rec.Boot, Exe: rec.Exe}
				st, err := infra.StopGroup(ctx, pid, infra.DefaultStopTimeout, infra.StopOptions{Identity: &id, Log: log})
				if err != nil {
					errs = append(errs, fmt.Errorf("fleet %s, process %s: %w", ref.Fleet, n, err))
					continue
				}
				if st.Why != "" {
					fmt.Fprintf(out, "fleet %s: process %s (%s): %s: %s\n", ref.Fleet, n, id, st.How, st.Why)
					continue
				}
				fmt.Fprintf(out, "fleet %s: process %s (%s): %s\n", ref.Fleet, n, id, st.How)
			}
		}
	}
	// Workspaces made before run.json recorded them.
	refs, _ := filepath.Glob(filepath.Join(runDir, "terraform", "*", infra.TerraformRefFile))
	for _, f := range refs {
		fleet := filepath.Base(filepath.Dir(f))
		if seen[fleet] {
			continue
		}
		ref, err := infra.ReadTerraformRef(filepath.Dir(f))
		if err != nil {
			errs = append(errs, fmt.Errorf("fleet %s: %w", fleet, err))
			continue
		}
		did++
		if err := destroyTerraform(ctx, cfg, runDir, fleet, ref[infra.RefModule], ref[infra.RefWorkspace], out, log); err != nil {
			errs = append(errs, err)
		}
	}
	if did == 0 {
		fmt.Fprintf(out, "%s records no infrastructure loadramp owns: nothing to destroy\n", runDir)
	}
	return errors.Join(errs...)
}

func destroyTerraform(ctx context.Context, cfg Config, runDir, fleet, module, workspace string, out io.Writer, log zerolog.Logger) error {
	if module == "" || workspace == "" {
		return fmt.Errorf("fleet %s: run.json lacks the terraform module or workspace", fleet)
	}
	bin, err := terraformBin(cfg)
	if err != nil {
		return fmt.Errorf("fleet %s: %w", fleet, err)
	}
	tf, err := infra.NewTerraform(infra.TerraformConfig{
		Fleet: fleet, Dir: module, Workspace: workspace,
		DataDir: TerraformDataDir(runDir, fleet), Bin: bin, Log: log,
	})
	if err != nil {
		return fmt.Errorf("fleet %s: %w", fleet, err)
	}
	fmt.Fprintf(out, "fleet %s: terraform destroy in workspace %s of %s\n", fleet, workspace, module)
	if err := tf.Down(ctx); err != nil {
		return fmt.Errorf("fleet %s: %w", fleet, err)
	}
	fmt.Fprintf(out, "fleet %s: destroyed; workspace %s deleted\n", fleet, workspace)
	return nil
}

// TaggedInstances lists the EC2 instances tagged by loadramp runs, in the
// account and region of cfg.
func TaggedInstances(ctx context.Context, cfg Config) ([]awsinfra.Instance, error) {
	cc := awsClientConfig(cfg)
	c, err := awsinfra.LoadConfig(ctx, cc)
	if err != nil {
		return nil, err
	}
	return awsinfra.TaggedInstances(ctx, awsinfra.NewEC2(c, cc), "")
}

// Upload uploads the run (or campaign) directory dir to url (s3://bucket/prefix).
func Upload(ctx context.Context, cfg Config, url, dir string, secrets []string) (awsinfra.UploadResult, error) {
	return awsinfra.UploadDir(ctx, awsinfra.UploadConfig{
		URL: url, Profile: cfg.AWSProfile, Region: cfg.AWSRegion, Endpoint: cfg.S3Endpoint, Redact: secrets,
	}, dir, cfg.Log)
}
