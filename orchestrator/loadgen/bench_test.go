package loadgen

import (
	"context"
	"testing"
	"time"
)

// newBenchRun prepares one connection to a raw loopback server and the run state
// around it, so a single request can be driven in isolation.
func newBenchRun(tb testing.TB) (*run, *conn, *shard) {
	tb.Helper()
	srv := newRawServer(tb)
	g, err := New(Target{URL: srv.URL()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = g.Close() })
	r := &run{g: g, ctx: context.Background(), start: time.Now(), end: int64(time.Hour), closed: true}
	c := &conn{}
	if _, err := c.open(context.Background(), g.dialer, DefaultReadBufferSize, &g.room); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.close)
	return r, c, newShard()
}

// BenchmarkRequest is one request/response over a kept-alive loopback connection,
// recorded into the histograms: the generator's hot path. allocs/op must be 0.
func BenchmarkRequest(b *testing.B) {
	r, c, s := newBenchRun(b)
	b.ReportAllocs()
	for b.Loop() {
		r.do(c, s, r.now())
	}
	if s.classes[clsOK] == 0 || s.classes[clsOK] != s.sent {
		b.Fatalf("%d ok of %d sent: %v", s.classes[clsOK], s.sent, s.classes)
	}
}

// The hot path allocates nothing in steady state.
func TestRequestZeroAlloc(t *testing.T) {
	r, c, s := newBenchRun(t)
	for range 100 { // warm up: histograms' and buffers' first use
		r.do(c, s, r.now())
	}
	allocs := testing.AllocsPerRun(2000, func() { r.do(c, s, r.now()) })
	t.Logf("static request: %v allocations per request", allocs)
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
	if s.classes[clsOK] != 2101 || s.sent != 2101 {
		t.Errorf("%d ok of %d sent, want 2101 each (AllocsPerRun runs once more)", s.classes[clsOK], s.sent)
	}
}

// mixTarget is the benchmark's three-request mix against srv, with one
// template variable (the sequence number in the first request's URL) and a
// response check on the third.
func mixTarget(url string) Target {
	return Target{Requests: []Request{
		{Name: "item", Weight: 6, URL: Template{Text(url + "item?n="), Seq()}},
		{Name: "list", Weight: 3, URL: Template{Text(url + "list")}},
		{Name: "health", Weight: 1, URL: Template{Text(url + "healthz")}, Check: &Check{Status: []int{200}, BodyContains: "ok"}},
	}}
}

// newMixBenchRun is newBenchRun for a Target.
func newMixBenchRun(tb testing.TB, target func(url string) Target) (*run, *conn, *shard) {
	tb.Helper()
	srv := newRawServer(tb)
	g, err := New(target(srv.URL()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = g.Close() })
	r := &run{g: g, ctx: context.Background(), start: time.Now(), end: int64(time.Hour), closed: true,
		fail: func(err error) { tb.Errorf("run failed: %v", err) }}
	c := &conn{}
	if _, err := c.open(context.Background(), g.dialer, DefaultReadBufferSize, &g.room); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.close)
	s := newShard()
	s.perRequest(len(g.reqs))
	return r, c, s
}

// BenchmarkRequestMix is BenchmarkRequest for the three-request mix: the
// choice of request, the templated URL, the check and the per-request
// histograms are on the hot path too. allocs/op must be 0.
func BenchmarkRequestMix(b *testing.B) {
	r, c, s := newMixBenchRun(b, mixTarget)
	b.ReportAllocs()
	for b.Loop() {
		r.do(c, s, r.now())
	}
	if s.classes[clsOK] == 0 || s.classes[clsOK] != s.sent {
		b.Fatalf("%d ok of %d sent: %v", s.classes[clsOK], s.sent, s.classes)
	}
}

// A templated request (every kind of computed part, a feeder, a JSON-free
// check) allocates nothing per request either, once its buffers have grown.
func TestTemplatedRequestZeroAlloc(t *testing.T) {
	r, c, s := newMixBenchRun(t, func(url string) Target {
		return Target{
			Feeders: map[string]*Feeder{"u": {Mode: Random, Columns: []string{"id"}, Rows: [][]string{{"a b"}, {"c"}}}},
			Requests: []Request{
				{Name: "post", Weight: 2, Method: "POST", URL: Template{Text(url + "p/"), Seq(), Text("?u="), Field("u", "id")},
					Headers: []Header{{Name: "X-Id", Value: Template{UUID()}}},
					Body: Template{Text(`{"n":`), RandInt(1, 1000), Text(`,"s":"`), RandString(12), Text(`","t":"`), Now(""),
						Text(`","u":`), NowUnixMilli(), Text("}")},
					Check: &Check{Status: []int{200}, BodyContains: "ok"}},
				{Name: "get", Weight: 1, URL: Template{Text(url + "g")}},
			}}
	})
	for range 100 {
		r.do(c, s, r.now())
	}
	allocs := testing.AllocsPerRun(2000, func() { r.do(c, s, r.now()) })
	t.Logf("templated mix: %v allocations per request", allocs)
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
	if s.classes[clsOK] != 2101 || s.reqs[0].classes[clsOK]+s.reqs[1].classes[clsOK] != 2101 {
		t.Errorf("%d ok (%d + %d per request), want 2101", s.classes[clsOK], s.reqs[0].classes[clsOK], s.reqs[1].classes[clsOK])
	}
}

// loopOne sends one request through the dispatcher's loop l and reads its
// response at ticks 10 µs apart (as the sleep goes: often longer).
func loopOne(tb testing.TB, r *run, l *loop) {
	l.start(r.now())
	for ticks := 0; ; ticks++ {
		if l.turn(nil); len(l.busy) == 0 {
			return
		}
		if ticks > 1e5 {
			tb.Fatal("no response after 10^5 ticks")
		}
		time.Sleep(10 * time.Microsecond)
	}
}

// newLoopBenchRun is newBenchRun with the dispatcher's loop over its
// connection.
func newLoopBenchRun(tb testing.TB) (*run, *loop, *shard) {
	r, c, s := newBenchRun(tb)
	r.closed = false
	return r, newLoop(r, []*conn{c}, []*shard{s}), s
}

// BenchmarkLoopRequest is BenchmarkRequest on the dispatcher's loop: the hot
// path of the steps that read at the dispatcher's ticks. allocs/op must be 0.
func BenchmarkLoopRequest(b *testing.B) {
	r, l, s := newLoopBenchRun(b)
	b.ReportAllocs()
	for b.Loop() {
		loopOne(b, r, l)
	}
	if s.classes[clsOK] == 0 || s.classes[clsOK] != s.sent {
		b.Fatalf("%d ok of %d sent: %v", s.classes[clsOK], s.sent, s.classes)
	}
}

// The loop's hot path allocates nothing in steady state either.
func TestLoopRequestZeroAlloc(t *testing.T) {
	r, l, s := newLoopBenchRun(t)
	for range 100 {
		loopOne(t, r, l)
	}
	allocs := testing.AllocsPerRun(2000, func() { loopOne(t, r, l) })
	t.Logf("static request on the loop: %v allocations per request", allocs)
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
	if s.classes[clsOK] != 2101 || s.sent != 2101 {
		t.Errorf("%d ok of %d sent, want 2101 each", s.classes[clsOK], s.sent)
	}
}
