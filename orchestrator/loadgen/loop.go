package loadgen

// The dispatcher's loop. In the steps that read responses at the dispatcher's
// ticks (lazyReads), the dispatcher itself sends and reads on plain TCP
// connections, as an event loop does: at each tick it writes the requests that
// are due on the connections idle then, reads what has arrived on the ones
// that had a request in flight before, and sends what is still due on those it
// freed, with raw non-blocking system calls. A response still arriving stays in
// flight until a later tick; nothing waits. Each request then costs its write,
// one read and the parse, and no goroutine is woken for it: the per-connection
// goroutines of the worker design (a channel hand-off to send, a wake-up at a
// tick to read) cost about an eighth of the generator's CPU at 5,000 to 20,000
// requests per second (docs/metrics.md).
//
// Whatever would make the loop wait is handed to the connection's goroutine,
// which does it the usual way (exchange) and gives the connection back:
// dialing a closed connection, a write that filled the socket buffer, a
// response larger than maxReadBuffer, the retry of a stale keep-alive
// connection, replacing a connection the target closed. A request in flight
// for the target's timeout is counted a timeout by the loop, as the
// connection's deadline would. When the dispatch ends, requests still in
// flight go to their goroutines (which wait for them on the poller) and
// requests queued for a free connection go to the jobs queue, so the drain
// and the counting of incomplete requests are the worker design's.

// loopMaxRate bounds the steps the loop runs when the generator may use more
// than one CPU: the loop is one goroutine, so it runs on one CPU at a time,
// and the connections' goroutines spread over every CPU. At 20,000 req/s the
// loop used about 0.45 of a core on the VM the project is developed on, where
// a request on loopback costs the sender the target's receive too; past that,
// a generator with cores to spare is faster with its goroutines. With one
// CPU there is nothing to spread over, and the loop runs every step that
// reads at the ticks.
const loopMaxRate = 20000

// A response is parsed on the loop only once it has all arrived, so it must
// fit whole in its connection's buffer: it is parsed again from its start
// until it has. The buffer grows for it as for a long header line (see
// maxReadBuffer); a response it cannot hold is handed to the connection's
// goroutine, which reads it as it comes. Handing every response over costs a
// goroutine wake-up and two channel hand-offs each: with 12 KB responses at
// 5,000 req/s the loop then cost a third more CPU than the goroutines alone.

// handKind is what a connection's goroutine does with a connection the loop
// hands over.
type handKind uint8

const (
	handSend   handKind = iota // send o's request (opening the connection first)
	handRetry                  // send it again on a new connection: the first try found it stale
	handRest                   // write the rest of the request (from written), then read its response
	handReopen                 // the response said the target closes the connection: reopen it
)

// handoff is a connection handed by the loop to its goroutine.
type handoff struct {
	kind    handKind
	req     *compiledRequest
	payload []byte
	o       outcome
	written int
}

// loopConn is a connection as the loop sees it.
type loopConn struct {
	c    *conn
	s    *shard
	hand chan handoff // to the connection's goroutine; room for one

	// The request in flight.
	req     *compiledRequest
	payload []byte
	o       outcome
}

// loop is a step's dispatcher loop; only the dispatcher uses it, but for
// back and done.
type loop struct {
	r     *run
	conns []loopConn
	free  []int // idle connections, oldest first, as a ring
	fh    int   // free[fh] is the next to use
	nfree int
	busy  []int   // connections with a request in flight
	queue []int64 // intended times of requests due, waiting for a free connection
	qh    int     // queue[qh:] is waiting
	limit int     // the most the queue holds
	back  chan int
	done  chan struct{}
	// tooLarge counts the responses handed over as too large for the loop's
	// buffers (for tests).
	tooLarge int
}

// newLoop makes the loop of a step over conns (the shards are assigned as the
// workers' are).
func newLoop(r *run, conns []*conn, shards []*shard) *loop {
	l := &loop{r: r, conns: make([]loopConn, len(conns)), free: make([]int, len(conns)),
		busy: make([]int, 0, len(conns)), queue: make([]int64, 0, min(r.g.opts.queueSize, 4096)),
		limit: r.g.opts.queueSize, back: make(chan int, len(conns)), done: make(chan struct{})}
	for i, c := range conns {
		l.conns[i] = loopConn{c: c, s: shards[i%len(shards)], hand: make(chan handoff, 1)}
		l.adopt(i)
	}
	return l
}

// loopable reports whether the loop may run a step at rate (one that reads
// at the ticks) when the generator may use procs CPUs: its connections are
// plain TCP read and written with raw system calls (rawIO), and one CPU is all
// there is or enough for the rate (loopMaxRate).
func (g *Generator) loopable(rate float64, procs int) bool {
	return rawIO && g.dialer.tls == nil && (procs == 1 || rate <= loopMaxRate)
}

