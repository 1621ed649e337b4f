package loadgen

import (
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// countingServer is a real loopback HTTP server that counts the connections it accepted.
type countingServer struct {
	*httptest.Server
	conns atomic.Int64 // accepted so far
	open  atomic.Int64 // open now
}

func newCountingServer(t *testing.T, h http.Handler, tlsToo bool) *countingServer {
	t.Helper()
	cs := &countingServer{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake failures are expected in tests
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			cs.conns.Add(1)
			cs.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			cs.open.Add(-1)
		}
	}
	if tlsToo {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	cs.Server = srv
	t.Cleanup(srv.Close)
	return cs
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
}

// stallingHandler answers nothing for d, or until the client goes away.
func stallingHandler(d time.Duration) http.Handler {
	return http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
	})
}

func newGen(t *testing.T, target Target, opts ...Option) *Generator {
	t.Helper()
	opts = append([]Option{WithLogger(zerolog.Nop())}, opts...)
	g, err := New(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

func runStep(t *testing.T, g *Generator, s Step) *Window {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.Warmup+s.Hold+30*time.Second)
	defer cancel()
	w, err := g.Run(ctx, s)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return w
}

// rawServer is a minimal real HTTP/1.1 server on loopback, fast enough to measure
// the generator rather than itself: it answers every request with one fixed response.
type rawServer struct {
	ln   net.Listener
	wg   sync.WaitGroup
	resp []byte
	idle time.Duration // > 0: a connection that sends nothing for this long is closed; < 0: every one at once
}

func newRawServer(tb testing.TB) *rawServer { return newIdleClosingServer(tb, 0) }

// newIdleClosingServer is a rawServer that closes a connection on which no
// request arrives for idle (0: never), as servers close idle keep-alive
// connections, one never used included; with idle < 0 it closes every
// connection as soon as it accepts it.
func newIdleClosingServer(tb testing.TB, idle time.Duration) *rawServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &rawServer{ln: ln, resp: []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), idle: idle}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serve(c) })
		}
	})
	tb.Cleanup(func() { _ = ln.Close(); s.wg.Wait() })
	return s
}

func (s *rawServer) URL() string { return "http://" + s.ln.Addr().String() + "/" }

func (s *rawServer) serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	if s.idle < 0 {
		return
	}
	n := 0
	for {
		if s.idle > 0 {
			_ = c.SetReadDeadline(time.Now().Add(s.idle))
		}
		k, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += k
		for {
			i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
			if i < 0 {
				break
			}
			if _, err := c.Write(s.resp); err != nil {
				return
			}
			n = copy(buf, buf[i+4:n])
		}
	}
}
