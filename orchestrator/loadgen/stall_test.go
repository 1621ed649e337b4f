package loadgen

import (
	"net/http"
	"runtime"
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
				select {
				case <-time.After(from + stall - el):
				case <-r.Context().Done(): // the client gave up
				}
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
	// About 8 requests (one per connection) of 5000 were sent into the stall: far
	// below 1%. (On an idle machine service.p99 is a few ms; the bound leaves room
	// for a loaded test machine.)
	if s := m[metrics.ServiceP99]; s > m[metrics.LatencyP99]/4 {
		t.Errorf("service.p99 = %vs, want far below the corrected p99 %vs", s, m[metrics.LatencyP99])
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

	// A closed loop over the same kind of target and stall (shorter, to keep the
	// test fast) reports milliseconds.
	srv2, begin2 := stallServer(t, 2*time.Second, stall)
	g2 := newGen(t, Target{URL: srv2.URL})
	begin2()
	w2 := runStep(t, g2, Step{Rate: 0, Connections: 8, Hold: 5 * time.Second})
	m2 := w2.Metrics()
	t.Logf("closed loop: requests %d p99 %.4fs max %.4fs", w2.Requests, m2[metrics.LatencyP99], m2[metrics.LatencyMax])
	if m2[metrics.LatencyMax] < 0.5 {
		t.Errorf("closed loop max = %v: the stall did not happen", m2[metrics.LatencyMax])
	}
	if m2[metrics.LatencyP99] > 0.1 {
		t.Errorf("closed loop p99 = %v: expected it to hide the stall", m2[metrics.LatencyP99])
	}
}

// Requests still queued when the hold ends and the drain grace runs out are counted
// as incomplete, with the time they waited as latency.
func TestRunIncompleteAtEnd(t *testing.T) {
	srv, begin := stallServer(t, 700*time.Millisecond, 5*time.Second) // stalls from 0.7 s on
	g := newGen(t, Target{URL: srv.URL, Timeout: 2 * time.Second}, WithDrainGrace(50*time.Millisecond))
	begin()
	w := runStep(t, g, Step{Rate: 100, Connections: 2, Hold: time.Second})
	m := w.Metrics()
	// 2 requests are in flight at the end and time out; the other ~28 due after the
	// stall began wait in the queue and are incomplete.
	if w.ErrorClasses[metrics.ClassIncomplete] < 20 || w.ErrorClasses[metrics.ClassTimeout] != 2 {
		t.Errorf("classes %v, want >= 20 incomplete and 2 timeouts", w.ErrorClasses)
	}
	if w.Requests != 100 || w.Sent != w.Requests-w.ErrorClasses[metrics.ClassIncomplete] {
		t.Errorf("requests %d sent %d, want 100 and all but the incomplete", w.Requests, w.Sent)
	}
	if m[metrics.LatencyMax] < 1.9 { // the timed-out ones waited 2 s
		t.Errorf("latency.max = %v, want >= 1.9s", m[metrics.LatencyMax])
	}
}

// A dispatcher that cannot release its requests (here: the queue is full because
// the target stalled) still accounts for every request due in the hold: those it
// never released are incomplete, none vanish.
func TestRunUnreleasedAreIncomplete(t *testing.T) {
	srv, begin := stallServer(t, 200*time.Millisecond, 5*time.Second) // stalls from 0.2 s on
	g := newGen(t, Target{URL: srv.URL, Timeout: 2 * time.Second}, WithDrainGrace(50*time.Millisecond), WithQueueSize(1))
	begin()
	w := runStep(t, g, Step{Rate: 200, Connections: 2, Hold: time.Second})
	// About 40 answered before the stall, 2 in flight time out, 1 queued, and the
	// rest were never released: all 200 are counted.
	if w.Requests != 200 {
		t.Errorf("requests %d %v, want all 200 due in the hold", w.Requests, w.ErrorClasses)
	}
	if w.ErrorClasses[metrics.ClassIncomplete] < 100 {
		t.Errorf("classes %v, want >= 100 incomplete", w.ErrorClasses)
	}
}

// A step that reads its responses at the dispatcher's ticks (1,000 req/s and
// more, connections to spare) must not stop reading them while the dispatcher
// waits for room in a full queue: no tick comes then, and the room comes
// from the connections' answers. After a stall the target answers again and
// the step goes on.
func TestRunRecoversWhileTheQueueIsFull(t *testing.T) {
	srv, begin := stallServer(t, 200*time.Millisecond, 300*time.Millisecond) // stalls from 0.2 s to 0.5 s
	g := newGen(t, Target{URL: srv.URL, Timeout: 5 * time.Second}, WithDrainGrace(50*time.Millisecond), WithQueueSize(1))
	begin()
	step := Step{Rate: 2000, Connections: 32, Hold: 1500 * time.Millisecond}
	if !lazyReads(step.Rate, step.Connections, dispatchTick(step.Rate, 0, DispatchBatch).Seconds(), gateRoom) {
		t.Fatal("the step does not read at ticks: the test tests nothing")
	}
	w := runStep(t, g, step)
	// 3,000 due; those due in the stall wait and go late. Stuck readers
	// would answer nothing after 0.2 s: about 400.
	if w.Completed < 2000 {
		t.Errorf("answered %d of %d (classes %v); want the step to go on after the stall", w.Completed, w.Requests, w.ErrorClasses)
	}
}

// The window tells how long the generator's CPUs were taken from it over the
// hold and in its worst second: by the hypervisor (steal) and by other
// threads (run delay). On Linux both are read; a peak is never below the mean.
func TestWindowStealAndStarvation(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/stat and schedstat")
	}
	srv := newRawServer(t)
	g := newGen(t, Target{URL: srv.URL()})
	w := runStep(t, g, Step{Rate: 200, Connections: 4, Warmup: 200 * time.Millisecond, Hold: 2500 * time.Millisecond})
	m := w.Metrics()
	for _, k := range [][2]string{{metrics.GeneratorStealRatio, metrics.GeneratorStealPeak}, {metrics.GeneratorStarvedRatio, metrics.GeneratorStarvedPeak}} {
		mean, okMean := m[k[0]]
		peak, okPeak := m[k[1]]
		if !okMean || !okPeak || mean < 0 || peak < mean || peak > 1 {
			t.Errorf("%s %v (%v), %s %v (%v): want both, 0 <= mean <= peak <= 1", k[0], mean, okMean, k[1], peak, okPeak)
		}
	}
	// Its threads wait a little at every wake-up: a second read shows it.
	if w.StarvedKnown && w.StarvedPeak == 0 {
		t.Error("no second of the hold was read: the worst second's run delay is 0")
	}
	t.Logf("steal %.3f (worst second %.3f), starved %.3f (worst second %.3f)",
		m[metrics.GeneratorStealRatio], m[metrics.GeneratorStealPeak], m[metrics.GeneratorStarvedRatio], m[metrics.GeneratorStarvedPeak])
}