// adopt makes connection i idle in the loop, which reads it at its ticks.
func (l *loop) adopt(i int) {
	if c := l.conns[i].c; c.nc != nil && c.raw != nil {
		c.raw.gate = nil
		c.raw.quiet()
	}
	l.free[(l.fh+l.nfree)%len(l.free)] = i
	l.nfree++
}

func (l *loop) takeFree() int {
	i := l.free[l.fh]
	l.fh = (l.fh + 1) % len(l.free)
	l.nfree--
	return i
}

// queued is how many requests wait for a free connection; full, that the
// queue holds as many as it may.
func (l *loop) queued() int { return len(l.queue) - l.qh }
func (l *loop) full() bool  { return l.queued() >= l.limit }

// waiting reports whether anything needs the dispatcher's next tick.
func (l *loop) waiting() bool { return len(l.busy) > 0 || l.queued() > 0 || len(l.back) > 0 }

// start sends the request due at intended on an idle connection, or queues
// it (blocked: no connection was idle). The queue must not be full.
func (l *loop) start(intended int64) (blocked bool) {
	if l.nfree == 0 {
		l.queue = append(l.queue, intended)
		return true
	}
	l.send(l.takeFree(), intended)
	return false
}

// send writes the request due at intended on idle connection i.
func (l *loop) send(i int, intended int64) {
	r, lc := l.r, &l.conns[i]
	c := lc.c
	req, idx, payload, ok := r.build(c)
	if !ok {
		l.adopt(i)
		return
	}
	o := sending(intended, r.now(), r.warmup, idx)
	if c.nc == nil || c.raw == nil { // closed (or, never seen, without raw I/O)
		l.handOff(i, handoff{kind: handSend, req: req, payload: payload, o: o})
		return
	}
	o.wasSent = true
	c.raw.arrived = 0
	n, full, err := c.raw.writeNow(payload)
	switch {
	case err != nil:
		stale := c.idle(r.g.opts.staleAfter)
		c.close()
		if stale {
			l.handOff(i, handoff{kind: handRetry, req: req, payload: payload, o: o})
			return
		}
		o.cls, o.done = classifyErr(err), r.now()
		lc.s.record(o)
		l.adopt(i)
	case full:
		l.handOff(i, handoff{kind: handRest, req: req, payload: payload, o: o, written: n})
	default:
		lc.req, lc.payload, lc.o = req, payload, o
		l.busy = append(l.busy, i)
	}
}

// handOff gives connection i to its goroutine.
func (l *loop) handOff(i int, h handoff) {
	lc := &l.conns[i]
	lc.req, lc.payload = nil, nil
	lc.hand <- h
}

// handedOut counts the connections with their goroutines (or on their way
// back): neither idle nor busy on the loop. While one is, the dispatcher
// sleeps through the poller, which that goroutine's socket waits on
// (pollEvery).
func (l *loop) handedOut() int { return len(l.conns) - l.nfree - len(l.busy) }

// turn is the loop's work at a tick. It takes back the connections their
// goroutines are done with; then, unless requests are queued for a
// connection, sendDue (if not nil) sends what is due on the connections idle
// now: reading first would delay those sends by a read each, while a response
// waiting to be read loses nothing (the kernel timed its arrival). It then
// reads what has arrived on the connections busy before those sends, and
// sends the queued requests on the connections the reads freed.
func (l *loop) turn(sendDue func()) {
	for len(l.back) > 0 {
		l.adopt(<-l.back)
	}
	old := len(l.busy)
	if sendDue != nil && l.queued() == 0 && l.nfree > 0 {
		sendDue()
	}
	l.readOld(old)
	l.sendQueued()
}

// sendQueued sends the queued requests on the idle connections.
func (l *loop) sendQueued() {
	for l.queued() > 0 && l.nfree > 0 {
		at := l.queue[l.qh]
		l.qh++
		if l.qh == len(l.queue) {
			l.queue, l.qh = l.queue[:0], 0
		}
		l.send(l.takeFree(), at)
	}
}

// readOld reads what has arrived on the first n busy connections (those busy
// before this tick's sends: a response to a request just sent is not there
// yet, and a read finding nothing is a system call wasted), and keeps the
// busy ones in the order they were sent.
func (l *loop) readOld(n int) {
	if n == 0 {
		return
	}
	now := l.r.now()
	j := 0
	for k := 0; k < n; k++ {
		if i := l.busy[k]; !l.read(i, now) {
			l.busy[j] = i
			j++
		}
	}
	if j < n {
		j += copy(l.busy[j:], l.busy[n:])
		l.busy = l.busy[:j]
	}
}

