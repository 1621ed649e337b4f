package record

import (
	"fmt"
	"slices"
	"sort"

	"github.com/loadramp/loadramp/orchestrator/result"
)

// How attempts relate in steps.jsonl: attempts of one step share its Index and
// count Attempt from 1; a confirm rerun (KindConfirm) and a rerun after scaling
// the generators (KindRerun) repeat the Index of the step they rerun; refine
// (bisection) attempts get Indexes of their own after the failing step. The
// functions below derive a run's outcome from that log alone, so the report, the
// history and a resume agree.

// CapacityStep returns the highest passing attempt: the last attempt, in log
// order, whose verdict is pass. The ramp only goes up and bisection's last pass
// is its highest, so the last pass is the highest load that held.
func CapacityStep(steps []result.Step) (result.Step, bool) {
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].Verdict == result.VerdictPass {
			return steps[i], true
		}
	}
	return result.Step{}, false
}

// StepGroup is one step of the schedule with all its attempts, in log order.
type StepGroup struct {
	Index    int
	Kind     string // kind of the first attempt
	Attempts []result.Step
}

// Last returns the last attempt of the group: its confirmed outcome.
func (g StepGroup) Last() result.Step { return g.Attempts[len(g.Attempts)-1] }

// Groups gathers the attempts of each step Index, ordered by the first
// appearance of the Index in the log.
func Groups(steps []result.Step) []StepGroup {
	var groups []StepGroup
	at := map[int]int{}
	for _, s := range steps {
		i, ok := at[s.Index]
		if !ok {
			i = len(groups)
			at[s.Index] = i
			groups = append(groups, StepGroup{Index: s.Index, Kind: s.Kind})
		}
		groups[i].Attempts = append(groups[i].Attempts, s)
	}
	return groups
}

// BottleneckFound is the first real bottleneck of a run.
type BottleneckFound struct {
	// Step is the confirmed failing attempt (the last of its step); its
	// FailedGates and Findings say what failed.
	Step result.Step
	// Attempts are every attempt of that step, in log order.
	Attempts []result.Step
	// Findings are Step's findings, and those of the step's other target-fail
	// attempts that Step does not repeat (same rule, process and host), but
	// the generator's, each with an evidence line naming the attempt it was
	// seen at: a limit the target hit at one attempt (a log line) may leave no
	// trace at the next, which fails at the same load by the same symptom. In
	// result.SortFindings' order.
	Findings []result.Finding
	// Refined is set when refine attempts narrowed the changed parameter.
	Refined *result.Refined
}

// Bottleneck returns the first ramp step whose confirmed verdict is
// target-fail: the last of its ramp, confirm and rerun attempts failed on the
// target's side. A generator-fail or an error is never a bottleneck.
func Bottleneck(steps []result.Step) (BottleneckFound, bool) {
	for _, g := range Groups(steps) {
		if g.Kind != result.KindRamp {
			continue
		}
		var last result.Step
		found := false
		for _, a := range g.Attempts {
			if a.Kind == result.KindRamp || a.Kind == result.KindConfirm || a.Kind == result.KindRerun {
				last, found = a, true
			}
		}
		if !found || last.Verdict != result.VerdictTargetFail {
			continue
		}
		b := BottleneckFound{Step: last, Attempts: g.Attempts, Findings: attemptsFindings(g.Attempts, last)}
		b.Refined = refine(steps, last)
		return b, true
	}
	return BottleneckFound{}, false
}

// attemptsFindings returns last's findings with the other target-fail
// attempts' findings (the latest first) that last does not repeat, but the
// generator's (left to the run's list of causes), each marked with the attempt
// it was seen at, in result.SortFindings' order.
func attemptsFindings(attempts []result.Step, last result.Step) []result.Finding {
	type key struct{ rule, process, host string }
	out := slices.Clone(last.Findings)
	seen := map[key]bool{}
	for _, f := range out {
		seen[key{f.Rule, f.Process, f.Host}] = true
	}
	for i := len(attempts) - 1; i >= 0; i-- {
		a := attempts[i]
		if a.Attempt == last.Attempt || a.Verdict != result.VerdictTargetFail ||
			(a.Kind != result.KindRamp && a.Kind != result.KindConfirm && a.Kind != result.KindRerun) {
			continue
		}
		for _, f := range a.Findings {
			k := key{f.Rule, f.Process, f.Host}
			if f.Side == result.SideGenerator || seen[k] {
				continue
			}
			seen[k] = true
			f.Evidence = append(slices.Clone(f.Evidence),
				fmt.Sprintf("seen at attempt %d of this step, not at attempt %d, which failed at the same load", a.Attempt, last.Attempt))
			out = append(out, f)
		}
	}
	if len(out) > len(last.Findings) {
		result.SortFindings(out)
	}
	return out
}

// refine narrows [From, To] of the failing step's changed parameter with the
// refine attempts' verdicts: the highest passing and the lowest failing value.
func refine(steps []result.Step, failed result.Step) *result.Refined {
	if failed.Changed == "" {
		return nil
	}
	r := result.Refined{Pass: failed.From, Fail: failed.To}
	any := false
	for _, s := range steps {
		if s.Kind != result.KindRefine {
			continue
		}
		v, ok := s.Parameters[failed.Changed]
		if !ok {
			continue
		}
		switch s.Verdict {
		case result.VerdictPass:
			any = true
			if v > r.Pass && v < r.Fail {
				r.Pass = v
			}
		case result.VerdictTargetFail:
			any = true
			if v < r.Fail && v > r.Pass {
				r.Fail = v
			}
		}
	}
	if !any {
		return nil
	}
	return &r
}

// ParameterNames returns the load parameters of a run in plan order (from
// run.Params), followed by any others seen in steps, sorted.
func ParameterNames(run *Run, steps []result.Step) []string {
	seen := map[string]bool{}
	var names []string
	if run != nil {
		for _, p := range run.Params {
			if !seen[p] {
				seen[p] = true
				names = append(names, p)
			}
		}
	}
	var extra []string
	for _, s := range steps {
		for p := range s.Parameters {
			if !seen[p] {
				seen[p] = true
				extra = append(extra, p)
			}
		}
	}
	sort.Strings(extra)
	return append(names, extra...)
}
