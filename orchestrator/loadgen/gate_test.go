//go:build linux

package loadgen

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pollIn returns the readiness poll(2) reports at once for s's socket.
func pollIn(t *testing.T, s *rawSock) int16 {
	t.Helper()
	var ev int16
	if err := s.rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 0); err != nil {
			t.Error(err)
		}
		ev = fds[0].Revents
	}); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestLazyReads(t *testing.T) {
	for _, c := range []struct {
		rate  float64
		conns int
		tick  time.Duration
		want  bool
		room  float64 // loopRoom or gateRoom
	}{
		{5000, 64, 500 * time.Microsecond, true, gateRoom},     // 2.5 a tick, 64 >= 20
		{5000, 64, time.Millisecond, true, gateRoom},           // 5 a tick, 64 >= 40
		{20000, 64, 400 * time.Microsecond, true, gateRoom},    // 8 a tick, 64 >= 64
		{50000, 64, 200 * time.Microsecond, false, gateRoom},   // 10 a tick: too few connections to hold longer
		{50000, 128, 200 * time.Microsecond, true, gateRoom},   // ... unless there are more
		{1000, 64, 500 * time.Microsecond, true, gateRoom},     // one every other tick
		{900, 64, 500 * time.Microsecond, false, gateRoom},     // fewer: a tick's wake-ups would outnumber the poller's
		{5000, 16, 500 * time.Microsecond, false, gateRoom},    // 2.5 a tick needs 20 connections
		{0, 64, 500 * time.Microsecond, false, gateRoom},       // a closed loop
		{2000, 8, 500 * time.Microsecond, true, gateRoom},      // exactly one a tick, and 8 connections
		{1e8, 1 << 20, 200 * time.Microsecond, true, gateRoom}, // the bounds
		{50000, 64, 200 * time.Microsecond, true, loopRoom},    // the loop: 10 a tick, 64 >= 40
		{80000, 64, 200 * time.Microsecond, true, loopRoom},    // 16 a tick, 64 >= 64
		{100000, 64, 200 * time.Microsecond, false, loopRoom},  // 20 a tick: too many
		{900, 64, 500 * time.Microsecond, false, loopRoom},     // the same floor
	} {
		if got := lazyReads(c.rate, c.conns, c.tick.Seconds(), c.room); got != c.want {
			t.Errorf("lazyReads(%v req/s, %d connections, tick %v, room %v) = %v, want %v", c.rate, c.conns, c.tick, c.room, got, c.want)
		}
	}
}

// answer makes the peer read a 5-byte request and answer it, and reports
// when it wrote the answer.
func answer(p net.Conn) <-chan time.Time {
	wrote := make(chan time.Time, 1)
	go func() {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(p, buf); err != nil {
			close(wrote)
			return
		}
		at := time.Now()
		if _, err := p.Write([]byte("pong\n")); err != nil {
			close(wrote)
			return
		}
		wrote <- at
	}()
	return wrote
}

type readResult struct {
	s   string
	err error
	at  time.Time
}

func readAsync(s *rawSock) <-chan readResult {
	out := make(chan readResult, 1)
	go func() {
		buf := make([]byte, 64)
		n, err := s.Read(buf)
		out <- readResult{string(buf[:n]), err, time.Now()}
	}()
	return out
}

