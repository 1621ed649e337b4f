package loadgen

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestConstantPacer(t *testing.T) {
	tests := []struct {
		rate float64
		n    uint64
		want time.Duration
	}{
		{rate: 1, n: 0, want: 0},
		{rate: 1, n: 1, want: time.Second},
		{rate: 1, n: 2, want: 2 * time.Second},
		{rate: 1000, n: 1, want: time.Millisecond},
		{rate: 1000, n: 1500, want: 1500 * time.Millisecond},
		{rate: 3, n: 1, want: 333333333},
		{rate: 3, n: 3, want: time.Second},              // no drift from accumulated rounding
		{rate: 20000, n: 20000 * 3600, want: time.Hour}, // an hour at 20k/s stays exact
		{rate: 0.5, n: 1, want: 2 * time.Second},
	}
	for _, tt := range tests {
		got := constantPacer{rate: tt.rate}.Intended(tt.n)
		if got != tt.want {
			t.Errorf("rate %v: Intended(%d) = %v, want %v", tt.rate, tt.n, got, tt.want)
		}
	}
}

func TestPoissonPacer(t *testing.T) {
	tests := []struct {
		rate float64
		n    int
	}{
		{rate: 10, n: 20000},
		{rate: 5000, n: 50000},
	}
	for _, tt := range tests {
		p := newPoissonPacer(tt.rate, 42)
		q := newPoissonPacer(tt.rate, 42)
		var prev time.Duration
		var gaps, gaps2 float64
		for i := range tt.n {
			at := p.Intended(uint64(i))
			if at2 := q.Intended(uint64(i)); at2 != at {
				t.Fatalf("rate %v: same seed gave %v and %v for %d", tt.rate, at, at2, i)
			}
			if i == 0 && at != 0 {
				t.Fatalf("rate %v: first request at %v, want 0", tt.rate, at)
			}
			if at < prev {
				t.Fatalf("rate %v: request %d at %v before previous %v", tt.rate, i, at, prev)
			}
			if i > 0 {
				g := (at - prev).Seconds()
				gaps += g
				gaps2 += g * g
			}
			prev = at
		}
		k := float64(tt.n - 1)
		mean := gaps / k
		sd := math.Sqrt(gaps2/k - mean*mean)
		// Exponential gaps: mean and standard deviation both 1/rate.
		if want := 1 / tt.rate; math.Abs(mean-want)/want > 0.03 || math.Abs(sd-want)/want > 0.05 {
			t.Errorf("rate %v: gap mean %v sd %v, want both about %v", tt.rate, mean, sd, want)
		}
	}
}

func TestConstantPacerCountBefore(t *testing.T) {
	tests := []struct {
		rate  float64
		bound time.Duration
		want  uint64
	}{
		{rate: 1, bound: 0, want: 0},
		{rate: 1, bound: 1, want: 1}, // the request at offset 0
		{rate: 1, bound: time.Second, want: 1},
		{rate: 1, bound: time.Second + 1, want: 2},
		{rate: 200, bound: time.Second, want: 200},
		{rate: 200, bound: 2 * time.Second, want: 400},
		{rate: 3, bound: time.Second, want: 3},
		{rate: 0.5, bound: 3 * time.Second, want: 2},
		{rate: 20000, bound: 10 * time.Second, want: 200000},
	}
	for _, tt := range tests {
		p := constantPacer{rate: tt.rate}
		if got := p.countBefore(tt.bound); got != tt.want {
			t.Errorf("rate %v: countBefore(%v) = %d, want %d", tt.rate, tt.bound, got, tt.want)
		}
		// Property: it agrees with Intended.
		n := p.countBefore(tt.bound)
		if (n > 0 && p.Intended(n-1) >= tt.bound) || p.Intended(n) < tt.bound {
			t.Errorf("rate %v: countBefore(%v) = %d disagrees with Intended", tt.rate, tt.bound, n)
		}
	}
}

