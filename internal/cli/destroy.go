package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/loadramp/loadramp/infra"
	lraws "github.com/loadramp/loadramp/infra/aws"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
)

type destroyOptions struct {
	leaked bool
}

func (a *app) destroyCmd() *cobra.Command {
	var o destroyOptions
	cmd := &cobra.Command{
		Use:   "destroy RUN_DIR | destroy --leaked",
		Short: "Tear down the infrastructure a run left behind",
		Long: `destroy tears down what a run recorded in RUN_DIR/run.json, for runs that could not
tear down themselves (kill -9, a lost machine, --keep-infra):

  terraform fleets   terraform destroy in the run's workspace (with the variables last
                     applied, from RUN_DIR/terraform/<fleet>), then the workspace is deleted
  local fleets       the recorded process groups still alive get SIGTERM, then SIGKILL

It is safe to repeat: what is already gone is skipped.

With --leaked it lists EC2 instances tagged loadramp:run-id by runs that have finished
(their run directory under --runs-dir says so) or that have no run directory here; it
uses aws_profile and aws_region from the configuration.`,
		Example: `  loadramp destroy runs/20261127T063000Z-local-terraform
  loadramp destroy --leaked --aws-region eu-west-1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if o.leaked {
				return cobra.NoArgs(cmd, args)
			}
			return exactArgs(1, "RUN_DIR")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			if o.leaked {
				return a.listLeaked(ctx)
			}
			return a.destroyRun(ctx, args[0])
		},
	}
	cmd.Flags().BoolVar(&o.leaked, "leaked", false, "list EC2 instances tagged by runs that have finished (needs AWS credentials)")
	return cmd
}

// destroyRun tears down every fleet RUN_DIR records, and every Terraform
// workspace whose references are in RUN_DIR/terraform even if run.json never
// got them (a run killed during its first apply).
func (a *app) destroyRun(ctx context.Context, runDir string) error {
	d, err := record.Open(runDir)
	if err != nil {
		return usageErr(fmt.Errorf("%s is not a run directory: %w", runDir, err))
	}
	run, err := d.ReadRun()
	if err != nil {
		return withCode(ExitRuntime, fmt.Errorf("reading %s: %w", filepath.Join(runDir, record.RunFile), err))
	}
	log := a.log
	if ev, err := d.EventsLog(); err == nil {
		defer ev.Close()
		log = zerolog.New(zerolog.MultiLevelWriter(ev, zerolog.LevelWriterAdapter{Writer: a.logOut})).
			With().Timestamp().Str("run", run.ID).Str("command", "destroy").Logger()
	}
	var errs []error
	seen := map[string]bool{}
	did := 0
	for _, ref := range run.Infra {
		switch ref.Provider {
		case plan.ProviderTerraform:
			seen[ref.Fleet] = true
			did++
			if err := a.destroyTerraform(ctx, runDir, ref.Fleet, ref.Module, ref.Workspace, log); err != nil {
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
				st, err := infra.StopGroup(ctx, ref.Pids[n], infra.DefaultStopTimeout, infra.StopOptions{Log: log})
				if err != nil {
					errs = append(errs, fmt.Errorf("fleet %s, process %s: %w", ref.Fleet, n, err))
					continue
				}
				fmt.Fprintf(a.io.Out, "fleet %s: process %s (pid %d): %s\n", ref.Fleet, n, ref.Pids[n], st.How)
			}
		}
	}
	// Workspaces made before run.json recorded them.
	dirs, _ := filepath.Glob(filepath.Join(runDir, "terraform", "*", infra.TerraformRefFile))
	for _, f := range dirs {
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
		if err := a.destroyTerraform(ctx, runDir, fleet, ref[infra.RefModule], ref[infra.RefWorkspace], log); err != nil {
			errs = append(errs, err)
		}
	}
	if did == 0 {
		fmt.Fprintf(a.io.Out, "%s records no infrastructure loadramp owns: nothing to destroy\n", runDir)
	}
	if err := errors.Join(errs...); err != nil {
		return withCode(ExitRuntime, err)
	}
	return nil
}

func (a *app) destroyTerraform(ctx context.Context, runDir, fleet, module, workspace string, log zerolog.Logger) error {
	if module == "" || workspace == "" {
		return fmt.Errorf("fleet %s: run.json lacks the terraform module or workspace", fleet)
	}
	bin, err := infra.LookTerraform(a.v.GetString(keyTerraformBin))
	if err != nil {
		return fmt.Errorf("fleet %s: %w", fleet, err)
	}
	tf, err := infra.NewTerraform(infra.TerraformConfig{
		Fleet: fleet, Dir: module, Workspace: workspace,
		DataDir: terraformDataDir(runDir, fleet), Bin: bin, Log: log,
	})
	if err != nil {
		return fmt.Errorf("fleet %s: %w", fleet, err)
	}
	fmt.Fprintf(a.io.Out, "fleet %s: terraform destroy in workspace %s of %s\n", fleet, workspace, module)
	if err := tf.Down(ctx); err != nil {
		return fmt.Errorf("fleet %s: %w", fleet, err)
	}
	fmt.Fprintf(a.io.Out, "fleet %s: destroyed; workspace %s deleted\n", fleet, workspace)
	return nil
}

// listLeaked lists EC2 instances tagged by runs that have finished, or that
// have no run directory under runs_dir.
func (a *app) listLeaked(ctx context.Context) error {
	runsDir := a.v.GetString(keyRunsDir)
	sums, err := record.List(runsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return withCode(ExitRuntime, fmt.Errorf("reading runs directory %s: %w", runsDir, err))
	}
	runs := map[string]string{}
	for _, s := range sums {
		runs[s.ID] = s.Status
	}
	cc := awsClientConfig(a)
	cfg, err := lraws.LoadConfig(ctx, cc)
	if err != nil {
		return withCode(ExitRuntime, err)
	}
	insts, err := lraws.TaggedInstances(ctx, lraws.NewEC2(cfg, cc), "")
	if err != nil {
		return withCode(ExitRuntime, err)
	}
	leaked, known := lraws.Leaked(insts, runs)
	if len(leaked) == 0 {
		fmt.Fprintf(a.io.Out, "no leaked instances: %d tagged %s, all of running runs\n", len(insts), lraws.TagRunID)
		return nil
	}
	fmt.Fprintf(a.io.Out, "%-20s %-14s %-10s %-12s %s\n", "INSTANCE", "STATE", "ROLE", "RUN STATUS", "RUN")
	for i, in := range leaked {
		st := runs[in.RunID]
		if !known[i] {
			st = "(no run dir)"
		}
		fmt.Fprintf(a.io.Out, "%-20s %-14s %-10s %-12s %s\n", in.ID, in.State, in.Role, st, in.RunID)
	}
	fmt.Fprintf(a.io.Out, "%d leaked instance(s): tear down with 'loadramp destroy RUN_DIR' where the run directory exists\n", len(leaked))
	return nil
}

// awsClientConfig is the AWS account and region from the configuration;
// LOADRAMP_AWS_ENDPOINT points the SDK at another endpoint.
func awsClientConfig(a *app) lraws.ClientConfig {
	return lraws.ClientConfig{
		Profile:  a.v.GetString(keyAWSProfile),
		Region:   a.v.GetString(keyAWSRegion),
		Endpoint: a.getenv("LOADRAMP_AWS_ENDPOINT"),
	}
}
