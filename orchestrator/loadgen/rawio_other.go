//go:build !linux

package loadgen

import "net"

// rawSock is Linux-only; elsewhere connections use net.Conn's Read and Write.
type rawSock struct {
	gate    *readGate
	arrived int64
}

func newRawSock(net.Conn) *rawSock { return nil }

func (s *rawSock) send([]byte)                 { panic("unreachable") }
func (s *rawSock) Read(p []byte) (int, error)  { panic("unreachable") }
func (s *rawSock) Write(p []byte) (int, error) { panic("unreachable") }
