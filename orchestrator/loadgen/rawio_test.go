package loadgen

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// A request larger than the socket buffers makes the write from inside the read
// callback stop half-way (EAGAIN); the rest must still go out whole, and the
// response be read after it.
func TestRunLargeBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB: more than loopback's socket buffers
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil || n != int64(len(body)) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}), false)
	g := newGen(t, Target{URL: srv.URL, Method: "POST", Body: body, Timeout: 20 * time.Second})
	w := runStep(t, g, Step{Rate: 4, Connections: 2, Hold: time.Second})
	if w.Requests != 4 || w.Completed != 4 || w.Errors != 0 || w.GeneratorErrors != 0 {
		t.Errorf("requests %d completed %d errors %d gen %d %v, want 4 answered without error",
			w.Requests, w.Completed, w.Errors, w.GeneratorErrors, w.ErrorClasses)
	}
}

// rawSock against a real TCP peer: a request written by the read that waits for
// its response, plain reads and writes, and the end of the stream.
func TestRawSock(t *testing.T) {
	s, _, p := rawPair(t)

	// The peer answers only after it has read the request, so the read must have
	// written it before waiting.
	go func() {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(p, buf); err == nil && string(buf) == "ping\n" {
			_, _ = p.Write([]byte("pong\n"))
		}
	}()
	s.send([]byte("ping\n"))
	buf := make([]byte, 64)
	n, err := s.Read(buf)
	if err != nil || string(buf[:n]) != "pong\n" {
		t.Fatalf("Read after send = %q, %v; want pong", buf[:n], err)
	}

	if n, err := s.Write([]byte("plain\n")); n != 6 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(p, got); err != nil || string(got) != "plain\n" {
		t.Fatalf("peer read %q, %v", got, err)
	}

	_ = p.Close()
	if n, err := s.Read(buf); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("Read after the peer closed = %d, %v; want 0, EOF", n, err)
	}
	// Not a plain TCP connection: nil, so the caller uses net.Conn.
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if newRawSock(a) != nil {
		t.Error("newRawSock(pipe) != nil")
	}
}

// rawPair is a rawSock on a loopback connection and its peer's end.
func rawPair(t *testing.T) (*rawSock, net.Conn, net.Conn) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("rawSock is Linux's")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	p, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	_ = p.SetDeadline(time.Now().Add(20 * time.Second))
	s := newRawSock(nc)
	if s == nil {
		t.Fatal("newRawSock(TCP) = nil")
	}
	return s, nc, p
}
