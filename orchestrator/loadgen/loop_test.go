package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// awkwardHandler answers most requests with "ok", and some the hard way, by
// the order they arrive in: Connection: close (every 10th, from the 3rd), a
// body larger than the generator's read buffer (from the 5th), no answer at all
// on a connection it then closes (every 50th, from the 7th: the generator finds
// the keep-alive connection stale and retries once), and an answer after the
// request's timeout (every 100th, from the 11th). Its request count is n.
func awkwardHandler(n *atomic.Int64, slow time.Duration) http.Handler {
	big := strings.Repeat("x", 3*DefaultReadBufferSize)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		switch {
		case i%100 == 11:
			select {
			case <-time.After(slow):
			case <-r.Context().Done():
			}
		case i%50 == 7:
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
					return
				}
			}
		case i%10 == 3:
			w.Header().Set("Connection", "close")
		case i%10 == 5:
			_, _ = w.Write([]byte(big))
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
}

// TestLoopMatchesWorkers runs the same awkward target with the dispatcher's
// loop and with the connections' goroutines: every path the loop hands to a
// goroutine (reopening a closed connection, a large response, a stale
// connection's retry) and the timeouts it counts itself must come out as the
// workers' do, and every request released must have an outcome.
func TestLoopMatchesWorkers(t *testing.T) {
	const timeout = 150 * time.Millisecond
	step := Step{Rate: 2000, Connections: 64, Warmup: 200 * time.Millisecond, Hold: time.Second}
	if !lazyReads(step.Rate, step.Connections, dispatchTick(step.Rate, 0, DispatchBatch).Seconds(), gateRoom) {
		t.Fatal("the step does not read at ticks: the loop would not run")
	}
	for _, loop := range []bool{true, false} {
		var n atomic.Int64
		srv := newCountingServer(t, awkwardHandler(&n, 4*timeout), false)
		var opts []Option
		if !loop {
			opts = append(opts, WithWorkerReads())
		}
		g := newGen(t, Target{URL: srv.URL, Timeout: timeout}, opts...)
		w := runStep(t, g, step)
		if w.looped != loop {
			t.Fatalf("loop %v: the step ran with looped = %v", loop, w.looped)
		}
		if w.Requests != w.Released || w.Released < 1800 {
			t.Errorf("loop %v: %d requests with an outcome, %d released; want all of about 2,000", loop, w.Requests, w.Released)
		}
		if w.Reopened == 0 {
			t.Errorf("loop %v: no connection reopened, but the target closed some", loop)
		}
		// Every 100th request times out; the retried stale ones succeed.
		if got, want := w.ErrorClasses["timeout"], w.Requests/100; got < want/2 || got > 2*want+2 {
			t.Errorf("loop %v: %d timeouts, want about %d; classes %v", loop, got, want, w.ErrorClasses)
		}
		// A connection closed unanswered soon after it was opened (a
		// reopened one) is the target refusing it, not stale: reset.
		for c := range w.ErrorClasses {
			if c != "timeout" && c != "reset" {
				t.Errorf("loop %v: class %s, want only timeout and reset; classes %v", loop, c, w.ErrorClasses)
			}
		}
		if w.Completed+w.Errors != w.Requests || w.ErrorClasses["reset"] > w.Requests/50 {
			t.Errorf("loop %v: %d completed and %d errors of %d; classes %v", loop, w.Completed, w.Errors, w.Requests, w.ErrorClasses)
		}
	}
}

// runOnLoop runs step against a server with handler h and checks that the
// dispatcher's loop ran it and that every request of the hold was answered.
func runOnLoop(t *testing.T, h http.Handler, step Step) *Window {
	t.Helper()
	srv := newCountingServer(t, h, false)
	w := runStep(t, newGen(t, Target{URL: srv.URL}), step)
	if !w.looped {
		t.Fatal("the step did not run on the loop")
	}
	want := int64(step.Rate * step.Hold.Seconds())
	if w.Requests < want*9/10 || w.Completed != w.Requests {
		t.Errorf("%d requests, %d completed, classes %v; want about %d, all answered", w.Requests, w.Completed, w.ErrorClasses, want)
	}
	return w
}

