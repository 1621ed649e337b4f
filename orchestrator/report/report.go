// Package report derives a run's report from its run.json and step log, and
// writes it as report.json, steps.csv, report.md, junit.xml and report.html.
//
// Build is pure and deterministic: the same run and steps give the same
// Report, byte for byte in every format, so reports can be regenerated from a
// run directory at any time (`loadramp report RUN_DIR`) and golden-tested.
//
// Formats are written through a Writers registry (Builtin); report.html is a
// self-contained page with inline SVG plots drawn with gonum/plot.
package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Schema is the value of report.json's "schema" key.
const Schema = "loadramp.report/v1"

// Report is report.json (DESIGN.md, "report.json"). Durations are seconds.
type Report struct {
	Schema string `json:"schema"`
	RunID  string `json:"run_id"`
	Plan   string `json:"plan"`
	// Status is the run's status; a run that never finished (run.json still
	// says "running": it was killed) is "aborted" with Partial set.
	Status  string `json:"status"`
	Partial bool   `json:"partial,omitempty"`
	// Summary is one or two sentences for people: capacity, then bottleneck.
	Summary string           `json:"summary"`
	Error   string           `json:"error,omitempty"`
	Version string           `json:"version,omitempty"`
	Host    result.HostFacts `json:"host"`
	Start   time.Time        `json:"start"`
	End     *time.Time       `json:"end,omitempty"`
	Static  map[string]any   `json:"static"`
	// Limits is the preflight limits audit, as recorded in run.json.
	Limits map[string]any `json:"limits,omitempty"`
	// Parameters are the load parameter names in plan order.
	Parameters []string `json:"parameters"`
	Gates      []string `json:"gates,omitempty"`
	// Checks are every gate and generator health check the steps were
	// judged on, loadramp's defaults among them, and the default sets the
	// plan turned off (run.json "checks"; absent for older runs).
	Checks *result.Checks `json:"checks,omitempty"`
	// Capacity is the highest passing attempt; null when none passed.
	Capacity *Capacity `json:"capacity"`
	// Bottleneck is the first confirmed target failure; null when none.
	Bottleneck *Bottleneck `json:"bottleneck"`
	// Policy is the capacity judgement against a baseline and minimums, when
	// the run asked for one.
	Policy *result.Policy `json:"policy,omitempty"`
	// Steps are every attempt, in the order they ran.
	Steps []result.Step `json:"steps"`
	// Findings are the run's distinct causes, one per rule, host and
	// process, each with the attempts where it was seen; the bottleneck's
	// own first.
	Findings []Cause `json:"findings"`
	// Notes are the engineers' notes on the run and its steps (notes.jsonl),
	// in the order they were written.
	Notes []record.Note `json:"notes,omitempty"`
}

// Option adds what the run directory holds beside run.json and steps.jsonl
// to a report.
type Option func(*Report)

// WithNotes adds the run's notes (record.ReadNotes).
func WithNotes(notes []record.Note) Option {
	return func(r *Report) {
		if len(notes) > 0 {
			r.Notes = append([]record.Note(nil), notes...)
		}
	}
}

// NotesOf returns the notes on the run itself ("run"), or on step attempt
// s: those addressed to the attempt, and those addressed to its whole step
// when s is the step's first attempt in the report.
func (r *Report) NotesOf(s *result.Step) []record.Note {
	var out []record.Note
	for _, n := range r.Notes {
		a := n.Addr()
		switch {
		case s == nil:
			if a.IsRun() {
				out = append(out, n)
			}
		case a.Attempt == 0:
			if a.Index == s.Index && r.firstOf(s.Index) == s {
				out = append(out, n)
			}
		case a.Matches(*s):
			out = append(out, n)
		}
	}
	return out
}

// firstOf is the report's first attempt of step index.
func (r *Report) firstOf(index int) *result.Step {
	for i := range r.Steps {
		if r.Steps[i].Index == index {
			return &r.Steps[i]
		}
	}
	return nil
}

// StepNote is a note with the step attempt it is shown on.
type StepNote struct {
	record.Note
	// On is the attempt whose row shows it; nil for a note on the run, or
	// on a step the report does not hold.
	On *result.Step
}

