package delivery

import (
	"bufio"
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

	"golang.org/x/net/http/httpguts"
)

// A subscription holds one connection open for the whole step, and a step may
// hold tens of thousands of them, so what one costs the generator matters. Through
// net/http each costs about 35 KiB: the client connection's two goroutines and
// their buffers besides the reader's own. subscribeLean opens the connection itself
// and leaves one goroutine (the caller's reader) and two small buffers per stream:
// about 12 KiB (bench/cmd/ssebench).

// Buffer sizes of a lean stream: the connection's (chunk framing) and the event
// reader's. Lines longer than the event reader's buffer are gathered (Next).
const (
	leanConnBuffer  = 1 << 10
	leanEventBuffer = 2 << 10
)

// subscribeLean is Subscribe over SSE on a connection of its own (HTTP/1.1,
// or HTTPS with the system's roots), without an http.Client.
func subscribeLean(ctx context.Context, s Subscription) (Stream, error) {
	rawURL, timeout := s.URL, s.Timeout
	fail := func(format string, args ...any) (Stream, error) {
		return nil, fmt.Errorf("subscribe %s: "+format, append([]any{rawURL}, args...)...)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fail("%w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fail("scheme must be http or https")
	}
	var head strings.Builder
	head.WriteString("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n")
	if s.Header.Get("Accept") == "" {
		head.WriteString("Accept: text/event-stream\r\n")
	}
	if s.Header.Get("Cache-Control") == "" {
		head.WriteString("Cache-Control: no-cache\r\n")
	}
	if s.Header.Get("User-Agent") == "" {
		head.WriteString("User-Agent: loadramp\r\n")
	}
	for k, vs := range s.Header {
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidHeaderFieldValue(v) {
				return fail("header %q: not a valid header name and value", k)
			}
			head.WriteString(k + ": " + v + "\r\n")
		}
	}
	head.WriteString("\r\n")
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
	var resp *http.Response
	var got Received
	abort := func(format string, args ...any) (Stream, error) {
		stop()
		_ = nc.Close()
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			after := "no response headers"
			if resp != nil {
				after = got.Describe(headersSeen(resp), "line")
			}
			return nil, notConfirmed(rawURL, s.Confirm, timeout, after)
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
	if _, err = io.WriteString(nc, head.String()); err != nil {
		return abort("%w", err)
	}
	br := bufio.NewReaderSize(nc, leanConnBuffer)
	resp, err = http.ReadResponse(br, &http.Request{Method: http.MethodGet, URL: u})
	if err != nil {
		return abort("%w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err = nil
		return abort("status %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	st := &sseStream{rd: bufio.NewReaderSize(resp.Body, leanEventBuffer)}
	st.body = leanBody{Reader: resp.Body, nc: nc}
	st.cancel = func() { stop() } // Close closes the connection through the body
	if err = st.confirm(s.Confirm, &got); err != nil {
		return abort("the stream ended before its confirmation (%s; received %s): %w", s.Confirm, got.Describe(headersSeen(resp), "line"), err)
	}
	if err = nc.SetDeadline(time.Time{}); err != nil {
		return abort("%w", err)
	}
	return st, nil
}

// leanBody is a lean stream's body: closing it closes the connection.
type leanBody struct {
	io.Reader
	nc net.Conn
}

func (b leanBody) Close() error { return b.nc.Close() }
