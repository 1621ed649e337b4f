package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	lraws "github.com/loadramp/loadramp/infra/aws"
	"github.com/loadramp/loadramp/internal/wiring"
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
  local fleets       the run's own process groups still alive get SIGTERM, then SIGKILL

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
	if err := wiring.Destroy(ctx, a.wiring, runDir, run, a.io.Out, log); err != nil {
		return withCode(ExitRuntime, err)
	}
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
	insts, err := wiring.TaggedInstances(ctx, a.wiring)
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
