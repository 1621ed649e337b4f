//go:build !linux

package loadgen

import "time"

// fineSleeper falls back to Go timers where timerfd does not exist.
type fineSleeper struct{}

func newFineSleeper() (*fineSleeper, error) { return &fineSleeper{}, nil }

func (s *fineSleeper) sleep(d time.Duration) error { time.Sleep(d); return nil }

func (s *fineSleeper) close() {}
