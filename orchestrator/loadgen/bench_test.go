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
	if _, err := c.open(context.Background(), g.dialer, DefaultReadBufferSize); err != nil {
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
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
	if s.classes[clsOK] != 2101 || s.sent != 2101 {
		t.Errorf("%d ok of %d sent, want 2101 each (AllocsPerRun runs once more)", s.classes[clsOK], s.sent)
	}
}
