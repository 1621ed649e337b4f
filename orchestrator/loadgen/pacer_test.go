package loadgen

import (
	"math"
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
