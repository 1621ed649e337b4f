//go:build linux

package loadgen

import (
	"errors"
	"io"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawSock reads and writes a plain TCP connection with raw system calls through
// its syscall.RawConn, which still parks on the Go network poller and honours the
// connection's deadlines. It saves two costs net.Conn pays on every request:
//
//   - net.Conn's Read and Write enter the system call through syscall.Syscall,
//     which tells the Go scheduler a call may block. When every P was idle (between
//     requests, at any rate a core can follow), that wakes the runtime's monitor
//     thread (sysmon) from its deep sleep and resets it to polling every 20 µs for
//     the next millisecond: at a few thousand requests per second it hardly sleeps
//     again, and it competes with the generator for its core. A read or write on a
//     non-blocking socket cannot block, so a raw call is enough and sysmon sleeps.
//   - Reading a response right after writing its request returns EAGAIN nearly
//     always: the response is not there yet. send writes the request from inside
//     the poller's read callback, after the poller has cleared the descriptor's
//     read readiness, so the response's arrival always wakes the reader and no
//     read is tried before it.
type rawSock struct {
	rc syscall.RawConn

	// The current call's arguments and results, so readFn and writeFn (method
	// values made once) need no closure per call.
	buf     []byte
	n       int
	err     error
	pending []byte // send's request, written by the next Read before it waits
	partial bool   // the pending write filled the socket buffer

	// gate, when on, makes Read wait for the dispatcher's ticks instead of the
	// poller (see gate.go); lowat is set while the socket's SO_RCVLOWAT keeps
	// the kernel from signalling a response's arrival, again when the last
	// try found nothing to read.
	gate  *readGate
	lowat bool
	again bool
	// arrived is the kernel's receive time (Unix ns) of the bytes the last
	// read returned, 0 when it gave none.
	arrived int64

	msg  unix.Msghdr
	iov  unix.Iovec
	cmsg [64]byte

	readFn, writeFn, tryFn func(fd uintptr) bool

	// fd is the socket's descriptor, for the dispatcher's loop (loop.go),
	// which reads and writes it directly while it owns the connection: no
	// one closes it meanwhile. nowRd reads it without waiting.
	fd    uintptr
	nowRd io.Reader
}

// lazyLowat is the SO_RCVLOWAT of a socket read at ticks: more than any
// response holds, so its arrival does not signal the poller (the kernel caps
// it at half of net.ipv4.tcp_rmem's maximum; a larger response signals as
// usual). A non-blocking read returns what has arrived whatever the mark.
const lazyLowat = 1 << 30

// newRawSock returns a rawSock for nc, or nil when nc is not a plain TCP
// connection (TLS goes through crypto/tls).
func newRawSock(nc net.Conn) *rawSock {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &rawSock{rc: rc}
	s.readFn, s.writeFn, s.tryFn = s.doRead, s.doWrite, s.tryRead
	s.msg.Iov = &s.iov
	s.msg.SetIovlen(1)
	// Receive timestamps, so a response read late is timed when it arrived.
	// Without them (an old kernel) a response is timed when it is read.
	_ = rc.Control(func(fd uintptr) {
		s.fd = fd
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	})
	s.nowRd = nowReader{s}
	return s
}

// errWouldBlock: nothing more has arrived yet (a read of the dispatcher's
// loop, which never waits).
var errWouldBlock = errors.New("loadgen: nothing to read yet")

// nowReader reads its socket without waiting.
type nowReader struct{ s *rawSock }

func (nr nowReader) Read(p []byte) (int, error) {
	s := nr.s
	s.buf, s.n, s.err = p, 0, nil
	got := s.recv(s.fd)
	s.buf = nil
	if !got {
		return 0, errWouldBlock
	}
	return s.n, s.err
}

// writeNow writes p without waiting: n is what was written; full, that the
// socket buffer filled first.
func (s *rawSock) writeNow(p []byte) (n int, full bool, err error) {
	n, e := writeFD(s.fd, p)
	switch e {
	case 0:
		return n, false, nil
	case unix.EAGAIN:
		return n, true, nil
	default:
		return n, false, e
	}
}

// quiet keeps the socket's arrivals from waking the poller (see lazyLowat),
// for a connection the dispatcher's loop reads at its ticks.
func (s *rawSock) quiet() {
	if !s.lowat {
		s.setLowat(lazyLowat)
		s.lowat = true
	}
}

// setLowat sets the socket's SO_RCVLOWAT to v.
func (s *rawSock) setLowat(v int) {
	_ = s.rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, v)
	})
}

// send makes the next Read write req first, then wait for the response. The
// caller must call Read next, and must not when a response's bytes are already
// buffered.
func (s *rawSock) send(req []byte) { s.pending = req }

