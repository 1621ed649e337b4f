package loadgen

import (
	"net/http"
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

// A wake-up releases the requests due up to half a tick after it. One sent
// early is timed from its send (sending): against a target that answers after 3 ms,
// no latency reads less than 3 ms, as it would (by up to half a tick) if an
// early request were timed from its later intended time. Nothing is released
// early across the warmup's end: the hold counts exactly the requests its
// schedule has. On the dispatcher's loop and with the connections' goroutines.
func TestEarlyReleaseIsTimedFromItsRelease(t *testing.T) {
	const delay = 3 * time.Millisecond
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(delay)
		_, _ = w.Write([]byte("ok"))
	}), false)
	step := Step{Rate: 4000, Connections: 64, Warmup: 301 * time.Millisecond, Hold: time.Second} // the warmup ends between two wake-ups
	if tick := LoopTick(step.Rate, step.Connections); tick != MaxDispatchTick {
		t.Fatalf("tick %v at %v req/s: the test wants the longest", tick, step.Rate)
	}
	p := constantPacer{rate: step.Rate}
	want := p.countBefore(step.Warmup+step.Hold) - p.countBefore(step.Warmup)
	for _, tt := range []struct {
		name string
		opts []Option
		loop bool
	}{
		{"loop", nil, true},
		{"goroutines", []Option{WithWorkerReads()}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := runStep(t, newGen(t, Target{URL: srv.URL, Timeout: 5 * time.Second}, tt.opts...), step)
			if w.looped != tt.loop {
				t.Fatalf("on the loop: %v, want %v", w.looped, tt.loop)
			}
			if uint64(w.Requests) != want || w.Completed != w.Requests {
				t.Errorf("%d requests, %d answered (classes %v); want the schedule's %d, all answered", w.Requests, w.Completed, w.ErrorClasses, want)
			}
			// About half leave early, with lag 0; released only when due,
			// a quarter would be at least a quarter of the tick late.
			p25 := w.Lag.ValueAtQuantile(25)
			t.Logf("lag p25 %d µs p99 %d µs; latency min %d µs, service min %d µs", p25, w.Lag.ValueAtQuantile(99), w.Latency.Min(), w.Service.Min())
			if p25 != 0 {
				t.Errorf("lag p25 %d µs: a quarter of the requests were not released early or on time; the test tests nothing", p25)
			}
			if got := w.Latency.Min(); got < delay.Microseconds() {
				t.Errorf("latency min %d µs, under the target's %v: an early request was timed from its intended time", got, delay)
			}
			if w.Latency.Min() < w.Service.Min() {
				t.Errorf("latency min %d µs under service min %d µs", w.Latency.Min(), w.Service.Min())
			}
		})
	}
}

// A request that waits for a connection may still leave before its intended
// time (it was released ahead, and a connection came free at once): it is
// timed from its send, so no latency is below 0, which the histogram would
// have no room for (it counted them 60 s each, out of range, before sending
// timed them). A fast target and 3 connections, so most requests wait, with the
// connections' goroutines reading as responses arrive; the loop, which waits
// for a connection only at the edge of its room, builds its outcomes with the
// same sending (TestSending).
func TestNoLatencyStartsAfterItsSend(t *testing.T) {
	srv := newRawServer(t)
	for _, tt := range []struct {
		name string
		step Step
		opts []Option
	}{
		{"goroutines", Step{Rate: 4000, Connections: 3, Warmup: 200 * time.Millisecond, Hold: time.Second}, []Option{WithEagerReads()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := runStep(t, newGen(t, Target{URL: srv.URL()}, tt.opts...), tt.step)
			t.Logf("on the loop %v: %d requests, %d waited for a connection; latency max %d µs, out of range %d", w.looped, w.Requests, w.Blocked, w.Latency.Max(), w.OutOfRange)
			if w.Blocked == 0 {
				t.Error("no request waited for a connection: the test tests nothing")
			}
			if w.OutOfRange != 0 || w.Latency.Max() > int64(time.Second/time.Microsecond) {
				t.Errorf("%d latencies out of range, max %d µs: a request was timed from after its send", w.OutOfRange, w.Latency.Max())
			}
		})
	}
}

func TestSending(t *testing.T) {
	const warmup = 500
	for _, tt := range []struct {
		intended, sent int64
		start          int64
		inWindow       bool
	}{
		{1000, 1200, 1000, true}, // late: timed from its intended time
		{1000, 1000, 1000, true},
		{1000, 800, 800, true}, // early: from its send
		{400, 300, 300, false}, // of the warmup
		{500, 499, 499, true},  // in the hold by its intended time
	} {
		o := sending(tt.intended, tt.sent, warmup, 2)
		if o.intended != tt.start || o.sent != tt.sent || o.inWindow != tt.inWindow || o.req != 2 {
			t.Errorf("sending(%d, %d): intended %d sent %d in the hold %v req %d; want %d, %d, %v, 2", tt.intended, tt.sent, o.intended, o.sent, o.inWindow, o.req, tt.start, tt.sent, tt.inWindow)
		}
	}
}
