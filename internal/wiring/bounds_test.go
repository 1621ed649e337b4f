package wiring

import (
	"testing"

	"github.com/loadramp/loadramp/orchestrator/loadgen"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/probe"
	"github.com/loadramp/loadramp/orchestrator/pubsub"
)

// TestPlanBoundsMatchTheEngines: a bound the plan checks is the one the
// component that runs the value enforces, so `loadramp plan` refuses what a
// run would.
func TestPlanBoundsMatchTheEngines(t *testing.T) {
	if plan.Bounds["Probe.rate"].Max != probe.MaxRate {
		t.Errorf("plan bounds probe.rate at %g, the probe at %d", plan.Bounds["Probe.rate"].Max, probe.MaxRate)
	}
	if lp, _ := plan.LookupParam(plan.WorkloadPubSub, plan.ParamRate); lp.Max != pubsub.MaxRate {
		t.Errorf("plan bounds the pubsub rate at %g, the engine at %d", lp.Max, pubsub.MaxRate)
	}
	if lp, _ := plan.LookupParam(plan.WorkloadHTTP, plan.ParamRate); lp.Max != loadgen.MaxRate {
		t.Errorf("plan bounds the http rate at %g, the builtin generator at %g", lp.Max, float64(loadgen.MaxRate))
	}
}
