package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one keep-alive connection of the pool. Only its worker goroutine uses nc
// and rr during a Run; mu guards swapping nc so Run can interrupt it on cancellation.
type conn struct {
	mu      sync.Mutex
	nc      net.Conn // nil: closed, reopened on the next request
	raw     *rawSock // nc's raw reader and writer; nil for TLS
	rr      *respReader
	served  int  // requests answered on nc
	wasOpen bool // nc was open once: opening it again is a reopen
	// openedAt is when nc was opened (Unix ns): a connection that has served
	// nothing yet may have been closed by the target's idle timeout only if it
	// has been open a while (see staleAfter).
	openedAt int64
	// deadline is nc's read and write deadline in Unix ns; 0 when none is set or
	// interrupt moved it.
	deadline atomic.Int64
	// cut is set by interrupt (under mu) until the next Run: no deadline is
	// set on nc again, so a request that starts after the interruption, or
	// renews its deadline while it happens, fails at once instead of waiting
	// out its timeout.
	cut bool
	// st builds the requests of a mix or template sent on c (nil until one is).
	st *reqState
}

// deadlineSlack: a request's deadline is renewed only when less than the timeout
// is left, to timeout + timeout/deadlineSlack, so a busy connection renews it a few
// times a second instead of on every request (each renewal resets two runtime
// timers). A request therefore times out after between 1 and 1+1/deadlineSlack
// timeouts.
const deadlineSlack = 8

// dialer opens connections to one endpoint.
type dialer struct {
	ep      *endpoint
	tls     *tls.Config
	timeout time.Duration
}

// dial opens a connection (and completes the TLS handshake), bounded by the
// request timeout and ctx.
func (d *dialer) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	nd := net.Dialer{}
	nc, err := nd.DialContext(ctx, "tcp", d.ep.addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if d.tls == nil {
		return nc, nil
	}
	tc := tls.Client(nc, d.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return tc, nil
}

// open dials c's connection if it has none, with a response buffer of bufSize
// bytes that may grow as far as room allows (see maxReadBuffer). reopened
// reports that it replaced a connection that had been open before.
func (c *conn) open(ctx context.Context, d *dialer, bufSize int, room *atomic.Int64) (reopened bool, err error) {
	if c.nc != nil {
		return false, nil
	}
	nc, err := d.dial(ctx)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	c.nc = nc
	c.mu.Unlock()
	c.raw = newRawSock(nc)
	var rd io.Reader = nc
	if c.raw != nil {
		rd = c.raw
	}
	if c.rr == nil {
		c.rr = newRespReader(rd, bufSize)
		c.rr.room = room
	} else {
		c.rr.rd, c.rr.r, c.rr.w = rd, 0, 0
	}
	c.served = 0
	c.openedAt = time.Now().UnixNano()
	c.deadline.Store(0)
	reopened = c.wasOpen
	c.wasOpen = true
	return reopened, nil
}

// close closes c's connection, if open.
func (c *conn) close() {
	c.mu.Lock()
	nc := c.nc
	c.nc = nil
	c.mu.Unlock()
	if nc != nil {
		_ = nc.Close()
	}
}

// interrupt makes any blocked read or write on c return at once, and any
// later one until resume.
func (c *conn) interrupt() {
	c.mu.Lock()
	c.cut = true
	if c.nc != nil {
		c.deadline.Store(0)
		_ = c.nc.SetDeadline(time.Unix(1, 0))
	}
	c.mu.Unlock()
}

// resume lets c's requests set deadlines again (at the start of a Run).
func (c *conn) resume() {
	c.mu.Lock()
	c.cut = false
	c.mu.Unlock()
}

// renew sets nc's deadline to d, unless c was interrupted: then it is left in
// the past and renew fails.
func (c *conn) renew(d time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return errInterrupted
	}
	if err := c.nc.SetDeadline(d); err != nil {
		return err
	}
	c.deadline.Store(d.UnixNano())
	return nil
}

// errInterrupted: the request started after its step was cancelled.
var errInterrupted = errors.New("loadgen: interrupted: the step was cancelled")

// roundTrip sends req on c and reads the response (to a HEAD request when head
// is set; keeping the start of its body in c.rr.kept when keep is set). The error,
// if any, is from the network or from parsing; stale reports that the connection
// failed before any byte of a response arrived after it had served requests, or
// after it had waited unused in the pool for staleAfter or longer: a keep-alive
// connection the target closed while idle, which is safe to retry once on a new
// connection. A connection that fails on its first request soon after it was
// opened is not stale: that is the target refusing it. req must stay unchanged
// until roundTrip returns.
func (c *conn) roundTrip(req []byte, head, keep bool, timeout, staleAfter time.Duration) (resp response, stale bool, err error) {
	if err = c.arm(timeout); err != nil {
		return resp, false, err
	}
	switch {
	case c.raw != nil && c.rr.r == c.rr.w:
		c.raw.send(req) // written by the response's first read
	case c.raw != nil:
		_, err = c.raw.Write(req)
	default:
		_, err = c.nc.Write(req)
	}
	if err != nil {
		return resp, c.idle(staleAfter), err
	}
	c.rr.keep = keep
	resp, err = c.rr.read(head)
	if err != nil {
		return resp, c.idle(staleAfter) && c.rr.got == 0 && !isTimeout(err), err
	}
	c.served++
	return resp, false, nil
}

// arm makes sure c's deadline leaves at least timeout, renewing it (to
// timeout + timeout/deadlineSlack) when less is left.
func (c *conn) arm(timeout time.Duration) error {
	if now := time.Now(); c.deadline.Load()-now.UnixNano() < int64(timeout) {
		return c.renew(now.Add(timeout + timeout/deadlineSlack))
	}
	return nil
}

// idle reports whether the target may have closed c as an idle keep-alive
// connection: it served requests before, or it has been open for staleAfter.
func (c *conn) idle(staleAfter time.Duration) bool {
	return c.served > 0 || time.Now().UnixNano()-c.openedAt >= int64(staleAfter)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
