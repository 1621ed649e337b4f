package loadgen

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

func TestRunOpenModel(t *testing.T) {
	srv := newCountingServer(t, okHandler(), false)
	g := newGen(t, Target{URL: srv.URL + "/x"})
	var seconds []result.Second
	w := runStep(t, g, Step{Rate: 200, Connections: 4, Warmup: time.Second, Hold: 2 * time.Second,
		OnSecond: func(s result.Second) { seconds = append(seconds, s) }})
	m := w.Metrics()
	if w.Requests != 400 || w.Completed != 400 || w.Errors != 0 || w.Sent != 400 {
		t.Errorf("requests %d completed %d errors %d sent %d, want 400 400 0 400", w.Requests, w.Completed, w.Errors, w.Sent)
	}
	if got := srv.conns.Load(); got != 4 {
		t.Errorf("server accepted %d connections, want 4", got)
	}
	if m[metrics.ConnectionsOpen] != 4 {
		t.Errorf("connections.open = %v, want 4", m[metrics.ConnectionsOpen])
	}
	if r := m[metrics.ThroughputRatio]; r < 0.98 || r > 1.02 {
		t.Errorf("throughput.ratio = %v, want about 1", r)
	}
	if len(w.Series) != 3 || len(seconds) != 3 {
		t.Fatalf("series %d, OnSecond %d; want 3 each (warmup included)", len(w.Series), len(seconds))
	}
	for i, s := range w.Series {
		if s.T != i || s.Offered != 200 || s.Requests < 190 || s.Requests > 210 {
			t.Errorf("second %d: %+v, want T=%d offered 200 requests about 200", i, s, i)
		}
	}
	if m[metrics.LatencyP99] <= 0 || m[metrics.LatencyP99] > 0.5 {
		t.Errorf("latency.p99 = %v", m[metrics.LatencyP99])
	}
}

// A rate of 1 req/s sends its first request at once and the next ones a second apart:
// no burst at the start.
func TestRunRateOneNoBurst(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
	}), false)
	g := newGen(t, Target{URL: srv.URL})
	w := runStep(t, g, Step{Rate: 1, Connections: 4, Hold: 3 * time.Second})
	if w.Requests != 3 {
		t.Fatalf("requests = %d, want 3", w.Requests)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 900*time.Millisecond || gap > 1100*time.Millisecond {
			t.Errorf("gap %d = %v, want about 1s", i, gap)
		}
	}
}

// Connections are kept across steps: a larger step opens only the extra ones, a
// smaller one closes the surplus.
func TestRunRateChangeKeepsConnections(t *testing.T) {
	srv := newCountingServer(t, okHandler(), false)
	g := newGen(t, Target{URL: srv.URL})
	steps := []struct {
		rate              float64
		conns             int
		accepted, openNow int64
	}{
		{rate: 100, conns: 4, accepted: 4, openNow: 4},
		{rate: 400, conns: 8, accepted: 8, openNow: 8},
		{rate: 400, conns: 8, accepted: 8, openNow: 8},
		{rate: 50, conns: 2, accepted: 8, openNow: 2},
	}
	for i, s := range steps {
		w := runStep(t, g, Step{Rate: s.rate, Connections: s.conns, Hold: 500 * time.Millisecond})
		if w.Errors != 0 || w.Requests == 0 {
			t.Errorf("step %d: %d requests, %d errors", i, w.Requests, w.Errors)
		}
		deadline := time.Now().Add(2 * time.Second)
		for srv.open.Load() != s.openNow && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := srv.conns.Load(); got != s.accepted {
			t.Errorf("step %d: server accepted %d connections in all, want %d", i, got, s.accepted)
		}
		if got := srv.open.Load(); got != s.openNow {
			t.Errorf("step %d: %d connections open at the server, want %d", i, got, s.openNow)
		}
		if w.Reopened != 0 {
			t.Errorf("step %d: %d reopened, want 0", i, w.Reopened)
		}
	}
}

func TestRunErrors(t *testing.T) {
	// A port nothing listens on: take one, then close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "http://" + ln.Addr().String() + "/"
	_ = ln.Close()

	reset := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		_ = c.(*net.TCPConn).SetLinger(0) // close with RST
		_ = c.Close()
	})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	status := func(code int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) })
	}
	tests := []struct {
		name    string
		handler http.Handler // nil: refused
		timeout time.Duration
		class   string
		answers bool
	}{
		{name: "refused", class: metrics.ClassRefused},
		{name: "reset", handler: reset, class: metrics.ClassReset},
		{name: "timeout", handler: slow, timeout: 100 * time.Millisecond, class: metrics.ClassTimeout},
		{name: "5xx", handler: status(503), class: metrics.ClassHTTP5xx, answers: true},
		{name: "4xx", handler: status(404), class: metrics.ClassHTTP4xx, answers: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := refusedURL
			if tt.handler != nil {
				url = newCountingServer(t, tt.handler, false).URL
			}
			g := newGen(t, Target{URL: url, Timeout: tt.timeout})
			// Enough connections that even 100ms timeouts keep up with the rate.
			w := runStep(t, g, Step{Rate: 50, Connections: 10, Hold: time.Second})
			m := w.Metrics()
			if w.Requests < 45 || w.Errors != w.Requests || w.ErrorClasses[tt.class] != w.Requests {
				t.Errorf("requests %d errors %d classes %v, want all %s", w.Requests, w.Errors, w.ErrorClasses, tt.class)
			}
			if m[metrics.ErrorsRatio] != 1 || m[metrics.GeneratorErrorsCount] != 0 {
				t.Errorf("errors.ratio %v generator.errors.count %v, want 1 and 0", m[metrics.ErrorsRatio], m[metrics.GeneratorErrorsCount])
			}
			if tt.answers != (w.Completed == w.Requests) {
				t.Errorf("completed %d of %d; answers %v", w.Completed, w.Requests, tt.answers)
			}
		})
	}
}

