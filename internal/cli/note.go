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
		Long: `note records an observation in RUN_DIR/notes.jsonl (steps.jsonl is never rewritten): on a
step when STEP is given, else on the run. Every report format shows notes, and
'loadramp report' keeps them. STEP is the address the reports' step column shows: 6
(step 6, shown on its first attempt), 6.2 (attempt 2 of step 6, a ramp, confirm or
rerun attempt), 6.r1 (refine attempt 1 of step 6), or run. A live run may be noted (its
reports include the note when it ends); a finished run's reports are rewritten at once.`,
		Example: `  loadramp note runs/20261127T063000Z-local-eventbus 6.2 "accept queue overflowed in dmesg"
  loadramp note runs/20261127T063000Z-local-eventbus "kernel 6.1 with BBR; target on c6i.large"`,
		Args:              cobra.RangeArgs(2, 3),
		ValidArgsFunction: completeNote,
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
