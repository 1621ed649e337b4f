package pubsub

import (
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/internal/eventbus"
	"github.com/loadramp/loadramp/internal/pubsubtest"
	"github.com/loadramp/loadramp/orchestrator/delivery"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// startBus serves a real event bus on a loopback port until the test ends.
func startBus(t *testing.T, cfg eventbus.Config) (string, *eventbus.Server) {
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
	go func() { done <- srv.Serve(ctx, ln) }()
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

// busSettings speaks to the bundled event bus, which confirms subscriptions
// with ": subscribed".
func busSettings(url, topic string) delivery.Bus {
	return delivery.Bus{Publish: url + "/publish?topic=" + topic, Subscribe: url + "/subscribe?topic=" + topic, Confirm: `comment ": subscribed"`}
}

func newEngineWith(t *testing.T, bus delivery.Bus) *Engine {
	t.Helper()
	e, err := New(Config{Bus: bus, BodyBytes: 200, Timeout: 2 * time.Second, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func newEngine(t *testing.T, url string) *Engine {
	t.Helper()
	return newEngineWith(t, busSettings(url, "load"))
}

func runCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantAllDelivered checks that every expected delivery arrived once.
func wantAllDelivered(t *testing.T, m metrics.Metrics, subscribers float64) {
	t.Helper()
	if exp, got := m[ExpectedCount], m[DeliveredCount]; exp != subscribers*m[metrics.RequestsCount] || got != exp || exp == 0 {
		t.Errorf("delivered %v of expected %v (requests %v, subscribers %v)", got, exp, m[metrics.RequestsCount], subscribers)
	}
	if m[LostRatio] != 0 || m[metrics.ErrorsRatio] != 0 || m[DuplicatesCount] != 0 || m[SubscribeErrors] != 0 {
		t.Errorf("lost %v, errors %v, duplicates %v, subscribe errors %v: want 0", m[LostRatio], m[metrics.ErrorsRatio], m[DuplicatesCount], m[SubscribeErrors])
	}
	if p99 := m[DelayP99]; p99 <= 0 || p99 > 1 {
		t.Errorf("pubsub.delay.p99 = %v", p99)
	}
}

func TestEngineDeliversToEverySubscriber(t *testing.T) {
	url, srv := startBus(t, eventbus.Config{})
	e := newEngine(t, url)
	var secs atomic.Int64
	res, err := e.Run(runCtx(t), Step{Publishers: 2, Subscribers: 3, Rate: 50, Warmup: 500 * time.Millisecond, Hold: 2 * time.Second,
		OnSecond: func(result.Second) { secs.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	t.Logf("%v", m)
	// 2 publishers x 50/s x 2 s = 200 messages, each to 3 subscribers.
	if n := m[metrics.RequestsCount]; n < 190 || n > 210 {
		t.Errorf("requests.count = %v, want about 200", n)
	}
	wantAllDelivered(t, m, 3)
	if rps := m[DeliveredRPS]; rps < 280 || rps > 320 {
		t.Errorf("pubsub.delivered.rps = %v, want about 300", rps)
	}
	if r := m[metrics.ThroughputRatio]; r < 0.9 || r > 1.1 {
		t.Errorf("throughput.ratio = %v", r)
	}
	if r := m[metrics.SubscribersHeldRatio]; r != 1 {
		t.Errorf("%s = %v with every subscriber subscribed through the hold, want 1", metrics.SubscribersHeldRatio, r)
	}
	if len(res.Series) != 3 || secs.Load() != 3 {
		t.Errorf("series %d seconds, OnSecond %d calls, want 3", len(res.Series), secs.Load())
	}
	if _, ok := m[TopicsCount]; ok {
		t.Errorf("per-topic figures without topic templates: %v", m)
	}
	// Every subscription is closed at the end of the step.
	if st := srv.Stats(); st.Subscribers != 0 {
		t.Errorf("subscriptions left open: %d", st.Subscribers)
	}
}

// The bundled bus works with every confirmation mode: none waits the settle
// time, first-event publishes warm-up messages that are never counted.
func TestEngineConfirmations(t *testing.T) {
	url, _ := startBus(t, eventbus.Config{})
	for _, mode := range []string{"none", "first-event"} {
		t.Run(mode, func(t *testing.T) {
			bus := busSettings(url, "c-"+mode)
			bus.Confirm, bus.Settle = mode, 200*time.Millisecond
			res, err := newEngineWith(t, bus).Run(runCtx(t), Step{Publishers: 1, Subscribers: 4, Rate: 40, Hold: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v", res.Metrics)
			wantAllDelivered(t, res.Metrics, 4)
		})
	}
}

func TestEngineSeesCapacity(t *testing.T) {
	url, _ := startBus(t, eventbus.Config{Capacity: 100})
	e := newEngine(t, url)
	res, err := e.Run(runCtx(t), Step{Publishers: 4, Subscribers: 2, Rate: 50, Warmup: 500 * time.Millisecond, Hold: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	t.Logf("%v", m)
	// 200/s offered to a bus that publishes 100/s: the queue grows through the step.
	if m[DelayP99] < 0.5 {
		t.Errorf("pubsub.delay.p99 = %v at twice the capacity, want >= 0.5s", m[DelayP99])
	}
	if m[metrics.LatencyP99] < 0.5 {
		t.Errorf("latency.p99 = %v at twice the capacity, want >= 0.5s", m[metrics.LatencyP99])
	}
}

// Publishers spread over two topics, subscribers over three: fan-in and
// fan-out are measured per topic, and a topic no one publishes to expects
// nothing.
func TestEngineTopics(t *testing.T) {
	url, _ := startBus(t, eventbus.Config{})
	bus := delivery.Bus{Publish: url + "/publish?topic={{ .topic }}", Subscribe: url + "/subscribe?topic={{ .topic }}",
		PublishTopic: "room.{{ mod .index 2 }}", SubscribeTopic: "room.{{ mod .index 3 }}", Confirm: `comment ": subscribed"`}
	res, err := newEngineWith(t, bus).Run(runCtx(t), Step{Publishers: 4, Subscribers: 6, Rate: 20, Warmup: 300 * time.Millisecond, Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	t.Logf("%v", m)
	if m[TopicsCount] != 3 || m[LostRatio] != 0 || m[WorstTopicLost] != 0 {
		t.Errorf("topics %v, lost %v, worst topic %v", m[TopicsCount], m[LostRatio], m[WorstTopicLost])
	}
	for seg, want := range map[string][2]float64{"room_0": {2, 2}, "room_1": {2, 2}, "room_2": {0, 2}} {
		pubs, subs := m[TopicMetric(seg, TopicPublishers)], m[TopicMetric(seg, TopicSubscribers)]
		if pubs != want[0] || subs != want[1] {
			t.Errorf("%s: %v publishers, %v subscribers; want %v", seg, pubs, subs, want)
		}
		exp, got := m[TopicMetric(seg, TopicExpected)], m[TopicMetric(seg, TopicDelivered)]
		if got != exp || (pubs > 0) != (exp > 0) {
			t.Errorf("%s: delivered %v of %v", seg, got, exp)
		}
	}
	// Fan-in: each of room.0's subscribers gets both its publishers' messages.
	if exp := m[TopicMetric("room_0", TopicExpected)]; exp < 2*2*20*0.9 {
		t.Errorf("room.0 expected %v deliveries, want about 2 subscribers x 2 publishers x 20", exp)
	}
}

// An agent's share of a fleet's publishers and subscribers is numbered from
// PublisherFirst and SubscriberFirst: its messages carry those numbers, and
// its subscribers count them as its own, on the topics those numbers give.
func TestEngineNumbersFromFirst(t *testing.T) {
	url, _ := startBus(t, eventbus.Config{})
	bus := delivery.Bus{Publish: url + "/publish?topic={{ .topic }}", Subscribe: url + "/subscribe?topic={{ .topic }}",
		PublishTopic: "room.{{ mod .index 2 }}", SubscribeTopic: "room.{{ mod .index 2 }}", Confirm: `comment ": subscribed"`}
	res, err := newEngineWith(t, bus).Run(runCtx(t), Step{Publishers: 2, Subscribers: 2, PublisherFirst: 3, SubscriberFirst: 5,
		Rate: 20, Warmup: 300 * time.Millisecond, Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	if m[MisroutedCount] != 0 || m[LostRatio] != 0 || m[ExpectedCount] == 0 || m[DeliveredCount] != m[ExpectedCount] {
		t.Errorf("misrouted %v, lost %v, delivered %v of %v: want every message delivered as its own", m[MisroutedCount], m[LostRatio],
			m[DeliveredCount], m[ExpectedCount])
	}
	// Publisher 3 and subscriber 5 are on room.1, publisher 4 and subscriber 6 on room.0.
	for _, seg := range []string{"room_0", "room_1"} {
		if m[TopicMetric(seg, TopicPublishers)] != 1 || m[TopicMetric(seg, TopicSubscribers)] != 1 {
			t.Errorf("%s: %v publishers, %v subscribers; want 1 and 1", seg, m[TopicMetric(seg, TopicPublishers)], m[TopicMetric(seg, TopicSubscribers)])
		}
	}
}

// Events without a marker are foreign and events with a broken one mangled:
// counted, never errors, never losses.
func TestEngineCountsForeignAndMangled(t *testing.T) {
	url, _ := startBus(t, eventbus.Config{})
	e := newEngine(t, url)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // another program on the same topic, 40 messages at most
		defer wg.Done()
		for i := 0; i < 20; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			for _, body := range []string{`{"chat":"hello"}`, "loadramp:truncated:1:00"} {
				if resp, err := http.Post(url+"/publish?topic=load", "text/plain", strings.NewReader(body)); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}
	}()
	res, err := e.Run(runCtx(t), Step{Publishers: 1, Subscribers: 2, Rate: 20, Hold: 1500 * time.Millisecond})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	t.Logf("%v", m)
	if m[ForeignCount] < 2 || m[MangledCount] < 2 {
		t.Errorf("foreign %v, mangled %v: want both counted at each subscriber", m[ForeignCount], m[MangledCount])
	}
	wantAllDelivered(t, m, 2)
}

func TestEngineCannotSubscribe(t *testing.T) {
	url, _ := startBus(t, eventbus.Config{})
	e, err := New(Config{Bus: delivery.Bus{Publish: url + "/publish?topic=x", Subscribe: url + "/subscribe"}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Run(runCtx(t), Step{Publishers: 1, Subscribers: 2, Rate: 10, Hold: time.Second})
	if err == nil || !strings.Contains(err.Error(), "none of 2 subscribers could subscribe") {
		t.Fatalf("err = %v", err)
	}
}

// fakeSilentBus is a fake bus for the tests of confirmation: it accepts
// publishes and delivers none of them; its streams greet and then send an
// event of their own now and then.
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

// A server that never confirms: the error names the confirmation mode in use
// and what arrived instead.
func TestEngineServerNeverConfirms(t *testing.T) {
	url := fakeSilentBus(t)
	for mode, want := range map[string][]string{
		`comment ": subscribed"`: {`confirmation comment ": subscribed": no comment or message starting with ": subscribed" within 1s`, `": hi"`},
		"first-event":            {"confirmation first-event: no event carrying a loadramp marker within 1s", `events after the response headers: "{\"status\":\"waiting\"}"`},
	} {
		e, err := New(Config{Bus: delivery.Bus{Publish: url + "/pub", Subscribe: url + "/sub", Confirm: mode}, Timeout: time.Second, Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Run(runCtx(t), Step{Publishers: 1, Subscribers: 2, Rate: 10, Hold: time.Second})
		if err == nil || !strings.Contains(err.Error(), "none of 2 subscribers could subscribe") {
			t.Fatalf("%s: err = %v", mode, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: the error does not say %q:\n%v", mode, w, err)
			}
		}
		if res == nil || res.Metrics[SubscribeErrors] != 2 {
			t.Errorf("%s: result %+v", mode, res)
		}
	}
}

// fakeDuplicatingBus is a fake bus that delivers every message twice and
// swaps each pair of messages, for the count of duplicates and reorders.
func fakeDuplicatingBus(t *testing.T) string {
	t.Helper()
	var mu sync.Mutex
	var subs []chan string
	var held string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			var out []string
			if held == "" {
				held = string(b)
			} else {
				out = []string{string(b), held, string(b), held}
				held = ""
			}
			for _, c := range subs {
				for _, m := range out {
					c <- m
				}
			}
			mu.Unlock()
			return
		}
		c := make(chan string, 10000)
		mu.Lock()
		subs = append(subs, c)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case m := <-c:
				_, _ = io.WriteString(w, "data: "+m+"\n\n")
				w.(http.Flusher).Flush()
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestEngineCountsDuplicatesAndReorders(t *testing.T) {
	url := fakeDuplicatingBus(t)
	e := newEngineWith(t, delivery.Bus{Publish: url + "/pub", Subscribe: url + "/sub", Settle: 100 * time.Millisecond})
	res, err := e.Run(runCtx(t), Step{Publishers: 1, Subscribers: 2, Rate: 20, Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	t.Logf("%v", m)
	// 20 messages, 10 pairs: each delivered twice, the second of a pair first.
	if d := m[DuplicatesCount]; d < 2*16 || d > 2*20 {
		t.Errorf("duplicates %v, want about 2 subscribers x 20", d)
	}
	if r := m[ReorderedCount]; r < 2*8 || r > 2*10 {
		t.Errorf("reordered %v, want about 2 subscribers x 10", r)
	}
	if m[DeliveredCount] > m[ExpectedCount] {
		t.Errorf("delivered %v of %v: a duplicate counted as a delivery", m[DeliveredCount], m[ExpectedCount])
	}
}

func TestWindow(t *testing.T) {
	var w window
	type ev struct {
		seq       uint64
		dup, late bool
	}
	for i, e := range []ev{{1, false, false}, {3, false, false}, {2, false, true}, {2, true, false}, {3, true, false},
		{100, false, false}, {40, false, true}, {39, false, true}, {39, true, false}, {37, false, true}, {36, false, true}, {36, false, true}, {20, false, true}, {101, false, false}, {1, false, true}} {
		dup, late := w.observe(e.seq)
		if dup != e.dup || late != e.late {
			t.Errorf("event %d: seq %d: dup %v late %v, want %v %v", i, e.seq, dup, late, e.dup, e.late)
		}
	}
}

func TestTopicSegments(t *testing.T) {
	got := TopicSegments([]string{"room.0", "Room-0", "", "a/b c", "__x__", "room.0"})
	want := []string{"room_0", "room_0_1", "topic", "a_b_c", "x", "room_0_5"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("segment %d = %q, want %q (all %v)", i, got[i], want[i], got)
		}
	}
}

// Over nats-server's WebSocket, publishers and subscribers both speak the
// NATS text protocol; subscriptions are live at their first warm-up message.
func TestEngineOverNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	n := pubsubtest.StartNATS(t, 0)
	bus := delivery.Bus{
		Publish: n.WS, Subscribe: n.WS,
		PublishTopic: "load.{{ mod .index 2 }}", SubscribeTopic: "load.{{ mod .index 2 }}",
		PublishOpen:   []string{"CONNECT {\"verbose\":false}\r\n"},
		SubscribeOpen: []string{"CONNECT {\"verbose\":false}\r\nSUB {{ .topic }} 1\r\n"},
		Body:          "PUB {{ .topic }} {{ len .marker }}\r\n{{ .marker }}\r\n",
		Replies:       map[string]string{"PING": "PONG\r\n"},
		Confirm:       "first-event",
	}
	res, err := newEngineWith(t, bus).Run(runCtx(t), Step{Publishers: 2, Subscribers: 6, Rate: 50, Warmup: 300 * time.Millisecond, Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	t.Logf("%v", m)
	wantAllDelivered(t, m, 3) // each subscriber hears one of the two publishers
	if m[TopicMetric("load_0", TopicSubscribers)] != 3 || m[TopicMetric("load_1", TopicDelivered)] == 0 {
		t.Errorf("per-topic figures: %v", m)
	}
	if m[ForeignCount] != 0 {
		t.Errorf("foreign %v: NATS's INFO arrives before the subscription is live and is not counted", m[ForeignCount])
	}
}

// Subscribers the bus refuses are not achieved: the step says how many of
// those asked for were subscribed through the hold.
func TestEngineSubscribersHeld(t *testing.T) {
	// Subscriptions hold their in-flight slot for the step: 4 of 5 fit.
	url, _ := startBus(t, eventbus.Config{MaxInflight: 4})
	e := newEngine(t, url)
	res, err := e.Run(runCtx(t), Step{Publishers: 1, Subscribers: 5, Rate: 10, Warmup: 200 * time.Millisecond, Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	if r := m[metrics.SubscribersHeldRatio]; r != 0.8 || m[Subscribers] != 4 || m[SubscribeErrors] != 1 {
		t.Errorf("held ratio %v, subscribers %v, refused %v; want 0.8, 4, 1", r, m[Subscribers], m[SubscribeErrors])
	}
}

func TestStepValidation(t *testing.T) {
	e := newEngine(t, "http://127.0.0.1:1")
	for _, s := range []Step{{Publishers: 0, Rate: 1, Hold: time.Second}, {Publishers: 1, Rate: 0, Hold: time.Second}, {Publishers: 1, Rate: 1},
		{Publishers: 1, Rate: 1e20, Hold: time.Second}, {Publishers: 1, Rate: math.Inf(1), Hold: time.Second},
		{Publishers: 1, Rate: 1, Warmup: time.Hour, Hold: math.MaxInt64 - time.Minute}} {
		if _, err := e.Run(runCtx(t), s); err == nil {
			t.Errorf("Run(%+v) accepted a bad step", s)
		}
	}
}

// fakeLazyBus is a fake bus that answers a subscription at once but delivers
// to it only after lag, as a server that registers subscribers in the
// background: what is published meanwhile never reaches it.
func fakeLazyBus(t *testing.T, lag time.Duration) string {
	t.Helper()
	var mu sync.Mutex
	var subs []chan string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			for _, c := range subs {
				select {
				case c <- string(b):
				default:
				}
			}
			mu.Unlock()
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		c := make(chan string, 10000)
		time.AfterFunc(lag, func() {
			mu.Lock()
			subs = append(subs, c)
			mu.Unlock()
		})
		for {
			select {
			case <-r.Context().Done():
				return
			case m := <-c:
				_, _ = io.WriteString(w, "data: "+m+"\n\n")
				w.(http.Flusher).Flush()
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// With first-event, a subscription is live once a warm-up message reaches
// it: the messages a lazy bus drops before then are never counted as lost.
func TestEngineFirstEventWaitsForALazyBus(t *testing.T) {
	url := fakeLazyBus(t, 700*time.Millisecond)
	e := newEngineWith(t, delivery.Bus{Publish: url + "/pub", Subscribe: url + "/sub", Confirm: "first-event"})
	res, err := e.Run(runCtx(t), Step{Publishers: 1, Subscribers: 3, Rate: 50, Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v", res.Metrics)
	wantAllDelivered(t, res.Metrics, 3)

	// Trusting the headers (none) with no settle time, the same bus loses
	// the first 700ms of messages: the fake does drop them.
	e = newEngineWith(t, delivery.Bus{Publish: url + "/pub", Subscribe: url + "/sub", Confirm: "none"})
	res, err = e.Run(runCtx(t), Step{Publishers: 1, Subscribers: 3, Rate: 50, Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if lost := res.Metrics[LostRatio]; lost < 0.3 {
		t.Errorf("none without settle: lost %v, want the first 700ms of 1s (0.7)", lost)
	}
}

// TestLongHoldAllocatesPerSecondStateLazily: a step's per-second counts are
// made as its seconds come, not for the whole hold up front (a day's hold
// was 86,400 histograms, 1.7 GB, before the first message).
func TestLongHoldAllocatesPerSecondStateLazily(t *testing.T) {
	url, _ := startBus(t, eventbus.Config{})
	e := newEngine(t, url)
	ctx, cancel := context.WithCancel(runCtx(t))
	var secs atomic.Int64
	step := Step{Publishers: 1, Subscribers: 1, Rate: 20, Hold: 24 * time.Hour, OnSecond: func(result.Second) {
		if secs.Add(1) == 2 {
			cancel()
		}
	}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := e.Run(ctx, step)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("the cancelled step returned no error")
	}
	if res == nil || len(res.Series) < 2 {
		t.Fatalf("cancelled step: %+v", res)
	}
	const limit = 64 << 20
	if n := after.TotalAlloc - before.TotalAlloc; n > limit {
		t.Errorf("a 24 h step cancelled after 2 s allocated %d MB, want under %d MB", n>>20, limit>>20)
	}
}

// TestAVanishingRateSaturates: a rate so low that the time between two
// messages overflows a Duration publishes the first message and ends with
// the step, instead of wrapping the schedule into the past and publishing
// without end.
func TestAVanishingRateSaturates(t *testing.T) {
	url, _ := startBus(t, eventbus.Config{})
	e := newEngine(t, url)
	res, err := e.Run(runCtx(t), Step{Publishers: 2, Subscribers: 1, Rate: 1e-300, Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// The first publisher's first message is due at once; the others are
	// spread over one gap, which is longer than the hold, like every next one.
	if n := res.Metrics[metrics.RequestsCount]; n != 1 {
		t.Errorf("requests.count = %v in a 1 s hold at 1e-300 messages/s per publisher, want the first message only", n)
	}
}