// A connection read at ticks: its response's arrival does not wake it, the
// next tick does, and the kernel's receive time says when it arrived. When
// the gate turns off, a waiting read falls back to the poller at once.
func TestReadAtTicks(t *testing.T) {
	s, _, p := rawPair(t)
	waitForTimestamps(t, s, p)
	g := newReadGate()
	s.gate = g

	wrote := answer(p)
	s.send([]byte("ping\n"))
	got := readAsync(s)
	at, ok := <-wrote
	if !ok {
		t.Fatal("the peer did not answer")
	}
	select {
	case r := <-got:
		t.Fatalf("read %q, %v before any tick: the response's arrival woke it", r.s, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	// The kernel does not call the socket readable (so the poller, and the
	// process, sleep on), though the response is there.
	if ev := pollIn(t, s); ev != 0 {
		t.Errorf("poll says %#x for a socket read at ticks with its response arrived; want nothing", ev)
	}
	ticked := time.Now()
	g.tick()
	r := <-got
	if r.err != nil || r.s != "pong\n" {
		t.Fatalf("read at the tick = %q, %v", r.s, r.err)
	}
	// Arrived after the peer wrote (give the clocks a millisecond) and long
	// before the tick read it.
	if a := s.arrived; a < at.UnixNano()-int64(time.Millisecond) || a > ticked.UnixNano()-int64(50*time.Millisecond) {
		t.Errorf("arrival %v; the peer wrote at %v, the tick read it at %v", time.Unix(0, a), at, ticked)
	}
	if !s.lowat {
		t.Error("the socket's receive low-water mark was not raised")
	}

	// The gate turns off while a read waits: it reads at once.
	wrote = answer(p)
	s.send([]byte("ping\n"))
	got = readAsync(s)
	if _, ok := <-wrote; !ok {
		t.Fatal("the peer did not answer")
	}
	time.Sleep(50 * time.Millisecond)
	off := time.Now()
	g.off()
	select {
	case r := <-got:
		if r.err != nil || r.s != "pong\n" {
			t.Fatalf("read after off = %q, %v", r.s, r.err)
		}
		if d := r.at.Sub(off); d > time.Second {
			t.Errorf("read %v after the gate turned off", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read still waits 5 s after the gate turned off")
	}
	if s.lowat {
		t.Error("the low-water mark is still raised after the gate turned off")
	}
	// And the next response wakes its reader as it arrives.
	wrote = answer(p)
	s.send([]byte("ping\n"))
	if r := <-readAsync(s); r.err != nil || r.s != "pong\n" {
		t.Fatalf("eager read = %q, %v", r.s, r.err)
	}
}

// A read at ticks honours its deadline: the first tick after it fails the read.
func TestReadAtTicksDeadline(t *testing.T) {
	s, nc, _ := rawPair(t)
	g := newReadGate()
	s.gate = g
	_ = nc.SetDeadline(time.Now().Add(50 * time.Millisecond))
	s.send([]byte("ping\n")) // the peer never answers
	got := readAsync(s)
	for i := 0; i < 200; i++ {
		select {
		case r := <-got:
			if !errors.Is(r.err, os.ErrDeadlineExceeded) {
				t.Fatalf("read = %q, %v; want a deadline error", r.s, r.err)
			}
			return
		case <-time.After(10 * time.Millisecond):
			g.tick()
		}
	}
	t.Fatal("the read outlived its deadline by 2 s of ticks")
}

// cmsgTimestamp is a control message buffer as recvmsg fills it: other
// messages first, then SCM_TIMESTAMPNS with ts.
func cmsgTimestamp(others int, ts unix.Timespec) []byte {
	var b []byte
	put := func(level, typ int32, data []byte) {
		h := unix.Cmsghdr{Level: level, Type: typ}
		h.SetLen(unix.CmsgLen(len(data)))
		m := make([]byte, unix.CmsgSpace(len(data)))
		copy(m, unsafe.Slice((*byte)(unsafe.Pointer(&h)), unsafe.Sizeof(h)))
		copy(m[unix.CmsgLen(0):], data)
		b = append(b, m...)
	}
	for range others {
		put(unix.SOL_IP, unix.IP_TTL, []byte{64, 0, 0, 0})
	}
	put(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts)))
	return b
}

func TestRxTimestamp(t *testing.T) {
	ts := unix.NsecToTimespec(1_764_500_000_123_456_789)
	for others := range 3 {
		b := cmsgTimestamp(others, ts)
		if got := rxTimestamp(b); got != ts.Nano() {
			t.Errorf("%d other messages first: %d, want %d", others, got, ts.Nano())
		}
		// Unaligned, cut short, or empty: no timestamp, no panic.
		if got := rxTimestamp(append([]byte{0}, b...)[1:]); got != ts.Nano() {
			t.Errorf("unaligned copy: %d", got)
		}
		if got := rxTimestamp(b[:len(b)-1]); got != 0 {
			t.Errorf("cut short: %d, want 0", got)
		}
	}
	if got := rxTimestamp(nil); got != 0 {
		t.Errorf("empty: %d", got)
	}
}

func FuzzRxTimestamp(f *testing.F) {
	f.Add(cmsgTimestamp(0, unix.NsecToTimespec(1)))
	f.Add(cmsgTimestamp(2, unix.NsecToTimespec(42)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = rxTimestamp(b) // never panics, never reads past b
	})
}

// waitForTimestamps exchanges pings on s, without a gate, until the kernel
// gives a response its receive time (at most 2 s). The kernel turns packet
// timestamps on for the whole host in a deferred work item when the first
// socket asks for them (after the last one closed, say): the first packets
// after that may have none, and a response without one is timed when read.
func waitForTimestamps(t *testing.T, s *rawSock, p net.Conn) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	buf := make([]byte, 64)
	for {
		wrote := answer(p)
		s.send([]byte("ping\n"))
		if _, err := s.Read(buf); err != nil {
			t.Fatalf("warm-up ping: %v", err)
		}
		if _, ok := <-wrote; !ok {
			t.Fatal("the peer did not answer the warm-up ping")
		}
		if s.arrived > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no response got a kernel receive time within 2 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
