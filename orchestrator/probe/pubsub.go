package probe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/loadramp/loadramp/orchestrator/delivery"
	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// resubscribeBackoff spaces attempts to subscribe again after the stream
// ended mid-step.
const resubscribeBackoff = 100 * time.Millisecond

// warmupInterval spaces the warm-up messages of first-event confirmation.
const warmupInterval = 100 * time.Millisecond

// PubSub is the pubsub probe. Each step it subscribes first and waits until
// its subscription is live (by the bus's confirmation: a settle time, a
// comment, or the first of its warm-up messages), then publishes marked,
// sequence-numbered messages at its rate and measures each delivery's delay
// from the message's intended send time. Messages sent during the hold are
// counted: sent, delivered, lost (not delivered within the timeout after the
// hold), duplicated and reordered; events without a marker are counted as
// foreign, marks that do not parse as mangled. If the stream ends mid-step
// the probe subscribes again, and what was published meanwhile is lost.
type PubSub struct {
	cfg  Config
	bus  *delivery.Compiled
	own  bool
	id   string
	step int
	// pub is the probe's publisher, kept across steps (a WebSocket
	// publisher keeps its connection).
	pub                delivery.Publisher
	pubTopic, subTopic string
}

func newPubSub(cfg Config, bus *delivery.Compiled, own bool) *PubSub {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &PubSub{cfg: cfg, bus: bus, own: own, id: "probe-" + hex.EncodeToString(b[:])}
}

// psStep is the state of one step of the pubsub probe.
type psStep struct {
	src    string
	start  time.Time
	warmup time.Duration
	live   atomic.Bool
	got    delivery.Received // before live (first-event)

	mu         sync.Mutex
	intended   map[uint64]time.Duration // messages of the hold, by seq
	failed     map[uint64]bool          // of them, those whose publish failed
	delivered  map[uint64]bool
	pending    int // hold messages not delivered yet
	allDone    chan struct{}
	closed     bool
	maxSeq     uint64
	anyRecv    bool
	hist       *hdrhistogram.Histogram
	dups       int64
	reordered  int64
	foreign    int64
	mangled    int64
	pubErrs    int64
	subErrs    int64
	dropped    int64
	lastPub    error
	lastSub    error
	publishing bool
}

// open renders the probe's publisher and subscription (once per probe).
func (p *PubSub) open() (delivery.Subscription, error) {
	var err error
	if p.pub == nil {
		if p.pubTopic, err = p.bus.PublishTopic(0); err != nil {
			return delivery.Subscription{}, err
		}
		pub, err := p.bus.Publication(0, p.pubTopic, p.cfg.Timeout)
		if err != nil {
			return delivery.Subscription{}, err
		}
		if p.pub, err = delivery.NewPublisher(p.cfg.Client, pub); err != nil {
			return delivery.Subscription{}, err
		}
		if p.subTopic, err = p.bus.SubscribeTopic(0); err != nil {
			return delivery.Subscription{}, err
		}
	}
	return p.bus.Subscription(0, p.subTopic, p.cfg.Timeout)
}

