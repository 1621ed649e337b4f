package eventbus

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPublishSubscribeDeliveryAndTopicIsolation(t *testing.T) {
	ts := start(t, Config{})
	a1 := ts.subscribe(t, "a")
	a2 := ts.subscribe(t, "a")
	b := ts.subscribe(t, "b")

	msgs := []string{`{"n":1}`, "two\nlines", `{"n":3}`}
	for _, m := range msgs {
		if code := ts.publish(t, "a", m); code != http.StatusOK {
			t.Fatalf("publish to a: status %d", code)
		}
	}
	if code := ts.publish(t, "b", "only-b"); code != http.StatusOK {
		t.Fatalf("publish to b: status %d", code)
	}
	if code := ts.publish(t, "nobody", "lost"); code != http.StatusOK {
		t.Fatalf("publish to a topic without subscribers: status %d", code)
	}
	for i, sub := range []*sseClient{a1, a2} {
		for _, want := range msgs {
			if got := sub.next(t); got != want {
				t.Errorf("subscriber a%d: got %q, want %q", i+1, got, want)
			}
		}
	}
	if got := b.next(t); got != "only-b" {
		t.Errorf("subscriber b: got %q, want only-b (topics must be isolated)", got)
	}
	select {
	case e := <-b.events:
		t.Errorf("subscriber b got a message of another topic: %q", e)
	case <-time.After(100 * time.Millisecond):
	}
	st := ts.Stats()
	if st.Published != 5 || st.Delivered != 7 || st.Subscribers != 3 || st.Topics != 2 {
		t.Errorf("stats = %+v, want published 5, delivered 7, subscribers 3, topics 2", st)
	}
	a1.close()
	b.close()
	waitFor(t, "subscribers to leave", func() bool { s := ts.Stats(); return s.Subscribers == 1 && s.Topics == 1 })
}

func TestPublishReportsReceivers(t *testing.T) {
	ts := start(t, Config{})
	ts.subscribe(t, "r")
	ts.subscribe(t, "r")
	resp, err := http.Post(ts.url+"/publish?topic=r", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Receivers int }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Receivers != 2 {
		t.Errorf("receivers = %d, want 2", out.Receivers)
	}
}

func TestRequestErrors(t *testing.T) {
	ts := start(t, Config{MaxBody: 1000, MaxTopicLen: 10})
	tests := []struct {
		name, method, path, body string
		chunked                  bool
		want                     int
	}{
		{"body at the limit", "POST", "/publish?topic=t", strings.Repeat("x", 1000), false, 200},
		{"body over the limit", "POST", "/publish?topic=t", strings.Repeat("x", 1001), false, 413},
		{"chunked body over the limit", "POST", "/publish?topic=t", strings.Repeat("x", 5000), true, 413},
		{"missing topic", "POST", "/publish", "x", false, 400},
		{"topic too long", "POST", "/publish?topic=" + strings.Repeat("t", 11), "x", false, 400},
		{"publish with GET", "GET", "/publish?topic=t", "", false, 405},
		{"subscribe with POST", "POST", "/subscribe?topic=t", "", false, 405},
		{"subscribe without topic", "GET", "/subscribe", "", false, 400},
		{"healthz", "GET", "/healthz", "", false, 200},
		{"unknown path", "GET", "/nope", "", false, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // unknown length: sent chunked
			}
			req, _ := http.NewRequest(tt.method, ts.url+tt.path, body)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d (%q), want %d", resp.StatusCode, b, tt.want)
			}
			if tt.path == "/healthz" && string(b) != "ok" {
				t.Errorf("healthz body %q, want ok", b)
			}
		})
	}
	if st := ts.Stats(); st.TooLarge != 2 {
		t.Errorf("too_large = %d, want 2", st.TooLarge)
	}
}

