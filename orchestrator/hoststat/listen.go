package hoststat

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// tcpListen is the state of a listening socket in /proc/net/tcp{,6} ("0A").
const tcpListen = "0A"

// Listener is a listening TCP socket and the processes that hold it.
type Listener struct {
	// Addr is the local address, e.g. 127.0.0.1:8080 or [::]:8080.
	Addr  string
	Inode uint64
	// Pids hold the socket open, in pid order: a server forked after it
	// bound (nginx's master and its workers) shares one socket.
	Pids []int
}

// Listeners returns the listening TCP sockets on port under root (IPv4 and
// IPv6), with the processes holding each. ip selects the local address: a
// socket bound to ip or to the wildcard address matches; nil matches any.
// The tables are the network namespace of whoever reads root/net (on a live
// host, the reader's own). Processes whose descriptors cannot be read
// (another user's, without privileges) are left out.
func Listeners(root string, ip net.IP, port int) ([]Listener, error) {
	root = rootOr(root)
	var out []Listener
	byInode := map[uint64]int{}
	read := 0
	for _, file := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join(root, "net", file))
		if err != nil {
			continue // no IPv6, or no such table
		}
		read++
		for _, s := range parseTCPTable(b) {
			if s.state != tcpListen || s.port != port || !addrMatches(s.ip, ip) {
				continue
			}
			if _, dup := byInode[s.inode]; dup || s.inode == 0 {
				continue
			}
			byInode[s.inode] = len(out)
			out = append(out, Listener{Addr: net.JoinHostPort(s.ip.String(), strconv.Itoa(s.port)), Inode: s.inode})
		}
	}
	if read == 0 {
		return nil, fmt.Errorf("listeners: no TCP table under %s", filepath.Join(root, "net"))
	}
	if len(out) == 0 {
		return nil, nil
	}
	pids, err := Pids(root)
	if err != nil {
		return out, err
	}
	for _, pid := range pids {
		dir := filepath.Join(root, strconv.Itoa(pid), "fd")
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			link, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			ino, ok := socketInode(link)
			if !ok {
				continue
			}
			if i, ok := byInode[ino]; ok && (len(out[i].Pids) == 0 || out[i].Pids[len(out[i].Pids)-1] != pid) {
				out[i].Pids = append(out[i].Pids, pid)
			}
		}
	}
	return out, nil
}

// ListenerOwners are the processes holding any of ls that no other holder
// is a parent of: the server itself, not the workers it forked (whose
// parent holds the same socket). In pid order.
func ListenerOwners(root string, ls []Listener) []int {
	holds := map[int]bool{}
	for _, l := range ls {
		for _, p := range l.Pids {
			holds[p] = true
		}
	}
	var out []int
	for p := range holds {
		st, err := ReadProcStat(root, p)
		if err == nil && holds[st.PPid] {
			continue
		}
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// socketInode parses a descriptor link "socket:[12345]".
func socketInode(link string) (uint64, bool) {
	rest, ok := strings.CutPrefix(link, "socket:[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	return n, err == nil
}

func addrMatches(bound, want net.IP) bool {
	if want == nil || bound.IsUnspecified() {
		return true
	}
	if bound.Equal(want) {
		return true
	}
	// A dual-stack wildcard or a v4-mapped address on a tcp6 socket.
	if v4 := bound.To4(); v4 != nil && want.To4() != nil {
		return v4.Equal(want.To4())
	}
	return false
}

// tcpSocket is one line of /proc/net/tcp{,6}.
type tcpSocket struct {
	ip    net.IP
	port  int
	state string
	inode uint64
}

// parseTCPTable parses /proc/net/tcp or tcp6:
// "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...".
// Lines it cannot parse are skipped.
func parseTCPTable(b []byte) []tcpSocket {
	var out []tcpSocket
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue // header
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		ip, port, ok := parseHexAddr(f[1])
		if !ok {
			continue
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, tcpSocket{ip: ip, port: port, state: strings.ToUpper(f[3]), inode: inode})
	}
	return out
}

// parseHexAddr parses "0100007F:1F90" (IPv4) or a 32-digit IPv6 address and
// port. The kernel prints each 32-bit word of the address as an integer in the
// host's byte order (/proc/net/tcp of this host, or a fixture written on one).
func parseHexAddr(s string) (net.IP, int, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return nil, 0, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return nil, 0, false
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return nil, 0, false
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		// Each word was printed as the host's integer: back to network order.
		binary.BigEndian.PutUint32(ip[i:], binary.NativeEndian.Uint32(raw[i:]))
	}
	return ip, int(port), true
}
