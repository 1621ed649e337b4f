// Package pubsub is the builtin engine's publish/subscribe workload: load
// parameters publishers, subscribers and rate (messages/s per publisher).
// Subscribers hold streams open on the bus (Server-Sent Events or WebSocket)
// while publishers send marked messages (HTTP requests or WebSocket
// messages) on an open-model schedule; every delivery's delay is measured
// from the message's intended send time, for the whole load and per topic.
// How the bus is spoken to (URLs, envelope, topics, confirmation) is package
// delivery's Bus.
package pubsub

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/delivery"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Defaults of Config.
const (
	DefaultTimeout = 5 * time.Second
	// DefaultMaxInflight bounds the publishes in flight at once; a publish due
	// beyond it is not sent and counts as a generator error.
	DefaultMaxInflight = 8192
	// subscribeConcurrency bounds the subscriptions opened at once.
	subscribeConcurrency = 64
	// warmupInterval spaces the rounds of warm-up messages of first-event
	// confirmation.
	warmupInterval = 100 * time.Millisecond
	// delayShards bounds the delivery delay histograms: subscribers share
	// them, a shard each by index, so memory does not grow with subscribers.
	delayShards = 64
	// MaxTopicMetrics bounds the topics that get metrics of their own.
	MaxTopicMetrics = 16
)

// Metric names of the pubsub workload (besides the standard latency.*,
// errors.*, throughput.* of its publishes).
const (
	DelayP50         = "pubsub.delay.p50"
	DelayP95         = "pubsub.delay.p95"
	DelayP99         = "pubsub.delay.p99"
	DelayMax         = "pubsub.delay.max"
	DeliveredRPS     = "pubsub.delivered.rps"
	DeliveredCount   = "pubsub.delivered.count"
	ExpectedCount    = "pubsub.expected.count"
	LostRatio        = "pubsub.lost.ratio"
	DuplicatesCount  = "pubsub.duplicates.count"
	ReorderedCount   = "pubsub.reordered.count"
	ForeignCount     = "pubsub.foreign.count"
	MangledCount     = "pubsub.mangled.count"
	MisroutedCount   = "pubsub.misrouted.count"
	Subscribers      = "pubsub.subscribers"
	SubscribeErrors  = "pubsub.subscribe.errors.count"
	SubscribeDropped = "pubsub.subscribe.dropped.count"
	TopicsCount      = "pubsub.topics.count"
	WorstTopicLost   = "pubsub.topics.worst_lost_ratio"
)

// TopicMetric names a metric of one topic: pubsub.topic.<segment>.<what>,
// the segment being the topic's name as a metric name segment (see
// TopicSegments).
func TopicMetric(segment, what string) string { return "pubsub.topic." + segment + "." + what }

// Per-topic figures (the <what> of TopicMetric).
const (
	TopicPublishers  = "publishers.count"
	TopicSubscribers = "subscribers.count"
	TopicExpected    = "expected.count"
	TopicDelivered   = "delivered.count"
	TopicLost        = "lost.ratio"
	TopicDuplicates  = "duplicates.count"
	TopicReordered   = "reordered.count"
)

// HistDelay names the delivery delay histogram in the engine's result
// (result.EngineResult.Histograms), for a merge across agents.
const HistDelay = "pubsub.delay"

// DeliveryDelay are the quantiles of the delivery delay histogram.
var DeliveryDelay = []metrics.Quantile{{Name: DelayP50, Percent: 50}, {Name: DelayP95, Percent: 95}, {Name: DelayP99, Percent: 99}, {Name: DelayMax, Percent: metrics.QuantileMax}}

// Config says how the workload reaches the bus. It is plain data but for
// Client and Log.
type Config struct {
	// Bus is how messages are published and subscriptions opened.
	delivery.Bus
	// BodyBytes pads each message to this size (0: as small as it gets).
	BodyBytes int
	// Timeout bounds each publish, each subscription's confirmation and each
	// message's delivery after the hold (0: DefaultTimeout).
	Timeout     time.Duration
	MaxInflight int // 0: DefaultMaxInflight
	// Client, if set, is the HTTP client (nil: one of the engine's own, and
	// each SSE subscription a connection of its own).
	Client *http.Client
	Log    zerolog.Logger
}

