// Package pubsub is the builtin engine's publish/subscribe workload: load
// parameters publishers, subscribers and rate (messages/s per publisher).
// Subscribers hold Server-Sent Events streams open on the event bus while
// publishers POST timestamped messages on an open-model schedule; every
// delivery's delay is measured from the message's intended send time, for the
// whole load. The message format and the SSE client are package delivery's.
package pubsub

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/delivery"
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
)

// Metric names of the pubsub workload (besides the standard latency.*,
// errors.*, throughput.* of its publish requests).
const (
	DelayP50         = "pubsub.delay.p50"
	DelayP95         = "pubsub.delay.p95"
	DelayP99         = "pubsub.delay.p99"
	DelayMax         = "pubsub.delay.max"
	DeliveredRPS     = "pubsub.delivered.rps"
	DeliveredCount   = "pubsub.delivered.count"
	ExpectedCount    = "pubsub.expected.count"
	LostRatio        = "pubsub.lost.ratio"
	Subscribers      = "pubsub.subscribers"
	SubscribeErrors  = "pubsub.subscribe.errors.count"
	SubscribeDropped = "pubsub.subscribe.dropped.count"
)

// deliveryDelay are the quantiles of the delivery delay histogram.
var deliveryDelay = []metrics.Quantile{{Name: DelayP50, Percent: 50}, {Name: DelayP95, Percent: 95}, {Name: DelayP99, Percent: 99}, {Name: DelayMax, Percent: metrics.QuantileMax}}

// Config says where the workload publishes and subscribes.
type Config struct {
	Publish, Subscribe string
	// BodyBytes pads each message to this size (0: as small as it gets).
	BodyBytes int
	// Timeout bounds each publish and each message's delivery after the
	// hold (0: DefaultTimeout).
	Timeout     time.Duration
	MaxInflight int // 0: DefaultMaxInflight
	// Client, if set, is the HTTP client (nil: one of the engine's own).
	Client *http.Client
	Log    zerolog.Logger
}

// Step is one step's load.
type Step struct {
	Publishers  int
	Subscribers int
	Rate        float64 // messages/s per publisher
	Warmup      time.Duration
	Hold        time.Duration
	// OnSecond, if set, is called once per elapsed second (warmup included),
	// from one goroutine; it must not block.
	OnSecond func(result.Second)
}

// Engine runs the pubsub workload step by step.
type Engine struct {
	cfg  Config
	own  bool
	step atomic.Int64
	id   string
}

