package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/loadramp/loadramp/infra"
	lraws "github.com/loadramp/loadramp/infra/aws"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
)

// destroyStopTimeout is how long a recorded local process group has after
// SIGTERM before SIGKILL.
const destroyStopTimeout = 5 * time.Second

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
	// A run, resume or other destroy still going owns the directory.
	if d, err = record.OpenLocked(runDir); err != nil {
		return withCode(ExitRuntime, err)
	}
	defer d.Close()
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
				msg, err := stopGroup(ref.Pids[n])
				if err != nil {
					errs = append(errs, fmt.Errorf("fleet %s, process %s: %w", ref.Fleet, n, err))
					continue
				}
				fmt.Fprintf(a.io.Out, "fleet %s: process %s (pid %d): %s\n", ref.Fleet, n, ref.Pids[n], msg)
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

// stopGroup stops the process group led by pid, if that process is still
// alive and still leads its group (a reused pid is left alone).
func stopGroup(pid int) (string, error) {
	if pid <= 1 {
		return "", fmt.Errorf("recorded pid %d is not a process loadramp started", pid)
	}
	if !leadsGroup(pid) && !groupAlive(pid) {
		return "already gone", nil
	}
	if err := syscall.Kill(-pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return "", fmt.Errorf("SIGTERM to process group %d: %w", pid, err)
	}
	deadline := time.Now().Add(destroyStopTimeout)
	for time.Now().Before(deadline) {
		if !groupAlive(pid) {
			return "stopped (SIGTERM)", nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return "", fmt.Errorf("SIGKILL to process group %d: %w", pid, err)
	}
	for range 40 {
		if !groupAlive(pid) {
			return "killed (SIGKILL)", nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", fmt.Errorf("process group %d survived SIGKILL", pid)
}

// procStat returns the state and process group of pid from /proc.
func procStat(pid string) (state string, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return "", 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return "", 0, false
	}
	g, err := strconv.Atoi(f[2])
	if err != nil {
		return "", 0, false
	}
	return f[0], g, true
}

func leadsGroup(pid int) bool {
	st, g, ok := procStat(strconv.Itoa(pid))
	return ok && g == pid && st != "Z" && st != "X"
}

// groupAlive reports whether process group pgid has a member that is not a zombie.
func groupAlive(pgid int) bool {
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range ents {
		if c := e.Name()[0]; c < '0' || c > '9' {
			continue
		}
		if st, g, ok := procStat(e.Name()); ok && g == pgid && st != "Z" && st != "X" {
			return true
		}
	}
	return false
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
