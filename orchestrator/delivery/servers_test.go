package delivery

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/internal/pubsubtest"
)

// The transports against real servers from Debian's packages: nchan (SSE and
// WebSocket subscriptions, HTTP publishing) and nats-server (WebSocket both
// ways, in the NATS text protocol).

func compile(t *testing.T, b Bus) *Compiled {
	t.Helper()
	c, err := b.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// roundTrip subscribes client 0 of c, publishes n messages through
// publisher 0 and returns what the subscription received of them.
func roundTrip(t *testing.T, c *Compiled, n int) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topic, _ := c.SubscribeTopic(0)
	spec, err := c.Subscription(0, topic, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Subscribe(ctx, nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ptopic, _ := c.PublishTopic(0)
	pubSpec, err := c.Publication(0, ptopic, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(http.DefaultClient, pubSpec)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	body, err := c.Body(0, ptopic, "test-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Message, n)
	go func() {
		for {
			data, err := st.Next()
			if err != nil {
				close(got)
				return
			}
			EachFrom(data, "test-1", func(p int, q uint64, s time.Duration) {
				got <- Message{Src: "test-1", Pub: p, Seq: q, Sent: s}
			})
		}
	}()
	if c.Confirm().Mode == ConfirmNone {
		time.Sleep(DefaultSettle)
	}
	base := time.Now()
	for i := 1; i <= n; i++ {
		if err := pub.Publish(ctx, body.Append(nil, uint64(i), time.Since(base))); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	var out []Message
	for len(out) < n {
		select {
		case m, ok := <-got:
			if !ok {
				t.Fatalf("the stream ended after %d messages", len(out))
			}
			out = append(out, m)
		case <-ctx.Done():
			t.Fatalf("%d of %d messages arrived", len(out), n)
		}
	}
	return out
}

func checkSeqs(t *testing.T, got []Message) {
	t.Helper()
	for i, m := range got {
		if m.Src != "test-1" || m.Seq != uint64(i+1) {
			t.Errorf("message %d: %+v", i, m)
		}
	}
}

func TestNchanSSEAndWebSocket(t *testing.T) {
	n := pubsubtest.StartNchan(t, 1024, 0)
	ws := "ws" + strings.TrimPrefix(n.URL, "http")
	for _, sub := range []string{n.URL + "/sub/{{ .topic }}", ws + "/sub/{{ .topic }}"} {
		c := compile(t, Bus{Publish: n.URL + "/pub/{{ .topic }}", Subscribe: sub, PublishTopic: "t{{ .index }}", SubscribeTopic: "t{{ .index }}",
			Body: `{"data":"{{ .marker }}"}`})
		checkSeqs(t, roundTrip(t, c, 20))
	}
	// nchan greets an EventSource with ": hi" and never says ": subscribed".
	c := compile(t, Bus{Publish: n.URL + "/pub/x", Subscribe: n.URL + "/sub/x", Confirm: `comment ": subscribed"`})
	spec, _ := c.Subscription(0, "", 500*time.Millisecond)
	_, err := Subscribe(context.Background(), nil, spec)
	if !errors.Is(err, ErrNotConfirmed) || !strings.Contains(err.Error(), `confirmation comment ": subscribed"`) || !strings.Contains(err.Error(), `": hi"`) {
		t.Errorf("nchan with comment confirmation: %v", err)
	}
}

// natsBus speaks the NATS text protocol over nats-server's WebSocket.
func natsBus(ws string) Bus {
	return Bus{
		Publish: ws, Subscribe: ws,
		PublishTopic: "load.{{ .index }}", SubscribeTopic: "load.{{ .index }}",
		PublishOpen:   []string{"CONNECT {\"verbose\":false,\"protocol\":1}\r\n"},
		SubscribeOpen: []string{"CONNECT {\"verbose\":false,\"protocol\":1}\r\nSUB {{ .topic }} 1\r\nPING\r\n"},
		Body:          "PUB {{ .topic }} {{ len .marker }}\r\n{{ .marker }}\r\n",
		Replies:       map[string]string{"PING": "PONG\r\n"},
		Confirm:       "comment PONG",
	}
}

func TestNATSWebSocket(t *testing.T) {
	n := pubsubtest.StartNATS(t, 0)
	checkSeqs(t, roundTrip(t, compile(t, natsBus(n.WS)), 20))
	// Without the PING, no PONG confirms: the error names the mode and the
	// INFO the server sent instead.
	b := natsBus(n.WS)
	b.SubscribeOpen = []string{"CONNECT {\"verbose\":false}\r\nSUB t 1\r\n"}
	c := compile(t, b)
	spec, _ := c.Subscription(0, "t", 500*time.Millisecond)
	_, err := Subscribe(context.Background(), nil, spec)
	if !errors.Is(err, ErrNotConfirmed) || !strings.Contains(err.Error(), `confirmation comment "PONG"`) ||
		!strings.Contains(err.Error(), `1 message after the WebSocket handshake: "INFO {`) {
		t.Errorf("nats without PING: %v", err)
	}
}
