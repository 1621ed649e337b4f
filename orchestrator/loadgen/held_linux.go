//go:build linux

package loadgen

import (
	"net"

	"golang.org/x/sys/unix"
)

// tcpStateEstablished is TCP_ESTABLISHED (include/net/tcp_states.h).
const tcpStateEstablished = 1

// tcpEstablished reads c's TCP state from the kernel (TCP_INFO): known is
// false when it cannot be read (the socket was closed meanwhile).
func tcpEstablished(c *net.TCPConn) (established, known bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, false
	}
	var state uint8
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if gerr == nil {
			state = info.State
		}
	}); err != nil || gerr != nil {
		return false, false
	}
	return state == tcpStateEstablished, true
}
