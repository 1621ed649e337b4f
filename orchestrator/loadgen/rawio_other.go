//go:build !linux

package loadgen

import (
	"errors"
	"io"
	"net"
)

// rawSock is Linux-only; elsewhere connections use net.Conn's Read and Write.
type rawSock struct {
	gate    *readGate
	arrived int64
	nowRd   io.Reader
}

func newRawSock(net.Conn) *rawSock { return nil }

func (s *rawSock) send([]byte)                        { panic("unreachable") }
func (s *rawSock) Read(p []byte) (int, error)         { panic("unreachable") }
func (s *rawSock) Write(p []byte) (int, error)        { panic("unreachable") }
func (s *rawSock) writeNow([]byte) (int, bool, error) { panic("unreachable") }
func (s *rawSock) quiet()                             { panic("unreachable") }

// errWouldBlock is never returned: there is no dispatcher's loop here.
var errWouldBlock = errors.New("loadgen: nothing to read yet")

// rawIO reports whether plain TCP connections get a rawSock here.
const rawIO = false
