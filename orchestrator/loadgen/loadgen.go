// Package loadgen is loadramp's builtin open-loop HTTP/1.1 load generator.
//
// Requests start on a schedule at the offered rate whatever the responses do (the
// open model); latency is measured from each request's intended send time, so a
// stalled target shows in the percentiles instead of slowing the generator down
// (coordinated omission). A Generator holds a pool of keep-alive connections, all
// opened at the start of a step and used in turn, as wrk does, so the target really
// holds that many connections; the pool is kept across steps and only resized.
//
// The hot path does not allocate: each connection's goroutine writes a
// pre-serialized request and parses the response with a minimal HTTP/1.1 reader.
//
// Requests due in a step's hold but still queued for a connection when the hold
// ends (or not even released to the queue yet, because it was full or the
// dispatcher was behind) are still sent for up to the target's timeout; those left
// after that are counted as errors of class "incomplete" with the time they had
// waited as latency, so a stalled target is visible and no request due in the hold
// goes uncounted. Requests in flight when the hold ends are awaited (up to the
// target's timeout) and counted with their real outcome. When Run's context is
// cancelled, in-flight requests are interrupted and not counted.
package loadgen

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
	"github.com/rs/zerolog"
)

// Defaults of a Generator.
const (
	// DefaultTimeout bounds one request (connect, write, response) when
	// Target.Timeout is 0.
	DefaultTimeout = 5 * time.Second
	// DefaultReadBufferSize is each connection's response buffer as it
	// starts; it grows for a longer header line (see maxReadBuffer).
	DefaultReadBufferSize = 4096
	// DefaultQueueSize bounds the requests due but waiting for a free connection.
	DefaultQueueSize = 1 << 16
	// DefaultStaleAfter: a connection that fails its first request, before any
	// byte of the response, after waiting unused in the pool this long, is taken
	// for one the target closed at its idle timeout, and the request is retried
	// once on a new connection (as one that has served requests is). One that
	// fails sooner after it was opened is the target refusing it: an error.
	DefaultStaleAfter = time.Second
	// MinDispatchTick and MaxDispatchTick bound the dispatcher's tick: the
	// shortest time between two of its wake-ups (see dispatchTick). A wake-up
	// releases what is due up to half a tick after it, so the upper bound keeps
	// every request within a millisecond of its intended time, wrk2's pacing
	// resolution (it rounds each wait up to whole milliseconds for its event
	// loop's timers).
	MinDispatchTick = 200 * time.Microsecond
	MaxDispatchTick = 2 * time.Millisecond
	// DispatchBatch is how many requests a tick holds at the offered rate, by
	// default, within those bounds; LoopBatch, on the dispatcher's loop when
	// its connections have room for them (see loopBatch).
	DispatchBatch = 8
	LoopBatch     = 16
	// MaxRate bounds a step's rate (requests/s): plan.LoadParams states the
	// same bound for the http rate.
	MaxRate = 1e8
)

// Target is what the connections send: one request (Method, URL, Headers,
// Body, Check), or a weighted mix of Requests to one endpoint.
type Target struct {
	Method  string // default GET
	URL     string // http:// or https://
	Headers map[string]string
	Body    []byte
	// Check, if set, checks the single request's responses.
	Check *Check
	// Requests, if not empty, replace the single request: a mix, every
	// request of which goes to the same scheme, host and port.
	Requests []Request
	// Feeders are the data the requests' Field parts read, by name.
	Feeders  map[string]*Feeder
	Timeout  time.Duration // per request (it may run up to 1/8 longer); 0 = DefaultTimeout
	Insecure bool          // skip TLS verification
}

// Step is one step's load.
type Step struct {
	// Rate is the offered rate in requests/s; 0 runs a closed loop (each connection
	// sends its next request when the previous one is answered), for benchmarks and
	// calibration only: it hides a target's stalls.
	Rate        float64
	Connections int
	// Warmup is measured into the series but excluded from the Window's histograms
	// and counters.
	Warmup time.Duration
	// Hold is the window gates judge.
	Hold time.Duration
	// Poisson draws exponentially distributed gaps between requests instead of
	// spacing them evenly.
	Poisson bool
	// OnSecond, if set, is called once per elapsed second (warmup included), from one
	// goroutine; it must not block.
	OnSecond func(result.Second)
}

// Option configures a Generator.
type Option func(*options)

type options struct {
	log         zerolog.Logger
	seed        uint64
	bufSize     int
	queueSize   int
	drainGrace  time.Duration
	tick        time.Duration
	eagerReads  bool
	workerReads bool
	staleAfter  time.Duration
}

// WithLogger sets the logger (default: none).
func WithLogger(l zerolog.Logger) Option { return func(o *options) { o.log = l } }

// WithSeed seeds the Poisson arrival schedule (default 1), so runs are reproducible.
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = seed } }

// WithReadBufferSize sets each connection's response buffer size.
func WithReadBufferSize(n int) Option { return func(o *options) { o.bufSize = n } }

