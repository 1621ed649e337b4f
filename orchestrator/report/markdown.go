package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// keyMetrics are shown in the Markdown step table when any step measured them.
var keyMetrics = []string{
	metrics.ThroughputRPS, metrics.LatencyP99, metrics.ErrorsRatio,
	metrics.ProbeDelayP99, metrics.GeneratorCPU,
}

// WriteMarkdown writes report.md, made for CI job summaries: the summary, the
// bottleneck with its failed gates and findings, the capacity, the static
// parameters and a table of every step attempt.
func WriteMarkdown(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	p("# loadramp: %s\n\n", mdText(r.Plan))
	status := r.Status
	if r.Partial {
		status += " (partial)"
	}
	p("**Status:** %s · **Run:** `%s`\n\n", mdText(status), mdCode(r.RunID))
	p("%s\n\n", mdText(r.Summary))
	if pol := r.Policy; pol != nil {
		verdict := "passed"
		if !pol.Passed {
			verdict = "FAILED"
		}
		p("## Capacity policy: %s\n\n", verdict)
		for _, m := range pol.Messages {
			p("- %s\n", mdText(m))
		}
		p("\n")
	}

	if b := r.Bottleneck; b != nil {
		p("## Bottleneck\n\n")
		if b.Parameter != "" {
			p("Step %d, `%s` %s -> %s, on the %s side.", b.Step, b.Parameter, metrics.FormatNumber(b.From), metrics.FormatNumber(b.To), b.Side)
		} else {
			p("Step %d, on the %s side.", b.Step, b.Side)
		}
		if b.Refined != nil {
			p(" Refined: passes at %s, fails at %s.", metrics.FormatNumber(b.Refined.Pass), metrics.FormatNumber(b.Refined.Fail))
		}
		p("\n\n")
		if len(b.FailedGates) > 0 {
			p("| gate | observed | threshold |\n|---|---:|---:|\n")
			for _, g := range b.FailedGates {
				obs := metrics.FormatValue(g.Metric, g.Observed)
				if g.Missing {
					obs = "not measured"
				}
				p("| `%s` | %s | %s |\n", mdCellCode(g.Gate), obs, metrics.FormatValue(g.Metric, g.Threshold))
			}
			p("\n")
		}
		if len(b.Requests) > 0 {
			p("### Requests\n\n")
			writeRequestTable(bw, b.Requests)
		}
	}

	if len(r.Findings) > 0 {
		p("## Findings\n\nOne per cause (a rule on one host and process), with the step attempts it was seen on.\n\n")
		for _, c := range r.Findings {
			where := c.Host
			if c.Process != "" {
				where += "/" + c.Process
			}
			if c.Side != "" {
				where = c.Side + ", " + where
			}
			mark := ""
			if c.Bottleneck {
				mark = " **bottleneck**"
			}
			p("- **%s** (%s)%s: %s %s. Setting: `%s`. Fix: %s.", mdText(c.Rule), mdText(where), mark, mdText(c.Resource), mdText(c.Observed), mdCode(c.Setting), strings.TrimSuffix(mdText(c.Fix), "."))
			if len(c.Steps) > 0 {
				p(" Seen on steps %s", strings.Join(refs(c.Steps), ", "))
				if len(c.Steps) > 1 && c.Strongest.Ref != "" {
					p(" (strongest on %s)", c.Strongest.Ref)
				}
				p(".")
			}
			p("\n")
			for _, e := range c.Evidence {
				p("  - `%s`\n", mdCode(e))
			}
		}
		p("\n")
	}

	if notes := r.AllNotes(); len(notes) > 0 {
		p("## Notes\n\n")
		for _, n := range notes {
			where := "run"
			if !n.Addr().IsRun() {
				where = "step " + n.Step
			}
			p("- **%s**: %s\n", mdText(where), mdText(n.Text))
		}
		p("\n")
	}

	if c := r.Capacity; c != nil {
		p("## Capacity\n\nStep %d attempt %d (%s): `%s`\n\n", c.Step, c.Attempt, mdText(c.Kind), mdCode(ParamString(c.Parameters, r.Parameters)))
		p("| metric | value |\n|---|---:|\n")
		own := withoutRequestMetrics(c.Metrics) // per request: the table below
		for _, m := range sortedKeys(own) {
			p("| %s | %s |\n", m, metrics.FormatValue(m, own[m]))
		}
		p("\n")
		if len(c.Requests) > 0 {
			writeRequestTable(bw, c.Requests)
		}
	}

	markdownHosts(p, r)

	if len(r.Static) > 0 {
		p("## Static parameters\n\n| parameter | value |\n|---|---|\n")
		static := flatten(r.Static)
		for _, k := range sortedKeys(static) {
			p("| %s | %s |\n", mdCell(k), mdCell(static[k]))
		}
		p("\n")
	}

	if lines := CheckLines(r.Checks); len(lines) > 0 {
		p("## Checks\n\n")
		for _, l := range lines {
			p("- %s: %s\n", l.Label, mdText(l.Text))
		}
		p("\n")
	}

	p("## Steps\n\n")
	if len(r.Steps) == 0 {
		p("No step ran.\n")
		return bw.Flush()
	}
	var cols []string
	for _, m := range keyMetrics {
		for _, s := range r.Steps {
			if _, ok := s.Metrics[m]; ok {
				cols = append(cols, m)
				break
			}
		}
	}
	notesCol := len(r.Notes) > 0
	// The step column is the attempt's address, as `loadramp note` takes it.
	p("| step | attempt | kind | parameters | changed |")
	for _, m := range cols {
		p(" %s |", m)
	}
	p(" verdict | why |")
	if notesCol {
		p(" notes |")
	}
	p("\n|---|---:|---|---|---|")
	for range cols {
		p("---:|")
	}
	p("---|---|")
	if notesCol {
		p("---|")
	}
	p("\n")
	for i, s := range r.Steps {
		changed := ""
		if s.Changed != "" {
			changed = fmt.Sprintf("%s %s -> %s", s.Changed, metrics.FormatNumber(s.From), metrics.FormatNumber(s.To))
		}
		p("| %s | %d | %s | %s | %s |", record.AddrOf(s).String(), s.Attempt, s.Kind, ParamString(s.Parameters, r.Parameters), changed)
		for _, m := range cols {
			if v, ok := s.Metrics[m]; ok {
				p(" %s |", metrics.FormatValue(m, v))
			} else {
				p(" |")
			}
		}
		p(" %s | %s |", verdictMark(s.Verdict), mdCell(why(s)))
		if notesCol {
			var texts []string
			for _, n := range r.NotesOf(&r.Steps[i]) {
				texts = append(texts, n.Text)
			}
			p(" %s |", mdCell(strings.Join(texts, " / ")))
		}
		p("\n")
	}
	writeStepRequests(bw, r)
	var notes []string
	for _, s := range r.Steps {
		for _, n := range s.NotMeasured {
			notes = append(notes, fmt.Sprintf("- %s: %s\n", stepLabel(s), mdText(n)))
		}
	}
	if len(notes) > 0 {
		p("\n## Not measured\n\n%s", strings.Join(notes, ""))
	}
	return bw.Flush()
}

