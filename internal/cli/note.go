package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/report"
)

func (a *app) noteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "note RUN_DIR [STEP] TEXT",
		Short: "Add an engineer's note to a run, or to one of its steps",
		Long: `note records an observation beside the measurements: on a step when STEP is given,
else on the run. Notes go to RUN_DIR/notes.jsonl (steps.jsonl is never rewritten) and
show in every report format; 'loadramp report' keeps them.

STEP is the address the reports' step column shows: 6 (step 6; its first attempt's row
shows the note), 6.2 (attempt 2 of step 6: a ramp attempt, its confirm or its rerun),
6.r1 (refine attempt 1 of step 6), or run.

A note may be added while the run is going (the step may be the one running now); the
run's reports include it when the run ends. On a finished run the reports already in
RUN_DIR are rewritten at once. 'loadramp run --note TEXT' notes the run as it starts.`,
		Example: `  loadramp note runs/20261127T063000Z-local-eventbus 6.2 "accept queue overflowed in dmesg"
  loadramp note runs/20261127T063000Z-local-eventbus "kernel 6.1 with BBR; target on c6i.large"`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, text := "", args[len(args)-1]
			if len(args) == 3 {
				addr = args[1]
			}
			at, err := record.Annotate(args[0], addr, text, time.Now())
			if err != nil {
				return usageErr(err)
			}
			fmt.Fprintf(a.io.Out, "noted on %s\n", at)
			paths, err := report.Refresh(args[0])
			if err != nil {
				return withCode(ExitRuntime, fmt.Errorf("the note is stored, but rewriting the reports failed: %w", err))
			}
			for _, p := range paths {
				fmt.Fprintf(a.io.Out, "wrote %s\n", p)
			}
			return nil
		},
	}
}
