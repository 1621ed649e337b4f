package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// errMalformed is returned for a response this reader cannot parse.
var errMalformed = errors.New("malformed HTTP/1.1 response")

// errHeaderTooLarge is returned when the buffer is full and cannot grow: a
// header line (or, pinned, a whole response) is longer than maxReadBuffer, or
// the generator's buffers have used up growBudget.
var errHeaderTooLarge = errors.New("HTTP response header line longer than the read buffer can hold (64 KiB at most)")

// A connection's response buffer starts at the configured size and doubles
// when a header line fills it (or, pinned, a response that is still
// arriving), up to maxReadBuffer; a generator's buffers grow by growBudget
// bytes at most over all its connections. Grown, a buffer stays so for the
// connection's life, so growing costs an allocation once, not per request.
const (
	maxReadBuffer = 64 << 10
	growBudget    = 16 << 20
)

// respReader reads HTTP/1.1 responses from one connection without allocating: it
// parses the status line and the headers that frame the body (Content-Length,
// Transfer-Encoding: chunked, Connection), and discards the body (keeping its
// start when asked to, for a response check).
type respReader struct {
	rd   io.Reader
	buf  []byte
	r, w int // unread bytes are buf[r:w]
	// got counts bytes read from rd for the current response; zero means the peer
	// closed or failed before answering at all (a stale keep-alive connection).
	got int
	// keep asks read to keep the first MaxCheckedBody bytes of the body in
	// kept (for a response check), instead of only skipping them.
	keep bool
	kept []byte
	// pinned keeps the bytes from pin on in the buffer while a response is
	// parsed from what has arrived so far (the dispatcher's loop, see
	// loop.go): when the parse runs out of bytes it is started again from pin
	// once more have arrived, so nothing before the response's end may be
	// dropped. fill moves pin with the bytes it compacts.
	pinned bool
	pin    int
	// room is how many bytes the generator's buffers may still grow by
	// (shared by its connections); nil: this buffer does not grow.
	room *atomic.Int64
}

// capture keeps b, as far as MaxCheckedBody allows, when keep is set.
func (rr *respReader) capture(b []byte) {
	if !rr.keep {
		return
	}
	if room := MaxCheckedBody - len(rr.kept); room < len(b) {
		b = b[:max(room, 0)]
	}
	rr.kept = append(rr.kept, b...)
}

func newRespReader(rd io.Reader, size int) *respReader {
	return &respReader{rd: rd, buf: make([]byte, size)}
}

// response is what the generator needs of one response.
type response struct {
	status int
	close  bool // the connection must not be reused
}