// Step is one step's load.
type Step struct {
	Publishers  int
	Subscribers int
	// PublisherFirst and SubscriberFirst number this engine's first
	// publisher and subscriber in the client templates (.index), when it
	// runs a share of a larger fleet's (an agent's): the fleet's clients are
	// then numbered once.
	PublisherFirst, SubscriberFirst int
	Rate                            float64 // messages/s per publisher
	Warmup                          time.Duration
	Hold                            time.Duration
	// OnSecond, if set, is called once per elapsed second (warmup included),
	// from one goroutine; it must not block.
	OnSecond func(result.Second)
}

// Engine runs the pubsub workload step by step.
type Engine struct {
	cfg  Config
	bus  *delivery.Compiled
	own  bool
	step atomic.Int64
	id   string
}

// New returns an engine for cfg, or what is wrong with cfg.
func New(cfg Config) (*Engine, error) {
	bus, err := cfg.Bus.Compile()
	if err != nil {
		return nil, fmt.Errorf("pubsub %w", err)
	}
	if cfg.BodyBytes < 0 {
		return nil, fmt.Errorf("pubsub body_bytes %d: must be >= 0", cfg.BodyBytes)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("pubsub timeout %v: must be >= 0", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	e := &Engine{cfg: cfg, bus: bus, id: fmt.Sprintf("load-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)}
	if cfg.Client == nil {
		e.own = true
		e.cfg.Client = &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        0,
			MaxIdleConnsPerHost: 4096,
			IdleConnTimeout:     60 * time.Second,
		}}
	}
	return e, nil
}

// Close releases the engine's idle connections.
func (e *Engine) Close() error {
	if e.own {
		e.cfg.Client.CloseIdleConnections()
	}
	return nil
}

func validateStep(s Step) error {
	switch {
	case s.Publishers < 1:
		return fmt.Errorf("publishers %d: must be >= 1", s.Publishers)
	case s.Subscribers < 0:
		return fmt.Errorf("subscribers %d: must be >= 0", s.Subscribers)
	case !(s.Rate > 0) || s.Rate > MaxRate:
		return fmt.Errorf("rate %g: must be > 0 and at most %g messages/s per publisher", s.Rate, float64(MaxRate))
	case s.Hold <= 0:
		return fmt.Errorf("hold %v: must be > 0", s.Hold)
	case s.Warmup < 0:
		return fmt.Errorf("warmup %v: must be >= 0", s.Warmup)
	case s.Hold > math.MaxInt64-s.Warmup:
		return fmt.Errorf("warmup %v and hold %v: together longer than a time.Duration holds", s.Warmup, s.Hold)
	}
	return nil
}

// topic is one topic of a step: its publishers and subscribers.
type topic struct {
	name string
	pubs []int // publisher indexes
	subs int   // subscriptions opened
	live atomic.Int64
}

// publisher is one publisher of a step.
type publisher struct {
	pub   delivery.Publisher
	body  *delivery.Body
	topic int32
	local int // its index among its topic's publishers
	seq   uint64
	// accepted counts the hold's messages the bus accepted (r.mu).
	accepted int64
}

// window tracks one publisher's sequence numbers at one subscriber: next is
// the highest seen + 1 (0: none yet), bit i of bits is whether next-1-i was
// seen. A message older than the window cannot be told from a duplicate and
// counts as reordered.
type window struct{ next, bits uint64 }

const windowSize = 64

// observe records seq and says whether it was seen before or arrives after
// a later one.
func (w *window) observe(seq uint64) (dup, late bool) {
	if seq >= w.next {
		if shift := seq - w.next + 1; w.next == 0 || shift >= windowSize {
			w.bits = 1
		} else {
			w.bits = w.bits<<shift | 1
		}
		w.next = seq + 1
		return false, false
	}
	back := w.next - 1 - seq
	if back >= windowSize {
		return false, true
	}
	if w.bits&(1<<back) != 0 {
		return true, false
	}
	w.bits |= 1 << back
	return false, true
}

// subscriber is one subscription of a step. Its counts are written by its
// reader only and read once the readers are done.
type subscriber struct {
	url   string
	st    delivery.Stream
	topic int32
	shard int32
	live  atomic.Bool
	// pending is set while a first-event subscription waits for its first
	// marked event.
	pending *pending
	seen    []window // by the topic's local publisher index

	delivered, dups, reordered, foreign, mangled, misrouted int64
	// dropped says the bus ended the live stream mid-step, at droppedAt
	// (since base).
	dropped   bool
	droppedAt time.Duration
}

type pending struct {
	got  delivery.Received
	done chan struct{} // closed when the reader ends
}

type delayShard struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// MaxRate bounds a publisher's rate (messages/s): plan.LoadParams states the
// same bound for the pubsub rate.
const MaxRate = 1_000_000

// saturate converts ns to a Duration, clamped to what a Duration holds; NaN
// (0 x Inf, the first gap at a vanishing rate) is 0.
func saturate(ns float64) time.Duration {
	switch {
	case math.IsNaN(ns) || ns < 0:
		return 0
	case !(ns < float64(math.MaxInt64)):
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// run is one step in progress.
type run struct {
	e   *Engine
	s   Step
	src string
	// base is when the step began (subscriptions included): markers carry
	// send times from it. t0 is when publishing starts, from base (atomic:
	// the readers are running when it is set).
	base  time.Time
	t0    atomic.Int64
	start time.Time // base + t0
	sem   chan struct{}

	topics []*topic
	pubs   []*publisher
	subs   []*subscriber
	delays []delayShard

	mu        sync.Mutex
	latency   *hdrhistogram.Histogram // publishes due in the hold, µs from the intended time
	lag       *hdrhistogram.Histogram // dispatch lateness, µs
	requests  int64                   // publishes due in the hold with an outcome
	completed int64                   // of them, answered by the bus
	errs      int64
	genErrs   int64
	classes   map[string]int64
	secs      *secTable

	delivered atomic.Int64 // deliveries of hold messages
	subErrs   atomic.Int64
}

type secStat struct {
	requests, errors, offered int64
	hist                      *hdrhistogram.Histogram
}

// Run runs one step: it spreads publishers and subscribers over their
// topics, connects the publishers, opens the subscriptions and waits until
// they are live (by the bus's confirmation), publishes for warmup+hold,
// waits up to the timeout for the hold's messages to be delivered and
// returns the hold's measurements. Messages published before a subscription
// was live are never counted against it. When ctx is cancelled it returns
// what it measured with ctx.Err().
func (e *Engine) Run(ctx context.Context, s Step) (*result.EngineResult, error) {
	if err := validateStep(s); err != nil {
		return nil, fmt.Errorf("pubsub step: %w", err)
	}
	r := &run{
		e: e, s: s, src: fmt.Sprintf("%s-%d", e.id, e.step.Add(1)), base: time.Now(),
		sem: make(chan struct{}, e.cfg.MaxInflight), latency: metrics.NewHistogram(metrics.HistDigits), lag: metrics.NewHistogram(metrics.HistDigits),
		classes: map[string]int64{},
	}
	total := int((s.Warmup + s.Hold + time.Second - 1) / time.Second)
	r.secs = newSecTable(total)
	if err := r.spread(); err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	r.delays = make([]delayShard, min(delayShards, max(1, s.Subscribers)))
	for i := range r.delays {
		r.delays[i].h = metrics.NewHistogram(metrics.HistDigits)
	}

	sctx, cancelSubs := context.WithCancel(ctx)
	defer cancelSubs()
	defer r.closePublishers()
	if err := r.connect(ctx); err != nil {
		return nil, err
	}

	subErr := r.subscribe(sctx)
	var readers sync.WaitGroup
	for _, sub := range r.subs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r.read(sctx, sub)
		}()
	}
	stopReaders := func() {
		cancelSubs()
		r.closeStreams()
		readers.Wait()
	}
	switch confirm := e.bus.Confirm(); {
	case confirm.Mode == delivery.ConfirmFirstEvent && len(r.subs) > 0:
		if err := r.warmUp(ctx); err != nil {
			subErr = err
		}
	case e.bus.Settle() > 0 && len(r.subs) > 0:
		t := time.NewTimer(e.bus.Settle())
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	live := r.liveCount()
	if s.Subscribers > 0 && live == 0 {
		stopReaders()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return &result.EngineResult{Metrics: metrics.Metrics{SubscribeErrors: float64(r.subErrs.Load())}, ErrorClasses: r.classes},
			fmt.Errorf("pubsub: none of %d subscribers could subscribe: %w", s.Subscribers, subErr)
	}
	if subErr != nil {
		e.cfg.Log.Warn().Err(subErr).Int("failed", int(r.subErrs.Load())).Int("subscribers", s.Subscribers).Msg("pubsub: subscriptions failed")
	}

	// Send times travel in microseconds: t0 and the intended times are
	// whole microseconds, so a marker's time tells the hold from the warmup
	// exactly.
	t0 := time.Since(r.base).Truncate(time.Microsecond)
	r.start = r.base.Add(t0)
	r.t0.Store(int64(t0))
	// The generator's own CPU, starvation and its CPUs' steal are measured over
	// the hold, as the step is judged.
	var (
		cpu0    time.Duration
		st0     hoststat.Starvation
		steal0  hoststat.Steal
		snapped = make(chan struct{})
	)
	holdStarts := time.AfterFunc(s.Warmup, func() {
		cpu0, st0, steal0 = metrics.ProcessCPUTime(), hoststat.SelfStarvation(), hoststat.SelfSteal()
		close(snapped)
	})
	defer holdStarts.Stop()

	secDone := make(chan struct{})
	var series []result.Second
	go func() {
		defer close(secDone)
		series = r.seconds(ctx, total)
	}()

	var pubs, dispatchers sync.WaitGroup
	pctx, cancelPubs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelPubs()
	stop := context.AfterFunc(ctx, cancelPubs)
	defer stop()
	for p := range s.Publishers {
		dispatchers.Add(1)
		go func() {
			defer dispatchers.Done()
			// Publishers start evenly spread over one interval.
			offset := saturate(float64(time.Second) / s.Rate * float64(p) / float64(s.Publishers)) // 0 for p = 0
			r.dispatch(ctx, pctx, r.pubs[p], offset, &pubs)
		}()
	}
	dispatchers.Wait()
	pubs.Wait()
	holdWall := time.Since(r.start) - s.Warmup
	var (
		cpu      time.Duration
		starved  float64
		starveOK bool
		steal    float64
		stealOK  bool
	)
	if holdStarts.Stop() { // cancelled before the hold began
		holdWall = 0
	} else {
		<-snapped
		cpu = metrics.ProcessCPUTime() - cpu0
		starved, starveOK = hoststat.StarvedRatio(st0, hoststat.SelfStarvation(), runtime.GOMAXPROCS(0))
		steal, stealOK = hoststat.StealRatio(steal0, hoststat.SelfSteal())
	}

	// Wait, at most the timeout after the hold, for the hold's deliveries.
	expected := r.expectedTotal()
	deadline := r.start.Add(s.Warmup + s.Hold + e.cfg.Timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	for r.delivered.Load() < expected && time.Now().Before(deadline) && ctx.Err() == nil {
		<-tick.C
	}
	tick.Stop()
	stopReaders()
	<-secDone

	res := &result.EngineResult{Series: series, ErrorClasses: r.classes}
	res.Metrics = r.metrics(holdWall, cpu)
	if starveOK {
		res.Metrics[metrics.GeneratorStarvedRatio] = starved
	}
	if stealOK {
		res.Metrics[metrics.GeneratorStealRatio] = steal
	}
	res.Histograms = r.histograms()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

// spread renders every publisher's and subscriber's topic and groups them.
func (r *run) spread() error {
	bus := r.e.bus
	byName := map[string]int32{}
	topicOf := func(name string) int32 {
		i, ok := byName[name]
		if !ok {
			i = int32(len(r.topics))
			byName[name] = i
			r.topics = append(r.topics, &topic{name: name})
		}
		return i
	}
	r.pubs = make([]*publisher, r.s.Publishers)
	for p := range r.pubs {
		name, err := bus.PublishTopic(r.s.PublisherFirst + p)
		if err != nil {
			return fmt.Errorf("publisher %d: %w", p, err)
		}
		t := topicOf(name)
		r.pubs[p] = &publisher{topic: t, local: len(r.topics[t].pubs)}
		r.topics[t].pubs = append(r.topics[t].pubs, p)
	}
	r.subs = make([]*subscriber, 0, r.s.Subscribers)
	for i := range r.s.Subscribers {
		name, err := bus.SubscribeTopic(r.s.SubscriberFirst + i)
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		r.subs = append(r.subs, &subscriber{topic: topicOf(name), shard: int32(i % delayShards)})
	}
	return nil
}

// connect renders every publisher and connects those that hold a connection
// (WebSocket). A publisher that cannot connect now tries again on each
// publish, whose failures are counted.
func (r *run) connect(ctx context.Context) error {
	bus, cfg := r.e.bus, r.e.cfg
	var wg sync.WaitGroup
	sem := make(chan struct{}, subscribeConcurrency)
	var mu sync.Mutex
	var failed int
	var lastErr error
	for p, pb := range r.pubs {
		name := r.topics[pb.topic].name
		pub, err := bus.Publication(r.s.PublisherFirst+p, name, cfg.Timeout)
		if err != nil {
			return fmt.Errorf("pubsub: publisher %d: %w", p, err)
		}
		if pb.body, err = bus.Body(r.s.PublisherFirst+p, name, r.src, cfg.BodyBytes); err != nil {
			return fmt.Errorf("pubsub: publisher %d: %w", p, err)
		}
		if pb.pub, err = delivery.NewPublisher(cfg.Client, pub); err != nil {
			return fmt.Errorf("pubsub: publisher %d: %w", p, err)
		}
		c, ok := pb.pub.(delivery.Connector)
		if !ok {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := c.Connect(ctx); err != nil {
				mu.Lock()
				failed++
				lastErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if lastErr != nil {
		cfg.Log.Warn().Err(lastErr).Int("failed", failed).Int("publishers", len(r.pubs)).Msg("pubsub: publishers could not connect; each publish tries again")
	}
	return ctx.Err()
}

func (r *run) closePublishers() {
	for _, p := range r.pubs {
		if p.pub != nil {
			_ = p.pub.Close()
		}
	}
}

// subscribe opens the subscriptions, a few at a time, and keeps those that
// opened (with confirmation none or comment: live; first-event: pending).
func (r *run) subscribe(ctx context.Context) error {
	bus, cfg := r.e.bus, r.e.cfg
	var (
		mu      sync.Mutex
		lastErr error
		wg      sync.WaitGroup
		sem     = make(chan struct{}, subscribeConcurrency)
		client  *http.Client // the engine's own: a lean connection per stream
	)
	if !r.e.own {
		client = cfg.Client
	}
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		r.subErrs.Add(1)
		if cls := metrics.ErrorClass(err); metrics.IsGeneratorClass(cls) {
			// Out of files or ports here: the generator's failure.
			r.classes[cls]++
			r.genErrs++
		} else {
			r.classes[metrics.ClassSubscribe]++
		}
		lastErr = err
	}
	firstEvent := bus.Confirm().Mode == delivery.ConfirmFirstEvent
	for i, sub := range r.subs {
		t := r.topics[sub.topic]
		spec, err := bus.Subscription(r.s.SubscriberFirst+i, t.name, cfg.Timeout)
		if err != nil {
			fail(fmt.Errorf("subscriber %d: %w", i, err))
			continue
		}
		sub.url = spec.URL
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			st, err := delivery.Subscribe(ctx, client, spec)
			if err != nil {
				fail(err)
				return
			}
			sub.st = st
			sub.seen = make([]window, len(t.pubs))
			if firstEvent {
				sub.pending = &pending{done: make(chan struct{})}
			} else {
				sub.live.Store(true)
				t.live.Add(1)
			}
		}()
	}
	wg.Wait()
	kept := r.subs[:0]
	for _, sub := range r.subs {
		if sub.st != nil {
			kept = append(kept, sub)
			r.topics[sub.topic].subs++
		}
	}
	r.subs = kept
	return lastErr
}

// closeStreams closes every subscription, a few at a time: a WebSocket
// says goodbye (a close message) before its connection closes.
func (r *run) closeStreams() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, subscribeConcurrency)
	for _, sub := range r.subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = sub.st.Close()
		}()
	}
	wg.Wait()
}

// warmUp publishes warm-up messages (of another source, so never counted)
// to every topic whose subscriptions are not all live, until they are or
// the timeout passes; then it drops the subscriptions still not live.
func (r *run) warmUp(ctx context.Context) error {
	cfg := r.e.cfg
	warm := make(map[int32]*delivery.Body)
	var noPub error
	for ti, t := range r.topics {
		if t.subs == 0 {
			continue
		}
		if len(t.pubs) == 0 {
			noPub = fmt.Errorf("confirmation first-event: no publisher publishes to topic %q, so no warm-up message can reach its %d subscribers", t.name, t.subs)
			continue
		}
		b, err := r.e.bus.Body(r.s.PublisherFirst+t.pubs[0], t.name, r.src+"w", 0)
		if err != nil {
			return err
		}
		warm[int32(ti)] = b
	}
	deadline := time.Now().Add(cfg.Timeout)
	var wg sync.WaitGroup
	var seq uint64
	for time.Now().Before(deadline) && ctx.Err() == nil {
		waiting := false
		seq++
		for ti, t := range r.topics {
			if t.live.Load() >= int64(t.subs) || warm[int32(ti)] == nil {
				continue
			}
			waiting = true
			p, body := r.pubs[t.pubs[0]], warm[int32(ti)].Append(nil, seq, time.Since(r.base))
			wg.Add(1)
			go func() {
				defer wg.Done()
				pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
				defer cancel()
				_ = p.pub.Publish(pctx, body)
			}()
		}
		if !waiting {
			break
		}
		t := time.NewTimer(warmupInterval)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	wg.Wait()
	var lastErr error
	for _, sub := range r.subs {
		if sub.live.Load() {
			continue
		}
		_ = sub.st.Close()
		<-sub.pending.done
		r.subErrs.Add(1)
		r.mu.Lock()
		r.classes[metrics.ClassSubscribe]++
		r.mu.Unlock()
		if warm[sub.topic] == nil {
			lastErr = noPub
			continue
		}
		lastErr = delivery.NotConfirmedError(sub.url, r.e.bus.Confirm(), cfg.Timeout,
			sub.pending.got.Describe(afterOpen(r.e.bus.SubscribeTransport()), "event"))
	}
	return lastErr
}

func afterOpen(transport string) string {
	if transport == delivery.TransportWebSocket {
		return "the WebSocket handshake"
	}
	return "the response headers"
}

func (r *run) liveCount() int {
	n := 0
	for _, sub := range r.subs {
		if sub.live.Load() {
			n++
		}
	}
	return n
}

// read records every delivery on sub's stream until it ends.
func (r *run) read(ctx context.Context, sub *subscriber) {
	if p := sub.pending; p != nil {
		defer close(p.done)
	}
	for {
		data, err := sub.st.Next()
		now := time.Since(r.base)
		if err != nil {
			if ctx.Err() == nil && sub.live.Load() {
				sub.dropped, sub.droppedAt = true, now // the bus ended the stream mid-step
			}
			return
		}
		if !sub.live.Load() {
			if _, _, _, kind, _ := delivery.FindFrom(data, r.src); kind == delivery.Ours || kind == delivery.Other {
				sub.live.Store(true)
				r.topics[sub.topic].live.Add(1)
			} else {
				sub.pending.got.Add(data)
			}
			continue
		}
		switch delivery.EachFrom(data, r.src, func(pub int, seq uint64, sent time.Duration) { r.delivery(sub, pub, seq, sent, now) }) {
		case delivery.Foreign:
			sub.foreign++
		case delivery.Mangled:
			sub.mangled++
		}
	}
}

// delivery records one message of the step delivered to sub at now. pub is
// the publisher's number in the message, counted across the agents of a
// fleet (Step.PublisherFirst on): this engine's publishers are from there.
func (r *run) delivery(sub *subscriber, pub int, seq uint64, sent, now time.Duration) {
	pub -= r.s.PublisherFirst
	if pub < 0 || pub >= len(r.pubs) || r.pubs[pub].topic != sub.topic {
		sub.misrouted++
		return
	}
	dup, late := sub.seen[r.pubs[pub].local].observe(seq)
	if sent < time.Duration(r.t0.Load())+r.s.Warmup {
		return
	}
	if dup {
		sub.dups++
		return
	}
	if late {
		sub.reordered++
	}
	sub.delivered++
	d := &r.delays[sub.shard%int32(len(r.delays))]
	d.mu.Lock()
	metrics.RecordDuration(d.h, now-sent)
	d.mu.Unlock()
	r.delivered.Add(1)
}

// dispatch publishes one publisher's messages on schedule for warmup+hold.
func (r *run) dispatch(ctx, pctx context.Context, pb *publisher, offset time.Duration, pubs *sync.WaitGroup) {
	// In float64 nanoseconds, saturated: a rate so low that the next
	// message is due past the end (or past what a Duration holds) ends the
	// schedule instead of overflowing into the past.
	interval := float64(time.Second) / r.s.Rate
	end := r.s.Warmup + r.s.Hold
	t := time.NewTimer(0)
	defer t.Stop()
	for k := 0; ; k++ {
		intended := offset
		if k > 0 {
			intended = saturate(float64(offset) + float64(k)*interval).Truncate(time.Microsecond)
		}
		if intended >= end {
			return
		}
		if wait := time.Until(r.start.Add(intended)); wait > 0 {
			t.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		hold := intended >= r.s.Warmup
		lateness := time.Since(r.start) - intended
		r.mu.Lock()
		r.secs.at(intended).offered++
		if hold {
			metrics.RecordDuration(r.lag, lateness)
		}
		r.mu.Unlock()
		select {
		case r.sem <- struct{}{}:
		default:
			r.outcome(pb, intended, hold, 0, metrics.ClassInflight, false)
			continue
		}
		// Sequence numbers follow the intended send times.
		pb.seq++
		seq := pb.seq
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			defer func() { <-r.sem }()
			body := pb.body.Append(make([]byte, 0, pb.body.Len()), seq, time.Duration(r.t0.Load())+intended)
			class, answered := classify(pb.pub.Publish(pctx, body))
			r.outcome(pb, intended, hold, time.Since(r.start)-intended, class, answered)
		}()
	}
}

// classify names a publish's outcome ("" when the bus accepted it) and says
// whether the bus answered.
func classify(err error) (class string, answered bool) {
	if err == nil {
		return "", true
	}
	var se *delivery.StatusError
	if errors.As(err, &se) {
		if c := metrics.StatusClass(se.Code); c != "" {
			return c, true
		}
		return metrics.ClassOther, true
	}
	return metrics.ErrorClass(err), false
}

// outcome records one publish; lat is from its intended send time.
func (r *run) outcome(pb *publisher, intended time.Duration, hold bool, lat time.Duration, class string, answered bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sec := r.secs.at(time.Since(r.start))
	sec.requests++
	if class != "" {
		sec.errors++
	}
	if answered {
		metrics.RecordDuration(sec.hist, lat)
	}
	if !hold {
		return
	}
	r.requests++
	if class != "" {
		r.classes[class]++
		if metrics.IsGeneratorClass(class) {
			r.genErrs++
		} else {
			r.errs++
		}
	} else {
		pb.accepted++
	}
	if answered {
		r.completed++
		metrics.RecordDuration(r.latency, lat)
	}
}

// expectedTotal is the deliveries the hold's accepted messages owe the live
// subscriptions: per topic, its messages times its subscribers.
func (r *run) expectedTotal() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for ti := range r.topics {
		n += r.expectedOf(int32(ti))
	}
	return n
}

// expectedOf is expectedTotal for one topic; r.mu is held.
func (r *run) expectedOf(ti int32) int64 {
	t := r.topics[ti]
	var msgs int64
	for _, p := range t.pubs {
		msgs += r.pubs[p].accepted
	}
	return msgs * t.live.Load()
}

// seconds calls OnSecond at the end of each second and returns the series.
func (r *run) seconds(ctx context.Context, total int) []result.Second {
	var out []result.Second
	t := time.NewTimer(0)
	defer t.Stop()
	for i := range total {
		// A second is reported a little after it ends, so its answers are in.
		if wait := time.Until(r.start.Add(time.Duration(i+1)*time.Second + 50*time.Millisecond)); wait > 0 {
			t.Reset(wait)
			select {
			case <-ctx.Done():
				return out
			case <-t.C:
			}
		}
		r.mu.Lock()
		s := r.secs.take(i)
		sec := result.Second{T: i, Requests: s.requests, Errors: s.errors, Offered: s.offered}
		sec.P50, sec.P99 = metrics.SecondQuantiles(s.hist)
		r.secs.recycle(s)
		r.mu.Unlock()
		out = append(out, sec)
		if r.s.OnSecond != nil {
			r.s.OnSecond(sec)
		}
	}
	return out
}

// topicStat is one topic's delivery figures.
type topicStat struct {
	subs, expected, delivered, dups, reordered int64
}

func (t topicStat) lost() float64 {
	if t.expected == 0 {
		return 0
	}
	return math.Max(0, float64(t.expected-t.delivered)/float64(t.expected))
}

// histograms are the hold's distributions, for a merge across agents:
// publish latency, dispatch lag and delivery delay.
func (r *run) histograms() map[string]*hdrhistogram.Histogram {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := metrics.NewHistogram(metrics.HistDigits)
	for i := range r.delays {
		d.Merge(r.delays[i].h)
	}
	return map[string]*hdrhistogram.Histogram{metrics.HistLatency: r.latency, metrics.HistLag: r.lag, HistDelay: d}
}

func (r *run) metrics(holdWall, cpu time.Duration) metrics.Metrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := metrics.Metrics{}
	if r.latency.TotalCount() > 0 {
		m.PutQuantiles(r.latency, metrics.Latency)
	}
	ratio := func(n int64) float64 {
		if r.requests == 0 {
			return 0
		}
		return float64(n) / float64(r.requests)
	}
	hold := r.s.Hold.Seconds()
	offered := float64(r.s.Publishers) * r.s.Rate
	m[metrics.RequestsCount] = float64(r.requests)
	m[metrics.ErrorsCount] = float64(r.errs)
	m[metrics.ErrorsRatio] = ratio(r.errs)
	m[metrics.GeneratorErrorsCount] = float64(r.genErrs)
	m[metrics.GeneratorErrorsRatio] = ratio(r.genErrs)
	m[metrics.ThroughputRPS] = float64(r.completed-r.classes[metrics.ClassHTTP4xx]-r.classes[metrics.ClassHTTP5xx]) / hold
	m[metrics.ThroughputOffered] = offered
	m[metrics.ThroughputRatio] = m[metrics.ThroughputRPS] / offered
	if r.lag.TotalCount() > 0 {
		m.PutQuantiles(r.lag, metrics.Lag)
	}
	if holdWall > 0 {
		m[metrics.GeneratorCPU] = metrics.CPUShare(cpu, holdWall)
	}

	d := metrics.NewHistogram(metrics.HistDigits)
	for i := range r.delays {
		d.Merge(r.delays[i].h)
	}
	if d.TotalCount() > 0 {
		m.PutQuantiles(d, DeliveryDelay)
	}
	stats := make([]topicStat, len(r.topics))
	var all topicStat
	var foreign, mangled, misrouted, dropped, live int64
	// Subscribers held: time-weighted over the hold, a stream the bus ended
	// mid-hold counts for the part it was open, one never live for none.
	warmEnd, end := time.Duration(r.t0.Load())+r.s.Warmup, time.Duration(r.t0.Load())+r.s.Warmup+r.s.Hold
	held := 0.0
	for _, sub := range r.subs {
		if !sub.live.Load() {
			continue
		}
		live++
		held += r.s.Hold.Seconds()
		if sub.dropped {
			held -= (end - min(max(sub.droppedAt, warmEnd), end)).Seconds() // the part of the hold it missed
		}
		ts := &stats[sub.topic]
		ts.subs++
		ts.delivered += sub.delivered
		ts.dups += sub.dups
		ts.reordered += sub.reordered
		foreign += sub.foreign
		mangled += sub.mangled
		misrouted += sub.misrouted
		if sub.dropped {
			dropped++
		}
	}
	for ti := range r.topics {
		stats[ti].expected = r.expectedOf(int32(ti))
		all.expected += stats[ti].expected
		all.delivered += stats[ti].delivered
		all.dups += stats[ti].dups
		all.reordered += stats[ti].reordered
	}
	m[DeliveredCount] = float64(all.delivered)
	m[DeliveredRPS] = float64(all.delivered) / hold
	m[ExpectedCount] = float64(all.expected)
	if all.expected > 0 {
		m[LostRatio] = all.lost()
	}
	m[DuplicatesCount] = float64(all.dups)
	m[ReorderedCount] = float64(all.reordered)
	m[ForeignCount] = float64(foreign)
	m[MangledCount] = float64(mangled)
	m[MisroutedCount] = float64(misrouted)
	m[Subscribers] = float64(live)
	if r.s.Subscribers > 0 && r.s.Hold > 0 {
		m[metrics.SubscribersHeldRatio] = max(0, held/(float64(r.s.Subscribers)*r.s.Hold.Seconds()))
	}
	m[SubscribeErrors] = float64(r.subErrs.Load())
	m[SubscribeDropped] = float64(dropped)
	if r.e.bus.Topics() {
		m[TopicsCount] = float64(len(r.topics))
		worst := 0.0
		for _, ts := range stats {
			worst = math.Max(worst, ts.lost())
		}
		m[WorstTopicLost] = worst
		if len(r.topics) <= MaxTopicMetrics {
			names := make([]string, len(r.topics))
			for i, t := range r.topics {
				names[i] = t.name
			}
			for i, seg := range TopicSegments(names) {
				ts := stats[i]
				m[TopicMetric(seg, TopicPublishers)] = float64(len(r.topics[i].pubs))
				m[TopicMetric(seg, TopicSubscribers)] = float64(ts.subs)
				m[TopicMetric(seg, TopicExpected)] = float64(ts.expected)
				m[TopicMetric(seg, TopicDelivered)] = float64(ts.delivered)
				m[TopicMetric(seg, TopicLost)] = ts.lost()
				m[TopicMetric(seg, TopicDuplicates)] = float64(ts.dups)
				m[TopicMetric(seg, TopicReordered)] = float64(ts.reordered)
			}
		}
	}
	return m
}
