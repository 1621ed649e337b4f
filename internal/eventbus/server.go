package eventbus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Stats is the JSON document served on GET /stats.
type Stats struct {
	// Published counts messages accepted by POST /publish.
	Published int64 `json:"published"`
	// Delivered counts messages written to subscribers' streams.
	Delivered int64 `json:"delivered"`
	// Dropped counts subscribers dropped for being slow (buffer full).
	Dropped int64 `json:"dropped"`
	// DroppedMessages counts messages lost to slow-subscriber drops: the one
	// that did not fit and those left in the dropped subscriber's buffer.
	DroppedMessages int64 `json:"dropped_messages"`
	// Subscribers is the number of open subscriptions.
	Subscribers int64 `json:"subscribers"`
	// Topics is the number of topics with at least one subscriber.
	Topics int64 `json:"topics"`
	// Inflight is the number of publish and subscribe requests in flight.
	Inflight int64 `json:"inflight"`
	// Queued is the number of publishes waiting for a capacity slot.
	Queued int64 `json:"queued"`
	// Rejected counts 503 answers (max in-flight, queue full, topic bound,
	// shutting down).
	Rejected int64 `json:"rejected"`
	// TooLarge counts 413 answers.
	TooLarge int64 `json:"too_large"`
}

type counters struct {
	published, delivered, dropped, droppedMessages atomic.Int64
	subscribers, inflight, rejected, tooLarge      atomic.Int64
	publishRequests, subscribeRequests             atomic.Int64
}

// Server is the event bus: an http.Handler plus Serve for a whole server
// with graceful shutdown. Create it with New.
type Server struct {
	cfg     Config
	log     *log.Logger
	c       counters
	bus     *bus
	sched   *schedule // nil without a capacity
	closing chan struct{}
	once    sync.Once
	bufs    sync.Pool
	mux     *http.ServeMux
}

// New returns a Server for cfg (defaults filled in), or the problems of cfg.
func New(cfg Config) (*Server, error) {
	cfg.fill()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("eventbus: invalid config: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, closing: make(chan struct{})}
	if s.log == nil {
		s.log = log.New(io.Discard, "", 0)
	}
	s.bus = newBus(cfg.MaxTopics, cfg.SubscriberBuffer, &s.c, s.log.Printf)
	if cfg.Capacity > 0 {
		s.sched = newSchedule(cfg.Capacity, cfg.MaxQueue, cfg.MaxWait)
	}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.mux = http.NewServeMux()
	s.mux.Handle("/publish", s.limited(&s.c.publishRequests, s.handlePublish))
	s.mux.Handle("/subscribe", s.limited(&s.c.subscribeRequests, s.handleSubscribe))
	s.mux.HandleFunc("/healthz", s.handleHealthz)
	s.mux.HandleFunc("/stats", s.handleStats)
	// Outside the in-flight bound: a saturated bus must still be observable.
	s.mux.Handle("/metrics", newMetricsHandler(s))
	return s, nil
}

// Handler returns the HTTP handler of the bus.
func (s *Server) Handler() http.Handler { return s.mux }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Published:       s.c.published.Load(),
		Delivered:       s.c.delivered.Load(),
		Dropped:         s.c.dropped.Load(),
		DroppedMessages: s.c.droppedMessages.Load(),
		Subscribers:     s.c.subscribers.Load(),
		Topics:          s.bus.numTopics.Load(),
		Inflight:        s.c.inflight.Load(),
		Rejected:        s.c.rejected.Load(),
		TooLarge:        s.c.tooLarge.Load(),
	}
	if s.sched != nil {
		st.Queued = int64(s.sched.length())
	}
	return st
}

// Close ends every subscriber stream and rejects queued and new publishes
// and subscriptions with 503, so that an http.Server.Shutdown can finish.
// It is idempotent.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.bus.close()
	})
}

