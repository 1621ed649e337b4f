package delivery

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultSubscribeTimeout bounds the wait for a subscription to be confirmed.
const DefaultSubscribeTimeout = 5 * time.Second

// subscribedPrefix starts the comment line with which the event bus confirms
// a subscription: every message published after it reaches the stream.
const subscribedPrefix = ": subscribed"

// ErrNotConfirmed is returned by Subscribe when the stream opened but the
// server did not confirm the subscription in time.
var ErrNotConfirmed = errors.New("no ': subscribed' confirmation")

// Stream is one Server-Sent Events subscription. It is read by one goroutine.
type Stream struct {
	body   io.ReadCloser
	rd     *bufio.Reader
	data   []byte
	done   atomic.Bool
	cancel context.CancelFunc
}

// Subscribe opens a Server-Sent Events stream on url and waits, up to
// timeout, for the event bus's ": subscribed topic=T" comment, so that every
// message published once it returns reaches the stream. The stream lives
// until ctx is done or Close is called. With a nil c, the stream has a
// connection of its own, without net/http's client (about a third of the
// memory: see subscribeLean).
func Subscribe(ctx context.Context, c *http.Client, url string, timeout time.Duration) (*Stream, error) {
	if timeout <= 0 {
		timeout = DefaultSubscribeTimeout
	}
	if c == nil {
		return subscribeLean(ctx, url, timeout)
	}
	sctx, cancel := context.WithCancel(ctx)
	var expired atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		expired.Store(true)
		cancel()
	})
	fail := func(format string, args ...any) (*Stream, error) {
		timer.Stop()
		cancel()
		if expired.Load() {
			return nil, fmt.Errorf("subscribe %s: %w within %v", url, ErrNotConfirmed, timeout)
		}
		return nil, fmt.Errorf("subscribe %s: "+format, append([]any{url}, args...)...)
	}
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, url, nil)
	if err != nil {
		return fail("%w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		return fail("%w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		return fail("status %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	s := &Stream{body: resp.Body, rd: bufio.NewReaderSize(resp.Body, 16<<10), cancel: cancel}
	for {
		line, err := s.rd.ReadSlice('\n')
		if err != nil {
			_ = resp.Body.Close()
			return fail("stream ended before the ': subscribed' confirmation: %w", err)
		}
		if bytes.HasPrefix(line, []byte(subscribedPrefix)) {
			break
		}
	}
	if !timer.Stop() {
		_ = resp.Body.Close()
		return fail("confirmed too late")
	}
	return s, nil
}

// Next returns the data of the next event (its data lines joined by "\n"),
// skipping comments such as heartbeats. The slice is valid until the next
// call. It returns an error when the stream ends.
func (s *Stream) Next() ([]byte, error) {
	s.data = s.data[:0]
	has := false
	for {
		line, err := s.rd.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it.
			full := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = s.rd.ReadSlice('\n')
				full = append(full, line...)
			}
			line = full
		}
		if err != nil {
			if s.done.Load() {
				return nil, io.EOF
			}
			return nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if has {
				return s.data, nil
			}
		case line[0] == ':':
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(line[5:], []byte(" "))
			if has {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, v...)
			has = true
		}
	}
}

// Close ends the stream; a Next in progress returns io.EOF.
func (s *Stream) Close() error {
	s.done.Store(true)
	s.cancel()
	return s.body.Close()
}
