//go:build linux

// Command floorbench measures the floor under a paced HTTP/1.1 generator's CPU on
// this machine: the least a generator can do to offer a rate to nginx on loopback.
// One thread, no goroutine hand-offs, no parsing, no latency recording: every tick
// (a timerfd; by default the tick of loadramp's loop at the rate) it writes the
// requests that are due, round-robin over keep-alive connections, and reads
// whatever responses have arrived on the connections that wait for one. It
// counts responses by their status lines, which holds for the benchmark's nginx
// ("ok\n" bodies) and nothing else: it is a yardstick, not a generator. bench/generator.sh prints its CPU next to loadramp's at the same
// offered rates, so the generator's CPU targets can be read against what the
// kernel's loopback path alone costs here (on loopback the sender's write also
// delivers the segment to the target's socket and wakes the target).
//
//	floorbench -addr 127.0.0.1:8080 -rate 5000 -connections 64 -duration 10s
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/loadramp/loadramp/orchestrator/loadgen"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type config struct {
	addr     netip.AddrPort
	rate     float64
	conns    int
	tick     time.Duration
	duration time.Duration
	warmup   time.Duration
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("floorbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "target IPv4 address and port on loopback, e.g. 127.0.0.1:8080")
	var c config
	fs.Float64Var(&c.rate, "rate", 5000, "offered requests/s (> 0)")
	fs.IntVar(&c.conns, "connections", 64, "keep-alive connections")
	fs.DurationVar(&c.tick, "tick", 0, "time between two wake-ups (0: the tick of loadramp's loop at -rate and -connections)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured hold")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "warmup before the hold")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ap, err := netip.ParseAddrPort(*addr)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "floorbench: -addr %q: %v (want 127.0.0.1:PORT)\n", *addr, err)
		return 2
	case !ap.Addr().Is4() || !ap.Addr().IsLoopback():
		fmt.Fprintf(stderr, "floorbench: -addr %s: only an IPv4 loopback address is allowed\n", ap)
		return 2
	case c.rate <= 0 || c.rate > 1e7:
		fmt.Fprintf(stderr, "floorbench: -rate %v: must be > 0 and <= 1e7\n", c.rate)
		return 2
	case c.conns < 1 || c.conns > 10000:
		fmt.Fprintf(stderr, "floorbench: -connections %d: must be 1..10000\n", c.conns)
		return 2
	case c.tick != 0 && (c.tick < 10*time.Microsecond || c.tick > 100*time.Millisecond):
		fmt.Fprintf(stderr, "floorbench: -tick %v: must be 0 (loadramp's) or 10µs..100ms\n", c.tick)
		return 2
	case c.duration <= 0 || c.warmup < 0:
		fmt.Fprintln(stderr, "floorbench: -duration must be > 0 and -warmup >= 0")
		return 2
	}
	c.addr = ap
	if c.tick == 0 {
		c.tick = loadgen.LoopTick(c.rate, c.conns)
	}
	res, err := measure(c)
	if err != nil {
		fmt.Fprintln(stderr, "floorbench:", err)
		return 1
	}
	fmt.Fprintf(stdout, "floor rps=%.1f offered=%.1f responses=%.1f cpu=%.3f tick_us=%d connections=%d\n",
		res.sent, c.rate, res.responses, res.cpu, c.tick.Microseconds(), c.conns)
	return 0
}

type result struct{ sent, responses, cpu float64 } // per second of the hold; cpu in cores

var request = []byte("GET / HTTP/1.1\r\nHost: floorbench\r\n\r\n")
var statusLine = []byte("HTTP/1.1 ")

func measure(c config) (result, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fds := make([]int, 0, c.conns)
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	sa := &unix.SockaddrInet4{Port: int(c.addr.Port()), Addr: c.addr.Addr().As4()}
	for range c.conns {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return result{}, fmt.Errorf("socket: %w", err)
		}
		fds = append(fds, fd)
		if err := unix.Connect(fd, sa); err != nil {
			return result{}, fmt.Errorf("connect %s: %w", c.addr, err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return result{}, fmt.Errorf("TCP_NODELAY: %w", err)
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			return result{}, err
		}
	}
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		return result{}, fmt.Errorf("timerfd: %w", err)
	}
	defer unix.Close(tfd)
	ts := unix.NsecToTimespec(c.tick.Nanoseconds())
	if err := unix.TimerfdSettime(tfd, 0, &unix.ItimerSpec{Interval: ts, Value: ts}, nil); err != nil {
		return result{}, fmt.Errorf("timerfd_settime: %w", err)
	}

	inflight := make([]int, c.conns)
	buf := make([]byte, 64<<10)
	var expiries [8]byte
	var sent, responses, rr int
	var sentAt, respAt int // counts when the hold began
	var ru0 unix.Rusage
	start := time.Now()
	holdAt := start.Add(c.warmup)
	end := holdAt.Add(c.duration)
	holding := false
	for {
		if _, err := rawRead(tfd, expiries[:]); err != nil && !errors.Is(err, unix.EINTR) {
			return result{}, fmt.Errorf("timerfd read: %w", err)
		}
		now := time.Now()
		if !holding && !now.Before(holdAt) {
			holding, sentAt, respAt = true, sent, responses
			if err := unix.Getrusage(unix.RUSAGE_SELF, &ru0); err != nil {
				return result{}, err
			}
			holdAt = now
		}
		if !now.Before(end) {
			break
		}
		for i, fd := range fds {
			if inflight[i] == 0 {
				continue
			}
			n, err := rawRead(fd, buf)
			if n > 0 {
				k := bytes.Count(buf[:n], statusLine)
				inflight[i] -= k
				responses += k
			} else if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				return result{}, fmt.Errorf("read: %w", err)
			} else if n == 0 && err == nil {
				return result{}, errors.New("the target closed a connection")
			}
		}
		due := int(c.rate*now.Sub(start).Seconds()) - sent
		for ; due > 0; due-- {
			i := rr % len(fds)
			rr++
			if n, err := rawWrite(fds[i], request); err != nil {
				return result{}, fmt.Errorf("write: %w", err)
			} else if n != len(request) {
				return result{}, fmt.Errorf("write: %d of %d bytes (the target stopped reading)", n, len(request))
			}
			inflight[i]++
			sent++
		}
	}
	var ru1 unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru1); err != nil {
		return result{}, err
	}
	held := time.Since(holdAt).Seconds()
	cpu := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
	return result{
		sent:      float64(sent-sentAt) / held,
		responses: float64(responses-respAt) / held,
		cpu:       cpu.Seconds() / held,
	}, nil
}

// rawRead and rawWrite are read(2) and write(2) without telling the Go runtime (as
// a C program would make them): the thread keeps its P while it blocks on the
// timerfd, so the runtime's monitor does not hand the P off at every tick.
func rawRead(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
