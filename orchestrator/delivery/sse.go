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

// sseStream is one Server-Sent Events subscription.
type sseStream struct {
	body   io.ReadCloser
	rd     *bufio.Reader
	data   []byte
	done   atomic.Bool
	cancel context.CancelFunc
}

// subscribeHTTP is Subscribe over SSE through net/http's client c.
func subscribeHTTP(ctx context.Context, c *http.Client, s Subscription) (Stream, error) {
	sctx, cancel := context.WithCancel(ctx)
	var expired atomic.Bool
	timer := time.AfterFunc(s.Timeout, func() {
		expired.Store(true)
		cancel()
	})
	fail := func(format string, args ...any) (Stream, error) {
		timer.Stop()
		cancel()
		if expired.Load() {
			return nil, notConfirmed(s.URL, s.Confirm, s.Timeout, "no response headers")
		}
		return nil, fmt.Errorf("subscribe %s: "+format, append([]any{s.URL}, args...)...)
	}
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return fail("%w", err)
	}
	for k, vs := range s.Header {
		req.Header[k] = vs
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := c.Do(req)
	if err != nil {
		return fail("%w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		return fail("status %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	st := &sseStream{body: resp.Body, rd: bufio.NewReaderSize(resp.Body, 16<<10), cancel: cancel}
	var got Received
	if err := st.confirm(s.Confirm, &got); err != nil {
		_ = resp.Body.Close()
		if expired.Load() {
			timer.Stop()
			cancel()
			return nil, notConfirmed(s.URL, s.Confirm, s.Timeout, got.Describe(headersSeen(resp), "line"))
		}
		return fail("the stream ended before its confirmation (%s; received %s): %w", s.Confirm, got.Describe(headersSeen(resp), "line"), err)
	}
	if !timer.Stop() {
		_ = resp.Body.Close()
		return fail("confirmed too late")
	}
	return st, nil
}

func headersSeen(resp *http.Response) string {
	return fmt.Sprintf("the response headers (status %d, Content-Type %q)", resp.StatusCode, resp.Header.Get("Content-Type"))
}

// confirm reads, for ConfirmComment, up to the comment line starting with
// the prefix, keeping samples of the other lines in got.
func (st *sseStream) confirm(c Confirm, got *Received) error {
	if c.Mode != ConfirmComment {
		return nil
	}
	for {
		line, err := st.rd.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
		if bytes.HasPrefix(line, []byte(c.Prefix)) {
			return nil
		}
		if t := bytes.TrimRight(line, "\r\n"); len(t) > 0 {
			got.Add(t)
		}
	}
}

// Next implements Stream: comments such as heartbeats are skipped.
func (st *sseStream) Next() ([]byte, error) {
	st.data = st.data[:0]
	has := false
	for {
		line, err := st.rd.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it.
			full := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = st.rd.ReadSlice('\n')
				full = append(full, line...)
			}
			line = full
		}
		if err != nil {
			if st.done.Load() {
				return nil, io.EOF
			}
			return nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if has {
				return st.data, nil
			}
		case line[0] == ':':
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(line[5:], []byte(" "))
			if has {
				st.data = append(st.data, '\n')
			}
			st.data = append(st.data, v...)
			has = true
		}
	}
}

// Close implements Stream.
func (st *sseStream) Close() error {
	st.done.Store(true)
	st.cancel()
	return st.body.Close()
}
