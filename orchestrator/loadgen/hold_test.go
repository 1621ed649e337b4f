package loadgen

import (
	"net/http"
	"runtime"
	"testing"
	"time"
)

// TestLoopHoldOnOneCPU: the loop's sleep holds its thread (fineSleeper.hold),
// and with one P nothing else in the process runs meanwhile, nor learns that
// its sockets are ready. So the loop sleeps through the poller at least every
// pollEvery, and whenever a connection's goroutine is working for it. Here the
// target is in the process: answering plainly, it must keep up; closing each
// connection, the goroutines reopening them (a dial each) must keep up too.
func TestLoopHoldOnOneCPU(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, tt := range []struct {
		name  string
		close bool
		step  Step
	}{
		// 8 connections for each request in a tick (2 ms at these rates):
		// twice the room lazyReads asks, for a target that shares the
		// loop's one P and so answers only when the loop sleeps through
		// the poller.
		{"answers", false, Step{Rate: 2000, Connections: 32, Warmup: 200 * time.Millisecond, Hold: time.Second}},
		{"closes", true, Step{Rate: 1000, Connections: 16, Warmup: 200 * time.Millisecond, Hold: time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := runOnLoop(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tt.close {
					w.Header().Set("Connection", "close")
				}
				_, _ = w.Write([]byte("ok"))
			}), tt.step)
			if tt.close && w.Reopened < w.Requests*9/10 {
				t.Errorf("%d connections reopened for %d requests; want one for about each", w.Reopened, w.Requests)
			}
			// A loop that never let the target run would have nothing
			// answered (runOnLoop fails) and every request waiting. On a
			// quiet machine none or up to 3 % wait; with the machine
			// compiling beside the test, up to half did in some runs,
			// before and after the 2 ms tick, so the bound is loose.
			t.Logf("blocked %d of %d", w.Blocked, w.Released)
			if w.Blocked*3 > w.Released {
				t.Errorf("%d of %d requests waited for a connection; want under a third", w.Blocked, w.Released)
			}
		})
	}
}
