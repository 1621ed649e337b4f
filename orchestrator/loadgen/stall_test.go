package loadgen

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// stallServer answers at once except during [from, from+for) after its start, when
// every response waits until the stall ends, as if the process were stopped.
func stallServer(t *testing.T, from, stall time.Duration) (*countingServer, func()) {
	var mu sync.Mutex
	var start time.Time
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s := start
		mu.Unlock()
		if s.IsZero() {
			return
		}
		if el := time.Since(s); el < from+stall {
			if el >= from {
				time.Sleep(from + stall - el)
			}
		}
	})
	srv := newCountingServer(t, h, false)
	return srv, func() { mu.Lock(); start = time.Now(); mu.Unlock() }
}

// The acceptance test of coordinated omission: at 500 req/s for 10 s with a 1 s
// stall in the middle, the corrected p99 shows the stall (>= 0.8 s) while the
// service time from the actual send does not; a closed loop over the same target
// hides it.
func TestStallIsVisible(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s of load")
	}
	const (
		hold  = 10 * time.Second
		stall = time.Second
	)
	srv, begin := stallServer(t, hold/2-stall/2, stall)
	g := newGen(t, Target{URL: srv.URL})
	begin()
	w := runStep(t, g, Step{Rate: 500, Connections: 8, Hold: hold})
	m := w.Metrics()
	t.Logf("open model: requests %d p50 %.4fs p99 %.4fs max %.4fs; service p99 %.4fs max %.4fs; blocked %.3f",
		w.Requests, m[metrics.LatencyP50], m[metrics.LatencyP99], m[metrics.LatencyMax],
		m[metrics.ServiceP99], m[metrics.ServiceMax], m[metrics.GeneratorBlockedRatio])
	if w.Requests != 5000 || w.Errors != 0 {
		t.Errorf("requests %d errors %d %v, want 5000 and 0", w.Requests, w.Errors, w.ErrorClasses)
	}
	if p99 := m[metrics.LatencyP99]; p99 < 0.8 {
		t.Errorf("latency.p99 = %vs, want >= 0.8s: the stall is hidden", p99)
	}
	if s := m[metrics.ServiceP99]; s > 0.1 {
		t.Errorf("service.p99 = %vs, want far below the corrected p99", s)
	}
	if b := m[metrics.GeneratorBlockedRatio]; b < 0.05 {
		t.Errorf("generator.blocked.ratio = %v, want the stall's share (about 0.1)", b)
	}
	// The per-second series shows the stall too.
	worst := 0.0
	for _, s := range w.Series {
		worst = max(worst, s.P99)
	}
	if worst < 0.8 {
		t.Errorf("worst per-second p99 = %v, want >= 0.8s", worst)
	}

	// A closed loop over the same target and stall reports milliseconds.
	srv2, begin2 := stallServer(t, hold/2-stall/2, stall)
	g2 := newGen(t, Target{URL: srv2.URL})
	begin2()
	w2 := runStep(t, g2, Step{Rate: 0, Connections: 8, Hold: hold})
	m2 := w2.Metrics()
	t.Logf("closed loop: requests %d p99 %.4fs max %.4fs", w2.Requests, m2[metrics.LatencyP99], m2[metrics.LatencyMax])
	if m2[metrics.LatencyMax] < 0.5 {
		t.Errorf("closed loop max = %v: the stall did not happen", m2[metrics.LatencyMax])
	}
	if m2[metrics.LatencyP99] > 0.1 {
		t.Errorf("closed loop p99 = %v: expected it to hide the stall", m2[metrics.LatencyP99])
	}
}
