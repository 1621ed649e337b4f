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

// heldCycle is how long the sampler takes to look at every connection once;
// it looks at a tenth of them every heldCycle/heldSlices on average, so its
// cost is one socket option read per connection per cycle, spread evenly.
// Each wait is drawn at random (half to one and a half of the mean) so the
// looks do not lock onto a periodic schedule of requests, which would see
// every connection at the same point of its cycle and bias the share.
const (
	heldCycle  = 500 * time.Millisecond
	heldSlices = 10
)

// heldStats is the held connections over the hold's sampling cycles: their
// sum, the number of cycles and the most held in one cycle.
type heldStats struct {
	sum    float64
	cycles int
	peak   int
}

// mean is the average number of connections held per cycle.
func (h heldStats) mean() float64 {
	if h.cycles == 0 {
		return 0
	}
	return h.sum / float64(h.cycles)
}

// sampleHeld counts the connections of conns held open, from the hold's start
// (from, on the run's clock) until stop closes, a tenth of them at a time. A
// cycle cut short by stop is left out unless it is the only one.
func (r *run) sampleHeld(conns []*conn, from time.Duration, stop <-chan struct{}) heldStats {
	var h heldStats
	wait := time.NewTimer(max(from-time.Since(r.start), 0))
	defer wait.Stop()
	select {
	case <-stop:
		return h
	case <-wait.C:
	}
	n := len(conns)
	per := (n + heldSlices - 1) / heldSlices
	mean := heldCycle / heldSlices
	tick := time.NewTimer(mean)
	defer tick.Stop()
	held, looked := 0, 0
	for slice := 0; ; slice++ {
		lo := (slice % heldSlices) * per
		for i := lo; i < min(lo+per, n); i++ {
			if conns[i].held() {
				held++
			}
			looked++
		}
		if looked >= n {
			h.sum += float64(held)
			h.cycles++
			h.peak = max(h.peak, held)
			held, looked = 0, 0
		}
		select {
		case <-stop:
			if h.cycles == 0 && looked > 0 {
				// A hold shorter than a cycle: scale what was seen.
				v := float64(held) * float64(n) / float64(looked)
				h.sum, h.cycles, h.peak = v, 1, int(v+0.5)
			}
			return h
		case <-tick.C:
			tick.Reset(mean/2 + rand.N(mean))
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
