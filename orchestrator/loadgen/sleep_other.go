//go:build !linux

package loadgen

import "time"

// fineSleeper falls back to Go timers where timerfd does not exist.
type fineSleeper struct{}

func newFineSleeper() (*fineSleeper, error) { return &fineSleeper{}, nil }

func (s *fineSleeper) sleep(d time.Duration) error { time.Sleep(d); return nil }

// hold sleeps like sleep: the dispatcher's loop, its only caller, runs on Linux alone.
func (s *fineSleeper) hold(d time.Duration) error { return s.sleep(d) }

func (s *fineSleeper) close() {}
