package delivery

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var busConfirm = Confirm{Mode: ConfirmComment, Prefix: ": subscribed"}

func TestSubscribeAndNext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.Error(w, "no such topic", http.StatusNotFound)
			return
		case "/silent":
			w.Header().Set("Content-Type", "text/event-stream")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		case "/hello": // a server that greets and never confirms
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, ": hi\n\ndata: not ours\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		if r.Header.Get("Accept") != "text/event-stream" || r.Header.Get("X-Token") != "t1" {
			t.Errorf("Accept %q, X-Token %q", r.Header.Get("Accept"), r.Header.Get("X-Token"))
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, ": subscribed topic=x\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: a\ndata: b\n\n: heartbeat\n\ndata:"+strings.Repeat("z", 20000)+"\r\n\r\n")
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, c := range []*http.Client{srv.Client(), nil} { // net/http's, and a lean connection
		sub := Subscription{URL: srv.URL + "/x", Header: http.Header{"X-Token": {"t1"}}, Confirm: busConfirm, Timeout: time.Second}
		s, err := Subscribe(ctx, c, sub)
		if err != nil {
			t.Fatal(err)
		}
		if c != nil {
			close(release)
		}
		if got, err := s.Next(); err != nil || string(got) != "a\nb" {
			t.Errorf("first event %q, %v; want a\\nb", got, err)
		}
		if got, err := s.Next(); err != nil || len(got) != 20000 {
			t.Errorf("a long event: %d bytes, %v", len(got), err)
		}
		if _, err := s.Next(); err == nil {
			t.Error("the ended stream gave no error")
		}
		_ = s.Close()

		sub.URL = srv.URL + "/missing"
		if _, err := Subscribe(ctx, c, sub); err == nil || !strings.Contains(err.Error(), "status 404") {
			t.Errorf("404: %v", err)
		}
		sub.URL, sub.Timeout = srv.URL+"/silent", 200*time.Millisecond
		_, err = Subscribe(ctx, c, sub)
		if !errors.Is(err, ErrNotConfirmed) || !strings.Contains(err.Error(), `confirmation comment ": subscribed"`) ||
			!strings.Contains(err.Error(), "received instead nothing after the response headers (status 200") {
			t.Errorf("unconfirmed: %v", err)
		}
		// A server that greets but never confirms: the error names the mode
		// and what arrived instead.
		sub.URL = srv.URL + "/hello"
		_, err = Subscribe(ctx, c, sub)
		if !errors.Is(err, ErrNotConfirmed) || !strings.Contains(err.Error(), `confirmation comment ": subscribed": no comment or message starting with ": subscribed" within 200ms`) ||
			!strings.Contains(err.Error(), `2 lines after the response headers (status 200, Content-Type "text/event-stream"): ": hi", "data: not ours"`) {
			t.Errorf("greeting, unconfirmed: %v", err)
		}
		// Confirmation none: live once the headers arrive.
		sub.Confirm = Confirm{Mode: ConfirmNone}
		s, err = Subscribe(ctx, c, sub)
		if err != nil {
			t.Fatalf("none: %v", err)
		}
		if got, err := s.Next(); err != nil || string(got) != "not ours" {
			t.Errorf("none: first event %q, %v", got, err)
		}
		_ = s.Close()
	}
}

func TestCloseEndsNext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, ": subscribed topic=x\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	s, err := Subscribe(context.Background(), srv.Client(), Subscription{URL: srv.URL, Confirm: busConfirm, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := s.Next(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	_ = s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Errorf("Next after Close: %v, want io.EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return after Close")
	}
}