// Read reads into p, waiting on the poller while nothing is available. A request
// left by send is written first.
func (s *rawSock) Read(p []byte) (int, error) {
	if len(p) == 0 && s.pending == nil {
		return 0, nil
	}
	if g := s.gate; g != nil && g.on.Load() {
		if n, err, done := s.readAtTicks(g, p); done {
			return n, err
		}
	}
	if s.lowat { // the gate turned off: the poller must hear of arrivals again
		s.setLowat(1)
		s.lowat = false
	}
	s.buf, s.n, s.err, s.partial = p, 0, nil, false
	err := s.rc.Read(s.readFn)
	if err == nil && s.partial { // finish the request, then read as usual
		s.buf, s.n = s.pending, 0
		s.pending = nil
		err = s.rc.Write(s.writeFn)
		s.n = 0
		if err == nil && s.err == nil {
			s.buf = p
			err = s.rc.Read(s.readFn)
		}
	}
	s.buf, s.pending = nil, nil
	if err != nil {
		return 0, err
	}
	return s.n, s.err
}

// readAtTicks writes a request left by send, then reads p at the gate's
// ticks until something arrives (done), or until the gate turns off (not
// done: the caller waits on the poller). A deadline that has passed, or an
// interruption, fails the next try.
func (s *rawSock) readAtTicks(g *readGate, p []byte) (n int, err error, done bool) {
	gen := g.generation()
	try := s.pending == nil // right after a request its response cannot be there yet
	if s.pending != nil {
		req := s.pending
		s.pending = nil
		if _, err := s.Write(req); err != nil {
			return 0, err, true
		}
	}
	if !s.lowat {
		s.setLowat(lazyLowat)
		s.lowat = true
	}
	for {
		if try {
			s.buf, s.n, s.err = p, 0, nil
			err := s.rc.Read(s.tryFn)
			s.buf = nil
			switch {
			case err != nil:
				return 0, err, true
			case !s.again:
				return s.n, s.err, true
			}
		}
		try = true
		if !g.wait(gen) {
			return 0, nil, false
		}
		gen = g.generation()
	}
}

// tryRead reads once without waiting; again reports that nothing had arrived.
func (s *rawSock) tryRead(fd uintptr) bool {
	s.again = !s.recv(fd)
	return true
}

// recv reads into s.buf with the arrival timestamp; false: nothing has
// arrived (EAGAIN).
func (s *rawSock) recv(fd uintptr) bool {
	s.iov.Base = unsafe.SliceData(s.buf)
	s.iov.SetLen(len(s.buf))
	s.msg.Control = &s.cmsg[0]
	s.msg.SetControllen(len(s.cmsg))
	s.msg.Flags = 0
	for {
		n, _, e := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&s.msg)), 0)
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			return false
		case e != 0:
			s.err = e
		case n == 0:
			s.err = io.EOF
		default:
			s.n = int(n)
			if at := rxTimestamp(s.cmsg[:s.msg.Controllen]); at > 0 {
				s.arrived = at
			}
		}
		return true
	}
}

// rxTimestamp returns the SCM_TIMESTAMPNS of a control message buffer (Unix
// ns), or 0. The headers are copied out, so b needs no alignment.
func rxTimestamp(b []byte) int64 {
	var h unix.Cmsghdr
	var ts unix.Timespec
	hb := unsafe.Slice((*byte)(unsafe.Pointer(&h)), unsafe.Sizeof(h))
	tb := unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts))
	for len(b) >= len(hb) {
		copy(hb, b)
		l := int(h.Len)
		if l < len(hb) || l > len(b) {
			return 0
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && l >= unix.CmsgLen(len(tb)) {
			copy(tb, b[unix.CmsgLen(0):])
			return ts.Nano()
		}
		b = b[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(b)):]
	}
	return 0
}

func (s *rawSock) doRead(fd uintptr) bool {
	if s.pending != nil {
		n, e := writeFD(fd, s.pending)
		switch e {
		case 0:
			s.pending = nil
			return false // the response cannot be there yet: wait for it
		case unix.EAGAIN:
			s.pending, s.partial = s.pending[n:], true
		default:
			s.pending, s.err = nil, e
		}
		return true
	}
	return s.recv(fd)
}

// Write writes all of p, waiting on the poller while the socket buffer is full.
func (s *rawSock) Write(p []byte) (int, error) {
	s.buf, s.n, s.err = p, 0, nil
	err := s.rc.Write(s.writeFn)
	s.buf = nil
	if err == nil {
		err = s.err
	}
	return s.n, err
}

func (s *rawSock) doWrite(fd uintptr) bool {
	n, e := writeFD(fd, s.buf[s.n:])
	s.n += n
	switch e {
	case 0:
	case unix.EAGAIN:
		return false // wait on the poller for room
	default:
		s.err = e
	}
	return true
}

// writeFD writes p to fd until all of it is written (e is 0), the socket
// buffer is full (EAGAIN) or the write fails; n is what was written.
func writeFD(fd uintptr, p []byte) (n int, e unix.Errno) {
	for n < len(p) {
		rest := p[n:]
		k, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(rest))), uintptr(len(rest)))
		switch e {
		case 0:
			n += int(k)
		case unix.EINTR:
		default:
			return n, e
		}
	}
	return n, 0
}

// rawIO reports whether plain TCP connections get a rawSock here.
const rawIO = true
