package plan

import (
	"fmt"
	"time"
)

// Defaults applied by ApplyDefaults when a plan leaves a setting out.
const (
	DefaultFactor   = 2.0
	DefaultOrder    = OrderRoundRobin
	DefaultWarmup   = Duration(5 * time.Second)
	DefaultHold     = Duration(20 * time.Second)
	DefaultCooldown = Duration(2 * time.Second)
	DefaultConfirm  = 1
	DefaultRefine   = 3
	// DefaultInterferenceReruns: a burst of the hypervisor's steal or of a
	// neighbour's work passes within seconds; two reruns let a step measured
	// through one be measured again, and a generator interfered with three
	// times running ends the run.
	DefaultInterferenceReruns = 2
	DefaultMaxSteps           = 40
	DefaultHTTPTimeout        = Duration(5 * time.Second)
	DefaultArrival            = "constant"
	DefaultReadyTimeout       = Duration(30 * time.Second)
)

// Arrival processes of the builtin engine.
const (
	ArrivalConstant = "constant"
	ArrivalPoisson  = "poisson"
)

// ReportFormats lists every report format, the default set.
var ReportFormats = []string{"html", "md", "csv", "json", "junit", "xlsx"}

// ApplyDefaults fills what the plan leaves out. A setting written in the plan
// (even as 0, e.g. confirm: 0 or warmup: 0s) is kept; for a plan not made by
// Parse, zero values count as left out. Parse calls it; calling it again changes
// nothing.
func (p *Plan) ApplyDefaults() {
	r := &p.Ramp
	setF := func(path string, v *float64, def float64) {
		if *v == 0 && !p.given(path) {
			*v = def
		}
	}
	setI := func(path string, v *int, def int) {
		if *v == 0 && !p.given(path) {
			*v = def
		}
	}
	setD := func(path string, v *Duration, def Duration) {
		if *v == 0 && !p.given(path) {
			*v = def
		}
	}
	setS := func(path string, v *string, def string) {
		if *v == "" && !p.given(path) {
			*v = def
		}
	}
	// A request's method: POST when it has a body, else GET.
	setMethod := func(prefix string, m *string, body string) {
		if *m == "" && !p.given(prefix+".method") {
			*m = "GET"
			if body != "" {
				*m = "POST"
			}
		}
	}
	setF("ramp.factor", &r.Factor, DefaultFactor)
	setS("ramp.order", &r.Order, DefaultOrder)
	setD("ramp.warmup", &r.Warmup, DefaultWarmup)
	setD("ramp.hold", &r.Hold, DefaultHold)
	setD("ramp.cooldown", &r.Cooldown, DefaultCooldown)
	setI("ramp.confirm", &r.Confirm, DefaultConfirm)
	setI("ramp.refine", &r.Refine, DefaultRefine)
	setI("ramp.interference_reruns", &r.InterferenceReruns, DefaultInterferenceReruns)
	setI("ramp.max_steps", &r.MaxSteps, DefaultMaxSteps)

	for _, name := range mapKeys(p.Fleets) {
		if f := p.Fleets[name]; f != nil && f.Agents != nil {
			setD("fleets."+name+".agents.max_clock_offset", &f.Agents.MaxClockOffset, DefaultMaxClockOffset)
		}
	}

	w := &p.Workload
	setS("workload.engine", &w.Engine, EngineBuiltin)
	if w.Engine == EngineBuiltin {
		setS("workload.arrival", &w.Arrival, DefaultArrival)
	}
	if h := w.HTTP; h != nil {
		if len(h.Requests) == 0 {
			setMethod("workload.http", &h.Method, h.Body)
		}
		for i := range h.Requests {
			r := &h.Requests[i]
			rp := fmt.Sprintf("workload.http.requests[%d]", i)
			setMethod(rp, &r.Method, r.Body)
			setI(rp+".weight", &r.Weight, 1)
		}
		for name, f := range h.Feeders {
			if f != nil {
				setS("workload.http.feeders."+name+".mode", &f.Mode, FeederCircular)
			}
		}
		setD("workload.http.timeout", &h.Timeout, DefaultHTTPTimeout)
	}

	if len(p.Report.Formats) == 0 { // an empty list too: a run always reports
		p.Report.Formats = append([]string(nil), ReportFormats...)
	}

	for name, f := range p.Fleets {
		if f == nil {
			continue
		}
		fp := "fleets." + name
		if len(f.Processes) > 0 {
			setS(fp+".provider", &f.Provider, ProviderLocal)
		}
		for i := range f.Processes {
			setD(fmt.Sprintf("%s.processes[%d].ready_timeout", fp, i), &f.Processes[i].ReadyTimeout, DefaultReadyTimeout)
			setI(fmt.Sprintf("%s.processes[%d].replicas", fp, i), &f.Processes[i].Replicas, 1)
		}
	}
}