// AllNotes lists every note in the order written, with the attempt its row
// is shown on.
func (r *Report) AllNotes() []StepNote {
	var out []StepNote
	for _, n := range r.Notes {
		sn := StepNote{Note: n}
		if a := n.Addr(); !a.IsRun() {
			for i := range r.Steps {
				s := &r.Steps[i]
				if (a.Attempt == 0 && r.firstOf(a.Index) == s) || (a.Attempt > 0 && a.Matches(*s)) {
					sn.On = s
					break
				}
			}
		}
		out = append(out, sn)
	}
	return out
}

// Capacity is the highest load that held.
type Capacity struct {
	Step       int                `json:"step"`
	Attempt    int                `json:"attempt"`
	Kind       string             `json:"kind"`
	Parameters map[string]float64 `json:"parameters"`
	Metrics    metrics.Metrics    `json:"metrics"`
	// Requests is the per-request table of the capacity step, for a mix.
	Requests []RequestRow `json:"requests,omitempty"`
}

// Bottleneck is the first ramp step that failed on the target, after its
// confirmation reruns.
type Bottleneck struct {
	Step    int `json:"step"`
	Attempt int `json:"attempt"`
	// Parameter is the load parameter whose change made the step fail, From
	// and To its values before and at the failing step.
	Parameter   string              `json:"parameter"`
	From        float64             `json:"from"`
	To          float64             `json:"to"`
	Side        string              `json:"side"`
	Reason      string              `json:"reason,omitempty"`
	FailedGates []result.GateResult `json:"failed_gates"`
	Findings    []result.Finding    `json:"findings"`
	// Refined is the tightest passing and failing value of Parameter after
	// bisection, when refine attempts ran.
	Refined *result.Refined `json:"refined,omitempty"`
	// Requests is the per-request table of the failing step, for a mix: a
	// failed gate on one request is named on its line.
	Requests []RequestRow `json:"requests,omitempty"`
}

// StepName is a step's label in reports: "step 3 attempt 1: rate=1000
// connections=8", with the kind in parentheses for anything but a ramp attempt
// (refine attempts count their own attempts).
func StepName(s result.Step, order []string) string {
	kind := ""
	if s.Kind != result.KindRamp && s.Kind != "" {
		kind = " (" + s.Kind + ")"
	}
	return fmt.Sprintf("step %d attempt %d%s: %s", s.Index, s.Attempt, kind, ParamString(s.Parameters, order))
}

// ParamString formats load parameters as "rate=1000 connections=8", in order
// (then any others, sorted).
func ParamString(params map[string]float64, order []string) string {
	var parts []string
	for _, k := range orderedKeys(params, order) {
		parts = append(parts, k+"="+strconv.FormatFloat(params[k], 'f', -1, 64))
	}
	return strings.Join(parts, " ")
}

// orderedKeys returns the keys of m that appear in order, in that order, then
// the rest sorted.
func orderedKeys(m map[string]float64, order []string) []string {
	var keys []string
	seen := map[string]bool{}
	for _, k := range order {
		if _, ok := m[k]; ok && !seen[k] {
			keys = append(keys, k)
			seen[k] = true
		}
	}
	var rest []string
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(keys, rest...)
}

