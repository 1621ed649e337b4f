package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeKeepAliveServer is a fake WebSocket server on loopback: it sends msgs,
// one WebSocket message each, then counts the answers it receives until the
// client closes.
func fakeKeepAliveServer(t *testing.T, msgs []string, answers *atomic.Int64, got chan<- string) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for _, m := range msgs {
			if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				return
			}
		}
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			answers.Add(1)
			got <- string(b)
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// TestRepliesAnswerKeepAlivesInsideMessages: nats-server sends its PING in
// the same WebSocket message as a MSG when both are pending. Every PING line
// is answered, and the MSG in its message is still an event: swallowing the
// whole message lost a delivery now and then.
func TestRepliesAnswerKeepAlivesInsideMessages(t *testing.T) {
	msgs := []string{
		"PING\r\n",
		"PING\r\nMSG t 1 5\r\nfirst\r\n",
		"MSG t 1 6\r\nsecond\r\nPING\r\n",
		"MSG t 1 5\r\nthird\r\n",
		"end",
	}
	var answers atomic.Int64
	got := make(chan string, 16)
	url := fakeKeepAliveServer(t, msgs, &answers, got)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := Subscribe(ctx, nil, Subscription{URL: url, Replies: []Reply{{On: "PING", Send: "PONG\r\n"}}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want := []string{"MSG t 1 5\r\nfirst\r\n", "MSG t 1 6\r\nsecond\r\n", "MSG t 1 5\r\nthird\r\n", "end"}
	for i, w := range want {
		b, err := st.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if string(b) != w {
			t.Errorf("event %d = %q, want %q", i, b, w)
		}
	}
	deadline := time.After(5 * time.Second)
	for answers.Load() < 3 {
		select {
		case a := <-got:
			if a != "PONG\r\n" {
				t.Errorf("answer %q, want PONG", a)
			}
		case <-deadline:
			t.Fatalf("%d answers, want a PONG for each of the 3 PINGs", answers.Load())
		}
	}
}
