package orchestrator

import (
	"fmt"
	"sort"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/gate"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
)

// Check returns every problem of plan p: the plan's own validation, its gate
// expressions, and the safety ceilings. An empty result means p can run.
func Check(p *plan.Plan, c plan.Ceilings) []error {
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
			if strings.HasPrefix(g.Metric, "probe.") && p.Probe == nil {
				errs = append(errs, &plan.Problem{Path: path, Line: p.Line(path),
					Msg: fmt.Sprintf("gate on %s needs a probe block (probe: {kind: http|pubsub, ...})", g.Metric)})
			}
		}
	}
	errs = append(errs, p.CheckCeilings(c)...)
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
	case metrics.IsDuration(g.Metric) && !timeUnit:
		return fmt.Sprintf("%s is a duration: give the threshold a unit (ns, us, ms, s), e.g. %s %s 100ms", g.Metric, g.Metric, g.Op)
	case (metrics.IsRatio(g.Metric) || metrics.IsCount(g.Metric)) && timeUnit:
		return fmt.Sprintf("%s is not a duration: %s takes a plain number or %%", g.Metric, g.Unit)
	}
	return ""
}