// Serve serves the bus on ln until ctx is done, then shuts down gracefully:
// it closes the subscriber streams and waits up to Config.ShutdownTimeout
// for requests in flight. net/http's own errors (such as accept errors when
// the process runs out of file descriptors) go to Config.Logger in the
// standard format. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Connections accepted but still without a request (a load generator's
	// pre-opened pool) are closed at shutdown; net/http would otherwise wait
	// 5 s for each to send one.
	var fresh sync.Map // net.Conn -> struct{}
	hs := &http.Server{
		Handler:           s.mux,
		ErrorLog:          s.log,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				fresh.Store(c, struct{}{})
			} else {
				fresh.Delete(c)
			}
		},
	}
	hs.RegisterOnShutdown(func() {
		fresh.Range(func(c, _ any) bool {
			_ = c.(net.Conn).Close()
			return true
		})
	})
	if s.cfg.NoKeepAlive {
		hs.SetKeepAlivesEnabled(false)
	}
	if s.cfg.AcceptRate > 0 {
		ln = newPacedListener(ln, s.cfg.AcceptRate)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Printf("eventbus: listening on %s (max-inflight=%d capacity=%g/s work=%v max-body=%d subscriber-buffer=%d accept-rate=%g/s)",
		ln.Addr(), s.cfg.MaxInflight, s.cfg.Capacity, s.cfg.Work, s.cfg.MaxBody, s.cfg.SubscriberBuffer, s.cfg.AcceptRate)
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("eventbus: serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.log.Printf("eventbus: shutting down (%v)", context.Cause(ctx))
	s.Close()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc // http.ErrServerClosed once Shutdown has begun
	if err != nil {
		_ = hs.Close()
		return fmt.Errorf("eventbus: graceful shutdown within %v: %w", s.cfg.ShutdownTimeout, err)
	}
	s.log.Printf("eventbus: stopped")
	return nil
}

// limited counts requests in requests, applies Config.MaxInflight and keeps
// the in-flight gauge.
func (s *Server) limited(requests *atomic.Int64, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		n := s.c.inflight.Add(1)
		defer s.c.inflight.Add(-1)
		if s.cfg.LogRequests {
			start := time.Now()
			rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			w = rw
			defer func() {
				s.log.Printf("eventbus: %s %s %d %v remote=%s", r.Method, r.URL.RequestURI(), rw.status, time.Since(start), r.RemoteAddr)
			}()
		}
		if s.cfg.MaxInflight > 0 && n > int64(s.cfg.MaxInflight) {
			s.reject(w, "too many requests in flight")
			return
		}
		h(w, r)
	})
}

func (s *Server) reject(w http.ResponseWriter, why string) {
	s.c.rejected.Add(1)
	w.Header().Set("Retry-After", "1")
	http.Error(w, why, http.StatusServiceUnavailable)
}

// topicOf returns the topic parameter or writes a 400 and returns ok false.
func (s *Server) topicOf(w http.ResponseWriter, r *http.Request) (string, bool) {
	t := r.URL.Query().Get("topic")
	switch {
	case t == "":
		http.Error(w, "missing topic parameter", http.StatusBadRequest)
		return "", false
	case len(t) > s.cfg.MaxTopicLen:
		http.Error(w, "topic longer than "+strconv.Itoa(s.cfg.MaxTopicLen)+" bytes", http.StatusBadRequest)
		return "", false
	}
	return t, true
}

