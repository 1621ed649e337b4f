package report

import (
	"bufio"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// WriteHTML writes report.html: one self-contained page (inline CSS and SVG,
// no script, nothing fetched) that says at the top what the capacity is, what
// broke and why, then shows the bottleneck's failed gates and findings, the
// step table colour-coded by verdict, the plots and the run's static
// parameters. The same report always gives the same bytes.
func WriteHTML(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	if err := htmlPage.Execute(bw, htmlViewOf(r)); err != nil {
		return fmt.Errorf("render report.html: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write report.html: %w", err)
	}
	return nil
}

// htmlColumns are the metric columns of the step table, shown when any
// attempt measured them.
var htmlColumns = []struct{ metric, label string }{
	{metrics.ThroughputOffered, "offered"},
	{metrics.ThroughputRPS, "achieved"},
	{metrics.LatencyP50, "p50"},
	{metrics.LatencyP99, "p99"},
	{metrics.LatencyMax, "max"},
	{metrics.ErrorsRatio, "errors"},
	{metrics.ProbeDelayP99, "probe p99"},
	{metrics.TargetCPU, "target cpu"},
	{metrics.TargetFDRatio, "target fds"},
	{metrics.GeneratorCPU, "gen cpu"},
}

type htmlView struct {
	// Notes are every note, in the order written; NotesColumn: some step
	// has one, so the step table shows them.
	Notes       []noteView
	NotesColumn bool

	R           *Report
	StatusClass string
	Facts       []fact
	Run         []kv
	Static      []kv
	Limits      []kv
	Params      []string
	Columns     []string
	Rows        []stepRow
	FailedGates []gateRow
	Findings    []findingView
	Hosts       hostsView
	Plots       []svgPlot
	// Per-request tables of a mix: the bottleneck's, and every attempt's.
	RequestHeader      []string
	BottleneckRequests []requestLine
	StepRequests       []stepRequests
}

// requestLine is one line of a per-request table; Failed marks a request a
// gate failed on.
type requestLine struct {
	Cells  []string
	Failed bool
}

type stepRequests struct {
	Label, Class, Verdict string
	Lines                 []requestLine
}

func requestLines(rows []RequestRow) []requestLine {
	var out []requestLine
	for _, r := range rows {
		out = append(out, requestLine{Cells: requestCells(r), Failed: len(r.FailedGates) > 0})
	}
	return out
}

type kv struct{ K, V string }

// fact is one line of the page's headline box; Class colours it.
type fact struct{ Label, Value, Class string }

type stepRow struct {
	Class, Label   string
	Ref            string
	Index, Attempt int
	Kind           string
	Notes          []string
	Params         []paramCell
	Metrics        []string
	Verdict, Why   string
	Marks          []string
}

type paramCell struct {
	Value, From string
	Changed     bool
}

type gateRow struct {
	Gate, Observed, Threshold, Explain string
}

type findingView struct {
	Cause
	// Seen are the attempts the cause was seen on, as chips.
	Seen []seenChip
	// From says which attempt the evidence shown comes from, when the cause
	// was seen on more than one.
	From string
}

type seenChip struct{ Ref, Class, Title string }

func htmlViewOf(r *Report) htmlView {
	v := htmlView{R: r, StatusClass: "st-" + r.Status, Params: paramColumns(r), Plots: buildPlots(r)}
	v.Facts = headline(r)
	v.Run = runFacts(r)
	v.Static = kvs(r.Static)
	v.Limits = kvs(r.Limits)
	v.Notes = notesViewOf(r)

	var cols []string
	for _, c := range htmlColumns {
		if anyMetric(r.Steps, c.metric) {
			cols = append(cols, c.metric)
			v.Columns = append(v.Columns, c.label)
		}
	}
	failing := failingStep(r)
	for i, s := range r.Steps {
		row := stepRow{Class: "v-" + s.Verdict, Label: stepLabel(s), Ref: record.AddrOf(s).String(), Index: s.Index, Attempt: s.Attempt,
			Verdict: s.Verdict, Why: why(s)}
		for _, n := range r.NotesOf(&r.Steps[i]) {
			row.Notes = append(row.Notes, n.Text)
			v.NotesColumn = true
		}
		if s.Kind != result.KindRamp {
			row.Kind = s.Kind
		}
		if s.Aborted {
			row.Marks = append(row.Marks, "aborted")
		}
		if s.Error != "" && row.Why == "" {
			row.Why = s.Error
		}
		row.Params = paramCells(s, v.Params)
		for _, m := range cols {
			cell := ""
			if x, ok := s.Metrics[m]; ok {
				cell = metrics.FormatValue(m, x)
			}
			row.Metrics = append(row.Metrics, cell)
		}
		if c := r.Capacity; c != nil && c.Step == s.Index && c.Attempt == s.Attempt && c.Kind == s.Kind {
			row.Marks = append(row.Marks, "capacity")
		}
		if failing != nil && r.Bottleneck != nil && &r.Steps[i] == failing {
			row.Marks = append(row.Marks, "bottleneck")
		}
		v.Rows = append(v.Rows, row)
	}
	if b := r.Bottleneck; b != nil {
		for _, g := range b.FailedGates {
			obs := metrics.FormatValue(g.Metric, g.Observed)
			if g.Missing {
				obs = "not measured"
			}
			v.FailedGates = append(v.FailedGates, gateRow{Gate: g.Gate, Observed: obs,
				Threshold: metrics.FormatValue(g.Metric, g.Threshold), Explain: g.Explain})
		}
	}
	v.Findings = findingsOf(r)
	v.RequestHeader = requestHeader
	if b := r.Bottleneck; b != nil {
		v.BottleneckRequests = requestLines(b.Requests)
	}
	for _, s := range r.Steps {
		if rows := RequestRows(s); len(rows) > 0 {
			v.StepRequests = append(v.StepRequests, stepRequests{Label: StepName(s, r.Parameters), Class: "v-" + s.Verdict,
				Verdict: s.Verdict, Lines: requestLines(rows)})
		}
	}
	v.Hosts = hostsOf(r)
	return v
}

// paramColumns are the report's parameters in plan order, then any other
// parameter a step has, sorted.
func paramColumns(r *Report) []string {
	all := map[string]float64{}
	for _, s := range r.Steps {
		for k := range s.Parameters {
			all[k] = 0
		}
	}
	cols := append([]string(nil), r.Parameters...)
	seen := map[string]bool{}
	for _, p := range cols {
		seen[p] = true
	}
	for _, k := range orderedKeys(all, nil) {
		if !seen[k] {
			cols = append(cols, k)
		}
	}
	return cols
}

func paramCells(s result.Step, order []string) []paramCell {
	var out []paramCell
	for _, p := range order {
		x, ok := s.Parameters[p]
		if !ok {
			out = append(out, paramCell{})
			continue
		}
		c := paramCell{Value: metrics.FormatNumber(x)}
		if p == s.Changed {
			c.Changed = true
			if s.From != 0 || s.To != 0 {
				c.From = metrics.FormatNumber(s.From)
			}
		}
		out = append(out, c)
	}
	return out
}

// headline is the box under the summary: capacity, what broke, why, and what
// to change, or how the run ended when nothing broke.
func headline(r *Report) []fact {
	var out []fact
	if c := r.Capacity; c != nil {
		val := ParamString(c.Parameters, r.Parameters)
		if rps, ok := c.Metrics[metrics.ThroughputRPS]; ok {
			val = metrics.FormatNumber(rps) + " req/s at " + val
		}
		if p99, ok := c.Metrics[metrics.LatencyP99]; ok {
			val += ", p99 " + metrics.FormatValue(metrics.LatencyP99, p99)
		}
		val += fmt.Sprintf(" (step %d attempt %d, %s)", c.Step, c.Attempt, c.Kind)
		out = append(out, fact{"Capacity", val, "ok"})
	} else {
		out = append(out, fact{"Capacity", "none: no step passed", "bad"})
	}
	if b := r.Bottleneck; b != nil {
		val := fmt.Sprintf("step %d", b.Step)
		if b.Parameter != "" {
			val += fmt.Sprintf(", %s %s → %s", b.Parameter, metrics.FormatNumber(b.From), metrics.FormatNumber(b.To))
		}
		val += ", on the " + b.Side
		if b.Refined != nil {
			val += fmt.Sprintf("; refined: passes at %s, fails at %s", metrics.FormatNumber(b.Refined.Pass), metrics.FormatNumber(b.Refined.Fail))
		}
		out = append(out, fact{"What broke", val, "bad"})
		out = append(out, fact{"Why", cause(b), "bad"})
		if len(b.Findings) > 0 && (b.Findings[0].Setting != "" || b.Findings[0].Fix != "") {
			f := b.Findings[0]
			val := f.Setting
			if f.Fix != "" {
				if val != "" {
					val += ": "
				}
				val += f.Fix
			}
			out = append(out, fact{"Change", val, "fix"})
		}
	}
	switch r.Status {
	case result.StatusMaxReached:
		if r.Bottleneck == nil {
			out = append(out, fact{"Outcome", "no bottleneck up to the largest step of the plan", "ok"})
		}
	case result.StatusGeneratorLimited:
		val := "the load generators saturated before the target failed"
		if g := lastWith(r.Steps, result.VerdictGeneratorFail); g != nil && g.Reason != "" {
			val += fmt.Sprintf(" (step %d: %s)", g.Index, g.Reason)
		}
		out = append(out, fact{"Outcome", val, "warn"})
	case result.StatusAborted:
		out = append(out, fact{"Outcome", fmt.Sprintf("interrupted after %d step attempts", len(r.Steps)), "muted"})
	case result.StatusError:
		val := r.Error
		if val == "" {
			if e := lastWith(r.Steps, result.VerdictError); e != nil {
				val = e.Reason
			}
		}
		if val == "" {
			val = "the run failed"
		}
		out = append(out, fact{"Error", val, "err"})
	}
	return out
}

func runFacts(r *Report) []kv {
	out := []kv{{"plan", r.Plan}, {"run", r.RunID}}
	if r.Version != "" {
		out = append(out, kv{"loadramp", r.Version})
	}
	h := r.Host
	host := strings.TrimSpace(fmt.Sprintf("%s %s/%s, %d CPUs %s %s", h.Hostname, h.OS, h.Arch, h.CPUs, h.Kernel, h.Go))
	out = append(out, kv{"host", host})
	if !r.Start.IsZero() {
		out = append(out, kv{"start", r.Start.UTC().Format(time.RFC3339)})
	}
	if r.End != nil && !r.End.IsZero() {
		out = append(out, kv{"end", fmt.Sprintf("%s (%s)", r.End.UTC().Format(time.RFC3339), r.End.Sub(r.Start).Round(time.Second))})
	}
	if lines := CheckLines(r.Checks); len(lines) > 0 {
		for _, l := range lines {
			out = append(out, kv{l.Label, l.Text})
		}
	} else if len(r.Gates) > 0 {
		out = append(out, kv{"gates", strings.Join(r.Gates, " · ")})
	}
	return out
}

func kvs(m map[string]any) []kv {
	flat := flatten(m)
	var out []kv
	for _, k := range sortedKeys(flat) {
		out = append(out, kv{k, flat[k]})
	}
	return out
}

type noteView struct {
	Where, Time, Text string
}

// notesViewOf lists every note in the order written, with where it is.
func notesViewOf(r *Report) []noteView {
	var out []noteView
	for _, n := range r.AllNotes() {
		nv := noteView{Where: "run", Text: n.Text}
		if !n.Time.IsZero() {
			nv.Time = n.Time.UTC().Format(time.RFC3339)
		}
		switch {
		case n.On != nil:
			nv.Where = "step " + n.Step + " (" + stepLabel(*n.On) + ")"
		case !n.Addr().IsRun():
			nv.Where = "step " + n.Step + " (not in the step log)"
		}
		out = append(out, nv)
	}
	return out
}

// findingsOf makes a card of each distinct cause, the bottleneck's first.
func findingsOf(r *Report) []findingView {
	label := map[string]string{}
	for _, s := range r.Steps {
		label[record.AddrOf(s).String()] = stepLabel(s)
	}
	var out []findingView
	for _, c := range r.Findings {
		fv := findingView{Cause: c}
		for _, ref := range c.Steps {
			fv.Seen = append(fv.Seen, seenChip{Ref: ref.Ref, Class: "v-" + ref.Verdict, Title: label[ref.Ref]})
		}
		if len(c.Steps) > 1 && c.Strongest.Ref != "" {
			fv.From = c.Strongest.Ref
		}
		out = append(out, fv)
	}
	return out
}

// summaryHTML escapes the summary and keeps each "->" from breaking across
// lines, without changing its text.
func summaryHTML(s string) template.HTML {
	parts := strings.Split(s, "->")
	for i := range parts {
		parts[i] = template.HTMLEscapeString(parts[i])
	}
	return template.HTML(strings.Join(parts, `<span class="nw">-&gt;</span>`))
}

var htmlPage = template.Must(template.New("report.html").Funcs(template.FuncMap{
	"join":    strings.Join,
	"summary": summaryHTML,
}).Parse(htmlTemplate))

const htmlTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>loadramp: {{.R.Plan}} · {{.R.Status}}</title>
<style>
:root{--pass:#2e7d32;--pass-bg:#e8f5e9;--tfail:#c62828;--tfail-bg:#fdecea;--gfail:#ef6c00;--gfail-bg:#fff3e0;--err:#6a1b9a;--err-bg:#f3e5f5;--muted:#616161;--line:#ddd}
*{box-sizing:border-box}
body{margin:0;font-family:"Liberation Sans",Arial,Helvetica,sans-serif;color:#212121;background:#fafafa;line-height:1.4}
main{max-width:1240px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:1.25rem;margin:0;font-weight:600}
h2{font-size:1.2rem;margin:28px 0 8px;border-bottom:2px solid var(--line);padding-bottom:4px}
h3{font-size:1rem;margin:0 0 4px}
code,.mono{font-family:"Liberation Mono",Menlo,Consolas,monospace;font-size:.9em}
.top{display:flex;align-items:center;gap:12px;flex-wrap:wrap}
.runid{color:var(--muted)}
.status{display:inline-block;padding:3px 12px;border-radius:4px;color:#fff;font-weight:700;text-transform:uppercase;letter-spacing:.04em;font-size:.9rem}
.st-bottleneck{background:var(--tfail)}.st-max-reached{background:var(--pass)}.st-generator-limited{background:var(--gfail)}.st-aborted{background:var(--muted)}.st-error{background:var(--err)}
.partial{margin:12px 0 0;padding:10px 14px;border:3px solid #b71c1c;background:#ffebee;color:#b71c1c;font-weight:700;font-size:1.1rem}
.summary{font-size:1.6rem;font-weight:600;line-height:1.3;margin:14px 0 12px}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin:0;padding:12px 16px;background:#fff;border:1px solid var(--line);border-radius:6px;font-size:1.05rem}
.facts dt{font-weight:700}.facts dd{margin:0}
.facts .ok{color:var(--pass)}.facts .bad{color:var(--tfail)}.facts .warn{color:var(--gfail)}.facts .err{color:var(--err)}.facts .muted{color:var(--muted)}.facts .fix{color:#0d47a1;font-weight:600}
table{border-collapse:collapse;background:#fff;font-size:.9rem}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.steps tr.v-pass td{background:var(--pass-bg)}
.steps tr.v-target-fail td{background:var(--tfail-bg)}
.steps tr.v-generator-fail td{background:var(--gfail-bg)}
.steps tr.v-error td{background:var(--err-bg)}
.steps tr td:first-child{border-left:6px solid var(--muted)}
.steps tr.v-pass td:first-child{border-left-color:var(--pass)}
.steps tr.v-target-fail td:first-child{border-left-color:var(--tfail)}
.steps tr.v-generator-fail td:first-child{border-left-color:var(--gfail)}
.steps tr.v-error td:first-child{border-left-color:var(--err)}
.scroll{overflow-x:auto}
.steps{width:100%;font-size:.85rem}
.steps th,.steps td{padding:3px 6px}
.steps td.why{min-width:190px}
.steps td.changed{background:#fff176 !important;font-weight:700;outline:2px solid #f9a825;outline-offset:-2px}
.from{display:block;font-weight:400;font-size:.75rem;color:#5d4037}
.verdict{display:inline-block;padding:1px 7px;border-radius:3px;color:#fff;font-weight:700;white-space:nowrap;font-size:.8rem}
.verdict.pass{background:var(--pass)}.verdict.target-fail{background:var(--tfail)}.verdict.generator-fail{background:var(--gfail)}.verdict.error{background:var(--err)}
.kind{display:inline-block;padding:0 6px;border:1px solid #455a64;border-radius:10px;font-size:.75rem;color:#263238;background:#fff;white-space:nowrap}
.mark{display:inline-block;margin-top:2px;padding:0 6px;border-radius:3px;font-size:.75rem;font-weight:700;white-space:nowrap}
.mark.capacity{background:var(--pass);color:#fff}.mark.bottleneck{background:#000;color:#fff}.mark.aborted{background:var(--muted);color:#fff}
.legend span{margin-right:14px;white-space:nowrap}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin-right:4px}
.gates td.obs{color:var(--tfail);font-weight:700}
.finding{background:#fff;border:1px solid var(--line);border-left:6px solid var(--tfail);border-radius:4px;padding:10px 14px;margin:8px 0}
.finding.gen{border-left-color:var(--gfail)}
.seen .chip{display:inline-block;margin:0 4px 2px 0;padding:0 7px;border-radius:10px;font-family:"Liberation Mono",Menlo,Consolas,monospace;font-size:.85rem;border:1px solid var(--line)}
.chip.v-pass{background:var(--pass-bg);border-color:var(--pass)}.chip.v-target-fail{background:var(--tfail-bg);border-color:var(--tfail)}.chip.v-generator-fail{background:var(--gfail-bg);border-color:var(--gfail)}.chip.v-error{background:var(--err-bg);border-color:var(--err)}
.seen .count{color:var(--muted);font-size:.85rem}
.ref{color:var(--muted);font-family:"Liberation Mono",Menlo,Consolas,monospace;font-size:.75rem}
td.note{white-space:pre-wrap;font-style:italic;min-width:160px}
.finding dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0 0}
.finding dt{color:var(--muted)}.finding dd{margin:0}
.finding .setting{font-weight:700;color:#0d47a1}
.evidence{margin:4px 0 0;padding:6px 8px;background:#263238;color:#eceff1;border-radius:3px;white-space:pre-wrap;word-break:break-all;font-size:.8rem}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:16px}
figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:6px;padding:10px}
figcaption{color:var(--muted);font-size:.85rem}
svg.plot{display:block;width:100%;height:auto}
.plot-error{color:var(--err)}
.none{color:var(--muted)}
.nw{white-space:nowrap}
.kv{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:0 24px}
.kv table{width:100%}
</style>
</head>
<body>
<main>
<header>
<div class="top"><span class="status {{.StatusClass}}">{{.R.Status}}</span><h1>loadramp: {{.R.Plan}}</h1><span class="runid mono">{{.R.RunID}}</span></div>
{{- if .R.Partial}}
<p class="partial" id="partial">PARTIAL REPORT: the run was interrupted. Only the {{len .R.Steps}} step attempts recorded before it stopped are reported.</p>
{{- end}}
<p class="summary" id="summary">{{summary .R.Summary}}</p>
<dl class="facts" id="facts">
{{- range .Facts}}
<dt>{{.Label}}</dt><dd class="{{.Class}}">{{.Value}}</dd>
{{- end}}
</dl>
</header>
{{- if .R.Bottleneck}}
<section id="bottleneck">
<h2>Bottleneck: step {{.R.Bottleneck.Step}} attempt {{.R.Bottleneck.Attempt}}</h2>
{{- if .FailedGates}}
<table class="gates">
<thead><tr><th>failed gate</th><th>observed</th><th>threshold</th><th>explanation</th></tr></thead>
<tbody>
{{- range .FailedGates}}
<tr><td class="mono">{{.Gate}}</td><td class="n obs">{{.Observed}}</td><td class="n">{{.Threshold}}</td><td>{{.Explain}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p class="none">No gate result was recorded for this step{{with .R.Bottleneck.Reason}}: {{.}}{{end}}.</p>
{{- end}}
{{- if .BottleneckRequests}}
<h3>Requests</h3>
<table class="requests" id="bottleneck-requests">
<thead><tr>{{range .RequestHeader}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .BottleneckRequests}}
<tr{{if .Failed}} class="v-target-fail"{{end}}>{{range $i, $c := .Cells}}<td{{if not $i}} class="mono"{{else if lt $i 8}} class="n"{{end}}>{{$c}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
{{- end}}
</section>
{{- end}}
<section id="findings">
<h2>Findings</h2>
{{- if .Findings}}
<p class="legend">One card per cause (a rule on one host and process), with the step attempts it was seen on and its strongest evidence.</p>
{{- end}}
{{- range .Findings}}
<div class="finding{{if eq .Side "generator"}} gen{{end}}">
<h3>{{if .Process}}{{.Process}} {{end}}{{.Resource}}{{with .Observed}}: {{.}}{{end}}{{if .Bottleneck}} <span class="mark bottleneck">bottleneck</span>{{end}}</h3>
<dl>
<dt>setting to change</dt><dd class="setting">{{.Setting}}</dd>
{{- with .Fix}}
<dt>fix</dt><dd>{{.}}</dd>
{{- end}}
<dt>rule</dt><dd class="mono">{{.Rule}}</dd>
<dt>where</dt><dd>{{with .Side}}{{.}}, {{end}}host {{.Host}}{{with .Process}}, process {{.}}{{end}}</dd>
{{- with .Seen}}
<dt>seen on steps</dt><dd class="seen">{{range .}}<span class="chip {{.Class}}" title="{{.Title}}">{{.Ref}}</span>{{end}} <span class="count">({{len .}} attempt{{if gt (len .) 1}}s{{end}})</span></dd>
{{- end}}
{{- with .Evidence}}
<dt>evidence</dt><dd>{{range .}}<pre class="evidence">{{.}}</pre>{{end}}</dd>
{{- end}}
{{- with .From}}
<dt>strongest on</dt><dd>step {{.}}</dd>
{{- end}}
</dl>
</div>
{{- else}}
<p class="none">No finding: no counter, limit or log line named a cause.</p>
{{- end}}
</section>
{{- if .Notes}}
<section id="notes">
<h2>Notes</h2>
<table class="notes">
<thead><tr><th>on</th><th>note</th><th>written</th></tr></thead>
<tbody>
{{- range .Notes}}
<tr><td>{{.Where}}</td><td class="note">{{.Text}}</td><td class="mono">{{.Time}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
{{- end}}
{{- if .Hosts.HasHosts}}
<section id="hosts">
<h2>Hosts</h2>
<p class="legend">Each host observed over the hold of {{.Hosts.Step}}.</p>
<div class="scroll"><table class="steps">
<thead><tr><th>host</th><th>side</th><th>observed by</th><th>samples</th><th>findings</th>{{range .Hosts.HostCols}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Hosts.Hosts}}
<tr><td class="mono">{{.Host}}</td><td>{{.Side}}</td><td>{{.Source}}{{with .Error}}<br><span class="why">not observed: {{.}}</span>{{end}}</td><td class="n">{{.Samples}}</td><td class="n">{{.Findings}}</td>{{range .Values}}<td class="n">{{.}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table></div>
</section>
{{- end}}
{{- if .Hosts.HasAgents}}
<section id="agents">
<h2>Agents</h2>
<p class="legend">Each agent's share and measurement of {{.Hosts.AgentStep}}.</p>
<div class="scroll"><table class="steps">
<thead><tr><th>agent</th><th>share</th>{{range .Hosts.AgentCols}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Hosts.Agents}}
<tr><td class="mono">{{.Agent}}</td><td>{{.Params}}{{with .Error}}<br><span class="why">{{.}}</span>{{end}}</td>{{range .Values}}<td class="n">{{.}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table></div>
</section>
{{- end}}
<section id="parameters" class="kv">
<div>
<h2>Static parameters</h2>
{{- if .Static}}
<table><tbody>
{{- range .Static}}
<tr><th class="mono">{{.K}}</th><td class="mono">{{.V}}</td></tr>
{{- end}}
</tbody></table>
{{- else}}
<p class="none">None recorded.</p>
{{- end}}
</div>
{{- if .Limits}}
<div>
<h2>Limits</h2>
<table><tbody>
{{- range .Limits}}
<tr><th class="mono">{{.K}}</th><td class="mono">{{.V}}</td></tr>
{{- end}}
</tbody></table>
</div>
{{- end}}
<div>
<h2>Run</h2>
<table><tbody>
{{- range .Run}}
<tr><th>{{.K}}</th><td>{{.V}}</td></tr>
{{- end}}
{{- with .R.Error}}
<tr><th>error</th><td>{{.}}</td></tr>
{{- end}}
</tbody></table>
</div>
</section>
<section id="steps">
<h2>Steps</h2>
<p class="legend"><span><i class="sw" style="background:var(--pass)"></i>pass</span><span><i class="sw" style="background:var(--tfail)"></i>target-fail</span><span><i class="sw" style="background:var(--gfail)"></i>generator-fail (the load generator, not the target)</span><span><i class="sw" style="background:var(--err)"></i>error</span><span><i class="sw" style="background:#fff176;outline:2px solid #f9a825"></i>parameter changed from the step before</span></p>
{{- if .Rows}}
<div class="scroll"><table class="steps">
<thead><tr><th>step</th><th>attempt</th>{{range .Params}}<th>{{.}}</th>{{end}}{{range .Columns}}<th>{{.}}</th>{{end}}<th>verdict</th><th>why</th>{{if .NotesColumn}}<th>notes</th>{{end}}</tr></thead>
<tbody>
{{- range .Rows}}
<tr class="{{.Class}}" title="{{.Label}}" id="step-{{.Ref}}"><td class="n">{{.Index}}</td><td>{{.Attempt}}{{with .Kind}} <span class="kind">{{.}}</span>{{end}} <span class="ref">{{.Ref}}</span></td>
{{- range .Params}}<td class="n{{if .Changed}} changed{{end}}">{{.Value}}{{with .From}}<span class="from">from {{.}}</span>{{end}}</td>{{end}}
{{- range .Metrics}}<td class="n">{{.}}</td>{{end}}
<td><span class="verdict {{.Verdict}}">{{.Verdict}}</span>{{range .Marks}}<br><span class="mark {{.}}">{{.}}</span>{{end}}</td><td class="why">{{.Why}}</td>{{if $.NotesColumn}}<td class="note">{{range $i, $n := .Notes}}{{if $i}}<br>{{end}}{{$n}}{{end}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table></div>
{{- else}}
<p class="none">No step ran.</p>
{{- end}}
</section>
{{- if .StepRequests}}
<section id="requests">
<h2>Requests per step</h2>
{{- range .StepRequests}}
<h3 class="{{.Class}}">{{.Label}} <span class="verdict {{.Verdict}}">{{.Verdict}}</span></h3>
<div class="scroll"><table class="requests">
<thead><tr>{{range $.RequestHeader}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Lines}}
<tr{{if .Failed}} class="v-target-fail"{{end}}>{{range $i, $c := .Cells}}<td{{if not $i}} class="mono"{{else if lt $i 8}} class="n"{{end}}>{{$c}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table></div>
{{- end}}
</section>
{{- end}}
<section id="plots">
<h2>Plots</h2>
{{- if .Plots}}
<p class="legend">Failing attempts are marked: <span style="color:var(--tfail)">× target-fail</span> <span style="color:var(--gfail)">▲ generator-fail</span> <span style="color:var(--err)">■ error</span>. One point per step attempt, in run order.</p>
<div class="plots">
{{- range .Plots}}
<figure id="fig-{{.ID}}">
<h3>{{.Title}}</h3>
{{- if .Err}}
<p class="plot-error">Plot unavailable: {{.Err}}</p>
{{- else}}
{{.SVG}}
{{- end}}
{{- with .Caption}}
<figcaption>{{.}}</figcaption>
{{- end}}
</figure>
{{- end}}
</div>
{{- else}}
<p class="none">Nothing to plot: no step ran.</p>
{{- end}}
</section>
</main>
</body>
</html>
`
