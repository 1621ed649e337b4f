package delivery

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Subscription is one subscriber's settings, rendered for it.
type Subscription struct {
	// URL is http:// or https:// for Server-Sent Events, ws:// or wss://
	// for WebSocket.
	URL string
	// Header is sent with the request (SSE) or the handshake (WebSocket).
	Header http.Header
	// Open are messages sent once a WebSocket connection opens (a NATS
	// CONNECT and SUB, say).
	Open []string
	// Replies answer the server's keep-alive messages on a WebSocket.
	Replies []Reply
	Confirm Confirm
	// Timeout bounds opening and confirming (0: DefaultSubscribeTimeout).
	Timeout time.Duration
}

// Reply answers, on a WebSocket, every message or line of a message that
// starts with On by sending Send (a NATS PING with a PONG, say). Such lines
// are not events; the rest of their message is.
type Reply struct{ On, Send string }

// Stream is one subscription, read by one goroutine.
type Stream interface {
	// Next returns the data of the next event: an SSE event's data lines
	// joined by "\n", or a WebSocket message. The slice is valid until the
	// next call. It returns an error when the stream ends, io.EOF after
	// Close.
	Next() ([]byte, error)
	// Close ends the stream; a Next in progress returns io.EOF.
	Close() error
}

// Transports, by URL scheme.
const (
	TransportSSE       = "sse"
	TransportWebSocket = "websocket"
	TransportHTTP      = "http"
)

// SubscribeTransport names the transport of a subscribe URL, or says what is
// wrong with it.
func SubscribeTransport(u string) (string, error) {
	switch scheme(u) {
	case "http", "https":
		return TransportSSE, nil
	case "ws", "wss":
		return TransportWebSocket, nil
	}
	return "", fmt.Errorf("subscribe URL %q: use http:// or https:// (Server-Sent Events) or ws:// or wss:// (WebSocket), with a host", u)
}

// PublishTransport names the transport of a publish URL, or says what is
// wrong with it.
func PublishTransport(u string) (string, error) {
	switch scheme(u) {
	case "http", "https":
		return TransportHTTP, nil
	case "ws", "wss":
		return TransportWebSocket, nil
	}
	return "", fmt.Errorf("publish URL %q: use http:// or https:// (a request per message) or ws:// or wss:// (WebSocket messages), with a host", u)
}

func scheme(u string) string {
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		return ""
	}
	return pu.Scheme
}

// Subscribe opens s and, by its confirmation mode, returns once the stream is
// live (none, comment) or open (first-event: the caller watches for the first
// marked event). Over SSE, a nil c gives the stream a connection of its own
// (see subscribeLean); WebSocket streams always have their own. The stream
// lives until ctx is done or Close is called. A subscription not confirmed in
// time returns an error wrapping ErrNotConfirmed that names the mode and what
// arrived instead.
func Subscribe(ctx context.Context, c *http.Client, s Subscription) (Stream, error) {
	if s.Timeout <= 0 {
		s.Timeout = DefaultSubscribeTimeout
	}
	if s.Confirm.Mode == "" {
		s.Confirm.Mode = ConfirmNone
	}
	t, err := SubscribeTransport(s.URL)
	if err != nil {
		return nil, err
	}
	if t == TransportWebSocket {
		return subscribeWS(ctx, s)
	}
	if len(s.Open) > 0 || len(s.Replies) > 0 {
		return nil, fmt.Errorf("subscribe %s: open messages and replies need a WebSocket (ws:// or wss://)", s.URL)
	}
	if c == nil {
		return subscribeLean(ctx, s)
	}
	return subscribeHTTP(ctx, c, s)
}
