package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// conn is one keep-alive connection of the pool. Only its worker goroutine uses nc
// and rr during a Run; mu guards swapping nc so Run can interrupt it on cancellation.
type conn struct {
	mu      sync.Mutex
	nc      net.Conn // nil: closed, reopened on the next request
	rr      *respReader
	served  int  // requests answered on nc
	wasOpen bool // nc was open once: opening it again is a reopen
}

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

// open dials c's connection if it has none. reopened reports that it replaced a
// connection that had been open before.
func (c *conn) open(ctx context.Context, d *dialer, bufSize int) (reopened bool, err error) {
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
	if c.rr == nil {
		c.rr = newRespReader(nc, bufSize)
	} else {
		c.rr.rd, c.rr.r, c.rr.w = nc, 0, 0
	}
	c.served = 0
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

// interrupt makes any blocked read or write on c return at once.
func (c *conn) interrupt() {
	c.mu.Lock()
	if c.nc != nil {
		_ = c.nc.SetDeadline(time.Unix(1, 0))
	}
	c.mu.Unlock()
}

// roundTrip sends the endpoint's request on c and reads the response. The error, if
// any, is from the network or from parsing; stale reports that the connection failed
// before any byte of a response arrived after having served requests before (a
// keep-alive connection the target closed while idle), which is safe to retry once.
func (c *conn) roundTrip(ep *endpoint, timeout time.Duration) (resp response, stale bool, err error) {
	if err = c.nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return resp, false, err
	}
	if _, err = c.nc.Write(ep.request); err != nil {
		return resp, c.served > 0, err
	}
	resp, err = c.rr.read(ep.head)
	if err != nil {
		return resp, c.served > 0 && c.rr.got == 0 && !isTimeout(err), err
	}
	c.served++
	return resp, false, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