// Build derives the report from a run and its step attempts (in log order),
// and from what options add (WithNotes). It does not modify its arguments.
func Build(run *record.Run, steps []result.Step, opts ...Option) *Report {
	if run == nil {
		run = &record.Run{}
	}
	r := &Report{
		Schema:     Schema,
		RunID:      run.ID,
		Plan:       run.Plan,
		Status:     run.Status,
		Error:      run.Error,
		Version:    run.Version,
		Host:       run.Host,
		Start:      run.Start,
		Static:     copyAny(run.Static),
		Limits:     run.Limits,
		Parameters: record.ParameterNames(run, steps),
		Gates:      run.Gates,
		Checks:     run.Checks,
		Policy:     run.Policy,
		Steps:      make([]result.Step, 0, len(steps)),
	}
	if r.Parameters == nil {
		r.Parameters = []string{}
	}
	if !run.End.IsZero() {
		end := run.End
		r.End = &end
	}
	if r.Status == result.StatusRunning || r.Status == "" {
		r.Status, r.Partial = result.StatusAborted, true
	}
	for _, s := range steps {
		r.Steps = append(r.Steps, stepOf(s))
	}
	if c, ok := record.CapacityStep(steps); ok {
		r.Capacity = &Capacity{Step: c.Index, Attempt: c.Attempt, Kind: c.Kind,
			Parameters: nonNilParams(c.Parameters), Metrics: nonNilMetrics(c.Metrics), Requests: RequestRows(c)}
	}
	if b, ok := record.Bottleneck(steps); ok {
		findings := b.Findings
		if findings == nil {
			findings = []result.Finding{}
		}
		r.Bottleneck = &Bottleneck{
			Step: b.Step.Index, Attempt: b.Step.Attempt,
			Parameter: b.Step.Changed, From: b.Step.From, To: b.Step.To,
			Side: result.SideTarget, Reason: b.Step.Reason,
			FailedGates: failedGates(b.Step), Findings: findings, Refined: b.Refined,
			Requests: RequestRows(stepOf(b.Step)),
		}
	}
	var own []result.Finding
	if r.Bottleneck != nil {
		own = r.Bottleneck.Findings
	}
	r.Findings = causes(r.Steps, own)
	for _, o := range opts {
		o(r)
	}
	r.Summary = summarize(r)
	return r
}

// CheckLine is one line of a run's checks for people.
type CheckLine struct{ Label, Text string }

// CheckLines are the run's checks for people, one line per list: the plan's
// and the defaults (marked "default"), then each default set the plan turned
// off. nil for a run that recorded none.
func CheckLines(c *result.Checks) []CheckLine {
	if c == nil {
		return nil
	}
	list := func(cs []result.Check) string {
		parts := make([]string, 0, len(cs))
		for _, x := range cs {
			if x.Default {
				parts = append(parts, x.Expr+" (default)")
			} else {
				parts = append(parts, x.Expr)
			}
		}
		return strings.Join(parts, " · ")
	}
	var out []CheckLine
	if len(c.Gates) > 0 {
		out = append(out, CheckLine{"gates", list(c.Gates)})
	}
	if len(c.GeneratorHealth) > 0 {
		out = append(out, CheckLine{"generator health", list(c.GeneratorHealth)})
	}
	for _, off := range c.Off {
		what := "the default checks that each load parameter was achieved"
		if off == "generator_health" {
			what = "the default generator health checks"
		}
		out = append(out, CheckLine{"turned off", fmt.Sprintf("%s, by the plan (default_checks.%s: false)", what, off)})
	}
	return out
}

// stepOf is step s as the report shows it: no nil maps or lists, and the
// failed gates and health checks derived for logs that only kept all of them.
func stepOf(s result.Step) result.Step {
	s.Parameters = nonNilParams(s.Parameters)
	s.Metrics = nonNilMetrics(s.Metrics)
	s.FailedGates = failedGates(s)
	if s.Findings == nil {
		s.Findings = []result.Finding{}
	}
	if len(s.FailedHealth) == 0 {
		s.FailedHealth = nil
		for _, h := range s.Health {
			if !h.Pass {
				s.FailedHealth = append(s.FailedHealth, h)
			}
		}
	}
	return s
}

// failedGates returns the step's failed gates: FailedGates as recorded or,
// for logs that only kept Gates, the ones that did not pass; never nil.
func failedGates(s result.Step) []result.GateResult {
	out := []result.GateResult{}
	if len(s.FailedGates) > 0 {
		return append(out, s.FailedGates...)
	}
	for _, g := range s.Gates {
		if !g.Pass {
			out = append(out, g)
		}
	}
	return out
}

func nonNilParams(m map[string]float64) map[string]float64 {
	if m == nil {
		return map[string]float64{}
	}
	return m
}

func nonNilMetrics(m map[string]float64) map[string]float64 {
	if m == nil {
		return map[string]float64{}
	}
	return m
}