func TestDispatchTick(t *testing.T) {
	tests := []struct {
		rate  float64
		fixed time.Duration
		batch float64
		want  time.Duration
	}{
		{rate: 0, batch: 8, want: MinDispatchTick},                        // closed loop: unused
		{rate: 1, batch: 8, want: MaxDispatchTick},                        // slow: one wake-up per request anyway
		{rate: 500, batch: 8, want: MaxDispatchTick},                      // one request per tick: spaced as scheduled
		{rate: 1000, batch: 8, want: MaxDispatchTick},                     // 8 requests take 8 ms: capped
		{rate: 4000, batch: 8, want: MaxDispatchTick},                     // 8 requests take 2 ms
		{rate: 5000, batch: 8, want: 1600 * time.Microsecond},             // 8 requests
		{rate: 8000, batch: 8, want: time.Millisecond},                    // 8 requests
		{rate: 10000, batch: 8, want: 800 * time.Microsecond},             // 8 requests
		{rate: 20000, batch: 8, want: 400 * time.Microsecond},             // 8 requests
		{rate: 40000, batch: 8, want: MinDispatchTick},                    // 8 requests take 200 µs
		{rate: 1e6, batch: 8, want: MinDispatchTick},                      // floor
		{rate: 5000, batch: 16, want: MaxDispatchTick},                    // 16 requests take 3.2 ms: capped
		{rate: 20000, batch: 16, want: 800 * time.Microsecond},            // 16 requests
		{rate: 40000, batch: 16, want: 400 * time.Microsecond},            // 16 requests
		{rate: 80000, batch: 16, want: MinDispatchTick},                   // 16 requests take 200 µs
		{rate: 5000, fixed: 50 * time.Microsecond, batch: 8, want: 50000}, // fixed by option
	}
	for _, tt := range tests {
		if got := dispatchTick(tt.rate, tt.fixed, tt.batch); got != tt.want {
			t.Errorf("dispatchTick(%v, %v, %v) = %v, want %v", tt.rate, tt.fixed, tt.batch, got, tt.want)
		}
	}
	// The loop's batch: its room (loopRoom connections a request), within
	// [DispatchBatch, LoopBatch]; every step it may run has that room at
	// LoopTick unless the tick is at its bounds.
	for _, tt := range []struct {
		conns int
		want  float64
	}{{1, DispatchBatch}, {32, DispatchBatch}, {48, 12}, {64, LoopBatch}, {1000, LoopBatch}} {
		if got := loopBatch(tt.conns); got != tt.want {
			t.Errorf("loopBatch(%d) = %v, want %v", tt.conns, got, tt.want)
		}
	}
	for _, conns := range []int{32, 48, 64} {
		for _, rate := range []float64{8000, 20000, 30000} {
			if !lazyReads(rate, conns, LoopTick(rate, conns).Seconds(), loopRoom) {
				t.Errorf("%d connections at %v req/s: no room on the loop at its tick %v", conns, rate, LoopTick(rate, conns))
			}
		}
	}
}