// TestLoopGrowsItsBuffers: a response larger than the read buffer is read on
// the loop, in a buffer grown to hold it; one larger than maxReadBuffer is
// handed to the connection's goroutine, and answered all the same.
func TestLoopGrowsItsBuffers(t *testing.T) {
	for _, tt := range []struct {
		size     int
		tooLarge bool
	}{
		{size: 3 * DefaultReadBufferSize},
		{size: maxReadBuffer + DefaultReadBufferSize, tooLarge: true},
	} {
		body := strings.Repeat("x", tt.size)
		t.Run(fmt.Sprintf("%d bytes", tt.size), func(t *testing.T) {
			w := runOnLoop(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(body))
			}), Step{Rate: 2000, Connections: 64, Warmup: 100 * time.Millisecond, Hold: 500 * time.Millisecond})
			if tt.tooLarge != (w.tooLarge > 0) {
				t.Errorf("%d responses handed over as too large for the loop; want them handed over: %v", w.tooLarge, tt.tooLarge)
			}
		})
	}
}

// TestLoopTargetResets: a target that resets each connection right after its
// answer. The loop's next write on the connection fails; a connection that
// has served requests is taken for one the target closed, and the request is
// retried once on a new connection, as the workers do: every request is
// answered, each on a reopened connection.
func TestLoopTargetResets(t *testing.T) {
	w := runOnLoop(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "2")
		_, _ = w.Write([]byte("ok"))
		w.(http.Flusher).Flush()
		hj, ok := w.(http.Hijacker)
		if !ok {
			return
		}
		c, _, err := hj.Hijack()
		if err != nil {
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with a reset
		}
		_ = c.Close()
	}), Step{Rate: 2000, Connections: 64, Warmup: 200 * time.Millisecond, Hold: 500 * time.Millisecond})
	if w.Reopened < w.Requests*9/10 {
		t.Errorf("%d connections reopened for %d requests; want one for about each", w.Reopened, w.Requests)
	}
}

// TestLoopEveryOtherTick: at one request every other tick (1,000 req/s) the
// loop runs the step, and a response slower than a tick is read at a later
// one, timed when it arrived.
func TestLoopEveryOtherTick(t *testing.T) {
	const slow = 5 * time.Millisecond
	w := runOnLoop(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(slow)
		_, _ = w.Write([]byte("ok"))
	}), Step{Rate: 1000, Connections: 64, Warmup: 100 * time.Millisecond, Hold: 500 * time.Millisecond})
	if p50 := time.Duration(w.Service.ValueAtQuantile(50)) * time.Microsecond; p50 < slow {
		t.Errorf("service p50 %v, want at least the target's %v", p50, slow)
	}
}

