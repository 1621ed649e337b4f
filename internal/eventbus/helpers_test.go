package eventbus

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	*Server
	url  string
	logs *syncBuffer
	stop func() error // cancels Serve and returns its error
}

// start serves cfg on a loopback port until the test ends.
func start(t *testing.T, cfg Config) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	cfg.Logger = log.New(logs, "", log.LstdFlags)
	srv, err := New(cfg)
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
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-done:
			case <-time.After(10 * time.Second):
				serveErr = errors.New("Serve did not return within 10s of cancel")
			}
		})
		return serveErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping the server: %v", err)
		}
	})
	return &testServer{Server: srv, url: "http://" + ln.Addr().String(), logs: logs, stop: stop}
}

// publish posts body to topic and returns the status code.
func (ts *testServer) publish(t *testing.T, topic, body string) int {
	t.Helper()
	resp, err := http.Post(ts.url+"/publish?topic="+topic, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// sseClient is a real SSE subscription read by a goroutine.
type sseClient struct {
	events chan string // data of each event, lines joined by "\n"
	cancel context.CancelFunc
	done   chan struct{} // closed when the stream ends
}

// subscribe opens an SSE stream and returns once the server has registered
// it (the ": subscribed" comment arrived).
func (ts *testServer) subscribe(t *testing.T, topic string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+"/subscribe?topic="+topic, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("subscribe: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		t.Fatalf("subscribe %s: status %d", topic, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("subscribe: Content-Type %q", ct)
	}
	c := &sseClient{events: make(chan string, 1000), cancel: cancel, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(c.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, ": subscribed"):
				close(ready)
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			case line == "" && data != nil:
				c.events <- strings.Join(data, "\n")
				data = nil
			}
		}
	}()
	select {
	case <-ready:
	case <-c.done:
		t.Fatal("subscription ended before it was registered")
	case <-time.After(5 * time.Second):
		t.Fatal("subscription not registered within 5s")
	}
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) close() { c.cancel(); <-c.done }

// next returns the next event or fails after timeout.
func (c *sseClient) next(t *testing.T) string {
	t.Helper()
	select {
	case e := <-c.events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return ""
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