func TestMaxInflight(t *testing.T) {
	ts := start(t, Config{MaxInflight: 2})
	// Subscriptions are requests in flight for as long as they last.
	s1 := ts.subscribe(t, "x")
	ts.subscribe(t, "y")
	if code := ts.publish(t, "x", "m"); code != http.StatusServiceUnavailable {
		t.Fatalf("third request in flight: status %d, want 503", code)
	}
	if st := ts.Stats(); st.Rejected != 1 || st.Inflight != 2 {
		t.Errorf("stats = %+v, want rejected 1, inflight 2", st)
	}
	// Monitoring endpoints are not limited.
	resp, err := http.Get(ts.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz at the in-flight limit: status %d", resp.StatusCode)
	}
	s1.close()
	waitFor(t, "a slot to free", func() bool { return ts.Stats().Inflight == 1 })
	if code := ts.publish(t, "x", "m"); code != http.StatusOK {
		t.Errorf("publish below the limit: status %d, want 200", code)
	}
}

func TestTopicBound(t *testing.T) {
	ts := start(t, Config{MaxTopics: 2})
	ts.subscribe(t, "a")
	ts.subscribe(t, "b")
	ts.subscribe(t, "a") // an existing topic is fine
	resp, err := http.Get(ts.url + "/subscribe?topic=c")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("subscription to a third topic: status %d, want 503", resp.StatusCode)
	}
}

func TestStatsEndpoint(t *testing.T) {
	ts := start(t, Config{})
	ts.publish(t, "s", "m")
	resp, err := http.Get(ts.url + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"published", "delivered", "dropped", "dropped_messages", "subscribers", "inflight", "rejected", "queued", "topics", "too_large"} {
		if _, ok := m[k]; !ok {
			t.Errorf("stats lacks %q: %v", k, m)
		}
	}
	if m["published"] != 1 {
		t.Errorf("published = %d, want 1", m["published"])
	}
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	const buffer = 4
	ts := start(t, Config{SubscriberBuffer: buffer, WriteTimeout: time.Second})
	fast := ts.subscribe(t, "other")

	// A subscriber that never reads past the headers, with a small receive
	// buffer so the server's writes block soon.
	d := net.Dialer{}
	conn, err := d.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /subscribe?topic=slow HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the slow subscriber's headers: %v", err)
		}
		if strings.HasPrefix(line, ": subscribed") {
			break
		}
	}

	msg := strings.Repeat("z", 32<<10)
	published := 0
	for i := 0; i < 2000 && ts.Stats().Dropped == 0; i++ {
		if code := ts.publish(t, "slow", msg); code != http.StatusOK {
			t.Fatalf("publish: status %d", code)
		}
		published++
	}
	st := ts.Stats()
	if st.Dropped != 1 {
		t.Fatalf("after %d publishes of 32 KiB the slow subscriber was not dropped: %+v", published, st)
	}
	want := fmt.Sprintf("eventbus: dropping slow subscriber topic=slow remote=%s after %d buffered messages", conn.LocalAddr(), buffer)
	if !strings.Contains(ts.logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, ts.logs.String())
	}
	// The handler leaves once its blocked write times out (WriteTimeout).
	waitFor(t, "the slow subscriber's handler to end", func() bool { s := ts.Stats(); return s.Subscribers == 1 && s.Inflight == 1 })
	st = ts.Stats()
	// Every message published to the slow subscriber was either delivered
	// or counted as dropped: the one that did not fit, the ones left in its
	// buffer and the batch its blocked write never finished.
	if st.DroppedMessages < 1 || st.Delivered+st.DroppedMessages != int64(published) {
		t.Errorf("delivered %d + dropped_messages %d != %d published", st.Delivered, st.DroppedMessages, published)
	}
	// Further publishes to the topic reach nobody and do not fail.
	if code := ts.publish(t, "slow", "after"); code != http.StatusOK {
		t.Errorf("publish after the drop: status %d", code)
	}
	// Other topics are unaffected.
	ts.publish(t, "other", "still here")
	if got := fast.next(t); got != "still here" {
		t.Errorf("other subscriber got %q", got)
	}
	t.Logf("dropped after %d publishes; dropped_messages=%d", published, st.DroppedMessages)
}

func TestHeartbeat(t *testing.T) {
	ts := start(t, Config{Heartbeat: 50 * time.Millisecond})
	resp, err := http.Get(ts.url + "/subscribe?topic=h")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	beats := 0
	deadline := time.AfterFunc(5*time.Second, func() { resp.Body.Close() })
	defer deadline.Stop()
	for beats < 2 && sc.Scan() {
		if sc.Text() == ": heartbeat" {
			beats++
		}
	}
	if beats < 2 {
		t.Errorf("saw %d heartbeats within 5s, want 2", beats)
	}
}

