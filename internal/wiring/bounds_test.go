package wiring

import (
	"testing"

	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/probe"
)

// TestPlanBoundsMatchTheEngines: a bound the plan checks is the one the
// component that runs the value enforces, so `loadramp plan` refuses what a
// run would.
func TestPlanBoundsMatchTheEngines(t *testing.T) {
	if plan.Bounds["Probe.rate"].Max != probe.MaxRate {
		t.Errorf("plan bounds probe.rate at %g, the probe at %d", plan.Bounds["Probe.rate"].Max, probe.MaxRate)
	}
}
