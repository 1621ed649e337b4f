package report

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Delta is one quantity of two runs side by side.
type Delta struct {
	Name string  `json:"name"`
	Base float64 `json:"base"`
	New  float64 `json:"new"`
	// Change is (New-Base)/Base; 0 when Base is 0.
	Change float64 `json:"change"`
	// Regressed is true when New fell below Base by more than the tolerance.
	Regressed bool `json:"regressed"`
}

// StaticDelta is a static parameter that differs between two runs.
type StaticDelta struct {
	Name string `json:"name"`
	Base string `json:"base"`
	New  string `json:"new"`
}

// Comparison puts two runs of a plan side by side: capacity per load
// parameter and in achieved req/s, latency at capacity, bottleneck, and the
// static parameters that differ.
type Comparison struct {
	Base, New     string
	MaxRegression float64
	Capacity      []Delta
	LatencyP99    *Delta
	BaseCause     string
	NewCause      string
	Static        []StaticDelta
	// Regressed is true when a capacity fell beyond MaxRegression.
	Regressed bool
	// Messages say, one sentence each, what regressed or held.
	Messages []string
}

// Compare judges run nu against base with a tolerance maxRegression (0.1 =
// 10%): a capacity (a load parameter at the highest passing step, or the
// achieved throughput there) lower than base's by more than the tolerance is
// a regression.
func Compare(base, nu *Report, maxRegression float64) *Comparison {
	c := &Comparison{Base: base.RunID, New: nu.RunID, MaxRegression: maxRegression,
		BaseCause: runCause(base), NewCause: runCause(nu)}
	switch {
	case base.Capacity == nil:
		c.Messages = append(c.Messages, fmt.Sprintf("baseline %s has no capacity (no step passed): nothing to compare against", base.RunID))
	case nu.Capacity == nil:
		c.Regressed = true
		c.Messages = append(c.Messages, fmt.Sprintf("no step passed, while baseline %s held %s", base.RunID, ParamString(base.Capacity.Parameters, base.Parameters)))
	default:
		names := append([]string(nil), base.Parameters...)
		for n := range base.Capacity.Parameters {
			if !contains(names, n) {
				names = append(names, n)
			}
		}
		names = append(names, metrics.ThroughputRPS)
		for _, n := range names {
			bv, nv, ok := capacityValue(base, n), capacityValue(nu, n), true
			if _, has := base.Capacity.Parameters[n]; !has && n != metrics.ThroughputRPS {
				ok = false
			}
			if !ok {
				continue
			}
			d := Delta{Name: n, Base: bv, New: nv}
			if bv != 0 {
				d.Change = (nv - bv) / bv
			}
			d.Regressed = bv > 0 && nv < bv*(1-maxRegression)
			c.Capacity = append(c.Capacity, d)
			if d.Regressed {
				c.Regressed = true
				c.Messages = append(c.Messages, fmt.Sprintf("capacity %s regressed %.1f%%: %s in baseline %s, %s now (tolerance %s)",
					n, -100*d.Change, metrics.FormatNumber(bv), base.RunID, metrics.FormatNumber(nv), pct(maxRegression)))
			}
		}
		bp, nq := base.Capacity.Metrics[metrics.LatencyP99], nu.Capacity.Metrics[metrics.LatencyP99]
		if bp > 0 || nq > 0 {
			d := Delta{Name: metrics.LatencyP99, Base: bp, New: nq}
			if bp != 0 {
				d.Change = (nq - bp) / bp
			}
			c.LatencyP99 = &d
		}
		if !c.Regressed {
			c.Messages = append(c.Messages, fmt.Sprintf("capacity held within %s of baseline %s (%s, now %s)", pct(maxRegression), base.RunID,
				ParamString(base.Capacity.Parameters, base.Parameters), ParamString(nu.Capacity.Parameters, nu.Parameters)))
		}
	}
	if c.BaseCause != c.NewCause {
		c.Messages = append(c.Messages, fmt.Sprintf("bottleneck changed: %q in the baseline, %q now", c.BaseCause, c.NewCause))
	}
	bs, ns := flatten(base.Static), flatten(nu.Static)
	keys := map[string]bool{}
	for k := range bs {
		keys[k] = true
	}
	for k := range ns {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if bs[k] != ns[k] {
			c.Static = append(c.Static, StaticDelta{Name: k, Base: bs[k], New: ns[k]})
		}
	}
	return c
}

