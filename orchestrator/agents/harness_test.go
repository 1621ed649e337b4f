package agents

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/rs/zerolog"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/gen/loadramp/agent/v1/agentv1connect"
	"github.com/loadramp/loadramp/orchestrator/agent"
	"github.com/loadramp/loadramp/orchestrator/result"
)

const testVersion = "v-test"

// fakeEngine is a fake LocalEngine for the tests of the code around it: each
// second of a step it "sends" its share of the rate, with latencies drawn
// from its own seeded distribution (so a test can draw them again), and it
// really takes warmup+hold of wall time, or until its context ends.
type fakeEngine struct {
	seed    uint64
	scaleUS float64 // latencies are exponential with this mean, in µs
	cpu     float64 // the health it reports
	// ignoreHold runs until the context ends, whatever the hold; ignoreCtx
	// also ignores the context (a hung engine).
	ignoreHold, ignoreCtx bool

	mu      sync.Mutex
	runs    int
	started time.Time  // (real clock) when the last run began
	stopped chan error // receives the context's cause when a run is cut short
}

func (e *fakeEngine) draw(r *rand.Rand) int64 {
	return int64(r.ExpFloat64()*e.scaleUS) + 1
}

// values returns the latencies the engine records for a step of n requests
// in each of secs seconds (the same every time: a test builds the union).
func (e *fakeEngine) values(rate float64, secs int) [][]int64 {
	r := rand.New(rand.NewPCG(e.seed, 7))
	out := make([][]int64, secs)
	for s := range out {
		for range int(rate) {
			out[s] = append(out[s], e.draw(r))
		}
	}
	return out
}

func (e *fakeEngine) Run(ctx context.Context, s agent.EngineStep) (*agent.Result, error) {
	e.mu.Lock()
	e.runs++
	e.started = time.Now()
	e.mu.Unlock()
	secs := int((s.Warmup + s.Hold) / time.Second)
	warm := int(s.Warmup / time.Second)
	vals := e.values(s.Params["rate"], secs)
	res := &agent.Result{Latency: agent.NewHist(agent.HistDigits), Service: agent.NewHist(agent.HistDigits),
		Hold: s.Hold, Offered: s.Params["rate"], Connections: int(s.Params["connections"]),
		ErrorClasses: map[string]int64{"http_5xx": 0}, Health: agent.Health{CPU: e.cpu}}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for sec := 0; sec < secs || e.ignoreHold || e.ignoreCtx; sec++ {
		if e.ignoreCtx {
			time.Sleep(time.Second)
			if sec > 10 {
				break
			}
			continue
		}
		select {
		case <-ctx.Done():
			if e.stopped != nil {
				e.stopped <- context.Cause(ctx)
			}
			return res, ctx.Err()
		case <-t.C:
		}
		if sec >= len(vals) {
			continue
		}
		h := agent.NewHist(agent.SecondDigits)
		for _, v := range vals[sec] {
			_ = h.RecordValue(v)
			if sec >= warm {
				_ = res.Latency.RecordValue(v)
				_ = res.Service.RecordValue(v / 2)
				res.Requests++
				res.Completed++
			}
		}
		if sec >= warm && sec%2 == 1 {
			res.Errors++
			res.ErrorClasses["http_5xx"]++
		}
		if s.OnSecond != nil {
			s.OnSecond(agent.Second{Second: result.Second{T: sec, Requests: int64(len(vals[sec])), Offered: int64(s.Params["rate"]),
				P50: float64(h.ValueAtQuantile(50)) / 1e6, P99: float64(h.ValueAtQuantile(99)) / 1e6}, Latency: h})
		}
	}
	return res, nil
}

func (e *fakeEngine) Close() error { return nil }

// testAgent is one agent served on loopback for a test.
type testAgent struct {
	srv    *agent.Server
	url    string
	engine *fakeEngine
	cancel context.CancelFunc
	done   chan error
	http   *http.Server // set by startHandler: kill closes it at once
}

// kill drops the agent like kill -9 would: the listener and every
// connection close at once, the step's load is not stopped by anyone.
func (a *testAgent) kill() {
	if a.http != nil {
		_ = a.http.Close()
	}
}

func agentConfig(name, token string, e *fakeEngine) agent.Config {
	cfg := agent.Config{Name: name, Version: testVersion, Token: token, Log: zerolog.Nop(), WatchEvery: 50 * time.Millisecond}
	if e != nil {
		cfg.Engines = func(*agentv1.Workload) (agent.LocalEngine, error) { return e, nil }
	}
	return cfg
}

// startAgent serves cfg with Server.Serve (watchdog included) on a free
// loopback port until the test ends.
func startAgent(t testing.TB, cfg agent.Config) *testAgent {
	t.Helper()
	srv, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &testAgent{srv: srv, url: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { a.done <- srv.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-a.done:
		case <-time.After(10 * time.Second):
			t.Error("agent did not stop within 10s")
		}
	})
	return a
}

// startHandler serves the agent's handler on a plain http.Server (h2c), so
// the test can kill it; there is no watchdog.
func startHandler(t *testing.T, cfg agent.Config) *testAgent {
	t.Helper()
	srv, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	hs.Protocols = new(http.Protocols)
	hs.Protocols.SetHTTP1(true)
	hs.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return &testAgent{srv: srv, url: "http://" + ln.Addr().String(), http: hs}
}

func opts(token string) Options {
	return Options{Version: testVersion, Token: token, CallTimeout: 5 * time.Second}
}

// union builds the histogram of every latency the engines recorded in the
// hold, straight from their raw values.
func union(rate map[*fakeEngine]float64, warm, secs int) *hdrhistogram.Histogram {
	h := agent.NewHist(agent.HistDigits)
	for e, r := range rate {
		for s, vs := range e.values(r, secs) {
			if s < warm {
				continue
			}
			for _, v := range vs {
				_ = h.RecordValue(v)
			}
		}
	}
	return h
}

func waitErr(t *testing.T, ch chan error, d time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatalf("%s: nothing within %v", what, d)
	}
	return errors.New("unreachable")
}

// ok returns v, failing the test on err: ok(Dial(...))(t).
func ok[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

var _ = fmt.Sprint

// startFakeService serves a fake of the agent's service (h2c) until the
// test ends and returns its URL.
func startFakeService(t *testing.T, h agentv1connect.AgentServiceHandler) string {
	t.Helper()
	path, handler := agentv1connect.NewAgentServiceHandler(h)
	mux := http.NewServeMux()
	mux.Handle(path, handler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	hs.Protocols = new(http.Protocols)
	hs.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return "http://" + ln.Addr().String()
}

func newTestServer(cfg agent.Config) (*agent.Server, error) { return agent.New(cfg) }