// New returns an engine for cfg, or what is wrong with cfg.
func New(cfg Config) (*Engine, error) {
	for _, u := range []struct{ field, v string }{{"publish", cfg.Publish}, {"subscribe", cfg.Subscribe}} {
		pu, err := url.Parse(u.v)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, fmt.Errorf("pubsub %s URL %q: use an http:// or https:// URL with a host", u.field, u.v)
		}
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
	e := &Engine{cfg: cfg, id: fmt.Sprintf("load-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)}
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
	case !(s.Rate > 0) || math.IsInf(s.Rate, 0):
		return fmt.Errorf("rate %g: must be > 0 messages/s per publisher", s.Rate)
	case s.Hold <= 0:
		return fmt.Errorf("hold %v: must be > 0", s.Hold)
	case s.Warmup < 0:
		return fmt.Errorf("warmup %v: must be >= 0", s.Warmup)
	}
	return nil
}

// run is one step in progress.
type run struct {
	e      *Engine
	s      Step
	src    string
	start  time.Time
	body   []byte // template: the message is appended to a copy
	seq    atomic.Uint64
	sem    chan struct{}
	second func(time.Duration) int

	mu        sync.Mutex
	latency   *hdrhistogram.Histogram // publishes due in the hold, µs from the intended time
	lag       *hdrhistogram.Histogram // dispatch lateness, µs
	requests  int64                   // publishes due in the hold with an outcome
	completed int64                   // of them, answered by the bus
	errs      int64
	genErrs   int64
	accepted  int64 // 2xx, in the hold
	classes   map[string]int64
	secs      []secStat

	delivered atomic.Int64 // deliveries of hold messages
	dropped   atomic.Int64
	subErrs   atomic.Int64
	// droppedAt are when (since start) the streams the bus ended dropped.
	droppedAt []time.Duration
}

type secStat struct {
	requests, errors, offered int64
	hist                      *hdrhistogram.Histogram
}

// Run runs one step: it opens the subscriptions, publishes for warmup+hold,
// waits up to the timeout for the hold's messages to be delivered and returns
// the hold's measurements. When ctx is cancelled it returns what it measured
// with ctx.Err().
func (e *Engine) Run(ctx context.Context, s Step) (*result.EngineResult, error) {
	if err := validateStep(s); err != nil {
		return nil, fmt.Errorf("pubsub step: %w", err)
	}
	r := &run{
		e: e, s: s, src: fmt.Sprintf("%s-%d", e.id, e.step.Add(1)),
		sem: make(chan struct{}, e.cfg.MaxInflight), latency: metrics.NewHistogram(metrics.HistDigits), lag: metrics.NewHistogram(metrics.HistDigits),
		classes: map[string]int64{},
	}
	total := int((s.Warmup + s.Hold + time.Second - 1) / time.Second)
	r.secs = make([]secStat, total)
	for i := range r.secs {
		r.secs[i].hist = metrics.NewHistogram(2)
	}
	r.second = func(d time.Duration) int { return min(max(int(d/time.Second), 0), total-1) }

	sctx, cancelSubs := context.WithCancel(ctx)
	defer cancelSubs()
	streams, subErr := r.subscribe(sctx)
	if s.Subscribers > 0 && len(streams) == 0 {
		return &result.EngineResult{Metrics: metrics.Metrics{SubscribeErrors: float64(r.subErrs.Load())}, ErrorClasses: r.classes},
			fmt.Errorf("pubsub: none of %d subscribers could subscribe to %s: %w", s.Subscribers, e.cfg.Subscribe, subErr)
	}
	r.start = time.Now()
	cpu0 := metrics.ProcessCPUTime()

	var readers sync.WaitGroup
	delays := make([]*hdrhistogram.Histogram, len(streams))
	for i, st := range streams {
		delays[i] = metrics.NewHistogram(metrics.HistDigits)
		readers.Add(1)
		go func() {
			defer readers.Done()
			r.read(sctx, st, delays[i])
		}()
	}

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
			offset := time.Duration(float64(time.Second) / s.Rate * float64(p) / float64(s.Publishers))
			r.dispatch(ctx, pctx, offset, &pubs)
		}()
	}
	dispatchers.Wait()
	pubs.Wait()
	holdWall := time.Since(r.start) - s.Warmup
	cpu := metrics.ProcessCPUTime() - cpu0

	// Wait, at most the timeout after the hold, for the hold's deliveries.
	expected := r.expected(len(streams))
	deadline := r.start.Add(s.Warmup + s.Hold + e.cfg.Timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	for r.delivered.Load() < expected && time.Now().Before(deadline) && ctx.Err() == nil {
		<-tick.C
	}
	tick.Stop()
	cancelSubs()
	for _, st := range streams {
		_ = st.Close()
	}
	readers.Wait()
	<-secDone

	res := &result.EngineResult{Series: series, ErrorClasses: r.classes}
	res.Metrics = r.metrics(delays, len(streams), expected, holdWall, cpu)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

// subscribe opens s.Subscribers streams, a few at a time.
func (r *run) subscribe(ctx context.Context) ([]*delivery.Stream, error) {
	var (
		mu      sync.Mutex
		streams []*delivery.Stream
		lastErr error
		wg      sync.WaitGroup
		sem     = make(chan struct{}, subscribeConcurrency)
	)
	for range r.s.Subscribers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var c *http.Client // the engine's own: a lean connection per stream
			if !r.e.own {
				c = r.e.cfg.Client
			}
			st, err := delivery.Subscribe(ctx, c, r.e.cfg.Subscribe, r.e.cfg.Timeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				r.subErrs.Add(1)
				if cls := metrics.ErrorClass(err); metrics.IsGeneratorClass(cls) {
					// Out of files or ports here: the generator's failure.
					r.classes[cls]++
					r.genErrs++
				} else {
					r.classes[metrics.ClassSubscribe]++
				}
				lastErr = err
				return
			}
			streams = append(streams, st)
		}()
	}
	wg.Wait()
	if lastErr != nil {
		r.e.cfg.Log.Warn().Err(lastErr).Int("failed", int(r.subErrs.Load())).Int("subscribers", r.s.Subscribers).Msg("pubsub: subscriptions failed")
	}
	return streams, lastErr
}

