package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// WebSocket connections are gorilla/websocket's: a Conn dials and reads on the
// caller's goroutine and starts none of its own, its read buffer is sized
// here and its write buffer is taken from a pool only while a message is
// written. A held subscriber costs its reader goroutine and two small
// buffers, as a lean SSE stream does.
const (
	wsReadBuffer  = 2 << 10
	wsWriteBuffer = 2 << 10
	// wsMaxMessage bounds one received message.
	wsMaxMessage = 16 << 20
	// wsCloseWait bounds sending the close message: a connection whose
	// send buffer is full closes without it.
	wsCloseWait = 100 * time.Millisecond
)

var wsWritePool sync.Pool

func dialWS(ctx context.Context, rawURL string, h http.Header, timeout time.Duration) (*websocket.Conn, error) {
	d := websocket.Dialer{
		NetDialContext:   (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		HandshakeTimeout: timeout,
		ReadBufferSize:   wsReadBuffer,
		WriteBufferSize:  wsWriteBuffer,
		WriteBufferPool:  &wsWritePool,
	}
	c, resp, err := d.DialContext(ctx, rawURL, h)
	if err != nil {
		if resp != nil && errors.Is(err, websocket.ErrBadHandshake) {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			_ = resp.Body.Close()
			return nil, fmt.Errorf("WebSocket handshake refused: status %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
		}
		return nil, err
	}
	c.SetReadLimit(wsMaxMessage)
	return c, nil
}

// sendOpen sends the open messages, each bounded by timeout.
func sendOpen(c *websocket.Conn, open []string, timeout time.Duration) error {
	for _, m := range open {
		_ = c.SetWriteDeadline(time.Now().Add(timeout))
		if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			return fmt.Errorf("send %q: %w", clip(m, 40), err)
		}
	}
	return c.SetWriteDeadline(time.Time{})
}

// wsStream is one WebSocket subscription.
type wsStream struct {
	c       *websocket.Conn
	replies []Reply
	data    []byte
	done    atomic.Bool
	stop    func() bool
}

func subscribeWS(ctx context.Context, s Subscription) (Stream, error) {
	fail := func(err error) (Stream, error) {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("subscribe %s: %w", s.URL, ctx.Err())
		}
		return nil, fmt.Errorf("subscribe %s: %w", s.URL, err)
	}
	hctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	c, err := dialWS(hctx, s.URL, s.Header, s.Timeout)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, notConfirmed(s.URL, s.Confirm, s.Timeout, "no WebSocket handshake")
		}
		return fail(err)
	}
	st := &wsStream{c: c, replies: s.Replies}
	st.stop = context.AfterFunc(ctx, func() { _ = c.Close() })
	abort := func(err error) (Stream, error) {
		st.stop()
		_ = c.Close()
		return fail(err)
	}
	if err := sendOpen(c, s.Open, s.Timeout); err != nil {
		return abort(err)
	}
	if s.Confirm.Mode != ConfirmComment {
		return st, nil
	}
	_ = c.SetReadDeadline(time.Now().Add(s.Timeout))
	var got Received
	for {
		msg, err := st.Next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				st.stop()
				_ = c.Close()
				return nil, notConfirmed(s.URL, s.Confirm, s.Timeout, got.Describe("the WebSocket handshake", "message"))
			}
			return abort(fmt.Errorf("the connection ended before its confirmation (%s; received %s): %w", s.Confirm, got.Describe("the WebSocket handshake", "message"), err))
		}
		if bytes.HasPrefix(msg, []byte(s.Confirm.Prefix)) {
			break
		}
		got.Add(msg)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return abort(err)
	}
	return st, nil
}

// Next implements Stream. Lines answered by a Reply are taken out of a
// message; a message that held nothing else is skipped.
func (st *wsStream) Next() ([]byte, error) {
	for {
		msg, err := st.read()
		if err != nil {
			if st.done.Load() {
				return nil, io.EOF
			}
			return nil, err
		}
		rest, replied, err := reply(st.c, st.replies, msg, nil)
		if err != nil {
			return nil, err
		}
		if !replied || len(bytes.TrimSpace(rest)) > 0 {
			return rest, nil
		}
	}
}

func (st *wsStream) read() ([]byte, error) {
	_, r, err := st.c.NextReader()
	if err != nil {
		return nil, err
	}
	st.data, err = readAll(st.data[:0], r)
	return st.data, err
}

// readAll appends r's bytes to b.
func readAll(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// reply answers every line of msg that starts with a Reply's On (the whole
// message, or a line of it after "\n": a server may send its keep-alive in
// the same WebSocket message as events, as nats-server does with "PING\r\n"
// and a MSG) with its Send, and returns msg without those lines, in place;
// replied says whether it answered any. mu, when set, serializes the writes
// with the connection's other writers.
func reply(c *websocket.Conn, replies []Reply, msg []byte, mu *sync.Mutex) (rest []byte, replied bool, err error) {
	if len(replies) == 0 {
		return msg, false, nil
	}
	// Most messages hold no keep-alive: they are returned as they are, and
	// msg is rewritten only from its first answered line on.
	var out []byte
	at := 0 // where the line being read starts in msg
	for line := range bytes.Lines(msg) {
		r, ok := replyFor(replies, line)
		switch {
		case !ok && replied:
			out = append(out, line...) // never ahead of line: msg is rewritten in place
		case ok:
			if !replied {
				out, replied = msg[:at], true
			}
			if err := send(c, r.Send, mu); err != nil {
				return nil, true, fmt.Errorf("reply %q: %w", clip(r.Send, 40), err)
			}
		}
		at += len(line)
	}
	if !replied {
		return msg, false, nil
	}
	return out, true, nil
}

func replyFor(replies []Reply, line []byte) (Reply, bool) {
	for _, r := range replies {
		if bytes.HasPrefix(line, []byte(r.On)) {
			return r, true
		}
	}
	return Reply{}, false
}

func send(c *websocket.Conn, text string, mu *sync.Mutex) error {
	if mu != nil {
		mu.Lock()
		defer mu.Unlock()
	}
	_ = c.SetWriteDeadline(time.Now().Add(DefaultSubscribeTimeout))
	return c.WriteMessage(websocket.TextMessage, []byte(text))
}

// Close implements Stream.
func (st *wsStream) Close() error {
	st.done.Store(true)
	st.stop()
	_ = st.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(wsCloseWait))
	return st.c.Close()
}
