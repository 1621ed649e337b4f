package loadgen

import (
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
)

func TestRespReader(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		head        bool
		status      []int // one per response read
		close       bool  // of the last response
		wantErr     error
		leftover    int // bytes left unread after the responses
		byteAtATime bool
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", status: []int{200}},
		{name: "two pipelined", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n", status: []int{200, 503}},
		{name: "chunked", in: "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\na;ext=1\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n", status: []int{201}},
		{name: "chunked byte at a time", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", status: []int{200}, byteAtATime: true},
		{name: "connection close", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", status: []int{200}, close: true},
		{name: "http/1.0 closes", in: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", status: []int{200}, close: true},
		{name: "http/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", status: []int{200}},
		{name: "body to EOF", in: "HTTP/1.1 200 OK\r\n\r\nall of it", status: []int{200}, close: true},
		{name: "204 no body", in: "HTTP/1.1 204 No Content\r\n\r\n", status: []int{204}},
		{name: "HEAD ignores length", in: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", head: true, status: []int{200}},
		{name: "LF only", in: "HTTP/1.1 404 Not Found\nContent-Length: 3\n\nnot", status: []int{404}},
		{name: "big body byte at a time", in: "HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n" + strings.Repeat("z", 10000), status: []int{200}, byteAtATime: true},
		{name: "garbage", in: "SSH-2.0-OpenSSH\r\n\r\n", wantErr: errMalformed},
		{name: "bad status", in: "HTTP/1.1 2x0 OK\r\n\r\n", wantErr: errMalformed},
		{name: "bad length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", wantErr: errMalformed},
		{name: "bad chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", wantErr: errMalformed},
		{name: "truncated body", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", wantErr: io.ErrUnexpectedEOF},
		{name: "truncated headers", in: "HTTP/1.1 200 OK\r\nContent-Le", wantErr: io.ErrUnexpectedEOF},
		{name: "closed before answer", in: "", wantErr: io.EOF},
		{name: "header too large", in: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 600) + "\r\n\r\n", wantErr: errHeaderTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rd io.Reader = strings.NewReader(tt.in)
			if tt.byteAtATime {
				rd = iotest.OneByteReader(rd)
			}
			rr := newRespReader(rd, 512)
			var resp response
			var err error
			for i := 0; i < max(1, len(tt.status)); i++ {
				resp, err = rr.read(tt.head)
				if err != nil {
					break
				}
				if resp.status != tt.status[i] {
					t.Fatalf("response %d: status %d, want %d", i, resp.status, tt.status[i])
				}
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if resp.close != tt.close {
				t.Errorf("close = %v, want %v", resp.close, tt.close)
			}
			if n := rr.w - rr.r; n != tt.leftover {
				t.Errorf("%d bytes left over, want %d", n, tt.leftover)
			}
		})
	}
}

func FuzzRespReader(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
	f.Add("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	f.Add("HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 700) + "\r\n\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		var room atomic.Int64
		room.Store(1024) // the buffer may grow once or twice (256, 512, 1024)
		rr := newRespReader(strings.NewReader(in), 256)
		rr.room = &room
		for range 4 {
			if _, err := rr.read(false); err != nil {
				break
			}
		}
		if grown := int64(len(rr.buf) - 256); room.Load() != 1024-grown || grown > 768 {
			t.Fatalf("buffer of %d bytes, room %d: grown past the room", len(rr.buf), room.Load())
		}
	})
}

func TestNewEndpoint(t *testing.T) {
	tests := []struct {
		name    string
		target  Target
		addr    string
		tls     bool
		request string
		wantErr string
	}{
		{name: "get", target: Target{URL: "http://127.0.0.1:8080/a?b=c"}, addr: "127.0.0.1:8080",
			request: "GET /a?b=c HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: loadramp\r\n\r\n"},
		{name: "post with body", target: Target{Method: "POST", URL: "http://h/p", Body: []byte(`{"x":1}`),
			Headers: map[string]string{"Content-Type": "application/json", "User-Agent": "me"}}, addr: "h:80",
			request: "POST /p HTTP/1.1\r\nContent-Type: application/json\r\nUser-Agent: me\r\nHost: h\r\nContent-Length: 7\r\n\r\n{\"x\":1}"},
		{name: "https default port", target: Target{URL: "https://example.test"}, addr: "example.test:443", tls: true,
			request: "GET / HTTP/1.1\r\nHost: example.test\r\nUser-Agent: loadramp\r\n\r\n"},
		{name: "host override", target: Target{URL: "http://[::1]:9/", Headers: map[string]string{"host": "v"}}, addr: "[::1]:9",
			request: "GET / HTTP/1.1\r\nhost: v\r\nUser-Agent: loadramp\r\n\r\n"},
		{name: "bad scheme", target: Target{URL: "ftp://h/"}, wantErr: "scheme"},
		{name: "no host", target: Target{URL: "http:///x"}, wantErr: "no host"},
		{name: "header injection", target: Target{URL: "http://h/", Headers: map[string]string{"X": "a\r\nB: c"}}, wantErr: "invalid"},
		{name: "managed header", target: Target{URL: "http://h/", Headers: map[string]string{"Connection": "close"}}, wantErr: "managed"},
		{name: "bad method", target: Target{Method: "GET /x", URL: "http://h/"}, wantErr: "white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep, reqs, _, err := compileTarget(tt.target)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ep.addr != tt.addr || ep.tls != tt.tls || string(reqs[0].static) != tt.request {
				t.Errorf("got addr %q tls %v request %q\nwant addr %q tls %v request %q",
					ep.addr, ep.tls, reqs[0].static, tt.addr, tt.tls, tt.request)
			}
		})
	}
}

