package delivery

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Publication is one publisher's settings, rendered for it.
type Publication struct {
	// URL is http:// or https:// (a request per message) or ws:// or wss://
	// (a message on one connection).
	URL string
	// Method is the HTTP method (default POST).
	Method string
	// Header is sent with each request, or with the WebSocket handshake.
	Header http.Header
	// Open are messages sent once a WebSocket connection opens.
	Open []string
	// Replies answer the server's keep-alive messages on a WebSocket.
	Replies []Reply
	// Timeout bounds each publish and a WebSocket's (re)connection
	// (0: DefaultSubscribeTimeout).
	Timeout time.Duration
}

// Publisher sends messages. Publish is safe for concurrent use.
type Publisher interface {
	// Publish sends one message. An HTTP answer other than 2xx is a
	// *StatusError; over WebSocket, a message is published once written.
	Publish(ctx context.Context, body []byte) error
	Close() error
}

// StatusError is an HTTP publish answered with a status other than 2xx.
type StatusError struct {
	URL  string
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("publish %s: status %d: %s", e.URL, e.Code, e.Body)
}

// Connector is a Publisher that holds a connection (WebSocket): Connect
// opens it (and sends the open messages) ahead of the first publish, which
// would open it otherwise. A publisher whose connection broke opens a new one
// on its next publish.
type Connector interface {
	Connect(ctx context.Context) error
}

// NewPublisher returns the publisher p describes, without connecting. c is
// the HTTP client of HTTP publishers. A WebSocket publisher keeps reading its
// connection (to answer pings and Replies) until Close.
func NewPublisher(c *http.Client, p Publication) (Publisher, error) {
	if p.Timeout <= 0 {
		p.Timeout = DefaultSubscribeTimeout
	}
	t, err := PublishTransport(p.URL)
	if err != nil {
		return nil, err
	}
	if t == TransportHTTP {
		if len(p.Open) > 0 || len(p.Replies) > 0 {
			return nil, fmt.Errorf("publish %s: open messages and replies need a WebSocket (ws:// or wss://)", p.URL)
		}
		if p.Method == "" {
			p.Method = http.MethodPost
		}
		if c == nil {
			return nil, fmt.Errorf("publish %s: no HTTP client", p.URL)
		}
		return &httpPublisher{c: c, p: p}, nil
	}
	return &wsPublisher{p: p}, nil
}

type httpPublisher struct {
	c *http.Client
	p Publication
}

func (h *httpPublisher) Publish(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, h.p.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, h.p.Method, h.p.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if h.p.Header != nil {
		req.Header = h.p.Header // read only, shared by the publisher's requests
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, resp.Body)
	return &StatusError{URL: h.p.URL, Code: resp.StatusCode, Body: strings.TrimSpace(string(msg))}
}

func (h *httpPublisher) Close() error { return nil }

// wsPublisher publishes messages on one WebSocket connection, reconnecting
// on the next publish after the connection broke.
type wsPublisher struct {
	p      Publication
	mu     sync.Mutex // the connection's one writer
	c      *websocket.Conn
	closed bool
	reads  sync.WaitGroup
}

// connect dials and starts the connection's reader; mu is held.
func (w *wsPublisher) connect(ctx context.Context) error {
	hctx, cancel := context.WithTimeout(ctx, w.p.Timeout)
	defer cancel()
	c, err := dialWS(hctx, w.p.URL, w.p.Header, w.p.Timeout)
	if err != nil {
		return fmt.Errorf("publish %s: %w", w.p.URL, err)
	}
	if err := sendOpen(c, w.p.Open, w.p.Timeout); err != nil {
		_ = c.Close()
		return fmt.Errorf("publish %s: %w", w.p.URL, err)
	}
	w.c = c
	w.reads.Add(1)
	go w.read(c)
	return nil
}

// read consumes what the server sends (a connection that is not read cannot
// see pings or a close), answering Replies.
func (w *wsPublisher) read(c *websocket.Conn) {
	defer w.reads.Done()
	var buf []byte
	for {
		_, r, err := c.NextReader()
		if err != nil {
			return
		}
		if buf, err = readAll(buf[:0], r); err != nil {
			return
		}
		if _, _, err := reply(c, w.p.Replies, buf, &w.mu); err != nil {
			return
		}
	}
}

// Connect implements Connector.
func (w *wsPublisher) Connect(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("publish %s: publisher closed", w.p.URL)
	}
	if w.c != nil {
		return nil
	}
	return w.connect(ctx)
}

func (w *wsPublisher) Publish(ctx context.Context, body []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("publish %s: publisher closed", w.p.URL)
	}
	if w.c == nil {
		if err := w.connect(ctx); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(w.p.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = w.c.SetWriteDeadline(deadline)
	if err := w.c.WriteMessage(websocket.TextMessage, body); err != nil {
		_ = w.c.Close()
		w.c = nil
		return fmt.Errorf("publish %s: %w", w.p.URL, err)
	}
	return nil
}

func (w *wsPublisher) Close() error {
	w.mu.Lock()
	w.closed = true
	c := w.c
	w.c = nil
	w.mu.Unlock()
	var err error
	if c != nil {
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(wsCloseWait))
		err = c.Close()
	}
	w.reads.Wait()
	return err
}