func copyAny(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// summarize writes the summary: capacity, then the bottleneck, then how the run
// ended when that is not explained by the bottleneck.
func summarize(r *Report) string {
	var parts []string
	if c := r.Capacity; c != nil {
		var details []string
		details = append(details, ParamString(c.Parameters, r.Parameters))
		if p99, ok := c.Metrics[metrics.LatencyP99]; ok {
			details = append(details, "p99 "+metrics.FormatValue(metrics.LatencyP99, p99))
		}
		if rps, ok := c.Metrics[metrics.ThroughputRPS]; ok {
			parts = append(parts, fmt.Sprintf("Capacity %s req/s (%s).", metrics.FormatNumber(rps), strings.Join(details, ", ")))
		} else {
			parts = append(parts, fmt.Sprintf("Capacity at %s.", strings.Join(details, ", ")))
		}
	} else if len(r.Steps) > 0 {
		parts = append(parts, "No step passed.")
	} else {
		parts = append(parts, "No step ran.")
	}
	if b := r.Bottleneck; b != nil {
		where := fmt.Sprintf("step %d", b.Step)
		if b.Parameter != "" {
			where += fmt.Sprintf(", %s %s -> %s", b.Parameter, metrics.FormatNumber(b.From), metrics.FormatNumber(b.To))
		}
		s := fmt.Sprintf("First bottleneck at %s: %s.", where, cause(b))
		if b.Refined != nil {
			s += fmt.Sprintf(" Refined: %s passes at %s, fails at %s.", b.Parameter, metrics.FormatNumber(b.Refined.Pass), metrics.FormatNumber(b.Refined.Fail))
		}
		parts = append(parts, s)
	}
	switch r.Status {
	case result.StatusBottleneck:
		if r.Bottleneck == nil {
			parts = append(parts, "The run stopped at a bottleneck.")
		}
	case result.StatusMaxReached:
		if r.Bottleneck == nil {
			parts = append(parts, "No bottleneck up to the largest step of the plan.")
		}
	case result.StatusGeneratorLimited:
		s := "The load generators saturated before the target failed"
		if g := lastWith(r.Steps, result.VerdictGeneratorFail); g != nil {
			s = fmt.Sprintf("The load generators saturated at step %d before the target failed", g.Index)
			if g.Reason != "" {
				s += ": " + strings.TrimPrefix(g.Reason, "generator saturated: ")
			}
		}
		parts = append(parts, s+".")
	case result.StatusAborted:
		if r.Partial {
			parts = append(parts, fmt.Sprintf("The run did not finish (partial report after %d step attempts).", len(r.Steps)))
		} else {
			parts = append(parts, fmt.Sprintf("The run was aborted after %d step attempts.", len(r.Steps)))
		}
	case result.StatusError:
		why := r.Error
		if why == "" {
			if e := lastWith(r.Steps, result.VerdictError); e != nil {
				why = e.Reason
			}
		}
		if why == "" {
			parts = append(parts, "The run failed.")
		} else {
			parts = append(parts, "The run failed: "+strings.TrimSuffix(why, ".")+".")
		}
	}
	return strings.Join(parts, " ")
}

// SummaryLines say how a run ended, for a terminal: the summary, what to
// change for the bottleneck's first finding, and the capacity policy's
// verdict with its reasons.
func SummaryLines(r *Report) []string {
	lines := []string{r.Summary}
	if b := r.Bottleneck; b != nil && len(b.Findings) > 0 && b.Findings[0].Setting != "" {
		f := b.Findings[0]
		line := "change: " + f.Setting
		if f.Fix != "" {
			line += " (" + f.Fix + ")"
		}
		lines = append(lines, line)
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

// cause names a bottleneck in a few words: its first finding, else its first
// failed gate, else its reason.
func cause(b *Bottleneck) string {
	if len(b.Findings) > 0 {
		f := b.Findings[0]
		what := f.Resource
		if f.Process != "" {
			what = f.Process + " " + what
		}
		if what == "" {
			what = f.Rule
		}
		if f.Observed != "" {
			return fmt.Sprintf("%s exhausted (%s)", what, f.Observed)
		}
		return what + " exhausted"
	}
	for _, g := range b.FailedGates {
		if g.Explain != "" {
			return g.Explain
		}
		return g.Gate
	}
	if b.Reason != "" {
		return b.Reason
	}
	return "the target failed its gates"
}

func lastWith(steps []result.Step, verdict string) *result.Step {
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].Verdict == verdict {
			return &steps[i]
		}
	}
	return nil
}
