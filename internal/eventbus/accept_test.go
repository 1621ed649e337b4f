package eventbus

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// fakeListener is a fake net.Listener whose Accept returns at once.
type fakeListener struct{ net.Listener }

func (fakeListener) Accept() (net.Conn, error) {
	a, b := net.Pipe()
	b.Close()
	return a, nil
}

func TestPacedListenerSpacesAccepts(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var slept []time.Duration
	l := newPacedListener(fakeListener{}, 10) // one accept every 100 ms
	l.now = func() time.Time { return clock }
	l.sleep = func(d time.Duration) { slept = append(slept, d); clock = clock.Add(d) }
	accept := func() {
		t.Helper()
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	accept() // the first one at once
	accept() // then one every 100 ms
	clock = clock.Add(30 * time.Millisecond)
	accept() // 70 ms left of its slot
	clock = clock.Add(time.Second)
	accept() // a quiet second saves no burst: this one at once,
	accept() // and the next 100 ms later
	want := []time.Duration{100 * time.Millisecond, 70 * time.Millisecond, 100 * time.Millisecond}
	if len(slept) != len(want) {
		t.Fatalf("slept %v, want %v", slept, want)
	}
	for i := range want {
		if slept[i] != want[i] {
			t.Errorf("slept %v, want %v", slept, want)
		}
	}
}

func TestAcceptRateValidated(t *testing.T) {
	if _, err := New(Config{AcceptRate: -1}); err == nil {
		t.Error("a negative accept rate was accepted")
	}
}

func TestNoKeepAliveClosesAfterOneAnswer(t *testing.T) {
	ts := start(t, Config{NoKeepAlive: true})
	resp, err := http.Get(ts.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !resp.Close {
		t.Error("the answer keeps the connection (no Connection: close)")
	}
}
