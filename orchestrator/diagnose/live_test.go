package diagnose

import (
	"context"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// TestListenOverflowLive overflows a real accept queue on loopback (a listener
// with backlog 1 that never accepts) and checks the procfs sampler and the rule
// name it from the kernel's counters. The counters are shared by the whole
// network namespace, so this would show other runs on the machine a listen
// overflow: it runs only when LOADRAMP_TEST_KERNEL_COUNTERS=1.
func TestListenOverflowLive(t *testing.T) {
	if os.Getenv("LOADRAMP_TEST_KERNEL_COUNTERS") != "1" {
		t.Skip("bumps the host's TcpExt ListenOverflows; set LOADRAMP_TEST_KERNEL_COUNTERS=1 to run")
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("socket: %v", err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))

	ctx := context.Background()
	s := hoststat.New("/proc")
	before, err := s.Sample(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := before.Host[hoststat.HostListenOverflows]; !ok {
		t.Skip("TcpExt ListenOverflows unavailable here")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	for range 16 { // bounded: 16 dials of at most 300 ms each
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
			if err == nil {
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	after, err := s.Sample(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := hoststat.Window([]hoststat.Sample{before, after})
	fs := Diagnose(Input{Host: "local", Summary: sum, Settings: hoststat.Settings("/proc")})
	var found bool
	for _, f := range fs {
		if f.Rule == RuleListenOverflow {
			found = true
			t.Logf("%s: %s; %v", f.Rule, f.Observed, f.Evidence)
		}
	}
	if !found {
		t.Fatalf("no listen-overflow finding; deltas %v; %d of 16 dials connected; findings %+v", sum.Deltas, len(conns), fs)
	}
}