// writeRequestTable writes a per-request table.
func writeRequestTable(w io.Writer, rows []RequestRow) {
	fmt.Fprintf(w, "| %s |\n|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n", strings.Join(requestHeader, " | "))
	for _, r := range rows {
		cells := requestCells(r)
		for i := range cells {
			cells[i] = mdCell(cells[i])
		}
		cells[0] = "`" + mdCellCode(r.Name) + "`"
		var gates []string
		for _, g := range r.FailedGates {
			gates = append(gates, "`"+mdCellCode(g)+"`")
		}
		cells[len(cells)-1] = strings.Join(gates, "; ")
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
}

// writeStepRequests writes the per-request table of every attempt of a mix.
func writeStepRequests(w io.Writer, r *Report) {
	started := false
	for _, s := range r.Steps {
		rows := RequestRows(s)
		if len(rows) == 0 {
			continue
		}
		if !started {
			fmt.Fprintf(w, "\n## Requests per step\n\n")
			started = true
		}
		fmt.Fprintf(w, "### %s (%s)\n\n", mdText(StepName(s, r.Parameters)), mdText(s.Verdict))
		writeRequestTable(w, rows)
	}
}

// why says in a few words why a step got its verdict.
func why(s result.Step) string {
	if len(s.FailedGates) > 0 {
		var parts []string
		for _, g := range s.FailedGates {
			if g.Explain != "" {
				parts = append(parts, g.Explain)
			} else {
				parts = append(parts, g.Gate)
			}
		}
		return strings.Join(parts, "; ")
	}
	if s.Verdict == "pass" {
		return ""
	}
	return s.Reason
}

func verdictMark(v string) string {
	switch v {
	case "pass":
		return "✅ pass"
	case "target-fail":
		return "❌ target-fail"
	case "generator-fail":
		return "⚠️ generator-fail"
	case "error":
		return "💥 error"
	}
	return v
}

// mdCell escapes text for a Markdown table cell.
func mdCell(s string) string {
	return strings.ReplaceAll(mdText(s), "|", `\|`)
}

// htmlEscaper turns what could start raw HTML or a character reference into
// character references, which Markdown renders as the characters themselves.
var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", "\r", "", "\n", " ")

// mdText keeps free text (log lines, messages, names from the plan) from
// starting Markdown structure mid-paragraph or passing raw HTML through:
// report.md is rendered as HTML in CI job summaries and code review tools.
func mdText(s string) string {
	return htmlEscaper.Replace(s)
}

// mdCellCode makes s the content of a code span in a table cell.
func mdCellCode(s string) string {
	return strings.ReplaceAll(mdCode(s), "|", `\|`)
}

// mdCode makes s the content of a one-backtick code span, in which Markdown
// shows HTML as text: a backtick would end the span, a newline the line.
func mdCode(s string) string {
	return strings.NewReplacer("`", "'", "\r", "", "\n", " ").Replace(s)
}