func TestRunTLS(t *testing.T) {
	srv := newCountingServer(t, okHandler(), true)
	g := newGen(t, Target{URL: srv.URL, Insecure: true})
	w := runStep(t, g, Step{Rate: 100, Connections: 3, Hold: time.Second})
	if w.Requests != 100 || w.Errors != 0 || srv.conns.Load() != 3 {
		t.Errorf("requests %d errors %d %v connections %d; want 100, 0, 3", w.Requests, w.Errors, w.ErrorClasses, srv.conns.Load())
	}
	// Without Insecure the test server's self-signed certificate is refused.
	g2 := newGen(t, Target{URL: srv.URL})
	w = runStep(t, g2, Step{Rate: 20, Connections: 1, Hold: 500 * time.Millisecond})
	if w.Errors != w.Requests || w.ErrorClasses[metrics.ClassOther] == 0 {
		t.Errorf("verified TLS against a self-signed server: %d errors of %d %v, want all", w.Errors, w.Requests, w.ErrorClasses)
	}
}

// A target that closes every connection after its response: each is reopened and
// counted, and no request fails.
func TestRunTargetClosesConnections(t *testing.T) {
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Connection", "close")
	}), false)
	g := newGen(t, Target{URL: srv.URL})
	w := runStep(t, g, Step{Rate: 100, Connections: 2, Hold: time.Second})
	if w.Errors != 0 || w.Requests != 100 || w.Reopened < 90 {
		t.Errorf("requests %d errors %d %v reopened %d; want 100, 0, >= 90", w.Requests, w.Errors, w.ErrorClasses, w.Reopened)
	}
}

// A keep-alive connection the target closed while it was idle is retried on a
// new one, not counted as the target's failure, whether it had served requests
// or waited unused in the pool (staleAfter or longer); a connection the target
// closes at once is its failure, retry or not.
func TestRunStaleConnections(t *testing.T) {
	staleAfter := func(o *options) { o.staleAfter = 150 * time.Millisecond }
	t.Run("closed while idle", func(t *testing.T) {
		// At 10 req/s on 8 connections each waits 0.8 s between requests,
		// and most wait more than the server's 300 ms for their first.
		srv := newIdleClosingServer(t, 300*time.Millisecond)
		g := newGen(t, Target{URL: srv.URL()}, staleAfter)
		w := runStep(t, g, Step{Rate: 10, Connections: 8, Hold: 2 * time.Second})
		if w.Requests != 20 || w.Errors != 0 || w.Reopened < 8 {
			t.Errorf("requests %d errors %d %v reopened %d; want 20, 0, >= 8", w.Requests, w.Errors, w.ErrorClasses, w.Reopened)
		}
	})
	t.Run("closed at once", func(t *testing.T) {
		srv := newIdleClosingServer(t, -1)
		g := newGen(t, Target{URL: srv.URL()}, staleAfter)
		w := runStep(t, g, Step{Rate: 10, Connections: 8, Hold: 2 * time.Second})
		if w.Requests != 20 || w.Errors != 20 {
			t.Errorf("requests %d errors %d %v; want 20 failed", w.Requests, w.Errors, w.ErrorClasses)
		}
	})
}

func TestRunCancel(t *testing.T) {
	// The target stalls: requests are in flight when the run is cancelled.
	srv := newCountingServer(t, stallingHandler(3*time.Second), false)
	g := newGen(t, Target{URL: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(700*time.Millisecond, cancel)
	start := time.Now()
	w, err := g.Run(ctx, Step{Rate: 100, Connections: 4, Hold: 10 * time.Second})
	took := time.Since(start)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took > 800*time.Millisecond {
		t.Errorf("Run returned %v after start, %v after cancel; want within 100ms", took, took-700*time.Millisecond)
	}
	if w == nil || w.Duration < 600*time.Millisecond || w.Duration > 800*time.Millisecond {
		t.Fatalf("window %+v, want one of about 0.7s", w)
	}
}

func TestRunClosedLoop(t *testing.T) {
	srv := newRawServer(t)
	g := newGen(t, Target{URL: srv.URL()})
	w := runStep(t, g, Step{Rate: 0, Connections: 4, Hold: time.Second})
	m := w.Metrics()
	if w.Requests < 1000 || w.Errors != 0 {
		t.Errorf("closed loop: %d requests, %d errors; want >= 1000 and 0", w.Requests, w.Errors)
	}
	if math.Abs(m[metrics.ThroughputRatio]-1) > 0.01 {
		t.Errorf("closed loop throughput.ratio = %v, want 1", m[metrics.ThroughputRatio])
	}
}

func TestNewAndStepValidation(t *testing.T) {
	if _, err := New(Target{URL: "http://127.0.0.1:1/"}, WithReadBufferSize(10)); err == nil {
		t.Error("New accepted a 10-byte read buffer")
	}
	g := newGen(t, Target{URL: "http://127.0.0.1:1/"})
	bad := []Step{
		{Rate: -1, Connections: 1, Hold: time.Second},
		{Rate: 1, Connections: 0, Hold: time.Second},
		{Rate: 1, Connections: 1, Hold: 0},
		{Rate: 1, Connections: 1, Hold: time.Second, Warmup: -1},
	}
	for _, s := range bad {
		if _, err := g.Run(context.Background(), s); err == nil {
			t.Errorf("Run(%+v) accepted an invalid step", s)
		}
	}
}