// WithQueueSize bounds the requests waiting for a free connection; when it is
// full the dispatcher waits too (counted as waiting for a connection, not as lag).
func WithQueueSize(n int) Option { return func(o *options) { o.queueSize = n } }

// WithDispatchTick fixes the shortest time between two dispatcher wake-ups
// (default: the time DispatchBatch requests take at the offered rate, or up to
// LoopBatch on the dispatcher's loop, between MinDispatchTick and
// MaxDispatchTick). Requests due within a tick are released together, up to a
// tick late; their latency is still measured from their intended send time.
func WithDispatchTick(d time.Duration) Option { return func(o *options) { o.tick = d } }

// WithEagerReads makes every connection wait for its response on the network
// poller, woken as it arrives, instead of reading it at the dispatcher's next
// tick when the step allows (see gate.go). For benchmarks comparing the two.
func WithEagerReads() Option { return func(o *options) { o.eagerReads = true } }

// WithWorkerReads keeps the dispatcher's loop out of steps that read their
// responses at its ticks: each connection's goroutine sends and reads, and
// waits for the ticks (see gate.go). For benchmarks comparing the two.
func WithWorkerReads() Option { return func(o *options) { o.workerReads = true } }

// WithDrainGrace sets how long requests still queued when a hold ends may be sent
// before the rest count as incomplete (default: the target's timeout).
func WithDrainGrace(d time.Duration) Option { return func(o *options) { o.drainGrace = d } }

// Generator sends a Target's request at the rate and over the connections of each
// Step. Run calls are serialized; Close releases the connections.
type Generator struct {
	ep      *endpoint
	dialer  *dialer
	timeout time.Duration
	opts    options

	// The mix: its requests, the order they are sent in (one cycle), the
	// feeders they read, and the requests sent so far (Seq; the position in
	// the cycle). named: the requests are measured one by one too.
	reqs     []*compiledRequest
	schedule []uint8
	feeders  []*feeder
	seq      atomic.Uint64
	named    bool
	seeds    [2]uint64     // of the connections' random sources
	streams  atomic.Uint64 // random sources made so far
	room     atomic.Int64  // bytes the connections' response buffers may still grow by

	mu     sync.Mutex // serializes Run and Close
	conns  []*conn
	shards []*shard
	closed bool
}

// New validates target and returns a Generator for it. No connection is opened
// before the first Run.
func New(target Target, opts ...Option) (*Generator, error) {
	o := options{log: zerolog.Nop(), seed: 1, bufSize: DefaultReadBufferSize,
		queueSize: DefaultQueueSize, staleAfter: DefaultStaleAfter}
	for _, opt := range opts {
		opt(&o)
	}
	if o.bufSize < 256 {
		return nil, fmt.Errorf("loadgen: read buffer size %d: must be >= 256", o.bufSize)
	}
	if o.tick < 0 || o.tick > 100*time.Millisecond {
		return nil, fmt.Errorf("loadgen: dispatch tick %v: must be >= 0 and <= 100ms", o.tick)
	}
	if o.queueSize < 1 {
		return nil, fmt.Errorf("loadgen: queue size %d: must be >= 1", o.queueSize)
	}
	if target.Timeout < 0 {
		return nil, fmt.Errorf("loadgen: timeout %v: must be >= 0", target.Timeout)
	}
	ep, reqs, feeders, err := compileTarget(target)
	if err != nil {
		return nil, err
	}
	g := &Generator{ep: ep, timeout: target.Timeout, opts: o, reqs: reqs, feeders: feeders,
		named: len(reqs) > 1 || reqs[0].name != ""}
	g.room.Store(growBudget)
	if len(reqs) > 1 {
		weights := make([]int, len(reqs))
		for i, r := range reqs {
			weights[i] = r.weight
		}
		if g.schedule, err = mixSchedule(weights); err != nil {
			return nil, err
		}
	}
	var seed [16]byte
	_, _ = crand.Read(seed[:]) // UUIDs differ from run to run
	g.seeds = [2]uint64{binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])}
	if g.timeout == 0 {
		g.timeout = DefaultTimeout
	}
	g.dialer = &dialer{ep: ep, timeout: g.timeout}
	if ep.tls {
		g.dialer.tls = &tls.Config{
			ServerName:         ep.server,
			InsecureSkipVerify: target.Insecure, //nolint:gosec // asked for by the plan
			NextProtos:         []string{"http/1.1"},
		}
	}
	return g, nil
}

// Close closes every connection. The Generator cannot be used afterwards.
func (g *Generator) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for _, c := range g.conns {
		c.close()
	}
	g.conns = nil
	return nil
}

// OpenConnections returns how many connections of the pool are open now.
func (g *Generator) OpenConnections() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.openLocked()
}

func (g *Generator) openLocked() int {
	n := 0
	for _, c := range g.conns {
		c.mu.Lock()
		if c.nc != nil {
			n++
		}
		c.mu.Unlock()
	}
	return n
}

