package orchestrator

import (
	"fmt"
	"sort"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/gate"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Check returns every problem of plan p: the plan's own validation, its gate
// expressions, and the safety ceilings. An empty result means p can run.
func Check(p *plan.Plan, c plan.Ceilings) []error {
	errs := p.Validate()
	_, gerrs := compileGates(p)
	errs = append(errs, gerrs...)
	return append(errs, p.CheckCeilings(c)...)
}

// gateSet are a plan's expressions, parsed: the gates a step must hold, the
// generator's health checks, and the abort gates checked every second; with
// loadramp's default checks among the gates and health checks, and the
// record of every check applied (run.json "checks").
type gateSet struct {
	gates, health []check
	abort         []gate.Gate
	checks        result.Checks
}

// starvedAt is the generator.starved.ratio the health checks call starved
// (StepFacts.StarvedAt): the threshold of the check on it, -1 without one.
func starvedAt(health []check) float64 {
	for _, c := range health {
		if c.Metric == metrics.GeneratorStarvedRatio && (c.Op == gate.Less || c.Op == gate.LessEqual) {
			return c.Threshold
		}
	}
	return -1
}

// check is a gate or health check; a default one (def) is ignored on a step
// that did not produce its metric, since not every engine measures it.
type check struct {
	gate.Gate
	def bool
}

// compileGates parses the plan's gate, generator_health and abort
// expressions once, and returns every problem with its path: a syntax error,
// a threshold whose unit does not fit its metric, an abort gate on a metric
// not measured every second, a probe metric without a probe. It adds the
// default checks (plan.Defaults) the plan does not replace with an
// expression of its own on the same metric.
func compileGates(p *plan.Plan) (gateSet, []error) {
	var gs gateSet
	var errs []error
	problem := func(e plan.Expr, format string, args ...any) {
		errs = append(errs, &plan.Problem{Path: e.Path, Line: e.Line, Msg: fmt.Sprintf(format, args...)})
	}
	judged := map[string]bool{} // kind + metric the plan judges itself
	for _, e := range p.Expressions() {
		g, err := gate.Parse(e.Text)
		if err != nil {
			problem(e, "%s", err.Error())
			continue
		}
		if msg := unitMismatch(g); msg != "" {
			problem(e, "gate %q: %s", e.Text, msg)
		}
		if strings.HasPrefix(g.Metric, "probe.") && p.Probe == nil {
			problem(e, "gate on %s needs a probe block (probe: {kind: http|pubsub, ...})", g.Metric)
		}
		if msg := promGate(p, g.Metric); msg != "" {
			problem(e, "gate %q: %s", e.Text, msg)
		}
		if msg := requestGate(p, g.Metric); msg != "" {
			problem(e, "gate %q: %s", e.Text, msg)
		}
		judged[e.Kind+"\x00"+g.Metric] = true
		switch e.Kind {
		case plan.CheckGates:
			gs.gates = append(gs.gates, check{Gate: g})
			gs.checks.Gates = append(gs.checks.Gates, result.Check{Expr: e.Text})
		case plan.CheckGeneratorHealth:
			gs.health = append(gs.health, check{Gate: g})
			gs.checks.GeneratorHealth = append(gs.checks.GeneratorHealth, result.Check{Expr: e.Text})
		case "abort":
			if !perSecond[g.Metric] {
				problem(e, "abort gates are checked every second on %s; %s is not among them", strings.Join(perSecondNames(), ", "), g.Metric)
			}
			gs.abort = append(gs.abort, g)
		}
	}
	for _, d := range p.Defaults() {
		if judged[d.Kind+"\x00"+d.Metric] {
			continue // the plan's own threshold wins
		}
		g, err := gate.Parse(d.Expr)
		if err != nil {
			// The defaults are loadramp's own table: a test parses them all.
			errs = append(errs, fmt.Errorf("default check %q: %w", d.Expr, err))
			continue
		}
		c := result.Check{Expr: d.Expr, Default: true, Param: d.Param, Why: d.Why}
		if d.Kind == plan.CheckGates {
			gs.gates = append(gs.gates, check{Gate: g, def: true})
			gs.checks.Gates = append(gs.checks.Gates, c)
		} else {
			gs.health = append(gs.health, check{Gate: g, def: true})
			gs.checks.GeneratorHealth = append(gs.checks.GeneratorHealth, c)
		}
	}
	gs.checks.Off = p.DefaultsOff()
	return gs, errs
}

// perSecond are the metrics of one second that abort gates see (secondMetrics).
var perSecond = map[string]bool{
	metrics.ErrorsRatio: true, metrics.ErrorsCount: true, metrics.RequestsCount: true,
	metrics.ThroughputRPS: true, metrics.ThroughputOffered: true, metrics.ThroughputRatio: true,
	metrics.LatencyP50: true, metrics.LatencyP99: true,
}

func perSecondNames() []string {
	names := make([]string, 0, len(perSecond))
	for n := range perSecond {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// unitMismatch explains a threshold whose unit does not fit its metric: a
// duration needs a time unit (a bare 100 would mean 100 seconds), a ratio or
// a count cannot take one.
func unitMismatch(g gate.Gate) string {
	timeUnit := g.Unit == "ns" || g.Unit == "us" || g.Unit == "ms" || g.Unit == "s"
	switch {
	case metrics.IsDuration(g.Metric) && !timeUnit:
		return fmt.Sprintf("%s is a duration: give the threshold a unit (ns, us, ms, s), e.g. %s %s 100ms", g.Metric, g.Metric, g.Op)
	case (metrics.IsRatio(g.Metric) || metrics.IsCount(g.Metric)) && timeUnit:
		return fmt.Sprintf("%s is not a duration: %s takes a plain number or %%", g.Metric, g.Unit)
	}
	return ""
}

// promGate explains a gate on a prom.* metric that no prometheus block of the
// plan defines.
func promGate(p *plan.Plan, metric string) string {
	if !strings.HasPrefix(metric, plan.PromMetricPrefix) {
		return ""
	}
	name, ok := plan.PromMetricName(metric)
	defined := p.PromMetrics()
	if _, known := defined[name]; !known {
		if len(defined) == 0 {
			return fmt.Sprintf("%s needs a prometheus block that defines %s (prometheus: {query: URL, metrics: {%s: 'PromQL'}})", metric, name, name)
		}
		names := make([]string, 0, len(defined))
		for n := range defined {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Sprintf("no prometheus metric is named %q; the plan defines %s", name, strings.Join(names, ", "))
	}
	if !ok {
		return fmt.Sprintf("%s: a prometheus metric is prom.%s (its mean over the hold), prom.%s.peak or prom.%s.min", metric, name, name, name)
	}
	return ""
}

// Checks are the gates and generator health checks the plan's steps will be
// judged on: its own and loadramp's defaults (those it does not replace or
// turn off), as run.json records them. Expressions that do not parse are left
// out (Check reports them).
func Checks(p *plan.Plan) result.Checks {
	gs, _ := compileGates(p)
	return gs.checks
}

// requestGate explains a gate on a per-request metric
// (request.<name>.<metric>) that names no request of the plan's mix, or a
// figure not measured per request.
func requestGate(p *plan.Plan, metric string) string {
	if !strings.HasPrefix(metric, metrics.RequestPrefix) {
		return ""
	}
	name, m, ok := metrics.SplitRequestMetric(metric)
	if !ok {
		return fmt.Sprintf("%s: a per-request metric is request.<name>.<metric>, such as request.checkout.latency.p99", metric)
	}
	names := p.RequestNames()
	if len(names) == 0 {
		return fmt.Sprintf("%s: per-request metrics need a mix of named requests (workload.http.requests)", metric)
	}
	found := false
	for _, n := range names {
		found = found || n == name
	}
	if !found {
		return fmt.Sprintf("no request is named %q; the plan's requests are %s%s", name, strings.Join(names, ", "), plan.Suggest(name, names))
	}
	if !metrics.IsRequestMetric(m) {
		return fmt.Sprintf("%s is not measured per request; request.%s. takes %s%s", m, name, strings.Join(metrics.RequestMetrics, ", "), plan.Suggest(m, metrics.RequestMetrics))
	}
	return ""
}