// read parses the response of connection i's request from what has arrived;
// done: the request is over (answered, failed, timed out, or handed to the
// connection's goroutine).
func (l *loop) read(i int, now int64) (done bool) {
	r, lc := l.r, &l.conns[i]
	c := lc.c
	rr := c.rr
	rr.pinned, rr.pin = true, rr.r
	rr.rd, rr.keep = c.raw.nowRd, lc.req.keepBody()
	resp, err := rr.read(lc.req.head)
	rr.rd, rr.pinned = c.raw, false
	o := lc.o
	switch err {
	case nil:
		c.served++
		r.answered(c, lc.s, lc.req, o, resp, false)
		if resp.close {
			l.handOff(i, handoff{kind: handReopen, req: lc.req, o: o})
		} else {
			lc.req, lc.payload = nil, nil
			l.adopt(i)
		}
		return true
	case errWouldBlock:
		rr.r = rr.pin // parsed again from its start when more has arrived
		if now-o.sent < int64(r.g.timeout) {
			return false
		}
		c.close()
		o.cls, o.done = clsTimeout, now
		lc.s.record(o)
		l.adopt(i)
		return true
	case errHeaderTooLarge: // larger than the loop may buffer: read it unpinned
		rr.r = rr.pin
		l.tooLarge++
		l.handOff(i, handoff{kind: handRest, req: lc.req, payload: lc.payload, o: o, written: len(lc.payload)})
		return true
	}
	stale := c.idle(r.g.opts.staleAfter) && rr.got == 0 && !isTimeout(err)
	c.close()
	if stale {
		l.handOff(i, handoff{kind: handRetry, req: lc.req, payload: lc.payload, o: o})
		return true
	}
	o.cls, o.done = classifyErr(err), r.now()
	lc.s.record(o)
	l.adopt(i)
	return true
}

// end hands what the loop still holds to the worker design: the requests in
// flight to their connections' goroutines, the queued ones to the jobs queue
// (the dispatcher closes it after). Every goroutine then takes jobs.
func (l *loop) end() {
	for l.queued() > 0 {
		l.r.jobs <- job{intended: l.queue[l.qh]}
		l.qh++
	}
	for _, i := range l.busy {
		lc := &l.conns[i]
		l.handOff(i, handoff{kind: handRest, req: lc.req, payload: lc.payload, o: lc.o, written: len(lc.payload)})
	}
	l.busy = l.busy[:0]
	close(l.done)
}

// serve is connection i's goroutine while the loop runs: it does what the
// loop hands it, and gives the connection back.
func (l *loop) serve(i int) {
	lc := &l.conns[i]
	for {
		select {
		case h := <-lc.hand:
			l.r.takeOver(lc.c, lc.s, h)
			l.back <- i
		case <-l.done:
			select { // handed over as the loop ended
			case h := <-lc.hand:
				l.r.takeOver(lc.c, lc.s, h)
			default:
			}
			return
		}
	}
}

// takeOver does what the loop handed over, the worker design's way.
func (r *run) takeOver(c *conn, s *shard, h handoff) {
	if r.canceled.Load() {
		if h.kind == handRest || h.kind == handReopen {
			c.close() // a response may still come, or the target closes it
		}
		return
	}
	switch h.kind {
	case handSend:
		r.exchange(c, s, h.req, h.payload, h.o, 0)
	case handRetry:
		r.exchange(c, s, h.req, h.payload, h.o, 1)
	case handReopen:
		r.reopen(c, h.o.inWindow)
	case handRest:
		r.rest(c, s, h)
	}
}

// rest finishes a request the loop started on c: the rest of its bytes, then
// its response, read from its start.
func (r *run) rest(c *conn, s *shard, h handoff) {
	o, g := h.o, r.g
	err := c.arm(g.timeout)
	if err == nil && h.written < len(h.payload) {
		_, err = c.raw.Write(h.payload[h.written:])
	}
	var resp response
	if err == nil {
		c.rr.keep = h.req.keepBody()
		resp, err = c.rr.read(h.req.head)
	}
	if err != nil {
		stale := c.idle(g.opts.staleAfter) && c.rr.got == 0 && !isTimeout(err)
		c.close()
		if r.canceled.Load() {
			return
		}
		if stale {
			r.exchange(c, s, h.req, h.payload, o, 1)
			return
		}
		o.cls, o.done = classifyErr(err), r.now()
		s.record(o)
		return
	}
	c.served++
	r.answered(c, s, h.req, o, resp, true)
}
