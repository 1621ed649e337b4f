package eventbus

import (
	"sync"
	"time"
)

// schedule is the FIFO token schedule behind Config.Capacity: request k may
// proceed no earlier than start + k/R, where an idle server restarts the
// schedule at the present (no credit is saved up for bursts). Served
// throughput therefore never exceeds R and latency grows with the queue, as
// on a saturated server. It is pure arithmetic on the times it is given.
type schedule struct {
	interval time.Duration
	maxQueue int
	maxWait  time.Duration

	mu     sync.Mutex
	next   time.Time
	queued int
}

func newSchedule(rate float64, maxQueue int, maxWait time.Duration) *schedule {
	iv := time.Duration(float64(time.Second) / rate)
	if iv < 1 {
		iv = 1
	}
	return &schedule{interval: iv, maxQueue: maxQueue, maxWait: maxWait}
}

// reserve books the next slot for a request arriving at now. It returns the
// time the request may proceed, or ok false when the queue is full or the
// slot is further than maxWait away (the request must be rejected; nothing
// is booked). A booked request must call done when it leaves the queue.
func (s *schedule) reserve(now time.Time) (at time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.next
	if next.Before(now) {
		next = now
	}
	if next.Sub(now) > s.maxWait || s.queued >= s.maxQueue {
		return time.Time{}, false
	}
	s.next = next.Add(s.interval)
	s.queued++
	return next, true
}

// done marks a booked request as out of the queue (served or abandoned).
func (s *schedule) done() {
	s.mu.Lock()
	s.queued--
	s.mu.Unlock()
}

// length reports the number of requests booked and not yet done.
func (s *schedule) length() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued
}

// backlog reports the requests booked and not yet done, and how far after
// now the next free slot is (0 when the schedule is idle).
func (s *schedule) backlog(now time.Time) (queued int, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued, max(0, s.next.Sub(now))
}