func validateStep(s Step) error {
	var errs []error
	if !(s.Rate >= 0) || s.Rate > MaxRate {
		errs = append(errs, fmt.Errorf("rate %v: must be >= 0 and at most %g requests/s", s.Rate, float64(MaxRate)))
	}
	if s.Connections < 1 {
		errs = append(errs, fmt.Errorf("connections %d: must be >= 1", s.Connections))
	}
	if s.Warmup < 0 {
		errs = append(errs, fmt.Errorf("warmup %v: must be >= 0", s.Warmup))
	}
	if s.Hold <= 0 {
		errs = append(errs, fmt.Errorf("hold %v: must be > 0", s.Hold))
	}
	if s.Warmup >= 0 && s.Hold > math.MaxInt64-s.Warmup {
		errs = append(errs, fmt.Errorf("warmup %v and hold %v: together longer than a time.Duration holds", s.Warmup, s.Hold))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("loadgen: invalid step: %w", err)
	}
	return nil
}

// resize grows the pool to n connections, opening only the new ones (concurrently,
// before the step starts), or closes the surplus and gives back the room their
// response buffers grew into.
func (g *Generator) resize(ctx context.Context, n int) {
	for len(g.conns) > n {
		last := g.conns[len(g.conns)-1]
		last.close()
		if last.rr != nil { // what its buffer grew by is the others' to use
			last.rr.release(g.opts.bufSize)
		}
		g.conns = g.conns[:len(g.conns)-1]
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	// Connections the target closed since the last step are reopened too.
	for i := range n {
		if i >= len(g.conns) {
			g.conns = append(g.conns, &conn{})
		}
		c := g.conns[i]
		if c.nc != nil {
			continue
		}
		wg.Go(func() {
			if _, err := c.open(ctx, g.dialer, g.opts.bufSize, &g.room); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		g.opts.log.Warn().Int64("failed", n).Err(firstErr.Load().(error)).
			Msg("could not open every connection; retrying on each request")
	}
}

// job is one request released by the dispatcher.
type job struct{ intended int64 }

// run is one Run's shared state.
type run struct {
	g        *Generator
	ctx      context.Context
	start    time.Time
	warmup   int64 // ns from start
	end      int64 // ns from start: warmup + hold
	closed   bool  // closed loop
	rate     float64
	jobs     chan job
	stopCh   chan struct{} // closed: dispatch no more
	stop     atomic.Bool   // closed loop: send no more
	endAt    atomic.Int64  // ns from start when the hold ended
	canceled atomic.Bool
	// idle is the workers waiting for a job minus the jobs queued: a worker adds
	// one when it starts waiting, the dispatcher takes one per job it releases. A
	// job that leaves it below zero found no idle connection. Counting the hand-off
	// at the dispatcher keeps it exact when a batch is released before the woken
	// workers run.
	idle     atomic.Int64
	offered  secondCounts   // per second: Poisson as scheduled, closed loop as sent
	constant *constantPacer // the schedule, for a constant rate
	reopened atomic.Int64
	// gate, when not nil, is the tick the connections read their responses
	// at (see gate.go); tick is the dispatcher's. loop, when not nil, is the
	// dispatcher's loop, which sends and reads itself (see loop.go).
	gate *readGate
	loop *loop
	tick int64
	// fail stops the run with a reason (a unique feeder ran dry).
	fail func(error)

	// Dispatcher-only, read after it exits.
	lag               *hdrhistogram.Histogram
	released, blocked int64
	unsent            []int64 // intended times due in the hold but never released
}

func (r *run) now() int64 { return int64(time.Since(r.start)) }

// doneAt is when c's response was complete, on the run's clock: when the
// kernel received its last bytes if it said so (a response read at a tick
// arrived before it), else now. Never before sent.
func (r *run) doneAt(c *conn, sent int64) int64 {
	now := time.Now()
	done := int64(now.Sub(r.start))
	if c.raw != nil && c.raw.arrived > 0 {
		if age := now.UnixNano() - c.raw.arrived; age > 0 && age < done-sent {
			done -= age
		}
	}
	return done
}

// Run sends the step's load and returns what it measured over the hold. It blocks
// for Warmup+Hold plus the time to finish requests in flight. When ctx is
// cancelled, dispatching stops at once and Run returns the Window measured so far
// together with ctx.Err().
func (g *Generator) Run(ctx context.Context, step Step) (*Window, error) {
	if err := validateStep(step); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errors.New("loadgen: generator is closed")
	}
	g.resize(ctx, step.Connections)
	for _, c := range g.conns {
		c.resume() // the last step's cancellation is over
	}
	// A request that cannot be built (a unique feeder ran dry) stops the step
	// with its reason.
	parent := ctx
	ctx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)

	nShards := min(step.Connections, 4*runtime.GOMAXPROCS(0))
	for len(g.shards) < nShards {
		g.shards = append(g.shards, newShard())
	}
	shards := g.shards[:nShards]
	perRequest := 0
	if g.named {
		perRequest = len(g.reqs)
	}
	for _, s := range shards {
		s.perRequest(perRequest)
		s.reset()
	}

	total := step.Warmup + step.Hold
	r := &run{
		g: g, ctx: ctx, fail: stopRun,
		warmup: int64(step.Warmup),
		end:    int64(total),
		closed: step.Rate == 0,
		rate:   step.Rate,
		stopCh: make(chan struct{}),
		lag:    metrics.NewHistogram(metrics.HistDigits),
	}
	if !r.closed {
		r.jobs = make(chan job, g.opts.queueSize)
		r.tick = int64(dispatchTick(r.rate, g.opts.tick, DispatchBatch))
		tick := time.Duration(r.tick).Seconds()
		loopTick := dispatchTick(r.rate, g.opts.tick, loopBatch(step.Connections))
		switch {
		case g.opts.eagerReads:
		case !g.opts.workerReads && g.loopable(r.rate, runtime.GOMAXPROCS(0)) &&
			lazyReads(r.rate, step.Connections, loopTick.Seconds(), loopRoom):
			r.loop = newLoop(r, g.conns, shards)
			r.tick = int64(loopTick)
		case lazyReads(r.rate, step.Connections, tick, gateRoom):
			r.gate = newReadGate()
		}
	}
	var p pacer
	switch {
	case r.closed:
	case step.Poisson:
		p = newPoissonPacer(step.Rate, g.opts.seed)
	default:
		cp := constantPacer{rate: step.Rate}
		p, r.constant = cp, &cp
	}

	r.start = time.Now()
	var wg sync.WaitGroup
	for i, c := range g.conns {
		s := shards[i%nShards]
		wg.Go(func() {
			if r.loop != nil {
				r.loop.serve(i) // until the dispatch ends
			}
			r.worker(c, s)
		})
	}
	dispatched := make(chan struct{})
	if r.closed {
		close(dispatched)
	} else {
		go func() {
			defer close(dispatched)
			r.dispatch(p)
		}()
	}

	heldStop, heldDone := make(chan struct{}), make(chan heldStats, 1)
	go func(conns []*conn) { heldDone <- r.sampleHeld(conns, step.Warmup, heldStop) }(append([]*conn(nil), g.conns...))

	probe := newSelfProbe()
	series, holdStartNS, self0, peaks, err := r.control(step, shards, probe)
	close(heldStop)
	held := <-heldDone
	// Self-measurement covers the hold, as the window's duration does.
	self1 := probe.read()

	// Stop: no new requests; queued ones may still go out for a short grace.
	close(r.stopCh)
	r.stop.Store(true)
	<-dispatched
	drainGrace := g.opts.drainGrace
	if drainGrace == 0 {
		drainGrace = g.timeout
	}
	if err == nil && !r.closed {
		grace := time.NewTimer(drainGrace)
		poll := time.NewTicker(time.Millisecond)
	drain:
		for len(r.jobs) > 0 {
			select {
			case <-grace.C:
				break drain
			case <-ctx.Done():
				break drain
			case <-poll.C:
			}
		}
		poll.Stop()
		grace.Stop()
	}
	if ctx.Err() != nil {
		r.canceled.Store(true)
		for _, c := range g.conns {
			c.interrupt()
		}
	}
	if !r.closed {
		// What no connection took in time is incomplete. Workers still take jobs
		// while this drains; those are sent as usual.
		for j := range r.jobs {
			if !r.canceled.Load() {
				shards[0].record(outcome{intended: j.intended, done: r.now(), cls: clsIncomplete,
					inWindow: j.intended >= r.warmup, req: g.nextIndex()})
			}
		}
		if !r.canceled.Load() {
			done := r.now()
			for _, at := range r.unsent {
				shards[0].record(outcome{intended: at, done: done, cls: clsIncomplete, inWindow: at >= r.warmup, req: g.nextIndex()})
			}
		}
	}
	// Requests in flight are awaited (up to the timeout) unless the step is
	// cancelled meanwhile: then they are cut at once too.
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()
	select {
	case <-workersDone:
	case <-ctx.Done():
		r.canceled.Store(true)
		for _, c := range g.conns {
			c.interrupt()
		}
		<-workersDone
		if err == nil {
			err = ctx.Err()
		}
	}
	endNS := r.endAt.Load()

	w := &Window{
		Start:        r.start.Add(time.Duration(holdStartNS)),
		Duration:     time.Duration(endNS - holdStartNS),
		Offered:      step.Rate,
		ErrorClasses: map[string]int64{},
		Latency:      metrics.NewHistogram(metrics.HistDigits),
		Service:      metrics.NewHistogram(metrics.HistDigits),
		Lag:          r.lag,
		Series:       series,
		Released:     r.released,
		Blocked:      r.blocked,
		Reopened:     r.reopened.Load(),
		Open:         g.openLocked(),
		Connections:  step.Connections,
		Held:         held.mean(),
		HeldPeak:     held.peak,
		HeldKnown:    held.looks > 0,
		looped:       r.loop != nil,
	}
	if r.loop != nil {
		w.tooLarge = r.loop.tooLarge
	}
	if w.Duration < 0 {
		w.Duration = 0
	}
	var classes [numClasses]int64
	for _, s := range shards {
		w.Latency.Merge(s.lat)
		w.Service.Merge(s.svc)
		w.Sent += s.sent
		w.OutOfRange += s.outOfRange
		for i, n := range s.classes {
			classes[i] += n
		}
	}
	for i, n := range classes {
		c := class(i)
		w.Requests += n
		switch {
		case c.answered():
			w.Completed += n
		}
		switch {
		case c == clsOK:
		case c.generatorSide():
			w.GeneratorErrors += n
		default:
			w.Errors += n
		}
		if c != clsOK && n > 0 {
			w.ErrorClasses[classNames[c]] = n
		}
	}
	if g.named {
		w.PerRequest = g.requestWindows(shards)
	}
	if r.closed && w.Duration > 0 {
		w.Offered = float64(w.Requests) / w.Duration.Seconds()
	}
	if err != nil && parent.Err() == nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause // the run stopped itself: say why
		}
	}
	w.CPU = metrics.CPUShare(self1.cpu-self0.cpu, w.Duration)
	w.GCPauseP99, w.GCPauseMax = gcPauseStats(self0.gc, self1.gc)
	w.Starved, w.StarvedKnown = starved(self0, self1)
	w.Steal, w.StealKnown = hoststat.StealRatio(self0.steal, self1.steal)
	w.StealPeak, w.StarvedPeak = peaks.steal, peaks.starved
	return w, err
}