// piecesReader returns its pieces one per Read, with errWouldBlock between
// two of them, as the dispatcher's loop finds a response arriving over
// several ticks.
type piecesReader struct {
	pieces []string
	wait   bool
}

func (p *piecesReader) Read(b []byte) (int, error) {
	if p.wait {
		p.wait = false
		return 0, errWouldBlock
	}
	if len(p.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.pieces[0])
	if p.pieces[0] = p.pieces[0][n:]; p.pieces[0] == "" {
		p.pieces = p.pieces[1:]
		p.wait = true
	}
	return n, nil
}

// TestRespReaderPinnedRestart parses responses the loop's way: pinned at the
// response's start, started again from there after each errWouldBlock, and
// pipelined behind bytes already read, in a buffer small enough that the
// restarts compact it.
func TestRespReaderPinnedRestart(t *testing.T) {
	body := strings.Repeat("b", 120)
	first := "HTTP/1.1 200 OK\r\nContent-Length: 120\r\n\r\n" + body
	second := "HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n"
	all := first + second
	for cut := 1; cut < len(all); cut += 7 {
		pr := &piecesReader{pieces: []string{all[:cut], all[cut:]}}
		rr := newRespReader(pr, 256)
		rr.r, rr.w = 100, 100 // bytes of an earlier response, read: compaction moves the pin
		var got []int
		for tries := 0; len(got) < 2 && tries < 10; tries++ {
			rr.pinned, rr.pin = true, rr.r
			resp, err := rr.read(false)
			rr.pinned = false
			switch {
			case errors.Is(err, errWouldBlock):
				rr.r = rr.pin
			case err != nil:
				t.Fatalf("cut %d: %v", cut, err)
			default:
				got = append(got, resp.status)
			}
		}
		if len(got) != 2 || got[0] != 200 || got[1] != 503 {
			t.Fatalf("cut %d: statuses %v, want [200 503]", cut, got)
		}
		if rr.r != rr.w {
			t.Fatalf("cut %d: %d bytes left unread", cut, rr.w-rr.r)
		}
	}
}

// TestReadBufferGrows: a header line longer than the buffer grows it, doubling
// up to maxReadBuffer as far as the shared room allows; the bytes held are
// kept, and what it grew by is taken from the room.
func TestReadBufferGrows(t *testing.T) {
	line := "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 5000) + "\r\nContent-Length: 2\r\n\r\nok"
	var room atomic.Int64
	room.Store(growBudget)
	rr := newRespReader(strings.NewReader(line), DefaultReadBufferSize)
	rr.room = &room
	if resp, err := rr.read(false); err != nil || resp.status != 200 {
		t.Fatalf("read: status %d, %v; want 200", resp.status, err)
	}
	if len(rr.buf) != 2*DefaultReadBufferSize || room.Load() != growBudget-DefaultReadBufferSize {
		t.Errorf("buffer of %d bytes, room %d; want %d and %d", len(rr.buf), room.Load(), 2*DefaultReadBufferSize, growBudget-DefaultReadBufferSize)
	}

	rr = newRespReader(nil, DefaultReadBufferSize)
	rr.room = &room
	copy(rr.buf, "HTTP/1.1 200 OK\r\n")
	rr.w = 17
	for _, want := range []int{8 << 10, 16 << 10, 32 << 10, 64 << 10} {
		if !rr.grow() || len(rr.buf) != want {
			t.Fatalf("grow: buffer of %d bytes, want %d", len(rr.buf), want)
		}
	}
	if rr.grow() || len(rr.buf) != maxReadBuffer {
		t.Errorf("grew past maxReadBuffer: %d bytes", len(rr.buf))
	}
	if got := string(rr.buf[:rr.w]); got != "HTTP/1.1 200 OK\r\n" {
		t.Errorf("kept %q", got)
	}

	room.Store(DefaultReadBufferSize - 1)
	rr = newRespReader(strings.NewReader(line), DefaultReadBufferSize)
	rr.room = &room
	if _, err := rr.read(false); err != errHeaderTooLarge || len(rr.buf) != DefaultReadBufferSize || room.Load() != DefaultReadBufferSize-1 {
		t.Errorf("with no room: %v, buffer of %d bytes, room %d; want %v, %d bytes, room kept", err, len(rr.buf), room.Load(), errHeaderTooLarge, DefaultReadBufferSize)
	}
}
