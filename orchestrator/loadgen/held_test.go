package loadgen

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// limitServer is a real loopback HTTP/1.1 server that behaves like nginx at its
// worker_connections: it holds at most limit connections, and when a new one
// arrives with all of them taken it closes the longest idle one to make room
// (0: no limit). With closeEvery > 0 it answers every closeEvery-th request
// on a connection with "Connection: close" and closes it, as a server with a
// keep-alive request limit does.
type limitServer struct {
	ln         net.Listener
	limit      int
	closeEvery int
	wg         sync.WaitGroup

	mu   sync.Mutex
	idle []net.Conn // idle connections, longest idle first
	open int
}

func newLimitServer(t *testing.T, limit, closeEvery int) *limitServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &limitServer{ln: ln, limit: limit, closeEvery: closeEvery}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.limit > 0 && s.open >= s.limit && len(s.idle) > 0 {
				victim := s.idle[0]
				s.idle = s.idle[1:]
				_ = victim.Close() // its serve loop sees the error and leaves
			}
			s.open++
			s.idle = append(s.idle, c)
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() { _ = ln.Close(); s.wg.Wait() })
	return s
}

func (s *limitServer) URL() string { return "http://" + s.ln.Addr().String() + "/" }

func (s *limitServer) setIdle(c net.Conn, idle bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.idle {
		if x == c {
			s.idle = append(s.idle[:i], s.idle[i+1:]...)
			break
		}
	}
	if idle {
		s.idle = append(s.idle, c)
	}
}

func (s *limitServer) serve(c net.Conn) {
	defer func() {
		s.setIdle(c, false)
		s.mu.Lock()
		s.open--
		s.mu.Unlock()
		_ = c.Close()
	}()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	n, served := 0, 0
	for {
		k, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		s.setIdle(c, false)
		n += k
		for {
			i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
			if i < 0 {
				break
			}
			served++
			last := s.closeEvery > 0 && served%s.closeEvery == 0
			resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
			if last {
				resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
			}
			if _, err := c.Write([]byte(resp)); err != nil || last {
				return
			}
			n = copy(buf, buf[i+4:n])
		}
		s.setIdle(c, true)
	}
}

// The generator sees how many connections it really held: all of them against
// a server without a limit; against one that holds 8, about 8 of the 32 asked,
// with almost every request on a reopened connection.
func TestHeldConnections(t *testing.T) {
	t.Run("held", func(t *testing.T) {
		srv := newLimitServer(t, 0, 0)
		g := newGen(t, Target{URL: srv.URL()})
		w := runStep(t, g, Step{Rate: 400, Connections: 32, Warmup: 500 * time.Millisecond, Hold: 2 * time.Second})
		m := w.Metrics()
		if r := m[metrics.ConnectionsHeldRatio]; r < 0.99 {
			t.Errorf("held ratio %.3f of 32 connections against a server holding them all; want 1", r)
		}
		if r := m[metrics.ConnectionsReopenedRatio]; r != 0 || m[metrics.ConnectionsHeldPeak] != 32 {
			t.Errorf("reopened ratio %.3f, held peak %g; want 0 and 32", r, m[metrics.ConnectionsHeldPeak])
		}
	})
	t.Run("limited", func(t *testing.T) {
		srv := newLimitServer(t, 8, 0)
		g := newGen(t, Target{URL: srv.URL()})
		w := runStep(t, g, Step{Rate: 400, Connections: 32, Warmup: 500 * time.Millisecond, Hold: 2 * time.Second})
		m := w.Metrics()
		// The peak is about 8, plus the dials the server has not accepted
		// yet (the kernel completes them before it does, and a busy
		// machine delays its accept loop): well under 32 all the same.
		if r, peak := m[metrics.ConnectionsHeldRatio], m[metrics.ConnectionsHeldPeak]; r > 0.5 || peak >= 24 {
			t.Errorf("held ratio %.3f, peak %g of 32 asked from a server holding 8; want at most 0.5 and about 8 (under 24)", r, peak)
		}
		if r := m[metrics.ConnectionsReopenedRatio]; r < 0.5 {
			t.Errorf("reopened ratio %.3f against a server holding 8 of 32; want most requests on reopened connections", r)
		}
	})
	t.Run("closes every 20th request", func(t *testing.T) {
		// A keep-alive request limit: one request in 20 reopens a
		// connection, and the connections are held nearly all the time.
		srv := newLimitServer(t, 0, 20)
		g := newGen(t, Target{URL: srv.URL()})
		w := runStep(t, g, Step{Rate: 800, Connections: 16, Warmup: 500 * time.Millisecond, Hold: 2 * time.Second})
		m := w.Metrics()
		if r := m[metrics.ConnectionsReopenedRatio]; r < 0.03 || r > 0.07 {
			t.Errorf("reopened ratio %.3f with a close every 20 requests; want about 0.05", r)
		}
		if r := m[metrics.ConnectionsHeldRatio]; r < 0.8 {
			t.Errorf("held ratio %.3f with a close every 20 requests; want most connections held", r)
		}
	})
	// A connection the target closes with its answer (Connection: close) is
	// replaced at once, not when its next request is due: with a close every
	// 4th request, waiting for the next request would leave a quarter of the
	// connections closed at any instant.
	t.Run("reopened-at-once", func(t *testing.T) {
		srv := newLimitServer(t, 0, 4)
		g := newGen(t, Target{URL: srv.URL()})
		w := runStep(t, g, Step{Rate: 200, Connections: 16, Warmup: 500 * time.Millisecond, Hold: 2 * time.Second})
		m := w.Metrics()
		if r := m[metrics.ConnectionsReopenedRatio]; r < 0.2 || r > 0.3 {
			t.Errorf("reopened ratio %.3f with a close every 4 requests; want about 0.25", r)
		}
		if r := m[metrics.ConnectionsHeldRatio]; r < 0.9 {
			t.Errorf("held ratio %.3f with a close every 4 requests; want the closed connections replaced at once", r)
		}
	})
}