// control paces the step's phases from Run's goroutine: it emits the per-second
// series, takes the self-measurement snapshot (probe) when the hold starts,
// reads the steal of the generator's CPUs and its starvation each second of the
// hold (peaks, the worst second's), and returns when the hold ends or ctx is
// cancelled.
func (r *run) control(step Step, shards []*shard, probe selfProbe) (series []result.Second, holdStart int64, self0 selfSnap, peaks secondPeaks, err error) {
	agg := metrics.NewHistogram(secondDigits)
	snapped := false
	tick := func(t int) {
		if snapped && peaks.due() {
			peaks.add(probe.waits())
		}
		agg.Reset()
		var req, errs int64
		for _, s := range shards {
			s.mu.Lock()
			req += s.secRequests
			errs += s.secErrors
			agg.Merge(s.secLat)
			s.secLat.Reset()
			s.secRequests, s.secErrors = 0, 0
			s.mu.Unlock()
		}
		sec := result.Second{T: t, Requests: req, Errors: errs,
			P50: float64(agg.ValueAtQuantile(50)) / 1e6, P99: float64(agg.ValueAtQuantile(99)) / 1e6}
		switch {
		case r.constant != nil: // by the schedule, even if the dispatcher is behind it
			from := time.Duration(t) * time.Second
			to := min(from+time.Second, time.Duration(r.end))
			sec.Offered = int64(r.constant.countBefore(to) - r.constant.countBefore(from))
		default:
			sec.Offered = r.offered.get(int64(t))
		}
		series = append(series, sec)
		if step.OnSecond != nil {
			step.OnSecond(sec)
		}
	}
	snap := func() {
		holdStart = r.now()
		if holdStart > r.warmup {
			holdStart = r.warmup // the window is defined by intended times
		}
		self0, snapped = probe.read(), true
		peaks.last = self0
	}
	if r.warmup == 0 {
		snap()
	}
	timer := time.NewTimer(0)
	<-timer.C
	nextSec := int64(time.Second)
	for {
		now := r.now()
		if !snapped && now >= r.warmup {
			snap()
		}
		for nextSec <= now && nextSec <= r.end {
			tick(int(nextSec/int64(time.Second)) - 1)
			nextSec += int64(time.Second)
		}
		if now >= r.end {
			if rem := r.end % int64(time.Second); rem != 0 {
				tick(int(r.end / int64(time.Second))) // the last partial second
			}
			r.endAt.Store(r.end)
			return series, holdStart, self0, peaks, nil
		}
		wake := min(nextSec, r.end)
		if !snapped {
			wake = min(wake, r.warmup)
		}
		timer.Reset(time.Duration(wake - now))
		select {
		case <-timer.C:
		case <-r.ctx.Done():
			timer.Stop()
			now = r.now()
			if !snapped {
				snap()
			}
			r.endAt.Store(max(now, holdStart))
			if nextSec-int64(time.Second) < now {
				tick(int(nextSec/int64(time.Second)) - 1)
			}
			return series, holdStart, self0, peaks, r.ctx.Err()
		}
	}
}

