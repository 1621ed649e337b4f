// Package probe measures what users feel, beside any engine and independent
// of it: at its own low rate it sends requests (kind http) or publishes
// messages it also subscribes to (kind pubsub), and reports the probe.*
// metrics of each step's hold window.
package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/delivery"
	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// Probe kinds.
const (
	KindHTTP   = "http"
	KindPubSub = "pubsub"
)

// DefaultTimeout bounds each probe request and, for pubsub, the wait for a
// message's delivery after the hold.
const DefaultTimeout = 2 * time.Second

// MaxRate bounds the probe's rate: a probe is light by design.
const MaxRate = 1000

// Metric names of the probe, besides those declared in package metrics.
const (
	SentCount             = "probe.sent.count"
	DeliveredCount        = "probe.delivered.count"
	LostCount             = "probe.lost.count"
	DuplicatesCount       = "probe.duplicates.count"
	ReorderedCount        = "probe.reordered.count"
	ErrorsCount           = "probe.errors.count"
	PublishErrorsCount    = "probe.publish.errors.count"
	SubscribeErrorsCount  = "probe.subscribe.errors.count"
	SubscribeDroppedCount = "probe.subscribe.dropped.count"
	ForeignCount          = "probe.foreign.count"
	MangledCount          = "probe.mangled.count"
)

// Config configures a probe.
type Config struct {
	Kind string
	// URL is requested by kind http; the answer must be 2xx and, when Expect
	// is set, contain it.
	URL    string
	Expect string
	// Bus is how kind pubsub publishes and subscribes: the same settings as
	// the pubsub workload's, so the probe works against any bus the
	// workload does. The probe is publisher 0 and subscriber 0 of its
	// topic templates.
	delivery.Bus
	// Rate is the probe's rate in requests or messages per second.
	Rate float64
	// Timeout bounds each request and the delivery of each message after the
	// hold (0: DefaultTimeout).
	Timeout time.Duration
	// Client, if set, is the HTTP client (nil: a client of the probe's own,
	// so the probe never shares connections with the load).
	Client *http.Client
	Log    zerolog.Logger
}

// Prober is a probe: the shape of orchestrator.Probe.
type Prober interface {
	// Step probes for warmup+hold and returns the hold window's probe.*
	// metrics, and what it measured when ctx is cancelled.
	Step(ctx context.Context, warmup, hold time.Duration) (metrics.Metrics, error)
	Close() error
}

// New returns the probe cfg describes, or what is wrong with cfg.
func New(cfg Config) (Prober, error) {
	if !(cfg.Rate > 0) || cfg.Rate > MaxRate {
		return nil, fmt.Errorf("probe rate %g/s: must be > 0 and at most %d", cfg.Rate, MaxRate)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("probe timeout %v: must be >= 0", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	own := cfg.Client == nil
	if own {
		cfg.Client = newClient(cfg.Timeout)
	}
	switch cfg.Kind {
	case KindHTTP:
		if err := checkURL("url", cfg.URL); err != nil {
			return nil, err
		}
		return &HTTP{cfg: cfg, own: own}, nil
	case KindPubSub:
		bus, err := cfg.Bus.Compile()
		if err != nil {
			return nil, fmt.Errorf("probe %w", err)
		}
		return newPubSub(cfg, bus, own), nil
	}
	return nil, fmt.Errorf("probe kind %q: use %s or %s", cfg.Kind, KindHTTP, KindPubSub)
}

func checkURL(field, u string) error {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return fmt.Errorf("probe %s %q: use an http:// or https:// URL with a host", field, u)
	}
	return nil
}

// newClient returns a client with a transport of its own. It has no overall
// timeout (subscription streams last a whole step); each request gets one.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: timeout}).DialContext,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 0,
	}}
}

// delayMetrics adds the probe.delay.* metrics of h (seconds).
func delayMetrics(m metrics.Metrics, h *hdrhistogram.Histogram) {
	if h.TotalCount() > 0 {
		m.PutQuantiles(h, metrics.ProbeDelay)
	}
}

// schedule calls send(k, intended) for every k whose intended time
// start+k/rate is before end, at that time, and returns how many it sent. A
// late wake-up sends every message that is due with its own intended time, so
// a stalled probe still measures from when each message should have left.
func schedule(ctx context.Context, start time.Time, rate float64, end time.Duration, send func(k uint64, intended time.Duration)) uint64 {
	// In float64 nanoseconds: a rate so low that the next message is due
	// past what a Duration holds ends the schedule, never wraps it into the
	// past.
	interval := float64(time.Second) / rate
	t := time.NewTimer(0)
	defer t.Stop()
	var k uint64
	for {
		at := 0.0 // not 0 x Inf
		if k > 0 {
			at = float64(k) * interval
		}
		if !(at < float64(end)) {
			return k
		}
		intended := time.Duration(at)
		if wait := time.Until(start.Add(intended)); wait > 0 {
			t.Reset(wait)
			select {
			case <-ctx.Done():
				return k
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return k
		}
		send(k, intended)
		k++
	}
}
