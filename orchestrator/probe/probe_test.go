package probe

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/internal/eventbus"
	"github.com/loadramp/loadramp/internal/pubsubtest"
	"github.com/loadramp/loadramp/orchestrator/delivery"
	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// startBus serves a real event bus on a loopback port until the test ends.
func startBus(t *testing.T, cfg eventbus.Config) (string, *eventbus.Server) {
	t.Helper()
	return startBusOn(t, cfg, nil)
}

// smallSendBuffers gives every accepted connection a small kernel send buffer,
// as a slow network link would: loopback's autotuned buffers otherwise absorb
// seconds of a stalled reader's stream and the bus never sees it as slow.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

func startBusOn(t *testing.T, cfg eventbus.Config, wrap func(net.Listener) net.Listener) (string, *eventbus.Server) {
	t.Helper()
	srv, err := eventbus.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	served := ln
	if wrap != nil {
		served = wrap(ln)
	}
	go func() { done <- srv.Serve(ctx, served) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("event bus did not stop within 10s")
		}
	})
	return "http://" + ln.Addr().String(), srv
}

// pubsubConfig probes the bundled event bus, which confirms subscriptions
// with ": subscribed".
func pubsubConfig(url, topic string) Config {
	return Config{
		Kind: KindPubSub, Rate: 50, Log: zerolog.Nop(),
		Bus: delivery.Bus{
			Publish:   url + "/publish?topic=" + topic,
			Subscribe: url + "/subscribe?topic=" + topic,
			Confirm:   `comment ": subscribed"`,
		},
	}
}

func stepCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPubSubProbeHealthyBus(t *testing.T) {
	url, srv := startBus(t, eventbus.Config{})
	pr, err := New(pubsubConfig(url, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	for step := 1; step <= 2; step++ { // a second step must not see the first's messages
		m, err := pr.Step(stepCtx(t), 500*time.Millisecond, 2*time.Second)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		t.Logf("step %d: %v", step, m)
		if sent := m[SentCount]; sent < 90 || sent > 110 {
			t.Errorf("step %d: sent %v in a 2 s hold at 50/s, want about 100", step, sent)
		}
		for _, k := range []string{metrics.ProbeLostRatio, DuplicatesCount, PublishErrorsCount, SubscribeErrorsCount} {
			if v, ok := m[k]; !ok || v != 0 {
				t.Errorf("step %d: %s = %v (present %v), want 0", step, k, v, ok)
			}
		}
		p99, ok := m[metrics.ProbeDelayP99]
		if !ok || p99 <= 0 || p99 > 0.5 {
			t.Errorf("step %d: probe.delay.p99 = %v, want (0, 0.5s] on an idle loopback bus", step, p99)
		}
		if m[metrics.ProbeDelayMax] < m[metrics.ProbeDelayP50] {
			t.Errorf("step %d: max %v < p50 %v", step, m[metrics.ProbeDelayMax], m[metrics.ProbeDelayP50])
		}
	}
	// Warmup messages were published too: the bus saw more than the hold's.
	if st := srv.Stats(); st.Published < 2*120 {
		t.Errorf("bus published %d, want at least 240 over two steps with warmup", st.Published)
	}
}

func TestPubSubProbeCannotSubscribe(t *testing.T) {
	url, _ := startBus(t, eventbus.Config{})
	cfg := pubsubConfig(url, "probe")
	cfg.Subscribe = url + "/subscribe" // no topic: 400
	pr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	m, err := pr.Step(stepCtx(t), 0, time.Second)
	if err == nil || !strings.Contains(err.Error(), "could not subscribe") || !strings.Contains(err.Error(), "status 400") {
		t.Fatalf("err = %v, want 'could not subscribe ... status 400'", err)
	}
	if m[SubscribeErrorsCount] != 1 {
		t.Errorf("probe.subscribe.errors.count = %v, want 1", m[SubscribeErrorsCount])
	}
	if _, ok := m[metrics.ProbeLostRatio]; ok {
		t.Errorf("probe.lost.ratio reported although nothing was measured")
	}
}

func TestPubSubProbeCannotPublish(t *testing.T) {
	url, _ := startBus(t, eventbus.Config{MaxBody: 10}) // every probe message is too large: 413
	pr, err := New(pubsubConfig(url, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	m, err := pr.Step(stepCtx(t), 0, time.Second)
	if err == nil || !strings.Contains(err.Error(), "could not publish") || !strings.Contains(err.Error(), "413") {
		t.Fatalf("err = %v, want 'could not publish ... 413'", err)
	}
	if m[PublishErrorsCount] != m[SentCount] || m[SentCount] < 40 {
		t.Errorf("publish errors %v of %v sent, want all of about 50", m[PublishErrorsCount], m[SentCount])
	}
	if m[metrics.ProbeLostRatio] != 1 {
		t.Errorf("probe.lost.ratio = %v, want 1", m[metrics.ProbeLostRatio])
	}
}

// slowBody is a subscriber that stops reading for a while once it has
// read its confirmation, as a busy client does.
type slowBody struct {
	io.ReadCloser
	reads int
	stall time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	b.reads++
	if b.reads == 2 {
		time.Sleep(b.stall)
	}
	return b.ReadCloser.Read(p)
}

// slowTransport makes the first subscription stream a slow reader, so the
// bus's writes to it block (its receive buffer is small) and its
// per-subscriber buffer fills.
type slowTransport struct {
	base http.RoundTripper
	subs atomic.Int64
}

func (s *slowTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(r)
	if err == nil && strings.Contains(r.URL.Path, "subscribe") && s.subs.Add(1) == 1 {
		resp.Body = &slowBody{ReadCloser: resp.Body, stall: 2500 * time.Millisecond}
	}
	return resp, err
}

func smallRcvBuf(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
	})
	if err != nil {
		return err
	}
	return serr
}

func TestPubSubProbeCountsMessagesDroppedForASlowSubscriber(t *testing.T) {
	url, srv := startBusOn(t, eventbus.Config{SubscriberBuffer: 2, WriteTimeout: 200 * time.Millisecond},
		func(ln net.Listener) net.Listener { return smallSendBuffers{ln} })
	cfg := pubsubConfig(url, "probe")
	cfg.Rate = 200
	cfg.Timeout = 2 * time.Second
	d := &net.Dialer{Control: smallRcvBuf}
	cfg.Client = &http.Client{Transport: &slowTransport{base: &http.Transport{
		DialContext: d.DialContext, MaxIdleConnsPerHost: 64,
	}}}
	pr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	m, err := pr.Step(stepCtx(t), 500*time.Millisecond, 4*time.Second)
	if err != nil {
		t.Errorf("Step: %v", err)
	}
	t.Logf("metrics %v, err %v, bus %+v", m, err, srv.Stats())
	st := srv.Stats()
	if st.Dropped == 0 {
		t.Fatalf("the bus dropped no subscriber; the test did not make a slow one")
	}
	if m[metrics.ProbeLostRatio] < 0.05 {
		t.Errorf("probe.lost.ratio = %v after the bus dropped %d messages, want >= 0.05", m[metrics.ProbeLostRatio], st.DroppedMessages)
	}
	if m[LostCount] != m[SentCount]-m[DeliveredCount] {
		t.Errorf("lost %v != sent %v - delivered %v", m[LostCount], m[SentCount], m[DeliveredCount])
	}
	// On a loaded machine some publishes may time out too; they are counted
	// apart, as the probe's publish errors, and among the lost.
	if m[LostCount] < m[PublishErrorsCount] {
		t.Errorf("lost %v < publish errors %v: a message never published cannot be delivered", m[LostCount], m[PublishErrorsCount])
	}
	if m[SubscribeDroppedCount] < 1 {
		t.Errorf("probe.subscribe.dropped.count = %v, want >= 1", m[SubscribeDroppedCount])
	}
}

func TestHTTPProbe(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if n%10 == 0 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		if n%10 == 5 {
			_, _ = io.WriteString(w, "degraded")
			return
		}
		_, _ = io.WriteString(w, "status: ok")
	}))
	defer srv.Close()
	pr, err := New(Config{Kind: KindHTTP, URL: srv.URL + "/healthz", Expect: "ok", Rate: 50, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	m, err := pr.Step(stepCtx(t), 200*time.Millisecond, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v", m)
	// Two of every ten answers fail: one a 500, one without "ok".
	if r := m[metrics.ProbeLostRatio]; r < 0.15 || r > 0.25 {
		t.Errorf("probe.lost.ratio = %v, want about 0.2", r)
	}
	if m[metrics.ProbeDelayP99] <= 0 || m[metrics.ProbeDelayP99] > 0.5 {
		t.Errorf("probe.delay.p99 = %v", m[metrics.ProbeDelayP99])
	}
}

func TestHTTPProbeAllFail(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	pr, err := New(Config{Kind: KindHTTP, URL: "http://" + addr + "/", Rate: 20, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	m, err := pr.Step(stepCtx(t), 0, time.Second)
	if err == nil || !strings.Contains(err.Error(), "all") {
		t.Fatalf("err = %v, want all requests failed", err)
	}
	if m[metrics.ProbeLostRatio] != 1 {
		t.Errorf("probe.lost.ratio = %v, want 1", m[metrics.ProbeLostRatio])
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{Kind: "smtp", Rate: 1}, `probe kind "smtp": use http or pubsub`},
		{Config{Kind: KindHTTP, Rate: 0, URL: "http://127.0.0.1:1/"}, "probe rate 0/s: must be > 0"},
		{Config{Kind: KindHTTP, Rate: 1, URL: "127.0.0.1:1"}, `probe url "127.0.0.1:1": use an http://`},
		{Config{Kind: KindPubSub, Rate: 1, Bus: delivery.Bus{Publish: "http://127.0.0.1:1/p"}}, `probe subscribe URL "": use http:// or https:// (Server-Sent Events) or ws:// or wss:// (WebSocket)`},
		{Config{Kind: KindPubSub, Rate: 1, Bus: delivery.Bus{Publish: "http://127.0.0.1:1/p", Subscribe: "http://127.0.0.1:1/s", Confirm: "maybe"}}, `probe confirm: confirmation "maybe": use none, first-event, or comment PREFIX`},
		{Config{Kind: KindHTTP, Rate: 1, URL: "http://127.0.0.1:1/", Timeout: -1}, "probe timeout -1ns: must be >= 0"},
	} {
		_, err := New(tt.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func TestPubSubProbeCancelled(t *testing.T) {
	url, _ := startBus(t, eventbus.Config{})
	pr, err := New(pubsubConfig(url, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Second, cancel)
	begin := time.Now()
	m, err := pr.Step(ctx, 0, 20*time.Second)
	if err != context.Canceled {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if el := time.Since(begin); el > 10*time.Second {
		t.Errorf("Step returned %v after the cancel, want promptly", el)
	}
	if m[SentCount] < 10 {
		t.Errorf("sent %v before the cancel, want what was measured so far", m[SentCount])
	}
}

// The bundled bus works with every confirmation mode: none waits the settle
// time, first-event publishes warm-up messages that are never counted.
func TestPubSubProbeConfirmations(t *testing.T) {
	url, _ := startBus(t, eventbus.Config{})
	for _, mode := range []string{"none", "first-event"} {
		cfg := pubsubConfig(url, "probe-"+mode)
		cfg.Confirm, cfg.Settle = mode, 200*time.Millisecond
		pr, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		m, err := pr.Step(stepCtx(t), 200*time.Millisecond, time.Second)
		pr.Close()
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if m[SentCount] < 40 || m[DeliveredCount] != m[SentCount] || m[LostCount] != 0 || m[ForeignCount] != 0 {
			t.Errorf("%s: %v", mode, m)
		}
	}
}

// fakeSilentBus is a fake bus for the tests of confirmation: it accepts
// publishes and delivers none; its streams greet and then send an event of
// their own now and then.
func fakeSilentBus(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, ": hi\n\n")
		for i := 0; i < 100; i++ {
			_, _ = io.WriteString(w, "data: {\"status\":\"waiting\"}\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestPubSubProbeServerNeverConfirms(t *testing.T) {
	url := fakeSilentBus(t)
	for mode, wants := range map[string][]string{
		`comment ": subscribed"`: {`confirmation comment ": subscribed": no comment or message starting with ": subscribed" within 1s; received instead`,
			`lines after the response headers (status 200, Content-Type "text/event-stream"): ": hi", "data: {\"status\":\"waiting\"}"`},
		"first-event": {`confirmation first-event: no event carrying a loadramp marker within 1s; received instead`,
			`events after the response headers: "{\"status\":\"waiting\"}"`},
	} {
		pr, err := New(Config{Kind: KindPubSub, Rate: 10, Timeout: time.Second, Log: zerolog.Nop(),
			Bus: delivery.Bus{Publish: url + "/pub", Subscribe: url + "/sub", Confirm: mode}})
		if err != nil {
			t.Fatal(err)
		}
		m, err := pr.Step(stepCtx(t), 0, time.Second)
		pr.Close()
		if err == nil || !strings.Contains(err.Error(), "probe could not subscribe") {
			t.Fatalf("%s: err = %v", mode, err)
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: the error does not say %q:\n%v", mode, w, err)
			}
		}
		if m[SubscribeErrorsCount] != 1 {
			t.Errorf("%s: %v", mode, m)
		}
	}
}

// The probe over a real server's WebSocket: nchan, subscribing by WebSocket
// and publishing by POST.
func TestPubSubProbeOverNchanWebSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	n := pubsubtest.StartNchan(t, 1024, 0)
	pr, err := New(Config{Kind: KindPubSub, Rate: 50, Log: zerolog.Nop(), Bus: delivery.Bus{
		Publish: n.URL + "/pub/{{ .topic }}", Subscribe: "ws" + strings.TrimPrefix(n.URL, "http") + "/sub/{{ .topic }}",
		PublishTopic: "probe", SubscribeTopic: "probe", Body: `{"probe":"{{ .marker }}"}`, Settle: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	for step := 0; step < 2; step++ {
		m, err := pr.Step(stepCtx(t), 200*time.Millisecond, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m[SentCount] < 40 || m[DeliveredCount] != m[SentCount] || m[DuplicatesCount] != 0 || m[metrics.ProbeDelayP99] <= 0 {
			t.Errorf("step %d: %v", step, m)
		}
	}
}

// TestScheduleSaturates: a rate so low that the gap between two messages
// overflows a Duration sends the first one and ends, instead of wrapping
// the schedule into the past and sending without end; at a normal rate the
// count is rate x window.
func TestScheduleSaturates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		rate float64
		want uint64
	}{{1e-300, 1}, {1e-9, 1}, {1000, 100}} {
		n := schedule(ctx, time.Now().Add(-time.Hour), tc.rate, 100*time.Millisecond, func(uint64, time.Duration) {})
		if n != tc.want || ctx.Err() != nil {
			t.Errorf("rate %g over 100 ms: %d sends (ctx %v), want %d", tc.rate, n, ctx.Err(), tc.want)
		}
	}
}
