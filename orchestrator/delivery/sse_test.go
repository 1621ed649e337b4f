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
		}
		if r.Header.Get("Accept") != "text/event-stream" {
			t.Errorf("Accept %q", r.Header.Get("Accept"))
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

	s, err := Subscribe(ctx, srv.Client(), srv.URL+"/x", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	close(release)
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

	if _, err := Subscribe(ctx, srv.Client(), srv.URL+"/missing", time.Second); err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Errorf("404: %v", err)
	}
	if _, err := Subscribe(ctx, srv.Client(), srv.URL+"/silent", 200*time.Millisecond); !errors.Is(err, ErrNotConfirmed) {
		t.Errorf("unconfirmed: %v, want ErrNotConfirmed", err)
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
	s, err := Subscribe(context.Background(), srv.Client(), srv.URL, time.Second)
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