// The dispatcher wakes at most once per tick (see dispatchTick) and releases
// every request due up to half a tick later, each with its intended time: the
// cost of a wake-up is fixed, so its cost per request stays flat as the rate
// grows instead of being a timer wake-up per request. A request released late
// (by up to half a tick) is measured from its intended time, so the batching
// shows in generator.lag and in latency, never hides in them; one sent early,
// from its send (see sending).
//
// Waits longer than fineSleepMax use a Go timer (which may be up to a millisecond
// late) and finish on the fine sleeper; shorter ones use the fine sleeper alone,
// which the dispatcher's loop holds its thread in (fineSleeper.hold).
const fineSleepMax = 2 * time.Millisecond

// pollEvery bounds how long the dispatcher's loop holds its thread in its
// sleeps (fineSleeper.hold) before it sleeps once through the poller again.
// With one P, while the loop holds it, nothing else in the process learns that
// its sockets are ready but from the runtime's monitor, every 10 ms: an agent's
// API, a scrape, a target in the same process (a test's). At 4 ms, a target in
// the process answered 2,000 req/s over 16 connections with none waiting; at
// 8 ms it could not (TestLoopHoldOnOneCPU). While a connection's goroutine works
// for the loop (a dial, a large response), every sleep goes through the poller.
const pollEvery = 4 * time.Millisecond

