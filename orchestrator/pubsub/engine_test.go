package pubsub

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/internal/eventbus"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// startBus serves a real event bus on a loopback port until the test ends.
func startBus(t *testing.T, cfg eventbus.Config) (string, *eventbus.Server) {
	t.Helper()
	srv, err := eventbus.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("event bus did not stop within 10s")
		}
	})
	return "http://" + ln.Addr().String(), srv
}

func newEngine(t *testing.T, url string) *Engine {
	t.Helper()
	e, err := New(Config{Publish: url + "/publish?topic=load", Subscribe: url + "/subscribe?topic=load", BodyBytes: 200, Timeout: 2 * time.Second, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func runCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEngineDeliversToEverySubscriber(t *testing.T) {
	url, srv := startBus(t, eventbus.Config{})
	e := newEngine(t, url)
	var secs atomic.Int64
	res, err := e.Run(runCtx(t), Step{Publishers: 2, Subscribers: 3, Rate: 50, Warmup: 500 * time.Millisecond, Hold: 2 * time.Second,
		OnSecond: func(result.Second) { secs.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	t.Logf("%v", m)
	// 2 publishers x 50/s x 2 s = 200 messages, each to 3 subscribers.
	if n := m[metrics.RequestsCount]; n < 190 || n > 210 {
		t.Errorf("requests.count = %v, want about 200", n)
	}
	if exp, got := m[ExpectedCount], m[DeliveredCount]; exp != 3*m[metrics.RequestsCount] || got != exp {
		t.Errorf("delivered %v of expected %v (requests %v)", got, exp, m[metrics.RequestsCount])
	}
	if m[LostRatio] != 0 || m[metrics.ErrorsRatio] != 0 {
		t.Errorf("lost %v, errors %v, want 0", m[LostRatio], m[metrics.ErrorsRatio])
	}
	if rps := m[DeliveredRPS]; rps < 280 || rps > 320 {
		t.Errorf("pubsub.delivered.rps = %v, want about 300", rps)
	}
	if p99 := m[DelayP99]; p99 <= 0 || p99 > 0.5 {
		t.Errorf("pubsub.delay.p99 = %v", p99)
	}
	if r := m[metrics.ThroughputRatio]; r < 0.9 || r > 1.1 {
		t.Errorf("throughput.ratio = %v", r)
	}
	if r := m[metrics.SubscribersHeldRatio]; r != 1 {
		t.Errorf("%s = %v with every subscriber subscribed through the hold, want 1", metrics.SubscribersHeldRatio, r)
	}
	if len(res.Series) != 3 || secs.Load() != 3 {
		t.Errorf("series %d seconds, OnSecond %d calls, want 3", len(res.Series), secs.Load())
	}
	// Every subscription is closed at the end of the step.
	if st := srv.Stats(); st.Subscribers != 0 {
		t.Errorf("subscriptions left open: %d", st.Subscribers)
	}
}

func TestEngineSeesCapacity(t *testing.T) {
	url, _ := startBus(t, eventbus.Config{Capacity: 100})
	e := newEngine(t, url)
	res, err := e.Run(runCtx(t), Step{Publishers: 4, Subscribers: 2, Rate: 50, Warmup: 500 * time.Millisecond, Hold: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	t.Logf("%v", m)
	// 200/s offered to a bus that publishes 100/s: the queue grows through the step.
	if m[DelayP99] < 0.5 {
		t.Errorf("pubsub.delay.p99 = %v at twice the capacity, want >= 0.5s", m[DelayP99])
	}
	if m[metrics.LatencyP99] < 0.5 {
		t.Errorf("latency.p99 = %v at twice the capacity, want >= 0.5s", m[metrics.LatencyP99])
	}
}

func TestEngineCannotSubscribe(t *testing.T) {
	url, _ := startBus(t, eventbus.Config{})
	e, err := New(Config{Publish: url + "/publish?topic=x", Subscribe: url + "/subscribe", Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Run(runCtx(t), Step{Publishers: 1, Subscribers: 2, Rate: 10, Hold: time.Second})
	if err == nil || !strings.Contains(err.Error(), "none of 2 subscribers could subscribe") {
		t.Fatalf("err = %v", err)
	}
}

// Subscribers the bus refuses are not achieved: the step says how many of
// those asked for were subscribed through the hold.
func TestEngineSubscribersHeld(t *testing.T) {
	// Subscriptions hold their in-flight slot for the step: 4 of 5 fit.
	url, _ := startBus(t, eventbus.Config{MaxInflight: 4})
	e := newEngine(t, url)
	res, err := e.Run(runCtx(t), Step{Publishers: 1, Subscribers: 5, Rate: 10, Warmup: 200 * time.Millisecond, Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	if r := m[metrics.SubscribersHeldRatio]; r != 0.8 || m[Subscribers] != 4 || m[SubscribeErrors] != 1 {
		t.Errorf("held ratio %v, subscribers %v, refused %v; want 0.8, 4, 1", r, m[Subscribers], m[SubscribeErrors])
	}
}

func TestStepValidation(t *testing.T) {
	e := newEngine(t, "http://127.0.0.1:1")
	for _, s := range []Step{{Publishers: 0, Rate: 1, Hold: time.Second}, {Publishers: 1, Rate: 0, Hold: time.Second}, {Publishers: 1, Rate: 1}} {
		if _, err := e.Run(runCtx(t), s); err == nil {
			t.Errorf("Run(%+v) accepted a bad step", s)
		}
	}
}
