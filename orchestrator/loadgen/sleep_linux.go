//go:build linux

package loadgen

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fineSleeper sleeps for short durations precisely. Go timers fire through the
// network poller, whose wait is rounded up to whole milliseconds when the process
// is otherwise idle, so a 200 µs sleep can last 1 ms: too coarse for a dispatcher
// that must release requests within a fraction of a millisecond of their time. A
// timerfd read through the poller wakes the goroutine as soon as the kernel timer
// expires, without blocking an OS thread.
type fineSleeper struct {
	fd   int
	f    *os.File // fd registered with the poller; never call its Fd (it would block)
	spec unix.ItimerSpec
	buf  [8]byte
}

func newFineSleeper() (*fineSleeper, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("loadgen: timerfd: %w", err)
	}
	return &fineSleeper{fd: fd, f: os.NewFile(uintptr(fd), "timerfd")}, nil
}

// sleep blocks for d (> 0).
func (s *fineSleeper) sleep(d time.Duration) error {
	s.spec.Value = unix.NsecToTimespec(int64(d))
	if err := unix.TimerfdSettime(s.fd, 0, &s.spec, nil); err != nil {
		return fmt.Errorf("loadgen: timerfd settime: %w", err)
	}
	_, err := s.f.Read(s.buf[:])
	return err
}

func (s *fineSleeper) close() { _ = s.f.Close() }