// dispatch releases every request that is due at each wake-up, with its intended
// time, until the hold ends or stopCh closes. Go timers are not reliable below about
// a millisecond, so a wake-up may release several requests at once.
func (r *run) dispatch(p pacer) {
	defer close(r.jobs)
	if r.loop != nil {
		defer r.loop.end() // before the jobs queue closes: it takes the queued requests
	}
	if r.gate != nil {
		defer r.gate.off() // what is still in flight is read as it arrives
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	fine, err := newFineSleeper()
	if err != nil {
		r.g.opts.log.Warn().Err(err).Msg("no fine sleeper; schedule lag may reach 1ms")
		fine = nil
	} else {
		defer fine.close()
	}
	var n uint64
	next := int64(p.Intended(0))
	// Count each request in its second as soon as it is scheduled, not when it is
	// released, so the series is right even while the dispatcher is behind.
	count := func(at int64) {
		if at < r.end {
			r.offered.add(at / int64(time.Second))
		}
	}
	count(next)
	var unblockedAt int64
	// release hands the request due at next to the workers (or the loop), at
	// now, and moves next on. When the queue is full it waits for room (that
	// wait is not lag), unless final: then the request was never sent. It
	// returns the time after any wait, and false if the dispatch stopped while
	// waiting.
	release := func(now int64, final bool) (int64, bool) {
		inWindow := next >= r.warmup
		lag := now - max(next, unblockedAt) // below 0 when released early: no lag
		var blocked bool
		if r.loop != nil {
			blocked = r.loopRelease(next)
		} else {
			var ok bool
			if now, blocked, ok = r.queueRelease(next, now, final, &unblockedAt); !ok {
				return now, false
			}
		}
		if inWindow {
			r.released++
			if blocked {
				r.blocked++
			}
			_ = r.lag.RecordValue(clampUS(lag / 1e3))
		}
		n++
		next = int64(p.Intended(n))
		count(next)
		return now, true
	}
	// stopped: the hold has ended. Unless the step was cancelled, every request
	// due in it that is not released yet (the dispatcher slept past the end, or
	// was behind, starved of CPU or waiting for the queue) is released now, late,
	// so it is sent in the drain or counted incomplete: a late dispatcher cannot
	// make requests vanish.
	stopped := func() {
		if r.ctx.Err() != nil {
			return
		}
		now := r.now()
		for next < r.end {
			now, _ = release(now, true)
		}
	}
	tick := r.tick
	// A wake-up releases the requests due up to half a tick after it, so no
	// request leaves more than half a tick from its intended time, early or
	// late, where releasing only those already due made them up to a whole tick
	// late: the same wake-ups, half the lateness. Never across the warmup's
	// end, so a request of the hold is timed within the hold.
	ahead := tick / 2
	due := func(now int64) bool { return releasable(next, now, ahead, r.warmup) }
	// planned is when the dispatcher meant to wake; releasedAt, when the last
	// wake-up that released requests was planned. The next one is planned a tick
	// after it at the soonest: counted from the plan, not from when the wake-up
	// happened, so one late wake-up does not make the next one late too (unless
	// it was more than a tick late: then from a tick before now).
	var planned int64
	releasedAt := -tick
	// polled: when the dispatcher last slept through the poller.
	var polled int64
	// roomWait: the loop's queue is full; nothing is released until the
	// responses read at the next ticks free connections for it.
	roomWait := false
	// releaseDue releases every request due by now while the loop's queue
	// has room, and with idleOnly only while the loop has an idle connection
	// for it; false if the dispatch stopped while waiting for room.
	releaseDue := func(idleOnly bool) bool {
		now := r.now()
		if due(now) {
			releasedAt = max(planned, now-tick)
		}
		for due(now) && next < r.end && !roomWait && (!idleOnly || r.loop.nfree > 0) {
			var ok bool
			if now, ok = release(now, false); !ok {
				return false
			}
			roomWait = r.loop != nil && r.loop.full()
		}
		return true
	}
	sendIdle := func() { releaseDue(true) } // the loop's release never waits
	for {
		if l := r.loop; l != nil {
			l.turn(sendIdle)
			if full := l.full(); full != roomWait {
				roomWait = full
				if !full {
					unblockedAt = r.now() // the wait for room is not lag
				}
			}
		} else if r.gate != nil && r.gate.waiting.Load() > 0 {
			// The responses that arrived since the last wake-up are read
			// first, so their connections are idle again for what is
			// released now.
			r.gate.tick()
			runtime.Gosched()
		}
		if !releaseDue(false) {
			stopped()
			return
		}
		if next >= r.end {
			return
		}
		// An early wake-up of the Go timer below released nothing: it does not
		// count against the tick.
		now := r.now()
		wait := time.Duration(nextWake(releasedAt, now, next, tick, ahead))
		if (r.gate != nil && r.gate.waiting.Load() > 0) || (r.loop != nil && r.loop.waiting()) {
			wait = min(wait, time.Duration(tick)) // no response waits more than a tick to be read
		}
		if roomWait {
			wait = time.Duration(tick)
		}
		planned = now + int64(wait)
		if wait <= 0 {
			continue // more is due already
		}
		if fine == nil || wait > fineSleepMax {
			if fine != nil {
				wait -= fineSleepMax / 2 // wake early; the fine sleeper does the rest
			}
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-r.stopCh:
				stopped()
				return
			}
			continue
		}
		if r.loop != nil && r.loop.handedOut() == 0 && now-polled < int64(pollEvery) {
			// The loop's sleep holds its thread: a tick later, whatever
			// became runnable meanwhile (the second's series, a signal's
			// handler, a stop) runs before the loop's turn.
			err = fine.hold(wait)
			runtime.Gosched()
		} else {
			err = fine.sleep(wait)
			polled = now
		}
		if err != nil {
			r.g.opts.log.Warn().Err(err).Msg("fine sleeper failed; falling back to Go timers")
			fine = nil
		}
		select {
		case <-r.stopCh:
			stopped()
			return
		default:
		}
	}
}

