package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/loadramp/loadramp/orchestrator/delivery"
	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// resubscribeBackoff spaces attempts to subscribe again after the stream
// ended mid-step.
const resubscribeBackoff = 100 * time.Millisecond

// PubSub is the pubsub probe. Each step it subscribes first (and waits for the
// bus's confirmation), then publishes timestamped, sequence-numbered messages
// at its rate and measures each delivery's delay from the message's intended
// send time. Messages sent during the hold are counted: sent, delivered,
// lost (not delivered within the timeout after the hold), duplicated and
// reordered. If the stream ends mid-step the probe subscribes again, and
// what was published meanwhile is lost.
type PubSub struct {
	cfg  Config
	own  bool
	id   string
	step int
}

func newPubSub(cfg Config, own bool) *PubSub {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &PubSub{cfg: cfg, own: own, id: "probe-" + hex.EncodeToString(b[:])}
}

// psStep is the state of one step of the pubsub probe.
type psStep struct {
	src    string
	start  time.Time
	warmup time.Duration

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
	pubErrs    int64
	subErrs    int64
	dropped    int64
	lastPub    error
	lastSub    error
	publishing bool
}

// Step implements Prober.
func (p *PubSub) Step(ctx context.Context, warmup, hold time.Duration) (metrics.Metrics, error) {
	p.step++
	st := &psStep{
		src: fmt.Sprintf("%s-%d", p.id, p.step), warmup: warmup,
		intended: map[uint64]time.Duration{}, failed: map[uint64]bool{}, delivered: map[uint64]bool{},
		allDone: make(chan struct{}), hist: metrics.NewHistogram(metrics.HistDigits), publishing: true,
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := delivery.Subscribe(sctx, p.cfg.Client, p.cfg.Subscribe, p.cfg.Timeout)
	if err != nil {
		m := metrics.Metrics{SubscribeErrorsCount: 1}
		if ctx.Err() != nil {
			return m, ctx.Err()
		}
		return m, fmt.Errorf("probe could not subscribe, so it measured nothing: %w", err)
	}
	st.start = time.Now()

	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		p.read(sctx, st, stream)
	}()

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
		body := delivery.AppendMessage(nil, delivery.Message{Src: st.src, Seq: k, Sent: intended}, 0)
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			err := p.publish(pubCtx, body)
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
	_ = stream.Close()
	readers.Wait()
	return p.metrics(ctx, st)
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
func (p *PubSub) read(ctx context.Context, st *psStep, s *delivery.Stream) {
	for {
		for {
			data, err := s.Next()
			now := time.Since(st.start)
			if err != nil {
				break
			}
			seq, _, ok := delivery.ParseFrom(data, st.src)
			if !ok {
				continue
			}
			st.received(seq, now)
		}
		_ = s.Close()
		if ctx.Err() != nil {
			return
		}
		st.mu.Lock()
		st.dropped++
		st.mu.Unlock()
		p.cfg.Log.Warn().Str("subscribe", p.cfg.Subscribe).Msg("probe: the subscription stream ended mid-step; subscribing again")
		for {
			var err error
			s, err = delivery.Subscribe(ctx, p.cfg.Client, p.cfg.Subscribe, p.cfg.Timeout)
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

func (p *PubSub) publish(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.Publish, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("publish %s: status %d: %s", p.cfg.Publish, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
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
		SubscribeDroppedCount: float64(st.dropped),
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
	if p.own {
		p.cfg.Client.CloseIdleConnections()
	}
	return nil
}
