package delivery

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/internal/eventbus"
)

// startBus serves a real event bus on a loopback port until the test ends.
func startBus(t *testing.T) string {
	t.Helper()
	srv, err := eventbus.New(eventbus.Config{})
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
	return "http://" + ln.Addr().String()
}

func publish(t *testing.T, url, body string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("publish: status %d", resp.StatusCode)
	}
}

// nextWithin reads the next event, failing the test if it takes over 10 s.
func nextWithin(t *testing.T, s Stream) (string, error) {
	t.Helper()
	type res struct {
		data string
		err  error
	}
	ch := make(chan res, 1)
	go func() { d, err := s.Next(); ch <- res{string(d), err} }()
	select {
	case r := <-ch:
		return r.data, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return "", nil
	}
}

// Both transports, against the real event bus: the lean connection (nil client)
// and net/http's. Events arrive whole, a line longer than the lean reader's buffer
// included, and Close ends the stream.
func TestSubscribeTransports(t *testing.T) {
	url := startBus(t)
	long := `{"pad":"` + strings.Repeat("x", 3*leanEventBuffer) + `"}`
	for _, tc := range []struct {
		name   string
		client *http.Client
	}{{"lean", nil}, {"net/http", &http.Client{}}} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Subscribe(context.Background(), tc.client, busSub(url+"/subscribe?topic=t-"+strings.ReplaceAll(tc.name, "/", ""), 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			pub := url + "/publish?topic=t-" + strings.ReplaceAll(tc.name, "/", "")
			publish(t, pub, `{"n":1}`)
			publish(t, pub, long)
			if d, err := nextWithin(t, s); err != nil || d != `{"n":1}` {
				t.Errorf("first event %q, %v", d, err)
			}
			if d, err := nextWithin(t, s); err != nil || d != long {
				t.Errorf("long event: %d bytes, %v; want %d", len(d), err, len(long))
			}
			if err := s.Close(); err != nil && tc.client == nil {
				t.Errorf("Close: %v", err)
			}
			if _, err := nextWithin(t, s); !errors.Is(err, io.EOF) {
				t.Errorf("Next after Close: %v, want EOF", err)
			}
		})
	}
}

func TestSubscribeLeanFailures(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/missing", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no such topic", http.StatusNotFound) })
	mux.HandleFunc("/silent", func(w http.ResponseWriter, r *http.Request) { // never confirms
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("/ends", func(w http.ResponseWriter, _ *http.Request) { // ends before confirming
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte(": hello\n\n"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()

	if _, err := Subscribe(ctx, nil, busSub(srv.URL+"/missing", time.Second)); err == nil || !strings.Contains(err.Error(), "status 404: no such topic") {
		t.Errorf("404: err = %v", err)
	}
	if _, err := Subscribe(ctx, nil, busSub(srv.URL+"/silent", 300*time.Millisecond)); !errors.Is(err, ErrNotConfirmed) {
		t.Errorf("silent: err = %v, want ErrNotConfirmed", err)
	}
	if _, err := Subscribe(ctx, nil, busSub(srv.URL+"/ends", time.Second)); err == nil || !strings.Contains(err.Error(), "stream ended before") {
		t.Errorf("ends: err = %v", err)
	}
	if _, err := Subscribe(ctx, nil, busSub("ftp://example/x", time.Second)); err == nil {
		t.Error("ftp:// accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Subscribe(cctx, nil, busSub(srv.URL+"/silent", time.Second)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

// A stream whose body runs to the end of the connection (no chunked framing), and
// cancelling the subscription's context ends a stream mid-wait.
func TestSubscribeLeanCloseDelimitedAndCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				first, _ := br.ReadString('\n')
				for { // the rest of the request head
					l, err := br.ReadString('\n')
					if err != nil || l == "\r\n" {
						break
					}
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"+
					": subscribed topic=x\n\ndata: one\n\n")
				if strings.Contains(first, "hold") { // keep the stream open
					<-done
				}
			}()
		}
	}()
	url := "http://" + ln.Addr().String() + "/subscribe?topic=x"
	s, err := Subscribe(context.Background(), nil, busSub(url, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if d, err := nextWithin(t, s); err != nil || d != "one" {
		t.Errorf("event %q, %v", d, err)
	}
	if _, err := nextWithin(t, s); err == nil {
		t.Error("Next after the server closed: no error")
	}

	ctx, cancel := context.WithCancel(context.Background())
	s, err = Subscribe(ctx, nil, busSub(url+"&hold=1", 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = nextWithin(t, s) // "one"
	cancel()
	if _, err := nextWithin(t, s); err == nil {
		t.Error("Next after cancel: no error")
	}
}

// busSub subscribes as to the bundled event bus, which confirms with a comment.
func busSub(url string, timeout time.Duration) Subscription {
	return Subscription{URL: url, Confirm: busConfirm, Timeout: timeout}
}