// MinCapacity judges r against required capacities (load parameter or
// throughput.rps -> minimum). It returns the failures, one sentence each.
func MinCapacity(r *Report, min map[string]float64) []string {
	var out []string
	names := make([]string, 0, len(min))
	for n := range min {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		want := min[n]
		if r.Capacity == nil {
			out = append(out, fmt.Sprintf("capacity %s below the minimum %s: no step passed", n, metrics.FormatNumber(want)))
			continue
		}
		got := capacityValue(r, n)
		if got < want {
			out = append(out, fmt.Sprintf("capacity %s is %s, below the minimum %s", n, metrics.FormatNumber(got), metrics.FormatNumber(want)))
		}
	}
	return out
}

// Judge builds the policy result of r against an optional baseline and
// minimum capacities.
func Judge(r, baseline *Report, maxRegression float64, min map[string]float64) *result.Policy {
	p := &result.Policy{MaxRegression: maxRegression, MinCapacity: min, Passed: true, Messages: []string{}}
	if baseline != nil {
		c := Compare(baseline, r, maxRegression)
		p.Baseline = baseline.RunID
		p.Messages = append(p.Messages, c.Messages...)
		if c.Regressed {
			p.Passed = false
		}
	}
	if fails := MinCapacity(r, min); len(fails) > 0 {
		p.Passed = false
		p.Messages = append(p.Messages, fails...)
	} else if len(min) > 0 {
		p.Messages = append(p.Messages, "every minimum capacity is met")
	}
	return p
}

// WriteText prints the comparison for people.
func (c *Comparison) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "baseline %s\nnew      %s\n\n", c.Base, c.New)
	if len(c.Capacity) > 0 {
		fmt.Fprintf(&b, "%-22s %12s %12s %9s\n", "capacity", "baseline", "new", "change")
		for _, d := range c.Capacity {
			mark := ""
			if d.Regressed {
				mark = "  REGRESSED"
			}
			fmt.Fprintf(&b, "%-22s %12s %12s %+8.1f%%%s\n", d.Name, metrics.FormatNumber(d.Base), metrics.FormatNumber(d.New), 100*d.Change, mark)
		}
	}
	if d := c.LatencyP99; d != nil {
		fmt.Fprintf(&b, "%-22s %12s %12s %+8.1f%%\n", "p99 at capacity", metrics.FormatValue(metrics.LatencyP99, d.Base), metrics.FormatValue(metrics.LatencyP99, d.New), 100*d.Change)
	}
	fmt.Fprintf(&b, "\nbottleneck: baseline %s\n            new      %s\n", orDash(c.BaseCause), orDash(c.NewCause))
	if len(c.Static) > 0 {
		b.WriteString("\nstatic parameters that differ:\n")
		for _, s := range c.Static {
			fmt.Fprintf(&b, "  %s: %s -> %s\n", s.Name, orDash(s.Base), orDash(s.New))
		}
	}
	b.WriteString("\n")
	for _, m := range c.Messages {
		b.WriteString(m + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func capacityValue(r *Report, name string) float64 {
	if r.Capacity == nil {
		return 0
	}
	if v, ok := r.Capacity.Parameters[name]; ok {
		return v
	}
	return r.Capacity.Metrics[name]
}

// runCause names a run's bottleneck in a few words: the first finding's rule, or
// the failed gate's metric, with the parameter that changed.
func runCause(r *Report) string {
	b := r.Bottleneck
	if b == nil {
		return r.Status
	}
	why := ""
	switch {
	case len(b.Findings) > 0:
		why = b.Findings[0].Rule
		if b.Findings[0].Process != "" {
			why += " on " + b.Findings[0].Process
		}
	case len(b.FailedGates) > 0:
		why = b.FailedGates[0].Metric
	}
	return strings.TrimSpace(fmt.Sprintf("%s (%s)", why, b.Parameter))
}

func pct(f float64) string {
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.2f", 100*f), "0"), ".0") + "%"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
