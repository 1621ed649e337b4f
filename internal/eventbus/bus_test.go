package eventbus

import (
	"sync"
	"testing"
)

// TestBusChurn subscribes, publishes and unsubscribes concurrently on a few
// topics (run it with -race): every subscription must be accounted for and
// every topic removed once its last subscriber leaves.
func TestBusChurn(t *testing.T) {
	var c counters
	b := newBus(100, 8, &c, t.Logf)
	topics := []string{"a", "b", "c"}
	var wg sync.WaitGroup
	received := make([]int, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := range 300 {
				name := topics[(w+i)%len(topics)]
				s, err := b.subscribe(name, "churn")
				if err != nil {
					t.Errorf("subscribe: %v", err)
					return
				}
				b.publish(name, []byte("m"))
				// The subscriber's own message is in its buffer unless
				// other publishers filled it first and it was dropped.
				select {
				case <-s.ch:
					received[w]++
				case <-s.gone:
				}
				b.unsubscribe(name, s)
			}
		})
	}
	wg.Wait()
	if n := c.subscribers.Load(); n != 0 {
		t.Errorf("subscribers = %d after everyone left, want 0", n)
	}
	if n := b.numTopics.Load(); n != 0 {
		t.Errorf("topics = %d after everyone left, want 0", n)
	}
	left := 0
	b.topics.Range(func(_, _ any) bool { left++; return true })
	if left != 0 {
		t.Errorf("%d topics left in the map", left)
	}
	total := 0
	for _, n := range received {
		total += n
	}
	if total+int(c.dropped.Load()) < 8*300 {
		t.Errorf("received %d + dropped %d < %d subscriptions", total, c.dropped.Load(), 8*300)
	}
}

func TestBusTopicBound(t *testing.T) {
	var c counters
	b := newBus(2, 1, &c, t.Logf)
	sa, _ := b.subscribe("a", "x")
	if _, err := b.subscribe("b", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.subscribe("c", "x"); err != errTooManyTopics {
		t.Fatalf("third topic: %v, want errTooManyTopics", err)
	}
	b.unsubscribe("a", sa)
	if _, err := b.subscribe("c", "x"); err != nil {
		t.Errorf("a topic slot freed by the last unsubscribe was not reusable: %v", err)
	}
	b.close()
	if _, err := b.subscribe("b", "x"); err != errClosed {
		t.Errorf("subscribe after close: %v, want errClosed", err)
	}
}
