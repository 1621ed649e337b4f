package plan

import (
	"fmt"
	"time"
)

// Bound is the range a number of the plan must lie in. Validation refuses a
// value outside it, naming the bound; docs/plan.md states every one. The
// load parameters' bounds are in LoadParams (LoadParam.Max).
type Bound struct {
	// Min is the smallest value allowed, or, with MinExclusive, the value
	// every allowed one is above.
	Min          float64
	MinExclusive bool
	// Max is the largest value allowed.
	Max float64
	// Duration: the key is a duration; Min and Max are in nanoseconds.
	Duration bool
}

// Bounds of the plan's numeric keys (the load parameters' are in
// LoadParams), by "GoType.yaml_key" (Ramp.hold): the names the plan schema
// uses. Free-form values (static parameters, Terraform variables, campaign
// variants) are the plan's own data and have none.
var Bounds = map[string]Bound{
	"Ramp.factor":              {Min: 1, MinExclusive: true, Max: MaxRampFactor},
	"Ramp.warmup":              durationBound(0, false, MaxWarmup),
	"Ramp.hold":                durationBound(0, true, MaxHold),
	"Ramp.cooldown":            durationBound(0, false, MaxCooldown),
	"Ramp.confirm":             {Min: 0, Max: MaxConfirm},
	"Ramp.refine":              {Min: 0, Max: MaxRefine},
	"Ramp.interference_reruns": {Min: 0, Max: MaxConfirm},
	"Ramp.max_steps":           {Min: 1, Max: MaxStepsLimit},
	"Process.ready_timeout":    durationBound(0, true, MaxTimeout),
	"Process.replicas":         {Min: 1, Max: MaxReplicas},
	"HTTP.timeout":             durationBound(0, true, MaxTimeout),
	"Request.weight":           {Min: 1, Max: MaxWeight},
	"Check.status":             {Min: 100, Max: 599},
	"PubSubBus.settle":         durationBound(0, false, MaxTimeout),
	"PubSub.body_bytes":        {Min: 0, Max: MaxPubSubBodyBytes},
	"PubSub.timeout":           durationBound(0, false, MaxTimeout),
	"Probe.rate":               {Min: 0, MinExclusive: true, Max: MaxProbeRate},
	"Probe.timeout":            durationBound(0, false, MaxTimeout),
	"Prometheus.settle":        durationBound(0, false, MaxPromSettle),
	"Agents.local":             {Min: 0, Max: MaxLocalAgents}, // 0: none
	"Agents.max_clock_offset":  durationBound(0, false, MaxAgentClockOffset),
}

// The upper bounds of Bounds.
const (
	// MaxRampFactor bounds ramp.factor: a larger jump between steps skips
	// the capacity it looks for.
	MaxRampFactor = 100
	// MaxWarmup, MaxHold and MaxCooldown bound a step's windows: a step is
	// a steady state, and a day of it is a soak test, not a ramp step.
	MaxWarmup   = time.Hour
	MaxHold     = 24 * time.Hour
	MaxCooldown = time.Hour
	// MaxConfirm and MaxRefine bound the reruns of a failing step and the
	// bisection after it (64 halvings exhaust a float64).
	MaxConfirm = 100
	MaxRefine  = 64
	// MaxTimeout bounds the timeouts of requests, deliveries, probes and
	// readiness waits, and a bus's settle time.
	MaxTimeout = time.Hour
	// MaxReplicas bounds a local process's replicas.
	MaxReplicas = 1000
	// MaxProbeRate bounds probe.rate (probes/s): a probe is one more user,
	// not load.
	MaxProbeRate = 1000
)

func durationBound(min time.Duration, exclusive bool, max time.Duration) Bound {
	return Bound{Min: float64(min), MinExclusive: exclusive, Max: float64(max), Duration: true}
}

// Format writes x, a value of the bound's key, as a plan writes it.
func (b Bound) Format(x float64) string {
	if b.Duration {
		return time.Duration(x).String()
	}
	return formatLarge(x)
}

// Contains reports whether x lies in the bound.
func (b Bound) Contains(x float64) bool {
	if b.MinExclusive && !(x > b.Min) || !b.MinExclusive && !(x >= b.Min) {
		return false
	}
	return x <= b.Max
}

// String states the range: "> 0 and at most 24h0m0s", "0 … 10000".
func (b Bound) String() string {
	if b.MinExclusive {
		return fmt.Sprintf("> %s and at most %s", b.Format(b.Min), b.Format(b.Max))
	}
	return fmt.Sprintf("%s … %s", b.Format(b.Min), b.Format(b.Max))
}

// atMost refuses a value of key over its bound's maximum; the values under
// its minimum get the checks' own messages, which say what the key is for.
func (v *validator) atMost(path, key string, x float64) {
	b, ok := Bounds[key]
	if !ok {
		panic("plan: no bound for " + key)
	}
	if x > b.Max {
		v.add(path, "%s is over the bound: at most %s (docs/plan.md)", b.Format(x), b.Format(b.Max))
	}
}
