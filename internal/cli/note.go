package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/report"
)

// wrote prints the paths written, then fails with err (exit 1) if set.
func (a *app) wrote(paths []string, err error) error {
	for _, p := range paths {
		fmt.Fprintf(a.io.Out, "wrote %s\n", p)
	}
	if err != nil {
		return withCode(ExitRuntime, err)
	}
	return nil
}

func (a *app) noteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "note RUN_DIR [STEP] TEXT",
		Short: "Add an engineer's note to a run, or to one of its steps",
		Long: `note appends an observation to RUN_DIR/notes.jsonl (never to steps.jsonl), on the run or on
STEP as the reports' step column shows it: 6 (the step), 6.2 (attempt 2 of step 6),
6.r1 (refine attempt 1 of step 6). Every report shows notes. A finished run's reports
are rewritten at once; a live run's include the note when it ends.`,
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
				err = fmt.Errorf("the note is stored, but rewriting the reports failed: %w", err)
			}
			return a.wrote(paths, err)
		},
	}
}
