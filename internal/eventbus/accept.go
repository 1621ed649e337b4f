package eventbus

import (
	"net"
	"time"
)

// pacedListener accepts at most one connection every interval: a server that
// accepts slowly, whose connections wait in the kernel's listen queue (and
// overflow it) meanwhile. net/http calls Accept from one goroutine.
type pacedListener struct {
	net.Listener
	every time.Duration
	next  time.Time
	now   func() time.Time
	sleep func(time.Duration)
}

func newPacedListener(ln net.Listener, perSecond float64) *pacedListener {
	return &pacedListener{Listener: ln, every: time.Duration(float64(time.Second) / perSecond), now: time.Now, sleep: time.Sleep}
}

// Accept waits for the next accept slot, then accepts. Slots are not saved
// up: a quiet second gives no burst after it.
func (l *pacedListener) Accept() (net.Conn, error) {
	if now := l.now(); l.next.After(now) {
		l.sleep(l.next.Sub(now))
	}
	c, err := l.Listener.Accept()
	if err == nil {
		l.next = l.now().Add(l.every)
	}
	return c, err
}
