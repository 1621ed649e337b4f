// Package eventbus is the bundled sample target of loadramp: an HTTP
// publish/subscribe event bus with tunable limits (maximum requests in
// flight, CPU work per publish, a hard capacity in publishes per second, a
// bounded queue, per-subscriber buffers) that logs like an ordinary Go
// net/http server, so that a load ramp against it meets real bottlenecks
// and real log lines.
//
// Endpoints:
//
//	POST /publish?topic=T    the body is the message; 200 with {"receivers":N}
//	GET  /subscribe?topic=T  Server-Sent Events: one "data:" event a message
//	GET  /healthz            200 "ok"
//	GET  /stats              JSON counters (see Stats)
//	GET  /metrics            Prometheus metrics (text or protobuf): the bus's counters
//	                         and gauges (Metric* constants), process_* and go_*
//
// A subscription stream starts with the comment ": subscribed topic=T": from
// then on every message published to T reaches it, in order, as one SSE
// event (one "data:" line per line of the message). A ": heartbeat" comment
// follows every Config.Heartbeat.
//
// Log lines (standard log format, to Config.Logger), which diagnosis rules
// may match:
//
//	eventbus: listening on ADDR (max-inflight=N capacity=R/s ...)
//	http: Accept error: accept tcp ADDR: accept4: too many open files; retrying in 5ms
//	eventbus: dropping slow subscriber topic=T remote=ADDR after N buffered messages
//	eventbus: shutting down (CAUSE)
//	eventbus: stopped
//
// The second is net/http's own, logged when the process runs out of file
// descriptors (see SetNofile).
package eventbus

import (
	"errors"
	"fmt"
	"log"
	"time"
)

// Defaults used by DefaultConfig and by the eventbus command's flags.
const (
	DefaultListen           = "127.0.0.1:8080"
	DefaultMaxBody          = 64 << 10
	DefaultSubscriberBuffer = 256
	DefaultMaxQueue         = 100000
	DefaultMaxWait          = 10 * time.Second
	DefaultMaxTopics        = 10000
	DefaultMaxTopicLen      = 256
	DefaultHeartbeat        = 15 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultShutdownTimeout  = 5 * time.Second
)

// Config holds the tunable limits of a Server. The zero value of a field
// means "use the default" unless its comment says otherwise.
type Config struct {
	// MaxInflight is the number of publish and subscribe requests allowed in
	// flight at once; the rest get 503. 0 means unlimited.
	MaxInflight int
	// Work is the CPU time burnt in a busy loop by every publish. 0 means none.
	Work time.Duration
	// Capacity is a hard capacity in publish requests per second: beyond it
	// requests queue on a FIFO schedule (request k proceeds no earlier than
	// start + k/Capacity). 0 means no capacity limit.
	Capacity float64
	// AcceptRate bounds the new connections the server accepts per second:
	// the rest wait in the kernel's listen queue, which overflows once it
	// holds net.core.somaxconn of them (a slow-accepting server). 0 means no
	// limit.
	AcceptRate float64
	// NoKeepAlive closes every connection after one answer, so clients open
	// a connection for every request.
	NoKeepAlive bool
	// MaxQueue bounds the number of publishes waiting for a capacity slot;
	// beyond it they get 503.
	MaxQueue int
	// MaxWait bounds the time a publish may wait for a capacity slot; a
	// publish whose slot is further away gets 503 at once.
	MaxWait time.Duration
	// MaxBody is the largest message accepted, in bytes; larger bodies get 413.
	MaxBody int64
	// SubscriberBuffer is the number of messages buffered per subscriber. A
	// subscriber whose buffer is full when a message arrives is dropped.
	SubscriberBuffer int
	// MaxTopics bounds the number of topics with subscribers; a subscription
	// that would create one more gets 503.
	MaxTopics int
	// MaxTopicLen bounds the length of a topic name; longer names get 400.
	MaxTopicLen int
	// Heartbeat is the interval of SSE comment heartbeats.
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a subscriber's connection.
	WriteTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown in Serve.
	ShutdownTimeout time.Duration
	// LogRequests logs one line per publish and subscribe request.
	LogRequests bool
	// Logger receives the server's log lines, including net/http's own
	// (accept errors); nil discards them. Use log.New(os.Stderr, "",
	// log.LstdFlags) to log like any Go server.
	Logger *log.Logger
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	var c Config
	c.fill()
	return c
}

func (c *Config) fill() {
	if c.MaxQueue == 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.SubscriberBuffer == 0 {
		c.SubscriberBuffer = DefaultSubscriberBuffer
	}
	if c.MaxTopics == 0 {
		c.MaxTopics = DefaultMaxTopics
	}
	if c.MaxTopicLen == 0 {
		c.MaxTopicLen = DefaultMaxTopicLen
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
}

// Validate returns every problem of c (after defaults), joined.
func (c Config) Validate() error {
	var errs []error
	neg := func(name string, bad bool) {
		if bad {
			errs = append(errs, fmt.Errorf("%s: must be >= 0", name))
		}
	}
	neg("max-inflight", c.MaxInflight < 0)
	neg("work", c.Work < 0)
	neg("capacity", c.Capacity < 0)
	neg("accept-rate", c.AcceptRate < 0)
	neg("max-queue", c.MaxQueue < 0)
	neg("max-wait", c.MaxWait < 0)
	neg("max-body", c.MaxBody < 0)
	neg("subscriber-buffer", c.SubscriberBuffer < 0)
	neg("max-topics", c.MaxTopics < 0)
	neg("max-topic-len", c.MaxTopicLen < 0)
	neg("heartbeat", c.Heartbeat < 0)
	neg("write-timeout", c.WriteTimeout < 0)
	neg("shutdown-timeout", c.ShutdownTimeout < 0)
	if c.Capacity > 1e9 {
		errs = append(errs, fmt.Errorf("capacity: %g requests/s is beyond what a schedule can pace", c.Capacity))
	}
	if c.AcceptRate > 1e6 {
		errs = append(errs, fmt.Errorf("accept-rate: %g connections/s is beyond what an accept loop can pace", c.AcceptRate))
	}
	return errors.Join(errs...)
}