func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "publish needs POST", http.StatusMethodNotAllowed)
		return
	}
	name, ok := s.topicOf(w, r)
	if !ok {
		return
	}
	if r.ContentLength > s.cfg.MaxBody {
		s.tooLarge(w)
		return
	}
	// Queue before reading the body, so queued bodies stay in the kernel's
	// socket buffers instead of this process's memory. The price: net/http
	// notices a client hanging up only once the body is read, so a queued
	// publish whose client gave up still takes its slot, as on many real
	// servers.
	if s.sched != nil && !s.waitSlot(w, r) {
		return
	}
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer s.bufs.Put(buf)
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)); err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			s.tooLarge(w)
			return
		}
		http.Error(w, "reading the message: "+err.Error(), http.StatusBadRequest)
		return
	}
	burn(s.cfg.Work)
	n := 0
	if s.bus.hasTopic(name) {
		n = s.bus.publish(name, bytes.Clone(buf.Bytes()))
	}
	s.c.published.Add(1)
	var out [32]byte
	b := append(out[:0], `{"receivers":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, "}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (s *Server) tooLarge(w http.ResponseWriter) {
	s.c.tooLarge.Add(1)
	http.Error(w, "message larger than "+strconv.FormatInt(s.cfg.MaxBody, 10)+" bytes", http.StatusRequestEntityTooLarge)
}

// waitSlot waits for the request's capacity slot. It writes the error
// response and returns false when the request must not proceed.
func (s *Server) waitSlot(w http.ResponseWriter, r *http.Request) bool {
	at, ok := s.sched.reserve(time.Now())
	if !ok {
		s.reject(w, "capacity queue full")
		return false
	}
	defer s.sched.done()
	d := time.Until(at)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false // the client left; nobody reads an answer
	case <-s.closing:
		s.reject(w, "shutting down")
		return false
	}
}

// burn keeps the CPU busy for d (wall time, checked every few hundred
// multiplications), standing in for real per-request work.
func burn(d time.Duration) {
	if d <= 0 {
		return
	}
	end := time.Now().Add(d)
	x := uint64(1)
	for time.Now().Before(end) {
		for range 256 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	runtime.KeepAlive(x)
}

func (s *Server) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "subscribe needs GET", http.StatusMethodNotAllowed)
		return
	}
	name, ok := s.topicOf(w, r)
	if !ok {
		return
	}
	sub, err := s.bus.subscribe(name, r.RemoteAddr)
	if err != nil {
		s.reject(w, err.Error())
		return
	}
	defer s.bus.unsubscribe(name, sub)

	rc := http.NewResponseController(w)
	flush := func() error {
		if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		return rc.Flush()
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The comment tells the client that the subscription is registered:
	// every message published from now on reaches it.
	if _, err := io.WriteString(w, ": subscribed topic="+name+"\n\n"); err != nil {
		return
	}
	if flush() != nil {
		return
	}
	hb := time.NewTicker(s.cfg.Heartbeat)
	defer hb.Stop()
	pending := 0 // messages taken from the buffer and not yet flushed
	defer func() {
		// A subscriber dropped as slow loses what it had not received yet
		// (its write usually blocked until the write deadline).
		if sub.dropped.Load() {
			s.c.droppedMessages.Add(int64(pending + len(sub.ch)))
		}
	}()
	var ev []byte
	for {
		select {
		case msg := <-sub.ch:
			pending = 1
			ev = appendEvent(ev[:0], msg)
			// Batch what is already buffered into one flush.
			for len(ev) < 32<<10 && len(sub.ch) > 0 {
				ev = appendEvent(ev, <-sub.ch)
				pending++
			}
			if _, err := w.Write(ev); err != nil {
				return
			}
			if flush() != nil {
				return
			}
			s.c.delivered.Add(int64(pending))
			pending = 0
		case <-hb.C:
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
				return
			}
			if flush() != nil {
				return
			}
		case <-sub.gone:
			return
		case <-r.Context().Done():
			return
		case <-s.bus.closed:
			return
		}
	}
}

// appendEvent appends msg as one SSE event: a "data:" line for each of its
// lines (CR, LF and CRLF end lines, as in the SSE specification).
func appendEvent(b, msg []byte) []byte {
	if bytes.IndexAny(msg, "\r\n") < 0 {
		b = append(b, "data: "...)
		b = append(b, msg...)
		return append(b, "\n\n"...)
	}
	for {
		b = append(b, "data: "...)
		i := bytes.IndexAny(msg, "\r\n")
		if i < 0 {
			b = append(b, msg...)
			break
		}
		b = append(b, msg[:i]...)
		b = append(b, '\n')
		if msg[i] == '\r' && i+1 < len(msg) && msg[i+1] == '\n' {
			i++
		}
		msg = msg[i+1:]
	}
	return append(b, "\n\n"...)
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.Stats())
}

// statusWriter records the status code for request logging.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
