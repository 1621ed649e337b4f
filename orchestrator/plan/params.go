package plan

import (
	"fmt"
	"sort"
)

// Workloads: what an engine drives, which decides the load parameters a plan
// may ramp.
const (
	WorkloadHTTP   = "builtin/http"   // engine builtin, workload.http
	WorkloadPubSub = "builtin/pubsub" // engine builtin, workload.pubsub
	WorkloadLocust = "locust"         // engine locust
)

// Load parameter names.
const (
	ParamRate        = "rate"
	ParamConnections = "connections"
	ParamPublishers  = "publishers"
	ParamSubscribers = "subscribers"
	ParamUsers       = "users"
	ParamSpawnRate   = "spawn_rate"
)

// Configuration keys of the safety ceilings on load parameters.
const (
	CeilingMaxRate  = "max_rate"
	CeilingMaxUsers = "max_users"
)

// LoadParam is what one load parameter means to one workload. LoadParams is
// the one table of them: validation, the schedule and its bisection, the
// safety ceilings and the engines' wiring all read it.
type LoadParam struct {
	Name     string
	Workload string
	// Whole: the parameter takes whole numbers only.
	Whole bool
	// Required: a plan of this workload must ramp it (or hold it fixed with
	// start = max). Otherwise Default is its value when the plan leaves it out.
	Required bool
	Default  float64
	// Example is a typical fixed value, for messages and documentation.
	Example float64
	// Ceiling is the configuration key of the safety ceiling on its maximum
	// ("" for none). With CeilingPer set, the ceiling caps this parameter's
	// maximum times CeilingPer's (the pub/sub rate is per publisher).
	Ceiling    string
	CeilingPer string
	// Max bounds the parameter's start and max in any plan (a bound of
	// loadramp's, stated in docs/plan.md; the configuration's Ceiling may
	// set a lower one).
	Max float64
	// Unit is what one unit of the parameter is ("" for a plain count).
	Unit string
	// Description says what the parameter is, in a few words.
	Description string
	// Achieved are the default checks that a step really applied the
	// parameter (checks.go): what was asked against what was achieved.
	Achieved []DefaultCheck
}

// LoadParams are every load parameter of every workload, in the order the
// documentation lists them.
var LoadParams = []LoadParam{
	{Name: ParamRate, Workload: WorkloadHTTP, Required: true, Example: 1000, Ceiling: CeilingMaxRate, Max: 1e8,
		Unit: "requests/s", Description: "offered requests/s", Achieved: []DefaultCheck{achievedRate}},
	{Name: ParamConnections, Workload: WorkloadHTTP, Whole: true, Default: 64, Example: 64, Max: 1e6,
		Description: "connections the generator keeps open and spreads requests over",
		Achieved:    []DefaultCheck{achievedConnsHeld, achievedConnsReopened}},
	{Name: ParamPublishers, Workload: WorkloadPubSub, Whole: true, Default: 1, Example: 4, Max: 1e5,
		Description: "publishers, each publishing rate messages/s", Achieved: []DefaultCheck{achievedRate}},
	{Name: ParamSubscribers, Workload: WorkloadPubSub, Whole: true, Default: 1, Example: 16, Max: 1e6,
		Description: "subscribers, each holding a stream open and receiving every message",
		Achieved:    []DefaultCheck{achievedSubscribers}},
	{Name: ParamRate, Workload: WorkloadPubSub, Required: true, Example: 10, Ceiling: CeilingMaxRate, CeilingPer: ParamPublishers, Max: 1e6,
		Unit: "messages/s", Description: "messages/s per publisher", Achieved: []DefaultCheck{achievedRate}},
	{Name: ParamUsers, Workload: WorkloadLocust, Whole: true, Required: true, Example: 50, Ceiling: CeilingMaxUsers, Max: 1e6,
		Description: "simulated users", Achieved: []DefaultCheck{achievedUsers}},
	{Name: ParamSpawnRate, Workload: WorkloadLocust, Default: 100, Example: 100, Max: 1e5,
		Unit: "users/s", Description: "users started per second"},
}

// unitSuffix is " unit" for a unit, "" for a plain count.
func unitSuffix(unit string) string {
	if unit == "" {
		return ""
	}
	return " " + unit
}