func TestGracefulShutdownClosesStreams(t *testing.T) {
	ts := start(t, Config{})
	sub := ts.subscribe(t, "g")
	// Pre-opened connections that never send a request must not hold up
	// the shutdown (net/http alone waits 5 s for them).
	for range 3 {
		c, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(50 * time.Millisecond) // let the server accept them
	begin := time.Now()
	if err := ts.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	select {
	case <-sub.done:
	case <-time.After(time.Second):
		t.Fatal("the SSE stream stayed open after shutdown")
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("shutdown took %v with an open stream", d)
	}
	logs := ts.logs.String()
	for _, want := range []string{"eventbus: listening on 127.0.0.1:", "eventbus: shutting down", "eventbus: stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestAppendEvent(t *testing.T) {
	tests := []struct{ msg, want string }{
		{"", "data: \n\n"},
		{"hello", "data: hello\n\n"},
		{"a\nb", "data: a\ndata: b\n\n"},
		{"a\r\nb\rc", "data: a\ndata: b\ndata: c\n\n"},
		{"a\n", "data: a\ndata: \n\n"},
	}
	for _, tt := range tests {
		if got := string(appendEvent(nil, []byte(tt.msg))); got != tt.want {
			t.Errorf("appendEvent(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" means valid
	}{
		{"defaults", DefaultConfig(), ""},
		{"negative inflight", Config{MaxInflight: -1}, "max-inflight"},
		{"negative capacity", Config{Capacity: -5}, "capacity"},
		{"absurd capacity", Config{Capacity: 1e12}, "capacity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("New: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("New: %v, want an error about %s", err, tt.want)
			}
		})
	}
}

func TestLogRequests(t *testing.T) {
	tests := []struct {
		name string
		on   bool
	}{{"on", true}, {"off", false}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, Config{LogRequests: tt.on})
			ts.publish(t, "logged", "m")
			got := strings.Contains(ts.logs.String(), "eventbus: POST /publish?topic=logged 200 ")
			if got != tt.on {
				t.Errorf("request line logged = %v, want %v:\n%s", got, tt.on, ts.logs.String())
			}
		})
	}
}

func TestShutdownRejectsQueuedPublishes(t *testing.T) {
	// At 0.2 publish/s the second publish waits about 5 s for its slot.
	ts := start(t, Config{Capacity: 0.2})
	if code := ts.publish(t, "q", "first"); code != http.StatusOK {
		t.Fatalf("first publish: status %d", code)
	}
	codes := make(chan int, 1)
	go func() {
		resp, err := http.Post(ts.url+"/publish?topic=q", "text/plain", strings.NewReader("second"))
		if err != nil {
			codes <- -1
			return
		}
		resp.Body.Close()
		codes <- resp.StatusCode
	}()
	waitFor(t, "the second publish to queue", func() bool { return ts.Stats().Queued == 1 })
	begin := time.Now()
	if err := ts.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if code := <-codes; code != http.StatusServiceUnavailable {
		t.Errorf("queued publish at shutdown: status %d, want 503", code)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("shutdown waited %v for a queued publish", d)
	}
}

func TestMaxWaitRejects(t *testing.T) {
	// 1/s with at most 1.5 s of queueing: of 10 simultaneous publishes the
	// slots at 0 s and 1 s fit; the next, at 2 s, is more than 1.5 s away
	// for any publish arriving within the first 0.5 s, and is refused.
	ts := start(t, Config{Capacity: 1, MaxWait: 1500 * time.Millisecond})
	var wg sync.WaitGroup
	codes := make([]int, 10)
	for i := range codes {
		wg.Go(func() {
			resp, err := http.Post(ts.url+"/publish?topic=w", "text/plain", strings.NewReader("m"))
			if err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	ok, rejected := 0, 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusServiceUnavailable:
			rejected++
		}
	}
	if ok != 2 || rejected != 8 {
		t.Errorf("%d served and %d rejected of 10 (codes %v), want 2 served and 8 rejected with 503", ok, rejected, codes)
	}
	if st := ts.Stats(); st.Rejected != int64(rejected) {
		t.Errorf("stats rejected %d, want %d", st.Rejected, rejected)
	}
}