// read records the delay of every hold message delivered on st.
func (r *run) read(ctx context.Context, st *delivery.Stream, h *hdrhistogram.Histogram) {
	for {
		data, err := st.Next()
		now := time.Since(r.start)
		if err != nil {
			if ctx.Err() == nil {
				r.dropped.Add(1) // the bus ended the stream mid-step
				r.mu.Lock()
				r.droppedAt = append(r.droppedAt, now)
				r.mu.Unlock()
			}
			return
		}
		_, sent, ok := delivery.ParseFrom(data, r.src)
		if !ok || sent < r.s.Warmup {
			continue
		}
		metrics.RecordDuration(h, now-sent)
		r.delivered.Add(1)
	}
}

// dispatch publishes one publisher's messages on schedule for warmup+hold.
func (r *run) dispatch(ctx, pctx context.Context, offset time.Duration, pubs *sync.WaitGroup) {
	interval := time.Duration(float64(time.Second) / r.s.Rate)
	end := r.s.Warmup + r.s.Hold
	t := time.NewTimer(0)
	defer t.Stop()
	for k := 0; ; k++ {
		intended := offset + time.Duration(k)*interval
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
		r.secs[r.second(intended)].offered++
		if hold {
			metrics.RecordDuration(r.lag, lateness)
		}
		r.mu.Unlock()
		select {
		case r.sem <- struct{}{}:
		default:
			r.outcome(intended, hold, 0, metrics.ClassInflight, false)
			continue
		}
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			defer func() { <-r.sem }()
			class, answered := r.publish(pctx, intended)
			r.outcome(intended, hold, time.Since(r.start)-intended, class, answered)
		}()
	}
}

// publish sends one message and classifies the outcome ("" for a 2xx).
func (r *run) publish(ctx context.Context, intended time.Duration) (class string, answered bool) {
	body := delivery.AppendMessage(make([]byte, 0, max(r.e.cfg.BodyBytes, 64)), delivery.Message{Src: r.src, Seq: r.seq.Add(1), Sent: intended}, r.e.cfg.BodyBytes)
	ctx, cancel := context.WithTimeout(ctx, r.e.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.e.cfg.Publish, bytes.NewReader(body))
	if err != nil {
		return metrics.ClassOther, false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.e.cfg.Client.Do(req)
	if err != nil {
		return metrics.ErrorClass(err), false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return metrics.StatusClass(resp.StatusCode), true
}

// outcome records one publish; lat is from its intended send time.
func (r *run) outcome(intended time.Duration, hold bool, lat time.Duration, class string, answered bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sec := &r.secs[r.second(time.Since(r.start))]
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
		r.accepted++
	}
	if answered {
		r.completed++
		metrics.RecordDuration(r.latency, lat)
	}
}

func (r *run) expected(subscribers int) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted * int64(subscribers)
}

// seconds calls OnSecond at the end of each second and returns the series.
func (r *run) seconds(ctx context.Context, total int) []result.Second {
	out := make([]result.Second, 0, total)
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
		s := r.secs[i]
		sec := result.Second{T: i, Requests: s.requests, Errors: s.errors, Offered: s.offered}
		sec.P50, sec.P99 = metrics.SecondQuantiles(s.hist)
		r.mu.Unlock()
		out = append(out, sec)
		if r.s.OnSecond != nil {
			r.s.OnSecond(sec)
		}
	}
	return out
}

func (r *run) metrics(delays []*hdrhistogram.Histogram, subscribers int, expected int64, holdWall, cpu time.Duration) metrics.Metrics {
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
	for _, h := range delays {
		d.Merge(h)
	}
	delivered := r.delivered.Load()
	if d.TotalCount() > 0 {
		m.PutQuantiles(d, deliveryDelay)
	}
	m[DeliveredCount] = float64(delivered)
	m[DeliveredRPS] = float64(delivered) / hold
	m[ExpectedCount] = float64(expected)
	if expected > 0 {
		m[LostRatio] = math.Max(0, float64(expected-delivered)/float64(expected))
	}
	m[Subscribers] = float64(subscribers)
	if r.s.Subscribers > 0 && r.s.Hold > 0 {
		// Time-weighted: a stream the bus ended mid-hold counts for the part
		// of the hold it was open; one never opened, for none.
		end := r.s.Warmup + r.s.Hold
		held := float64(subscribers) * r.s.Hold.Seconds()
		for _, at := range r.droppedAt {
			held -= (end - min(max(at, r.s.Warmup), end)).Seconds() // the part of the hold it missed
		}
		m[metrics.SubscribersHeldRatio] = max(0, held/(float64(r.s.Subscribers)*r.s.Hold.Seconds()))
	}
	m[SubscribeErrors] = float64(r.subErrs.Load())
	m[SubscribeDropped] = float64(r.dropped.Load())
	return m
}
