package eventbus

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Names of the metrics the bus exports on GET /metrics, besides the standard
// process_* (open files, their limit, CPU, memory) and go_* collectors.
const (
	MetricRequests           = "eventbus_requests_total"                // counter {handler="publish"|"subscribe"}
	MetricRejected           = "eventbus_rejected_total"                // counter: 503 answers
	MetricTooLarge           = "eventbus_too_large_total"               // counter: 413 answers
	MetricPublished          = "eventbus_published_total"               // counter
	MetricDelivered          = "eventbus_delivered_total"               // counter
	MetricDroppedSubscribers = "eventbus_dropped_subscribers_total"     // counter
	MetricDroppedMessages    = "eventbus_dropped_messages_total"        // counter
	MetricSubscribers        = "eventbus_subscribers"                   // gauge
	MetricTopics             = "eventbus_topics"                        // gauge
	MetricInflight           = "eventbus_inflight_requests"             // gauge
	MetricQueueDepth         = "eventbus_queue_depth"                   // gauge: publishes waiting for a capacity slot
	MetricQueueDelay         = "eventbus_queue_delay_seconds"           // gauge: how far ahead the next free slot is
	MetricCapacity           = "eventbus_capacity_publishes_per_second" // gauge: --capacity (0: none)
	MetricMaxInflight        = "eventbus_max_inflight_requests"         // gauge: --max-inflight (0: unlimited)
)

// Handler names of MetricRequests.
const (
	handlerPublish   = "publish"
	handlerSubscribe = "subscribe"
)

// collector exports the bus's own counters at scrape time: nothing is added
// to the request path beyond the atomic counters the bus keeps anyway.
type collector struct {
	s                                           *Server
	requests, rejected, tooLarge, published     *prometheus.Desc
	delivered, droppedSubs, droppedMsgs         *prometheus.Desc
	subscribers, topics, inflight, queue, delay *prometheus.Desc
	capacity, maxInflight                       *prometheus.Desc
}

func newCollector(s *Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		s:           s,
		requests:    d(MetricRequests, "Publish and subscribe requests received, by handler.", "handler"),
		rejected:    d(MetricRejected, "Requests answered 503 (max in-flight, capacity queue full or too long, topic bound, shutting down)."),
		tooLarge:    d(MetricTooLarge, "Publishes answered 413 (message larger than --max-body)."),
		published:   d(MetricPublished, "Messages accepted by POST /publish."),
		delivered:   d(MetricDelivered, "Messages written to subscribers' streams."),
		droppedSubs: d(MetricDroppedSubscribers, "Subscribers dropped for being slow (buffer full)."),
		droppedMsgs: d(MetricDroppedMessages, "Messages lost to slow-subscriber drops."),
		subscribers: d(MetricSubscribers, "Open subscriptions."),
		topics:      d(MetricTopics, "Topics with at least one subscriber."),
		inflight:    d(MetricInflight, "Publish and subscribe requests in flight."),
		queue:       d(MetricQueueDepth, "Publishes waiting for a capacity slot (grows when publishes come faster than --capacity)."),
		delay:       d(MetricQueueDelay, "Seconds until the next free capacity slot: the wait a publish arriving now would have."),
		capacity:    d(MetricCapacity, "The hard capacity in publishes per second (0: none)."),
		maxInflight: d(MetricMaxInflight, "The bound on requests in flight (0: unlimited)."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.rejected, c.tooLarge, c.published, c.delivered, c.droppedSubs,
		c.droppedMsgs, c.subscribers, c.topics, c.inflight, c.queue, c.delay, c.capacity, c.maxInflight} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(c.requests, s.c.publishRequests.Load(), handlerPublish)
	counter(c.requests, s.c.subscribeRequests.Load(), handlerSubscribe)
	counter(c.rejected, s.c.rejected.Load())
	counter(c.tooLarge, s.c.tooLarge.Load())
	counter(c.published, s.c.published.Load())
	counter(c.delivered, s.c.delivered.Load())
	counter(c.droppedSubs, s.c.dropped.Load())
	counter(c.droppedMsgs, s.c.droppedMessages.Load())
	gauge(c.subscribers, float64(s.c.subscribers.Load()))
	gauge(c.topics, float64(s.bus.numTopics.Load()))
	gauge(c.inflight, float64(s.c.inflight.Load()))
	var queued int
	var delay time.Duration
	if s.sched != nil {
		queued, delay = s.sched.backlog(time.Now())
	}
	gauge(c.queue, float64(queued))
	gauge(c.delay, delay.Seconds())
	gauge(c.capacity, s.cfg.Capacity)
	gauge(c.maxInflight, float64(s.cfg.MaxInflight))
}

// newMetricsHandler returns the /metrics handler of s: its own registry (no
// global state, so several buses in one process do not collide) with the bus
// collector, the process collector and the Go collector. promhttp negotiates
// the format: Prometheus text or delimited protobuf.
func newMetricsHandler(s *Server) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(s),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector())
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: s.log, ErrorHandling: promhttp.ContinueOnError})
}
