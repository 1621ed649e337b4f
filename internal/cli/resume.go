package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

func (a *app) resumeCmd() *cobra.Command {
	var progress string
	cmd := &cobra.Command{
		Use:   "resume RUN_DIR",
		Short: "Continue an interrupted run from its step log",
		Long: `resume continues a run that was interrupted (killed, crashed, or stopped with Ctrl-C)
from its steps.jsonl: the attempts it finished are kept and replayed, not rerun, and the
ramp goes on from the first attempt that did not finish, to the same end an
uninterrupted run would reach. The fleets are provisioned again (a Terraform fleet
still up in the run's workspace is reused by the apply).

resume refuses when the plan file changed since the run started (its SHA-256 is in
run.json): the finished attempts would then belong to another plan. Start a new run
instead.`,
		Example: `  loadramp resume runs/20261127T063000Z-local-eventbus`,
		Args:    exactArgs(1, "RUN_DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch progress {
			case "auto", "plain", "none":
			default:
				return usageErr(fmt.Errorf("--progress %q: allowed values are auto, plain, none", progress))
			}
			dirPath := filepath.Clean(args[0])
			d, err := record.Open(dirPath)
			if err != nil {
				return usageErr(fmt.Errorf("%s is not a run directory: %w", dirPath, err))
			}
			run, err := d.ReadRun()
			d.Close()
			if err != nil {
				return withCode(ExitRuntime, err)
			}
			switch run.Status {
			case result.StatusRunning, result.StatusAborted, "":
			default:
				return usageErr(fmt.Errorf("run %s already finished (status %s); start a new run instead", run.ID, run.Status))
			}
			if run.PlanFile != "" {
				raw, err := os.ReadFile(run.PlanFile)
				if err != nil {
					return usageErr(fmt.Errorf("the run's plan file %s cannot be read (%v); resume needs it unchanged", run.PlanFile, err))
				}
				sum := sha256.Sum256(raw)
				if got := hex.EncodeToString(sum[:]); run.PlanHash != "" && got != run.PlanHash {
					return usageErr(fmt.Errorf("plan file %s changed since run %s started (sha256 %s, now %s): its finished steps belong to the old plan; start a new run instead",
						run.PlanFile, run.ID, short(run.PlanHash), short(got)))
				}
			}
			// The resolved plan, --set overrides included, is the run's plan.yaml.
			p, err := a.loadPlan(filepath.Join(dirPath, "plan.yaml"), nil)
			if err != nil {
				return err
			}
			return a.execute(cmd.Context(), p, orchestrator.Options{
				OutDir: filepath.Dir(dirPath), PlanFile: run.PlanFile, PlanHash: run.PlanHash, Resume: dirPath,
			}, progress, nil, "")
		},
	}
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress display: auto, plain, none")
	return cmd
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
