package loadgen

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/result"
)

// TestPacersSaturate: a rate so low that the next request is due past what a
// Duration holds puts it at the largest Duration (past any step's end), never
// at a negative offset that would make every request due at once, without end.
func TestPacersSaturate(t *testing.T) {
	for _, rate := range []float64{1e-300, 5e-324, 1e-12} {
		cp := constantPacer{rate: rate}
		pp := newPoissonPacer(rate, 7)
		if cp.Intended(0) != 0 || pp.Intended(0) != 0 {
			t.Errorf("rate %g: the first request at %v (constant), %v (Poisson), want 0", rate, cp.Intended(0), pp.Intended(0))
		}
		for n := uint64(1); n < 4; n++ {
			if got := cp.Intended(n); got < 24*time.Hour {
				t.Errorf("rate %g: constant Intended(%d) = %v, want past any step (saturated at most)", rate, n, got)
			}
			if got := pp.Intended(n); got < 0 {
				t.Errorf("rate %g: Poisson Intended(%d) = %v, wrapped into the past", rate, n, got)
			}
		}
		if n := cp.countBefore(24 * time.Hour); n != 1 {
			t.Errorf("rate %g: %d requests due in a day, want the first only", rate, n)
		}
		if tick, loop := dispatchTick(rate, 0, DispatchBatch), LoopTick(rate, 64); tick != MaxDispatchTick || loop != MaxDispatchTick {
			t.Errorf("rate %g: tick %v (on the loop %v), want %v", rate, tick, loop, MaxDispatchTick)
		}
	}
	for _, ns := range []float64{math.NaN(), math.Inf(-1), -1, 0} {
		if d := saturate(ns); d != 0 {
			t.Errorf("saturate(%g) = %v, want 0", ns, d)
		}
	}
	if d := saturate(math.Inf(1)); d != math.MaxInt64 {
		t.Errorf("saturate(+Inf) = %v", d)
	}
	// At the largest rate a step takes, a day's schedule stays exact.
	if n := (constantPacer{rate: MaxRate}).countBefore(24 * time.Hour); n != uint64(MaxRate)*86400 {
		t.Errorf("countBefore a day at %g/s = %d", float64(MaxRate), n)
	}
}

// TestVanishingRateRunEnds: a step at a rate whose second request is due
// past the end of time sends the first request and ends with its hold
// (before the fix, the schedule wrapped into the past and the dispatcher
// released requests without end).
func TestVanishingRateRunEnds(t *testing.T) {
	srv := newRawServer(t)
	for _, poisson := range []bool{false, true} {
		g := newGen(t, Target{URL: srv.URL()})
		w := runStep(t, g, Step{Rate: 1e-300, Connections: 1, Hold: 500 * time.Millisecond, Poisson: poisson})
		if w.Requests != 1 || w.Errors != 0 {
			t.Errorf("poisson %v: %d requests, %d errors in a 0.5 s hold at 1e-300 req/s, want the first one only", poisson, w.Requests, w.Errors)
		}
	}
}

// TestStepRateBounds: a rate that is not a number, infinite or over MaxRate
// is refused before anything is sent.
func TestStepRateBounds(t *testing.T) {
	g := newGen(t, Target{URL: "http://127.0.0.1:1/"})
	for _, rate := range []float64{math.NaN(), math.Inf(1), 1e20, MaxRate * 1.5} {
		if _, err := g.Run(context.Background(), Step{Rate: rate, Connections: 1, Hold: time.Second}); err == nil {
			t.Errorf("rate %g accepted", rate)
		}
	}
	// Intended times are ns from the step's start: warmup + hold must fit.
	if _, err := g.Run(context.Background(), Step{Rate: 1, Connections: 1, Warmup: time.Hour, Hold: math.MaxInt64 - time.Minute}); err == nil {
		t.Error("a warmup and hold that overflow a Duration together accepted")
	}
}

// TestSecondCounts: counters made as seconds come, counted concurrently.
func TestSecondCounts(t *testing.T) {
	var c secondCounts
	if c.get(5) != 0 || c.allocated() != 0 {
		t.Fatal("a new secondCounts holds counts")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 1000 {
				c.add(int64(i % 3000))
				c.add(5000)
			}
		})
	}
	wg.Wait()
	c.add(-1)
	if got := c.get(5000); got != 8000 {
		t.Errorf("second 5000: %d, want 8000", got)
	}
	if got := c.get(999); got != 8 {
		t.Errorf("second 999: %d, want 8", got)
	}
	if got := c.get(1000); got != 0 {
		t.Errorf("second 1000: %d, want 0", got)
	}
	// Seconds 0-999 and 5000: chunks 0 and 4 only.
	if got := c.allocated(); got != 2*countChunkSeconds {
		t.Errorf("%d seconds allocated, want %d", got, 2*countChunkSeconds)
	}
}