// queueRelease hands the request due at next to the workers' queue, at now.
// Blocked: no idle connection was left for it. When the queue is full it waits
// for room (that wait is not lag: unblockedAt is moved to its end), unless
// final: then the request is never sent. It returns the time after any wait,
// and false if the dispatch stopped while waiting.
func (r *run) queueRelease(next, now int64, final bool, unblockedAt *int64) (int64, bool, bool) {
	blocked := r.idle.Add(-1) < 0
	select {
	case r.jobs <- job{intended: next}:
		return now, blocked, true
	default: // queue full
	}
	if final {
		r.idle.Add(1)
		r.unsent = append(r.unsent, next)
		return now, true, true
	}
	if r.gate != nil {
		// No tick comes while the dispatcher waits for room, and the room
		// comes from connections reading their responses: they read them
		// as they arrive from now on.
		r.gate.off()
	}
	select {
	case r.jobs <- job{intended: next}:
	case <-r.stopCh:
		r.idle.Add(1)
		*unblockedAt = r.now() // the wait for the queue is not lag
		return now, true, false
	}
	now = r.now()
	*unblockedAt = now
	return now, true, true
}

// sending is the outcome of a request due at intended and sent at sent, in the
// hold or not by its intended time. One sent before it is due (released up to
// half a tick ahead, see dispatch, straight to an idle connection or to one that
// came free at once) is timed from its send: its latency is what it met, never
// less, and never below 0.
func sending(intended, sent, warmup int64, idx int) outcome {
	return outcome{intended: min(intended, sent), sent: sent, inWindow: intended >= warmup, req: idx}
}

// loopRelease sends the request due at next on an idle connection of the
// loop, or queues it (blocked). The dispatch waits for room before it
// releases into a full queue, but when it releases what the hold left at its
// end: then the request is never sent.
func (r *run) loopRelease(next int64) (blocked bool) {
	if r.loop.full() {
		r.unsent = append(r.unsent, next)
		return true
	}
	return r.loop.start(next)
}

// worker drives one connection: in the open model it sends each job it takes from
// the queue; in a closed loop it sends back to back until the hold ends.
func (r *run) worker(c *conn, s *shard) {
	if r.closed {
		for !r.stop.Load() {
			t := r.now()
			if t >= r.end {
				return
			}
			r.offered.add(t / int64(time.Second))
			r.do(c, s, t)
		}
		return
	}
	for {
		r.idle.Add(1)
		j, ok := <-r.jobs
		if !ok {
			return
		}
		if r.canceled.Load() {
			continue
		}
		r.do(c, s, j.intended)
	}
}

// do sends one request on c and records its outcome: the lone static
// request as it was serialized once, or the mix's next request, built for
// this send if anything in it varies.
func (r *run) do(c *conn, s *shard, intended int64) {
	req, idx, payload, ok := r.build(c)
	if !ok {
		return
	}
	o := sending(intended, r.now(), r.warmup, idx)
	r.exchange(c, s, req, payload, o, 0)
}