// fill reads more bytes into the buffer, compacting it first if needed.
func (rr *respReader) fill() error {
	from := rr.r
	if rr.pinned {
		from = rr.pin
	}
	if from > 0 {
		n := copy(rr.buf, rr.buf[from:rr.w])
		rr.r, rr.w = rr.r-from, n
		rr.pin = 0
	}
	if rr.w == len(rr.buf) && !rr.grow() {
		return errHeaderTooLarge
	}
	n, err := rr.rd.Read(rr.buf[rr.w:])
	rr.w += n
	rr.got += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// release gives back to room what the buffer grew by beyond base bytes, as
// its connection leaves the pool for good; the buffer grows no more.
func (rr *respReader) release(base int) {
	if more := len(rr.buf) - base; more > 0 && rr.room != nil {
		rr.room.Add(int64(more))
	}
	rr.room = nil
}

// grow doubles the buffer, up to maxReadBuffer and as far as room allows,
// keeping what it holds; false if it cannot.
func (rr *respReader) grow() bool {
	n := min(2*len(rr.buf), maxReadBuffer)
	more := int64(n - len(rr.buf))
	if more <= 0 || rr.room == nil {
		return false
	}
	if rr.room.Add(-more) < 0 {
		rr.room.Add(more)
		return false
	}
	b := make([]byte, n)
	copy(b, rr.buf[:rr.w])
	rr.buf = b
	return true
}

// line returns the next CRLF- (or LF-) terminated line without its terminator. The
// slice is valid until the next read.
func (rr *respReader) line() ([]byte, error) {
	for {
		if i := bytes.IndexByte(rr.buf[rr.r:rr.w], '\n'); i >= 0 {
			l := rr.buf[rr.r : rr.r+i]
			rr.r += i + 1
			if len(l) > 0 && l[len(l)-1] == '\r' {
				l = l[:len(l)-1]
			}
			return l, nil
		}
		if err := rr.fill(); err != nil {
			return nil, err
		}
	}
}

// consumed marks every buffered byte read; unless pinned, the buffer is
// empty again.
func (rr *respReader) consumed() {
	if rr.pinned {
		rr.r = rr.w
		return
	}
	rr.r, rr.w = 0, 0
}

// discard skips n body bytes.
func (rr *respReader) discard(n int64) error {
	for n > 0 {
		if rr.r == rr.w {
			rr.consumed()
			if err := rr.fill(); err != nil {
				if err == io.EOF {
					return io.ErrUnexpectedEOF
				}
				return err
			}
		}
		k := int64(rr.w - rr.r)
		if k > n {
			k = n
		}
		rr.capture(rr.buf[rr.r : rr.r+int(k)])
		rr.r += int(k)
		n -= k
	}
	return nil
}

// read reads one whole response. head is true for a response to HEAD (no body).
func (rr *respReader) read(head bool) (response, error) {
	var resp response
	rr.got = rr.w - rr.r
	rr.kept = rr.kept[:0]
	l, err := rr.line()
	if err != nil {
		return resp, err
	}
	// "HTTP/1.1 200 OK"
	if len(l) < 12 || !bytes.HasPrefix(l, []byte("HTTP/1.")) || l[8] != ' ' {
		return resp, fmt.Errorf("%w: status line %q", errMalformed, truncate(l))
	}
	http10 := l[7] == '0'
	st := 0
	for _, c := range l[9:12] {
		if c < '0' || c > '9' {
			return resp, fmt.Errorf("%w: status line %q", errMalformed, truncate(l))
		}
		st = st*10 + int(c-'0')
	}
	resp.status = st
	resp.close = http10
	contentLength := int64(-1)
	chunked := false
	for {
		l, err = rr.line()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return resp, err
		}
		if len(l) == 0 {
			break
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 {
			return resp, fmt.Errorf("%w: header line %q", errMalformed, truncate(l))
		}
		name, value := l[:colon], trimSpace(l[colon+1:])
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseUint(value)
			if !ok {
				return resp, fmt.Errorf("%w: Content-Length %q", errMalformed, truncate(value))
			}
			contentLength = n
		case equalFold(name, "transfer-encoding"):
			chunked = containsFold(value, "chunked")
		case equalFold(name, "connection"):
			if containsFold(value, "close") {
				resp.close = true
			} else if containsFold(value, "keep-alive") {
				resp.close = false
			}
		}
	}
	switch {
	case head || st == 204 || st == 304 || (st >= 100 && st < 200):
		return resp, nil
	case chunked:
		return resp, rr.chunks()
	case contentLength >= 0:
		return resp, rr.discard(contentLength)
	default: // body runs to the end of the connection
		resp.close = true
		for {
			rr.capture(rr.buf[rr.r:rr.w])
			rr.consumed()
			if err := rr.fill(); err != nil {
				if err == io.EOF {
					return resp, nil
				}
				return resp, err
			}
		}
	}
}

// chunks discards a chunked body and its trailers.
func (rr *respReader) chunks() error {
	for {
		l, err := rr.line()
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(l, ';'); i >= 0 {
			l = l[:i]
		}
		n, ok := parseHex(trimSpace(l))
		if !ok {
			return fmt.Errorf("%w: chunk size %q", errMalformed, truncate(l))
		}
		if n == 0 {
			for { // trailers until an empty line
				l, err := rr.line()
				if err != nil {
					return err
				}
				if len(l) == 0 {
					return nil
				}
			}
		}
		if err := rr.discard(n); err != nil {
			return err
		}
		if l, err := rr.line(); err != nil {
			return err
		} else if len(l) != 0 {
			return fmt.Errorf("%w: chunk not followed by CRLF", errMalformed)
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold reports whether b equals the lower-case ASCII s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// containsFold reports whether b contains the lower-case ASCII s, ignoring case.
func containsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if equalFold(b[i:i+len(s)], s) {
			return true
		}
	}
	return false
}

func parseUint(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}
