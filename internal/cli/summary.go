package cli

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/report"
)

// printSummary says how a run ended (report.SummaryLines) and where its
// reports are.
func printSummary(w io.Writer, res *orchestrator.Result) {
	if res.Report != nil {
		for _, l := range report.SummaryLines(res.Report) {
			fmt.Fprintln(w, l)
		}
	}
	fmt.Fprintf(w, "status: %s\nrun directory: %s\nreport: %s\n", res.Status, res.Dir, filepath.Join(res.Dir, "report.html"))
}