// TestLoopCancelled cancels a step whose requests the loop has in flight on a
// target that never answers: Run returns at once, the requests in flight
// handed to the connections' goroutines and cut there.
func TestLoopCancelled(t *testing.T) {
	srv := newCountingServer(t, stallingHandler(5*time.Second), false)
	g := newGen(t, Target{URL: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	start := time.Now()
	w, err := g.Run(ctx, Step{Rate: 2000, Connections: 64, Hold: 10 * time.Second})
	took := time.Since(start)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !w.looped {
		t.Fatal("the step did not run on the loop")
	}
	if took > time.Second {
		t.Errorf("Run returned %v after it started, cancelled at 500ms", took)
	}
	if w.Released == 0 || w.Blocked == 0 {
		t.Errorf("released %d, blocked %d: want requests queued behind the 64 in flight", w.Released, w.Blocked)
	}
}

// TestLoopSendsAMix sends the benchmark's mix (a template and a response
// check) through the loop: each request is built on the dispatcher and its
// check judged on the body the loop kept.
func TestLoopSendsAMix(t *testing.T) {
	srv := newRawServer(t)
	g := newGen(t, mixTarget(srv.URL()))
	w := runStep(t, g, Step{Rate: 2000, Connections: 64, Warmup: 100 * time.Millisecond, Hold: 500 * time.Millisecond})
	if !w.looped {
		t.Fatal("the step did not run on the loop")
	}
	if w.Requests < 900 || w.Completed != w.Requests || len(w.ErrorClasses) != 0 {
		t.Fatalf("%d requests, %d completed, classes %v; want about 1,000, all answered and passing", w.Requests, w.Completed, w.ErrorClasses)
	}
	for i, want := range []float64{0.6, 0.3, 0.1} {
		rw := w.PerRequest[i]
		if share := float64(rw.Requests) / float64(w.Requests); share < want-0.02 || share > want+0.02 {
			t.Errorf("%s: %d of %d requests (%.3f), want %.1f of them", rw.Name, rw.Requests, w.Requests, share, want)
		}
	}
}

// TestLoopable: the loop runs plain TCP steps, on one CPU at any rate that
// reads at the ticks, on more only up to loopMaxRate; never TLS.
func TestLoopable(t *testing.T) {
	plain := newGen(t, Target{URL: "http://127.0.0.1:9/"})
	tlsGen := newGen(t, Target{URL: "https://127.0.0.1:9/"})
	for _, tc := range []struct {
		g     *Generator
		rate  float64
		procs int
		want  bool
	}{
		{plain, 5000, 1, true},
		{plain, 40000, 1, true},
		{plain, loopMaxRate, 4, true},
		{plain, loopMaxRate + 1, 2, false},
		{tlsGen, 5000, 1, false},
	} {
		if got := tc.g.loopable(tc.rate, tc.procs); got != tc.want {
			t.Errorf("tls %v, rate %v, %d CPUs: loopable %v, want %v", tc.g.dialer.tls != nil, tc.rate, tc.procs, got, tc.want)
		}
	}
}

// TestLongHeaderLines: a response whose header line is longer than the read
// buffer is answered the same on the loop and on the connections' goroutines
// (WithWorkerReads), with the buffer grown to hold it; one longer than
// maxReadBuffer is an error on both.
func TestLongHeaderLines(t *testing.T) {
	for _, tt := range []struct {
		size int
		ok   bool
	}{
		{size: 3 * DefaultReadBufferSize / 2, ok: true},
		{size: maxReadBuffer + 1},
	} {
		value := strings.Repeat("v", tt.size)
		srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Security-Policy", value)
			_, _ = w.Write([]byte("ok\n"))
		}), false)
		for _, loop := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d bytes, loop %v", tt.size, loop), func(t *testing.T) {
				var opts []Option
				if !loop {
					opts = append(opts, WithWorkerReads())
				}
				w := runStep(t, newGen(t, Target{URL: srv.URL}, opts...),
					Step{Rate: 2000, Connections: 64, Warmup: 100 * time.Millisecond, Hold: 400 * time.Millisecond})
				if w.looped != loop {
					t.Fatalf("the step ran with looped = %v", w.looped)
				}
				if w.Requests < 700 {
					t.Fatalf("%d requests, want about 800", w.Requests)
				}
				if tt.ok && (w.Completed != w.Requests || w.Errors != 0) {
					t.Errorf("%d of %d completed, classes %v; want all answered", w.Completed, w.Requests, w.ErrorClasses)
				}
				if !tt.ok && w.Errors != w.Requests {
					t.Errorf("%d errors of %d, classes %v; want every response an error", w.Errors, w.Requests, w.ErrorClasses)
				}
			})
		}
	}
}

// TestShrinkGivesBackRoom checks that connections closed as the pool shrinks
// give back what their response buffers grew by, so a ramp that shrinks and
// grows its pool step after step cannot use up the generator's budget.
func TestShrinkGivesBackRoom(t *testing.T) {
	value := strings.Repeat("v", 3*DefaultReadBufferSize/2)
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Security-Policy", value)
		_, _ = w.Write([]byte("ok\n"))
	}), false)
	g := newGen(t, Target{URL: srv.URL})
	grown := func() (n int64) {
		for _, c := range g.conns {
			if c.rr != nil {
				n += int64(len(c.rr.buf) - DefaultReadBufferSize)
			}
		}
		return n
	}
	for _, conns := range []int{16, 2, 16, 1} {
		w := runStep(t, g, Step{Rate: 1000, Connections: conns, Warmup: 50 * time.Millisecond, Hold: 200 * time.Millisecond})
		if w.Completed == 0 || w.Errors != 0 {
			t.Fatalf("%d connections: %d completed, classes %v; want all answered", conns, w.Completed, w.ErrorClasses)
		}
		if len(g.conns) != conns || grown() == 0 {
			t.Fatalf("%d connections in the pool, grown by %d bytes; want %d, grown", len(g.conns), grown(), conns)
		}
		if room := g.room.Load(); room != growBudget-grown() {
			t.Errorf("%d connections: room %d, want %d (the budget less what the pool's buffers grew by)", conns, room, growBudget-grown())
		}
	}
}