// ParamsOf returns the load parameters of workload, in table order.
func ParamsOf(workload string) []LoadParam {
	var out []LoadParam
	for _, lp := range LoadParams {
		if lp.Workload == workload {
			out = append(out, lp)
		}
	}
	return out
}

// ParamNamesOf returns the names of the load parameters of workload, in
// table order (nil for an unknown workload).
func ParamNamesOf(workload string) []string {
	var out []string
	for _, lp := range ParamsOf(workload) {
		out = append(out, lp.Name)
	}
	return out
}

// LookupParam returns load parameter name of workload.
func LookupParam(workload, name string) (LoadParam, bool) {
	for _, lp := range LoadParams {
		if lp.Workload == workload && lp.Name == name {
			return lp, true
		}
	}
	return LoadParam{}, false
}

// ParamValue is a step's value of load parameter name: params[name] when the
// plan ramps it, else the parameter's default for workload.
func ParamValue(workload string, params map[string]float64, name string) float64 {
	if v, ok := params[name]; ok && v > 0 {
		return v
	}
	lp, _ := LookupParam(workload, name)
	return lp.Default
}

// IntegerParam reports whether load parameter name takes whole numbers only
// (connections, users, publishers, subscribers).
func IntegerParam(name string) bool {
	for _, lp := range LoadParams {
		if lp.Name == name && lp.Whole {
			return true
		}
	}
	return false
}

// CeilingKeys lists the configuration keys of the safety ceilings, sorted.
func CeilingKeys() []string {
	seen := map[string]bool{}
	var keys []string
	for _, lp := range LoadParams {
		if lp.Ceiling != "" && !seen[lp.Ceiling] {
			seen[lp.Ceiling] = true
			keys = append(keys, lp.Ceiling)
		}
	}
	sort.Strings(keys)
	return keys
}

// WorkloadKind is the plan's workload (Workload*), "" for an unknown engine.
func (p *Plan) WorkloadKind() string {
	switch p.Workload.Engine {
	case EngineBuiltin:
		if p.Workload.PubSub != nil && p.Workload.HTTP == nil {
			return WorkloadPubSub
		}
		return WorkloadHTTP
	case EngineLocust:
		return WorkloadLocust
	}
	return ""
}

// Ceilings are safety limits from the configuration, by key (CeilingMaxRate,
// CeilingMaxUsers): a plan whose schedule exceeds one is refused before
// anything starts. A missing or zero ceiling is no limit.
type Ceilings map[string]float64

// CheckCeilings returns a problem for every ramped parameter whose maximum is
// over its safety ceiling.
func (p *Plan) CheckCeilings(c Ceilings) []error {
	var errs []error
	for _, prm := range p.Parameters {
		lp, ok := LookupParam(p.WorkloadKind(), prm.Name)
		limit := c[lp.Ceiling]
		if !ok || lp.Ceiling == "" || limit <= 0 {
			continue
		}
		path := "parameters." + prm.Name + ".max"
		if per := p.paramMax(lp.CeilingPer); per > 0 {
			if prm.Max*per > limit {
				errs = append(errs, &Problem{Path: path, Line: p.Line(path),
					Msg: fmt.Sprintf("%g %s x %g %s is %g/s, over the safety ceiling %s=%g from the configuration; lower the plan's maximums or raise %s",
						per, lp.CeilingPer, prm.Max, lp.Unit, per*prm.Max, lp.Ceiling, limit, lp.Ceiling)})
			}
			continue
		}
		if prm.Max > limit {
			errs = append(errs, &Problem{Path: path, Line: p.Line(path),
				Msg: fmt.Sprintf("%g is over the safety ceiling %s=%g from the configuration; lower the plan's max or raise %s", prm.Max, lp.Ceiling, limit, lp.Ceiling)})
		}
	}
	return errs
}

// paramMax is the maximum of ramped parameter name, 0 when the plan does not
// ramp it (or name is "").
func (p *Plan) paramMax(name string) float64 {
	for _, prm := range p.Parameters {
		if name != "" && prm.Name == name {
			return prm.Max
		}
	}
	return 0
}