// build returns the request to send next on c, its index in the mix and its
// bytes; false when it cannot be built (a unique feeder ran dry: the run is
// failed with the reason).
func (r *run) build(c *conn) (req *compiledRequest, idx int, payload []byte, ok bool) {
	g := r.g
	req = g.reqs[0]
	payload = req.static
	if payload == nil || len(g.reqs) > 1 {
		if c.st == nil {
			c.st = newReqState(g.seeds[0], g.seeds[1]+g.streams.Add(1)*0x9e3779b97f4a7c15, len(g.feeders))
		}
		if len(g.reqs) > 1 || req.usesSeq {
			k := g.seq.Add(1)
			c.st.seq = k
			if len(g.schedule) > 0 {
				idx = int(g.schedule[(k-1)%uint64(len(g.schedule))])
				req = g.reqs[idx]
			}
		}
		if payload = req.static; payload == nil {
			var err error
			if payload, err = req.build(c.st, g.feeders); err != nil {
				r.fail(err)
				return nil, 0, nil, false
			}
		}
	}
	return req, idx, payload, true
}

// exchange sends payload (req's bytes) on c, reads the response and records
// o's outcome, from attempt (1: the first found the connection stale, and
// this is its one retry on a new connection).
func (r *run) exchange(c *conn, s *shard, req *compiledRequest, payload []byte, o outcome, attempt int) {
	g := r.g
	for ; ; attempt++ {
		if c.nc == nil {
			if err := r.open(c, o.inWindow); err != nil {
				if r.canceled.Load() || r.ctx.Err() != nil {
					return
				}
				o.cls, o.done = classifyErr(err), r.now()
				s.record(o)
				return
			}
		}
		o.wasSent = true
		if c.raw != nil {
			c.raw.gate, c.raw.arrived = r.gate, 0
		}
		resp, stale, err := c.roundTrip(payload, req.head, req.keepBody(), g.timeout, g.opts.staleAfter)
		if err != nil {
			c.close()
			if r.canceled.Load() {
				return // interrupted by cancellation: not the target's doing
			}
			if stale && attempt == 0 {
				continue // the target closed an idle keep-alive connection: retry once
			}
			o.cls, o.done = classifyErr(err), r.now()
			s.record(o)
			return
		}
		r.answered(c, s, req, o, resp, true)
		return
	}
}

// answered records the response resp to o, read on c. When the target
// closes the connection after it, reopen replaces it at once (the
// dispatcher's loop leaves that to the connection's goroutine).
func (r *run) answered(c *conn, s *shard, req *compiledRequest, o outcome, resp response, reopen bool) {
	o.done = r.doneAt(c, o.sent)
	o.cls = classifyStatus(resp.status)
	if req.check != nil {
		o.cls = req.check.judge(resp.status, o.cls, c.rr.kept)
	}
	s.record(o)
	if resp.close && reopen {
		r.reopen(c, o.inWindow)
	}
}

// reopen replaces c's connection at once when the target said it closes it
// (Connection: close, keepalive_requests reached), as wrk does: the
// connection is held again before its next request is due, so a target that
// recycles connections on purpose is not counted as one that cannot hold
// them (connections.reopened.ratio still counts it). A dial that fails is
// left to the next request, which records its error.
func (r *run) reopen(c *conn, inWindow bool) {
	c.close()
	if r.stop.Load() || r.canceled.Load() || r.ctx.Err() != nil {
		return
	}
	_ = r.open(c, inWindow)
}

// open dials c's connection if it has none, counting a reopened one against
// the window when the request it serves is in it.
func (r *run) open(c *conn, inWindow bool) error {
	reopened, err := c.open(r.ctx, r.g.dialer, r.g.opts.bufSize, &r.g.room)
	if err == nil && reopened && inWindow {
		r.reopened.Add(1)
	}
	return err
}

// nextIndex is the mix's next request: the one a request due but never sent
// would have been, so its incomplete outcome is counted against it.
func (g *Generator) nextIndex() int {
	if len(g.schedule) == 0 {
		return 0
	}
	k := g.seq.Add(1)
	return int(g.schedule[(k-1)%uint64(len(g.schedule))])
}

// requestWindows merges the shards' per-request figures.
func (g *Generator) requestWindows(shards []*shard) []RequestWindow {
	out := make([]RequestWindow, len(g.reqs))
	for i, rq := range g.reqs {
		rw := RequestWindow{Name: rq.name, Weight: rq.weight, ErrorClasses: map[string]int64{},
			Latency: metrics.NewHistogram(metrics.HistDigits)}
		var classes [numClasses]int64
		for _, s := range shards {
			if i >= len(s.reqs) {
				continue
			}
			rs := &s.reqs[i]
			rw.Latency.Merge(rs.lat)
			rw.Sent += rs.sent
			for c, n := range rs.classes {
				classes[c] += n
			}
		}
		for c, n := range classes {
			cl := class(c)
			rw.Requests += n
			if cl.answered() {
				rw.Completed += n
			}
			if cl != clsOK && !cl.generatorSide() {
				rw.Errors += n
			}
			if cl != clsOK && n > 0 {
				rw.ErrorClasses[classNames[cl]] = n
			}
		}
		out[i] = rw
	}
	return out
}
