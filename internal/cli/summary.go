package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/report"
)

// summaryLines says how a run ended, in the words of the issue:
// "capacity: rate=8000 connections=64 (7990 req/s, p99 12 ms); bottleneck at
// step 8 (rate 8000 -> 16000): latency.p99 812 ms > 100 ms".
func summaryLines(r *report.Report) []string {
	var capPart string
	if c := r.Capacity; c != nil {
		capPart = fmt.Sprintf("capacity: %s (%s req/s, p99 %s)", report.ParamString(c.Parameters, r.Parameters),
			metrics.FormatNumber(c.Metrics[metrics.ThroughputRPS]), metrics.FormatValue(metrics.LatencyP99, c.Metrics[metrics.LatencyP99]))
	} else {
		capPart = "capacity: none (no step passed)"
	}
	var end string
	switch {
	case r.Bottleneck != nil:
		b := r.Bottleneck
		why := b.Reason
		if len(b.Findings) > 0 {
			f := b.Findings[0]
			why = fmt.Sprintf("%s: %s %s (change %s)", f.Rule, f.Resource, f.Observed, f.Setting)
		} else if len(b.FailedGates) > 0 {
			var gs []string
			for _, g := range b.FailedGates {
				gs = append(gs, g.Explain)
			}
			why = strings.Join(gs, "; ")
		}
		if b.Parameter == "" {
			end = fmt.Sprintf("bottleneck at step %d (the starting load already fails): %s", b.Step, why)
		} else {
			end = fmt.Sprintf("bottleneck at step %d (%s %s -> %s): %s", b.Step, b.Parameter, fmtNum(b.From), fmtNum(b.To), why)
		}
		if b.Refined != nil {
			end += fmt.Sprintf("; refined: %s passes, %s fails", fmtNum(b.Refined.Pass), fmtNum(b.Refined.Fail))
		}
	case r.Status == "max-reached":
		end = "no bottleneck: every step passed up to the plan's maximum"
	case r.Status == "generator-limited":
		end = "generator-limited: the load generator saturated before the target did"
		if n := len(r.Steps); n > 0 && r.Steps[n-1].Reason != "" {
			end += " (" + r.Steps[n-1].Reason + ")"
		}
	default:
		end = "status " + r.Status
		if r.Error != "" {
			end += ": " + r.Error
		}
	}
	lines := []string{capPart + "; " + end}
	if r.Partial {
		lines = append(lines, "the report is partial: the run did not finish")
	}
	if pol := r.Policy; pol != nil {
		verdict := "passed"
		if !pol.Passed {
			verdict = "FAILED (exit 3)"
		}
		lines = append(lines, "capacity policy "+verdict+":")
		for _, m := range pol.Messages {
			lines = append(lines, "  "+m)
		}
	}
	return lines
}

func printSummary(w io.Writer, res *orchestrator.Result) {
	if res.Report != nil {
		for _, l := range summaryLines(res.Report) {
			fmt.Fprintln(w, l)
		}
	}
	fmt.Fprintf(w, "status: %s\nrun directory: %s\nreport: %s\n", res.Status, res.Dir, filepath.Join(res.Dir, "report.html"))
}
