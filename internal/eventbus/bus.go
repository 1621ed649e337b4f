package eventbus

import (
	"errors"
	"sync"
	"sync/atomic"
)

// errTooManyTopics is returned by subscribe when the topic bound is reached.
var errTooManyTopics = errors.New("too many topics")

// errClosed is returned by subscribe once the bus is closed.
var errClosed = errors.New("event bus is shutting down")

// bus routes messages to subscribers. Topics exist only while they have
// subscribers, so publishes to unwatched topics cost one map lookup and no
// memory. Topic lookup is lock-free (sync.Map); each topic has its own lock.
type bus struct {
	topics    sync.Map // string -> *topic
	numTopics atomic.Int64
	maxTopics int64
	bufSize   int
	closed    chan struct{}
	closeOnce sync.Once
	c         *counters
	logf      func(format string, args ...any)
}

type topic struct {
	name string
	mu   sync.RWMutex
	subs []*subscriber
	dead bool // removed from the map; subscribe must retry with a new topic
}

// subscriber is one SSE stream. ch carries messages; gone is closed when the
// publisher drops it as slow.
type subscriber struct {
	remote  string
	ch      chan []byte
	gone    chan struct{}
	dropped atomic.Bool
}

func newBus(maxTopics, bufSize int, c *counters, logf func(string, ...any)) *bus {
	return &bus{maxTopics: int64(maxTopics), bufSize: bufSize, closed: make(chan struct{}), c: c, logf: logf}
}

// close ends every subscription: each SSE handler sees b.closed and returns.
func (b *bus) close() { b.closeOnce.Do(func() { close(b.closed) }) }

// subscribe registers a subscriber on name, creating the topic if needed.
func (b *bus) subscribe(name, remote string) (*subscriber, error) {
	s := &subscriber{remote: remote, ch: make(chan []byte, b.bufSize), gone: make(chan struct{})}
	for {
		select {
		case <-b.closed:
			return nil, errClosed
		default:
		}
		v, ok := b.topics.Load(name)
		if !ok {
			if b.numTopics.Add(1) > b.maxTopics {
				b.numTopics.Add(-1)
				return nil, errTooManyTopics
			}
			var loaded bool
			v, loaded = b.topics.LoadOrStore(name, &topic{name: name})
			if loaded {
				b.numTopics.Add(-1)
			}
		}
		t := v.(*topic)
		t.mu.Lock()
		if t.dead {
			t.mu.Unlock()
			continue
		}
		t.subs = append(t.subs, s)
		t.mu.Unlock()
		b.c.subscribers.Add(1)
		return s, nil
	}
}

// unsubscribe removes s from name and deletes the topic when it is empty.
func (b *bus) unsubscribe(name string, s *subscriber) {
	v, ok := b.topics.Load(name)
	if !ok {
		return
	}
	t := v.(*topic)
	t.mu.Lock()
	removed := t.remove(s)
	if len(t.subs) == 0 && !t.dead {
		t.dead = true
		b.topics.CompareAndDelete(name, t)
		b.numTopics.Add(-1)
	}
	t.mu.Unlock()
	if removed {
		b.c.subscribers.Add(-1)
	}
}

func (t *topic) remove(s *subscriber) bool {
	for i, x := range t.subs {
		if x == s {
			last := len(t.subs) - 1
			t.subs[i] = t.subs[last]
			t.subs[last] = nil
			t.subs = t.subs[:last]
			return true
		}
	}
	return false
}

// publish hands msg to every subscriber of name without blocking and returns
// how many received it. A subscriber whose buffer is full is dropped. msg
// must not be modified afterwards: subscribers share it.
func (b *bus) publish(name string, msg []byte) int {
	v, ok := b.topics.Load(name)
	if !ok {
		return 0
	}
	t := v.(*topic)
	n := 0
	var slow []*subscriber
	t.mu.RLock()
	for _, s := range t.subs {
		if s.dropped.Load() {
			continue
		}
		select {
		case s.ch <- msg:
			n++
		default:
			if s.dropped.CompareAndSwap(false, true) {
				slow = append(slow, s)
			}
		}
	}
	t.mu.RUnlock()
	for _, s := range slow {
		b.drop(t, s)
	}
	return n
}

// drop removes a slow subscriber. The message it could not take counts as
// dropped here; the messages left in its buffer are counted by its handler,
// which stops without sending them.
func (b *bus) drop(t *topic, s *subscriber) {
	close(s.gone)
	b.c.dropped.Add(1)
	b.c.droppedMessages.Add(1)
	b.logf("eventbus: dropping slow subscriber topic=%s remote=%s after %d buffered messages", t.name, s.remote, cap(s.ch))
	b.unsubscribe(t.name, s)
}

// hasTopic reports whether name has subscribers, so publish can skip copying
// a message nobody will receive.
func (b *bus) hasTopic(name string) bool {
	_, ok := b.topics.Load(name)
	return ok
}
