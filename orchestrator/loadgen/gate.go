package loadgen

import (
	"sync"
	"sync/atomic"
)

// Reading responses at the dispatcher's wake-ups. Between two of its ticks an
// open-loop generator at a few thousand requests per second has a few
// responses in flight, and each arriving on its own wakes the process: a
// core's idle exit, a context switch and a pass of the Go scheduler, several
// times the cost of the request's own system calls, and most of the CPU the
// generator spends below its saturation. The dispatcher wakes every tick
// anyway, so a connection with a request in flight can instead ask the kernel
// not to signal its response (SO_RCVLOWAT above any response) and read it at
// the next tick, its arrival time read from the kernel's receive timestamp:
// the latency is the same, measured without the generator's own wake-up in it.
// The price is that a connection stays busy up to a tick longer, so a step
// reads this way only when its connections have room to spare (lazyReads).
//
// The dispatcher's loop (loop.go) reads those steps itself on plain TCP; the
// gate is for the connections' goroutines when they read at the ticks
// instead (WithWorkerReads, for comparison).

// readGate is a step's tick broadcast: connections waiting for their
// responses wait on it, the dispatcher ticks it at each wake-up and turns it
// off when it stops (the waiters then wait on the network poller as usual).
type readGate struct {
	mu      sync.Mutex
	cond    sync.Cond
	gen     atomic.Uint64 // ticks so far
	on      atomic.Bool
	waiting atomic.Int32 // connections waiting for the next tick
}

func newReadGate() *readGate {
	g := &readGate{}
	g.cond.L = &g.mu
	g.on.Store(true)
	return g
}

// generation is the tick count, to pass to wait.
func (g *readGate) generation() uint64 { return g.gen.Load() }

// wait blocks until the gate ticks past gen or turns off; false: it is off.
func (g *readGate) wait(gen uint64) bool {
	g.waiting.Add(1)
	g.mu.Lock()
	for g.gen.Load() == gen && g.on.Load() {
		g.cond.Wait()
	}
	g.mu.Unlock()
	g.waiting.Add(-1)
	return g.on.Load()
}

// tick wakes every waiter to read what has arrived.
func (g *readGate) tick() {
	g.mu.Lock()
	g.gen.Add(1)
	g.cond.Broadcast()
	g.mu.Unlock()
}

// off ends the gate: every waiter, and every later read, waits on the poller.
func (g *readGate) off() {
	g.mu.Lock()
	g.on.Store(false)
	g.cond.Broadcast()
	g.mu.Unlock()
}

// lazyReads reports whether a step reads its responses at the dispatcher's
// ticks: an open-loop step (rate > 0) with at least one request every other
// tick on average, and at most one request per tick for every room
// connections, so holding each connection up to a tick longer leaves the pool
// room. While any response is awaited the dispatcher wakes every tick to
// read: that is no more wake-ups than the poller's two a request (the
// dispatcher's, to send, and the response's) from one request every other
// tick on, and fewer above. Below, a slow target's responses would cost more
// wake-ups than they save.
func lazyReads(rate float64, connections int, tick, room float64) bool {
	perTick := rate * tick
	return rate > 0 && perTick >= 0.5 && perTick*room <= float64(connections)
}

// The room lazyReads asks of a step's pool: connections per request in a
// tick. The dispatcher's loop reads at each tick every connection it sent on
// at an earlier one, before it sends what the connections idle at the tick
// could not take, so a connection answered within a tick is free at the next
// (a tick's sends find at least half the room idle); with 4,
// 64 connections take it to 80,000 req/s at the 200 µs tick, where 8 stopped
// at 40,000. Between the two, on one CPU, the connections' goroutines waiting
// on the poller had cost 10-20 % more CPU than the loop and let requests wait
// for a connection (blocked 0.3 to 1.0 at 56,000 and 80,000 req/s, against
// 0.01-0.25 on the loop). The goroutines reading at the ticks keep 8: each
// must be scheduled after the tick to free its connection, and they were not
// measured with less.
const (
	loopRoom = 4
	gateRoom = 8
)
