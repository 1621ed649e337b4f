package loadgen

import (
	"math"
	"math/rand/v2"
	"time"
)

// pacer yields the intended send time of each request of a step, as an offset from
// the step's start. It is pure arithmetic (apart from the seeded random source of a
// Poisson pacer), so the schedule is table-tested without a clock.
type pacer interface {
	// Intended returns the offset of request number n (0-based). Calls must ask for
	// n = 0, 1, 2, ... in order.
	Intended(n uint64) time.Duration
}

// constantPacer spaces requests exactly 1/rate apart, the first at offset 0.
type constantPacer struct {
	rate float64 // requests per second, > 0
}

// Intended returns n/rate. Computed from n rather than accumulated, so rounding never
// drifts over a long step. It saturates: a rate so low that request n is due past
// what a Duration holds gets the largest Duration, past any step's end.
func (p constantPacer) Intended(n uint64) time.Duration {
	if n == 0 {
		return 0 // not 0 x Inf at a vanishing rate
	}
	return saturate(float64(n) * float64(time.Second) / p.rate)
}

// saturate converts ns to a Duration, clamped to [0, the largest Duration]: an
// offset past what a Duration holds (a vanishing rate, a gap of +Inf) would
// otherwise convert to an arbitrary value, on amd64 the most negative one, which
// wraps the schedule into the past (every request due at once, without end). NaN
// is 0.
func saturate(ns float64) time.Duration {
	switch {
	case !(ns > 0): // NaN too
		return 0
	case ns >= float64(math.MaxInt64):
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// poissonPacer spaces requests with exponentially distributed gaps of mean 1/rate
// (a Poisson arrival process), the first at offset 0.
type poissonPacer struct {
	rate float64
	rng  *rand.Rand
	next uint64  // the n the next call must ask for
	at   float64 // offset of request next, in seconds
}

func newPoissonPacer(rate float64, seed uint64) *poissonPacer {
	return &poissonPacer{rate: rate, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Intended returns the offset of request n; n must be the one after the previous call.
func (p *poissonPacer) Intended(n uint64) time.Duration {
	for p.next < n { // tolerate skipped numbers; never goes back
		p.at += p.rng.ExpFloat64() / p.rate
		p.next++
	}
	if p.next == n {
		at := p.at
		p.at += p.rng.ExpFloat64() / p.rate
		p.next++
		return saturate(at * float64(time.Second))
	}
	return saturate(p.at * float64(time.Second)) // asked for an earlier n: best effort
}

// countBefore returns how many requests of the schedule have an intended offset
// before bound (ns), so the series can state what was offered in a second even while
// the dispatcher is behind.
func (p constantPacer) countBefore(bound time.Duration) uint64 {
	if bound <= 0 {
		return 0
	}
	// Requests due before bound, in float64 and saturated: a Duration of
	// seconds times a rate over what a uint64 holds (or NaN) cannot be
	// converted reliably. The loops below settle the rounding.
	f := bound.Seconds() * p.rate
	var n uint64
	switch {
	case f >= 1<<63:
		n = 1 << 63
	case f > 0:
		n = uint64(f)
	}
	for n > 0 && p.Intended(n-1) >= bound { // float rounding: step back
		n--
	}
	for p.Intended(n) < bound { // or forward
		n++
	}
	return n
}

// nextWake returns how long the dispatcher sleeps at now when the next request is
// due at next, the last wake-up that released requests was planned for
// released, and a wake-up releases what is due up to ahead after it (all ns
// from the step's start): until a tick after released, when next is due by
// then (give or take ahead), so a wake-up releases every request due in the
// tick; else until next is due, so a request alone leaves on time. Zero or
// less: do not sleep. Not until next-ahead in the first case: at a rate whose
// turns of the loop take longer than the tick, the dispatcher would then sleep
// between turns while responses wait to be read (at 50,000 req/s on one CPU
// it turned a fifth less often, and connections ran out).
func nextWake(released, now, next, tick, ahead int64) int64 {
	at := released + tick
	if next-ahead > at {
		at = next
	}
	return at - now
}

// releasable reports whether the request due at next is released by a wake-up
// at now that releases up to ahead early: never across the warmup's end
// (warmup), so a request of the hold is timed within the hold.
func releasable(next, now, ahead, warmup int64) bool {
	return next <= now+ahead && (next < warmup || now >= warmup)
}

// dispatchTick returns the dispatcher's tick at rate: fixed if set, else the time
// batch requests take at rate, within [MinDispatchTick, MaxDispatchTick]. Each
// wake-up costs the same whatever it releases, so releasing a few requests per
// wake-up keeps the cost per request flat. On a VM a wake-up can cost 30 µs of
// the generator's CPU, as much as a request's own system calls: at 5,000 req/s
// a 500 µs tick spent half as much CPU again as a 1 ms one, and a 1 ms tick a
// quarter more than a 2 ms one. A wake-up releases up to half a tick ahead, so
// the cap keeps every request within a millisecond of its time (wrk2's
// resolution), and keeps requests spaced at up to 500 req/s; above, they leave
// in bursts of up to batch, which a sub-millisecond target's latency.p50 shows
// as up to half a tick of lag (it is measured from the intended times of the
// late ones; service.* is not).
func dispatchTick(rate float64, fixed time.Duration, batch float64) time.Duration {
	if fixed > 0 {
		return fixed
	}
	if rate <= 0 {
		return MinDispatchTick
	}
	t := saturate(batch / rate * float64(time.Second))
	return min(max(t, MinDispatchTick), MaxDispatchTick)
}

// loopBatch is how many requests a tick of the dispatcher's loop holds with
// connections: LoopBatch, or fewer when the pool has less room for them
// (loopRoom connections each), but never fewer than DispatchBatch. The loop
// sends what is due before it reads, which takes the reads' time out of the
// requests' lateness: at 40,000 req/s that paid for twice the goroutines'
// batch, half the wake-ups, with the same lag (docs/metrics.md).
func loopBatch(connections int) float64 {
	return min(max(float64(connections)/loopRoom, DispatchBatch), LoopBatch)
}

// LoopTick is the tick of a step offering rate (requests/s) over connections
// on the dispatcher's loop, which a generator on one CPU runs for every step
// that reads at the ticks (see lazyReads), unless WithDispatchTick fixes it.
func LoopTick(rate float64, connections int) time.Duration {
	return dispatchTick(rate, 0, loopBatch(connections))
}
