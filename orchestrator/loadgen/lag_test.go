package loadgen

import (
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// At a fixed rate the achieved rate matches the offered one, and the dispatcher's
// schedule lag stays small. The lag bound is loose because the machine running the
// tests is shared; bench/generator.sh measures the real p99 on a quiet machine.
func TestRunFixedRateAccuracy(t *testing.T) {
	tests := []struct {
		rate    float64
		poisson bool
	}{
		{rate: 5000},
		{rate: 2000, poisson: true},
	}
	for _, tt := range tests {
		srv := newRawServer(t)
		g := newGen(t, Target{URL: srv.URL()})
		w := runStep(t, g, Step{Rate: tt.rate, Connections: 16, Hold: 2 * time.Second, Poisson: tt.poisson})
		m := w.Metrics()
		t.Logf("rate %v poisson %v: requests %d rps %.1f lag p50 %.3fms p99 %.3fms latency p99 %.3fms blocked %.4f cpu %.3f",
			tt.rate, tt.poisson, w.Requests, m[metrics.ThroughputRPS], m[metrics.GeneratorLagP50]*1e3,
			m[metrics.GeneratorLagP99]*1e3, m[metrics.LatencyP99]*1e3, m[metrics.GeneratorBlockedRatio], m[metrics.GeneratorCPU])
		want := tt.rate * 2
		tol := 0.01
		if tt.poisson {
			tol = 0.05 // 4000 exponential gaps: the count itself varies by about 1.6%
		}
		if got := float64(w.Requests); got < want*(1-tol) || got > want*(1+tol) {
			t.Errorf("rate %v: %v requests, want %v ± %.0f%%", tt.rate, got, want, tol*100)
		}
		if w.Errors != 0 {
			t.Errorf("rate %v: %d errors %v", tt.rate, w.Errors, w.ErrorClasses)
		}
		// The median only: the tail follows the test machine's load, not the code.
		if lag := m[metrics.GeneratorLagP50]; lag > 0.05 {
			t.Errorf("rate %v: generator.lag.p50 = %vs, want well under 50ms", tt.rate, lag)
		}
	}
}
