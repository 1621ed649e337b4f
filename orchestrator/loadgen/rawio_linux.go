//go:build linux

package loadgen

import (
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

	readFn, writeFn func(fd uintptr) bool
}

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
	s.readFn, s.writeFn = s.doRead, s.doWrite
	return s
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

func (s *rawSock) doRead(fd uintptr) bool {
	if s.pending != nil {
		req := s.pending
		for len(req) > 0 {
			n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(req))), uintptr(len(req)))
			switch e {
			case 0:
				req = req[n:]
			case unix.EINTR:
			case unix.EAGAIN:
				s.pending, s.partial = req, true
				return true
			default:
				s.pending, s.err = nil, e
				return true
			}
		}
		s.pending = nil
		return false // the response cannot be there yet: wait for it
	}
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(s.buf))), uintptr(len(s.buf)))
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
		}
		return true
	}
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
	for s.n < len(s.buf) {
		rest := s.buf[s.n:]
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(rest))), uintptr(len(rest)))
		switch e {
		case 0:
			s.n += int(n)
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		default:
			s.err = e
			return true
		}
	}
	return true
}