// Step implements Prober.
func (p *PubSub) Step(ctx context.Context, warmup, hold time.Duration) (metrics.Metrics, error) {
	p.step++
	st := &psStep{
		src: fmt.Sprintf("%s-%d", p.id, p.step), warmup: warmup,
		intended: map[uint64]time.Duration{}, failed: map[uint64]bool{}, delivered: map[uint64]bool{},
		allDone: make(chan struct{}), hist: metrics.NewHistogram(metrics.HistDigits), publishing: true,
	}
	cantSubscribe := func(err error) (metrics.Metrics, error) {
		m := metrics.Metrics{SubscribeErrorsCount: 1}
		if ctx.Err() != nil {
			return m, ctx.Err()
		}
		return m, fmt.Errorf("probe could not subscribe, so it measured nothing: %w", err)
	}
	spec, err := p.open()
	if err != nil {
		return cantSubscribe(err)
	}
	body, err := p.bus.Body(0, p.pubTopic, st.src, 0)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	if c, ok := p.pub.(delivery.Connector); ok {
		if err := c.Connect(ctx); err != nil {
			p.cfg.Log.Warn().Err(err).Msg("probe: the publisher could not connect; each publish tries again")
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := delivery.Subscribe(sctx, p.cfg.Client, spec)
	if err != nil {
		return cantSubscribe(err)
	}
	st.start = time.Now()
	firstEvent := p.bus.Confirm().Mode == delivery.ConfirmFirstEvent
	if !firstEvent {
		st.live.Store(true)
	}

	var readers sync.WaitGroup
	readers.Add(1)
	readerDone := make(chan struct{})
	go func() {
		defer readers.Done()
		defer close(readerDone)
		p.read(sctx, st, stream, spec)
	}()

	if firstEvent {
		if err := p.warmUp(ctx, st, readerDone); err != nil {
			cancel()
			_ = stream.Close()
			readers.Wait()
			what := st.got.Describe(afterOpen(p.bus.SubscribeTransport()), "event")
			if !errors.Is(err, delivery.ErrNotConfirmed) {
				return cantSubscribe(fmt.Errorf("subscribe %s: %w before its confirmation (%s; received %s)", spec.URL, err, p.bus.Confirm(), what))
			}
			return cantSubscribe(delivery.NotConfirmedError(spec.URL, p.bus.Confirm(), p.cfg.Timeout, what))
		}
	} else if d := p.bus.Settle(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	// The schedule starts once the subscription is live.
	st.mu.Lock()
	st.start = time.Now()
	st.mu.Unlock()

	var pubs sync.WaitGroup
	pubCtx, cancelPubs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelPubs()
	stopPubs := context.AfterFunc(ctx, cancelPubs)
	defer stopPubs()
	schedule(ctx, st.start, p.cfg.Rate, warmup+hold, func(k uint64, intended time.Duration) {
		inHold := intended >= warmup
		if inHold {
			st.mu.Lock()
			st.intended[k] = intended
			st.pending++
			st.mu.Unlock()
		}
		msg := body.Append(nil, k, intended)
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			err := p.pub.Publish(pubCtx, msg)
			if err == nil {
				return
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			if inHold {
				st.pubErrs++
				st.lastPub = err
				// Not accepted: it cannot be delivered; stop waiting for it.
				if !st.delivered[k] && !st.failed[k] {
					st.failed[k] = true
					st.donePending()
				}
			}
		}()
	})
	pubs.Wait()
	st.mu.Lock()
	st.publishing = false
	if st.pending == 0 {
		st.finish()
	}
	st.mu.Unlock()

	// Wait for the hold's messages, at most Timeout after the hold.
	graceEnd := st.start.Add(warmup + hold + p.cfg.Timeout)
	t := time.NewTimer(max(time.Until(graceEnd), 0))
	select {
	case <-st.allDone:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	cancel()
	readers.Wait()
	return p.metrics(ctx, st)
}

// warmUp publishes warm-up messages (of another source, never counted) until
// the reader sees one (or any marked message) and the subscription is live,
// or the timeout passes.
func (p *PubSub) warmUp(ctx context.Context, st *psStep, readerDone <-chan struct{}) error {
	warm, err := p.bus.Body(0, p.pubTopic, st.src+"w", 0)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(p.cfg.Timeout)
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTimer(0)
	defer t.Stop()
	for seq := uint64(1); !st.live.Load(); seq++ {
		if time.Now().After(deadline) {
			return delivery.ErrNotConfirmed
		}
		msg := warm.Append(nil, seq, time.Since(st.start))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.pub.Publish(ctx, msg)
		}()
		t.Reset(warmupInterval)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-readerDone:
			return errors.New("the stream ended")
		case <-t.C:
		}
	}
	return nil
}

func afterOpen(transport string) string {
	if transport == delivery.TransportWebSocket {
		return "the WebSocket handshake"
	}
	return "the response headers"
}

// donePending counts one hold message as settled (delivered or failed);
// st.mu is held.
func (st *psStep) donePending() {
	st.pending--
	if st.pending == 0 && !st.publishing {
		st.finish()
	}
}

func (st *psStep) finish() {
	if !st.closed {
		st.closed = true
		close(st.allDone)
	}
}

// read consumes the stream until ctx ends, subscribing again if it ends
// before.
func (p *PubSub) read(ctx context.Context, st *psStep, s delivery.Stream, spec delivery.Subscription) {
	for {
		for {
			data, err := s.Next()
			if err != nil {
				break
			}
			p.classify(st, data)
		}
		_ = s.Close()
		if ctx.Err() != nil || !st.live.Load() {
			return
		}
		st.mu.Lock()
		st.dropped++
		st.mu.Unlock()
		p.cfg.Log.Warn().Str("subscribe", spec.URL).Msg("probe: the subscription stream ended mid-step; subscribing again")
		for {
			var err error
			s, err = delivery.Subscribe(ctx, p.cfg.Client, spec)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			st.mu.Lock()
			st.subErrs++
			st.lastSub = err
			st.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(resubscribeBackoff):
			}
		}
	}
}

// classify records the probe's messages in data; before the subscription is
// live, a marked event makes it live and anything else is kept for the error.
func (p *PubSub) classify(st *psStep, data []byte) {
	if !st.live.Load() {
		if _, _, _, kind, _ := delivery.FindFrom(data, st.src); kind == delivery.Ours || kind == delivery.Other {
			st.live.Store(true)
		} else {
			st.got.Add(data)
		}
		return
	}
	st.mu.Lock()
	now := time.Since(st.start)
	st.mu.Unlock()
	switch delivery.EachFrom(data, st.src, func(_ int, seq uint64, _ time.Duration) { st.received(seq, now) }) {
	case delivery.Foreign:
		st.mu.Lock()
		st.foreign++
		st.mu.Unlock()
	case delivery.Mangled:
		st.mu.Lock()
		st.mangled++
		st.mu.Unlock()
	}
}

// received records the delivery of message seq at now (since st.start).
func (st *psStep) received(seq uint64, now time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	reordered := st.anyRecv && seq < st.maxSeq
	if !st.anyRecv || seq > st.maxSeq {
		st.maxSeq, st.anyRecv = seq, true
	}
	intended, ok := st.intended[seq]
	if !ok {
		return // a warmup message
	}
	if st.delivered[seq] {
		st.dups++
		return
	}
	st.delivered[seq] = true
	if reordered {
		st.reordered++
	}
	metrics.RecordDuration(st.hist, now-intended)
	if st.failed[seq] {
		// Its publish reported an error, yet it arrived: count it delivered.
		delete(st.failed, seq)
		st.pubErrs--
		return
	}
	st.donePending()
}

func (p *PubSub) metrics(ctx context.Context, st *psStep) (metrics.Metrics, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	sent := int64(len(st.intended))
	delivered := int64(len(st.delivered))
	lost := sent - delivered
	m := metrics.Metrics{
		SentCount: float64(sent), DeliveredCount: float64(delivered), LostCount: float64(lost),
		DuplicatesCount: float64(st.dups), ReorderedCount: float64(st.reordered),
		PublishErrorsCount: float64(st.pubErrs), SubscribeErrorsCount: float64(st.subErrs),
		SubscribeDroppedCount: float64(st.dropped), ForeignCount: float64(st.foreign), MangledCount: float64(st.mangled),
	}
	if sent > 0 {
		m[metrics.ProbeLostRatio] = float64(lost) / float64(sent)
	}
	delayMetrics(m, st.hist)
	switch {
	case ctx.Err() != nil:
		return m, ctx.Err()
	case sent > 0 && st.pubErrs == sent:
		return m, fmt.Errorf("probe could not publish any of its %d messages: %w", sent, st.lastPub)
	case st.subErrs > 0 && delivered == 0:
		return m, fmt.Errorf("probe lost its subscription and could not subscribe again: %w", st.lastSub)
	}
	return m, nil
}

// Close releases the probe's connections.
func (p *PubSub) Close() error {
	if p.pub != nil {
		_ = p.pub.Close()
	}
	if p.own {
		p.cfg.Client.CloseIdleConnections()
	}
	return nil
}