func TestNextWake(t *testing.T) {
	const us = int64(time.Microsecond)
	tests := []struct {
		name                             string
		released, now, next, tick, ahead int64
		want                             int64
	}{
		{"next due after the tick: sleep until it", 0, 10 * us, 5000 * us, 250 * us, 0, 4990 * us},
		{"next due within the tick: wait for the tick", 0, 10 * us, 100 * us, 250 * us, 0, 240 * us},
		{"releasing took longer than the tick, next due: no sleep", 0, 300 * us, 200 * us, 250 * us, 0, -50 * us},
		{"releasing took longer than the tick, next later", 0, 300 * us, 400 * us, 250 * us, 0, 100 * us},
		{"an early wake-up long after the last release: sleep until due", 0, 9000 * us, 9100 * us, 1000 * us, 0, 100 * us},
		// Releasing up to ahead early.
		{"next due within the tick and ahead: wait for the tick", 0, 10 * us, 300 * us, 250 * us, 125 * us, 240 * us},
		{"next due past the tick and ahead: sleep until it, not ahead of it", 0, 10 * us, 5000 * us, 250 * us, 125 * us, 4990 * us},
		{"the turn took longer than the tick, next not due yet: no sleep", 0, 300 * us, 320 * us, 250 * us, 125 * us, -50 * us},
	}
	for _, tt := range tests {
		if got := nextWake(tt.released, tt.now, tt.next, tt.tick, tt.ahead); got != tt.want {
			t.Errorf("%s: nextWake = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestReleasable(t *testing.T) {
	const warmup = 1000
	tests := []struct {
		next, now, ahead int64
		want             bool
	}{
		{100, 100, 0, true},
		{101, 100, 0, false},
		{150, 100, 50, true},     // half a tick early
		{151, 100, 50, false},    // more
		{990, 960, 50, true},     // of the warmup, in the warmup
		{1010, 980, 50, false},   // of the hold, not released in the warmup
		{1010, 1000, 50, true},   // in the hold
		{1000, 999, 50, false},   // the hold's first request
		{900, 1200, 50, true},    // late
		{5000, 1200, 5000, true}, // a fixed tick's half
	}
	for _, tt := range tests {
		if got := releasable(tt.next, tt.now, tt.ahead, warmup); got != tt.want {
			t.Errorf("releasable(next %d, now %d, ahead %d) = %v, want %v", tt.next, tt.now, tt.ahead, got, tt.want)
		}
	}
}

// Property: with the dispatcher's sleeps (its bookkeeping replayed on a simulated
// clock, each wake-up late by up to jitter), every request is released at most
// ahead early and at most a tick minus ahead plus the jitter late (half a tick
// either way with the dispatcher's ahead), and the wake-ups per second do not
// exceed 1/tick.
func TestNextWakeBatching(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, rate := range []float64{3, 900, 1000, 5000, 20000, 40000, 150000} {
		for k, jitterFrac := range []float64{0, 0.5, 0, 0.5, 0, 0.5, 0, 0.5} {
			p := constantPacer{rate: rate}
			batch := []float64{DispatchBatch, LoopBatch}[k/2%2]
			tick := int64(dispatchTick(rate, 0, batch))
			ahead := int64(0)
			if k >= 4 {
				ahead = tick / 2 // the dispatcher's
			}
			jitter := int64(jitterFrac * float64(tick))
			end := int64(time.Second)
			var now, planned, maxLate, maxEarly int64
			released := -tick
			var n uint64
			wakes := 0
			for {
				wakes++
				if releasable(int64(p.Intended(n)), now, ahead, 0) {
					released = max(planned, now-tick)
				}
				for next := int64(p.Intended(n)); releasable(next, now, ahead, 0) && next < end; next = int64(p.Intended(n)) {
					maxLate = max(maxLate, now-next)
					maxEarly = max(maxEarly, next-now)
					n++
				}
				next := int64(p.Intended(n))
				if next >= end {
					break
				}
				w := nextWake(released, now, next, tick, ahead)
				planned = now + w
				if w > 0 {
					now += w
				}
				if jitter > 0 {
					now += rng.Int64N(jitter + 1)
				}
			}
			if want := p.countBefore(time.Duration(end)); n != want {
				t.Errorf("rate %v jitter %v ahead %v: released %d, want %d", rate, time.Duration(jitter), time.Duration(ahead), n, want)
			}
			if maxLate > tick-ahead+jitter {
				t.Errorf("rate %v jitter %v ahead %v: a request released %v late, tick %v", rate, time.Duration(jitter), time.Duration(ahead), time.Duration(maxLate), time.Duration(tick))
			}
			if maxEarly > ahead {
				t.Errorf("rate %v jitter %v ahead %v: a request released %v early", rate, time.Duration(jitter), time.Duration(ahead), time.Duration(maxEarly))
			}
			if limit := int(end/tick) + 1; wakes > limit {
				t.Errorf("rate %v jitter %v ahead %v: %d wake-ups in a second, want at most %d", rate, time.Duration(jitter), time.Duration(ahead), wakes, limit)
			}
		}
	}
}
