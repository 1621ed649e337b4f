package orchestrator

import (
	"fmt"
	"sort"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/gate"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
)

// Ceilings are safety limits from the configuration: a plan whose schedule
// exceeds one is refused before anything starts. Zero means no limit.
type Ceilings struct {
	MaxRate  float64
	MaxUsers float64
}

// Check returns every problem of plan p: the plan's own validation, its gate
// expressions, and the safety ceilings. An empty result means p can run.
func Check(p *plan.Plan, c Ceilings) []error {
	errs := p.Validate()
	for _, f := range []struct {
		field string
		exprs []string
	}{{"gates", p.Gates}, {"generator_health", p.GeneratorHealth}, {"abort", p.Abort}} {
		for i, e := range f.exprs {
			path := fmt.Sprintf("%s[%d]", f.field, i)
			g, err := gate.Parse(e)
			if err != nil {
				errs = append(errs, &plan.Problem{Path: path, Line: p.Line(path), Msg: err.Error()})
				continue
			}
			if msg := unitMismatch(g); msg != "" {
				errs = append(errs, &plan.Problem{Path: path, Line: p.Line(path), Msg: fmt.Sprintf("gate %q: %s", e, msg)})
			}
			if f.field == "abort" && !perSecond[g.Metric] {
				errs = append(errs, &plan.Problem{Path: path, Line: p.Line(path),
					Msg: fmt.Sprintf("abort gates are checked every second on %s; %s is not among them", strings.Join(perSecondNames(), ", "), g.Metric)})
			}
			if msg := promGate(p, g.Metric); msg != "" {
				errs = append(errs, &plan.Problem{Path: path, Line: p.Line(path), Msg: fmt.Sprintf("gate %q: %s", e, msg)})
			}
			if strings.HasPrefix(g.Metric, "probe.") && p.Probe == nil {
				errs = append(errs, &plan.Problem{Path: path, Line: p.Line(path),
					Msg: fmt.Sprintf("gate on %s needs a probe block (probe: {kind: http|pubsub, ...})", g.Metric)})
			}
		}
	}
	for _, prm := range p.Parameters {
		var limit float64
		var key string
		switch prm.Name {
		case "rate":
			limit, key = c.MaxRate, "max_rate"
			if pub := paramMax(p, "publishers"); pub > 0 {
				// The pub/sub workload's rate is per publisher.
				if limit > 0 && prm.Max*pub > limit {
					path := "parameters.rate.max"
					errs = append(errs, &plan.Problem{Path: path, Line: p.Line(path),
						Msg: fmt.Sprintf("%g publishers x %g messages/s is %g/s, over the safety ceiling max_rate=%g from the configuration; lower the plan's maximums or raise max_rate", pub, prm.Max, pub*prm.Max, limit)})
				}
				continue
			}
		case "users":
			limit, key = c.MaxUsers, "max_users"
		default:
			continue
		}
		if limit > 0 && prm.Max > limit {
			path := "parameters." + prm.Name + ".max"
			errs = append(errs, &plan.Problem{Path: path, Line: p.Line(path),
				Msg: fmt.Sprintf("%g is over the safety ceiling %s=%g from the configuration; lower the plan's max or raise %s", prm.Max, key, limit, key)})
		}
	}
	return errs
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
	case gate.IsDuration(g.Metric) && !timeUnit:
		return fmt.Sprintf("%s is a duration: give the threshold a unit (ns, us, ms, s), e.g. %s %s 100ms", g.Metric, g.Metric, g.Op)
	case (gate.IsRatio(g.Metric) || gate.IsCount(g.Metric)) && timeUnit:
		return fmt.Sprintf("%s is not a duration: %s takes a plain number or %%", g.Metric, g.Unit)
	}
	return ""
}

func paramMax(p *plan.Plan, name string) float64 {
	for _, prm := range p.Parameters {
		if prm.Name == name {
			return prm.Max
		}
	}
	return 0
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
