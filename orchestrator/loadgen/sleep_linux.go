//go:build linux

package loadgen

import (
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fineSleeper sleeps for short durations precisely. Go timers fire through the
// network poller, whose wait is rounded up to whole milliseconds when the process
// is otherwise idle, so a 200 µs sleep can last 1 ms: too coarse for a dispatcher
// that must release requests within a fraction of a millisecond of their time. A
// timerfd read through the poller wakes the goroutine as soon as the kernel timer
// expires, without blocking an OS thread.
//
// Its system calls are raw, for the reason rawSock's are: a syscall.Syscall made
// while every P was idle wakes the runtime's monitor thread, which then polls
// every 20 µs for a millisecond. The timer is armed from inside the poller's read
// callback, after the poller has cleared the descriptor's readiness, so the expiry
// always wakes the waiter and no read is tried before it.
//
// The dispatcher's loop sleeps on a second timerfd instead, read blocking on its
// own thread (hold): no trip through the scheduler and the poller at all.
type fineSleeper struct {
	fd     int
	held   int      // a blocking timerfd for hold
	f      *os.File // fd registered with the poller; never call its Fd (it would block)
	rc     syscall.RawConn
	spec   unix.ItimerSpec
	buf    [8]byte
	armed  bool // this sleep's timer is set
	err    error
	readFn func(fd uintptr) bool
}

func newFineSleeper() (*fineSleeper, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("loadgen: timerfd: %w", err)
	}
	held, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("loadgen: timerfd: %w", err)
	}
	s := &fineSleeper{fd: fd, held: held, f: os.NewFile(uintptr(fd), "timerfd")}
	if s.rc, err = s.f.SyscallConn(); err != nil {
		s.close()
		return nil, fmt.Errorf("loadgen: timerfd: %w", err)
	}
	s.readFn = s.wait
	return s, nil
}

// sleep blocks for d (> 0).
func (s *fineSleeper) sleep(d time.Duration) error {
	s.spec.Value = unix.NsecToTimespec(int64(d))
	s.armed, s.err = false, nil
	if err := s.rc.Read(s.readFn); err != nil {
		return fmt.Errorf("loadgen: timerfd read: %w", err)
	}
	return s.err
}

// wait is the poller's read callback: the first call arms the timer and asks to
// wait; later calls consume the expiry, or wait again if it has not happened.
func (s *fineSleeper) wait(fd uintptr) bool {
	if !s.armed {
		s.armed = true
		_, _, e := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&s.spec)), 0, 0, 0)
		if e != 0 {
			s.err = fmt.Errorf("loadgen: timerfd settime: %w", e)
			return true
		}
		return false
	}
	for {
		_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&s.buf[0])), uintptr(len(s.buf)))
		switch e {
		case 0:
			return true
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		default:
			s.err = fmt.Errorf("loadgen: timerfd read: %w", e)
			return true
		}
	}
}

// hold blocks the calling thread for d (> 0) in the kernel, keeping its P: the
// goroutine is not parked, so waking costs no pass of the scheduler and no wait
// in the poller (at 5,000 req/s on a 2-CPU VM, 4-9 % of the generator's CPU:
// docs/metrics.md). Nothing else runs on that P meanwhile, and no one polls the
// process's sockets: the caller keeps d short (the dispatcher's tick, at most
// fineSleepMax), yields after it, and sleeps through the poller now and then
// (pollEvery). The calls are raw (no entersyscall), so the runtime's monitor
// does not hand the P to another thread during the sleep.
func (s *fineSleeper) hold(d time.Duration) error {
	s.spec.Value = unix.NsecToTimespec(int64(d))
	if _, _, e := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(s.held), 0, uintptr(unsafe.Pointer(&s.spec)), 0, 0, 0); e != 0 {
		return fmt.Errorf("loadgen: timerfd settime: %w", e)
	}
	for {
		_, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(s.held), uintptr(unsafe.Pointer(&s.buf[0])), uintptr(len(s.buf)))
		switch e {
		case 0:
			return nil
		case unix.EINTR: // a signal (the runtime's preemption among them)
		default:
			return fmt.Errorf("loadgen: timerfd read: %w", e)
		}
	}
}

func (s *fineSleeper) close() {
	_ = s.f.Close()
	_ = unix.Close(s.held)
}
