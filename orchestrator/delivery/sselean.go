package delivery

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// A subscription holds one connection open for the whole step, and a step may
// hold tens of thousands of them, so what one costs the generator matters. Through
// net/http each costs about 35 KiB: the client connection's two goroutines and
// their buffers besides the reader's own. subscribeLean opens the connection itself
// and leaves one goroutine (the caller's reader) and two small buffers per stream.

// Buffer sizes of a lean stream: the connection's (chunk framing) and the event
// reader's. Lines longer than the event reader's buffer are gathered (Next).
const (
	leanConnBuffer  = 1 << 10
	leanEventBuffer = 2 << 10
)

// subscribeLean is Subscribe over a connection of its own (HTTP/1.1, or HTTPS
// with the system's roots), without an http.Client.
func subscribeLean(ctx context.Context, rawURL string, timeout time.Duration) (*Stream, error) {
	fail := func(format string, args ...any) (*Stream, error) {
		return nil, fmt.Errorf("subscribe %s: "+format, append([]any{rawURL}, args...)...)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fail("%w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fail("scheme must be http or https")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return fail("%w", err)
	}
	// Until confirmed, the whole exchange is bounded by timeout and ctx.
	_ = nc.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	abort := func(format string, args ...any) (*Stream, error) {
		stop()
		_ = nc.Close()
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("subscribe %s: %w within %v", rawURL, ErrNotConfirmed, timeout)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("subscribe %s: %w", rawURL, ctx.Err())
		}
		return fail(format, args...)
	}
	if u.Scheme == "https" {
		tc := tls.Client(nc, &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}})
		if err = tc.HandshakeContext(ctx); err != nil {
			return abort("%w", err)
		}
		nc = tc
	}
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: loadramp\r\n\r\n"
	if _, err = io.WriteString(nc, req); err != nil {
		return abort("%w", err)
	}
	br := bufio.NewReaderSize(nc, leanConnBuffer)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet, URL: u})
	if err != nil {
		return abort("%w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err = nil
		return abort("status %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	s := &Stream{rd: bufio.NewReaderSize(resp.Body, leanEventBuffer)}
	s.body = leanBody{Reader: resp.Body, nc: nc}
	s.cancel = func() { stop() } // Close closes the connection through the body
	for {
		var line []byte
		line, err = s.rd.ReadSlice('\n')
		if err != nil {
			return abort("stream ended before the ': subscribed' confirmation: %w", err)
		}
		if bytes.HasPrefix(line, []byte(subscribedPrefix)) {
			break
		}
	}
	if err = nc.SetDeadline(time.Time{}); err != nil {
		return abort("%w", err)
	}
	return s, nil
}

// leanBody is a lean stream's body: closing it closes the connection.
type leanBody struct {
	io.Reader
	nc net.Conn
}

func (b leanBody) Close() error { return b.nc.Close() }
