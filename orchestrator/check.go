package orchestrator

import (
	"fmt"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/gate"
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
