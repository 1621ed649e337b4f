package loadgen

import (
	"crypto/tls"
	"math/rand/v2"
	"net"
	"time"
)

// Held connections: the connections parameter asks the target to hold that
// many connections open at once. A target that cannot (nginx at its
// worker_connections) does not refuse them: it closes idle keep-alive
// connections to make room, and the generator, which reopens a closed
// connection on its next request, would otherwise send every request without
// noticing that it held far fewer than it was asked to. So the generator
// looks at each connection's TCP state during the hold: one the target closed
// is in CLOSE_WAIT until it is reused, which is not held.

// heldEvery is how often, on average, the sampler looks at every connection
// at once: a few hundred socket option reads take a few hundred microseconds,
// so a look is a snapshot of one instant, and its most held is a count the
// target really held at once. Each wait is drawn at random (half to one and a
// half of the mean) so the looks do not lock onto a periodic schedule of
// requests, which would see every connection at the same point of its cycle
// and bias the share.
const heldEvery = 500 * time.Millisecond

// heldStats is the held connections over the hold's looks: their sum, the
// number of looks and the most held in one.
type heldStats struct {
	sum   float64
	looks int
	peak  int
}

// mean is the average number of connections held per look.
func (h heldStats) mean() float64 {
	if h.looks == 0 {
		return 0
	}
	return h.sum / float64(h.looks)
}

// sampleHeld counts the connections of conns held open, from the hold's start
// (from, on the run's clock) until stop closes. A hold shorter than a wait
// gets one look when it ends.
func (r *run) sampleHeld(conns []*conn, from time.Duration, stop <-chan struct{}) heldStats {
	var h heldStats
	look := func() {
		n := 0
		for _, c := range conns {
			if c.held() {
				n++
			}
		}
		h.sum += float64(n)
		h.looks++
		h.peak = max(h.peak, n)
	}
	wait := time.NewTimer(max(from-time.Since(r.start), 0))
	defer wait.Stop()
	select {
	case <-stop:
		return h
	case <-wait.C:
	}
	for {
		wait.Reset(heldEvery/2 + rand.N(heldEvery))
		select {
		case <-stop:
			if h.looks == 0 {
				look()
			}
			return h
		case <-wait.C:
			look()
		}
	}
}

// held reports whether c's connection is open and established: not closed by
// the generator, and not closed by the target (CLOSE_WAIT) or reset.
func (c *conn) held() bool {
	c.mu.Lock()
	nc := c.nc
	c.mu.Unlock()
	if nc == nil {
		return false
	}
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	tcp, ok := nc.(*net.TCPConn)
	if !ok {
		return true
	}
	est, known := tcpEstablished(tcp)
	return est || !known
}