// TestLongHoldAllocatesLazily: a step whose hold is over a year allocates
// its per-second counts as the seconds come (they were made for the whole
// hold up front: 8 bytes a second, 280 MB here), in the open model with
// Poisson arrivals and in a closed loop, which count offered requests per
// second.
func TestLongHoldAllocatesLazily(t *testing.T) {
	srv := newRawServer(t)
	for _, step := range []Step{
		{Rate: 50, Poisson: true, Connections: 2, Hold: 10000 * time.Hour},
		{Rate: 0, Connections: 1, Hold: 10000 * time.Hour},
	} {
		g := newGen(t, Target{URL: srv.URL()})
		ctx, cancel := context.WithCancel(context.Background())
		seconds := make(chan struct{}, 4)
		step.OnSecond = func(result.Second) {
			select {
			case seconds <- struct{}{}:
			default:
			}
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		done := make(chan error, 1)
		go func() {
			_, err := g.Run(ctx, step)
			done <- err
		}()
		select {
		case <-seconds:
		case <-time.After(30 * time.Second):
			t.Fatal("no second reported in 30 s")
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("rate %g: %v", step.Rate, err)
		}
		runtime.ReadMemStats(&after)
		const limit = 32 << 20
		if n := after.TotalAlloc - before.TotalAlloc; n > limit {
			t.Errorf("rate %g: a 10,000 h step cancelled after a second allocated %d MB, want under %d MB", step.Rate, n>>20, limit>>20)
		}
	}
}

// silentServer accepts connections, reads what they send and never answers:
// a target that hangs.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
			})
		}
	})
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return "http://" + ln.Addr().String() + "/"
}

// TestInterruptIsNotUndoneByTheNextRequest: a connection interrupted by a
// cancelled step stays interrupted: a request that starts (and sets its
// deadline) after the interruption fails at once, instead of waiting out its
// timeout against a target that never answers.
func TestInterruptIsNotUndoneByTheNextRequest(t *testing.T) {
	url := silentServer(t)
	ep, _, _, err := compileTarget(Target{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{}
	if _, err := c.open(context.Background(), &dialer{ep: ep, timeout: 5 * time.Second}, DefaultReadBufferSize, nil); err != nil {
		t.Fatal(err)
	}
	defer c.close()
	c.interrupt()
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.roundTrip([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false, false, time.Minute, DefaultStaleAfter)
		errc <- err
	}()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("a request on an interrupted connection succeeded")
		}
	case <-time.After(20 * time.Second): // the request's own timeout is a minute
		c.close()
		t.Fatal("a request on an interrupted connection waited for its timeout")
	}
	// The next step's requests set deadlines again.
	c.resume()
	if err := c.renew(time.Now().Add(time.Minute)); err != nil {
		t.Errorf("after resume: %v", err)
	}
}

// TestCancelledRunAgainstASilentTarget: a step cancelled while its requests
// wait on a target that never answers returns long before their timeout (a
// minute), whenever the cancellation comes: from before the first request to
// the middle of the hold, and after the hold, while its requests in flight
// are awaited.
func TestCancelledRunAgainstASilentTarget(t *testing.T) {
	url := silentServer(t)
	g := newGen(t, Target{URL: url, Timeout: time.Minute})
	for i, tc := range []struct {
		at   time.Duration
		step Step
	}{
		{0, Step{Rate: 200, Connections: 8, Hold: 10 * time.Minute}},
		{3 * time.Millisecond, Step{Rate: 200, Connections: 8, Hold: 10 * time.Minute}},
		{40 * time.Millisecond, Step{Rate: 200, Connections: 8, Hold: 10 * time.Minute}},
		{250 * time.Millisecond, Step{Rate: 200, Connections: 8, Hold: 10 * time.Minute}},
		{700 * time.Millisecond, Step{Rate: 200, Connections: 8, Hold: 10 * time.Minute}},
		// The hold is over, no request is queued: its 3 requests are in flight.
		{time.Second, Step{Rate: 10, Connections: 8, Hold: 300 * time.Millisecond}},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(tc.at, cancel)
		start := time.Now()
		_, err := g.Run(ctx, tc.step)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("run %d: err = %v, want context.Canceled", i, err)
		}
		// Generous for a loaded 2-core machine; the timeout is a minute.
		if took > tc.at+20*time.Second {
			t.Errorf("run %d: cancelled after %v, returned after %v", i, tc.at, took)
		}
		t.Logf("run %d: cancelled after %v, returned after %v", i, tc.at, took)
	}
}
