package loadgen

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// endpoint is where a Target's requests go: every request of a mix shares it,
// and the connections.
type endpoint struct {
	tls    bool
	addr   string // host:port to dial
	server string // TLS server name
	host   string // the Host header
}

// compiledRequest is one Request resolved once: its bytes when nothing in it
// varies, or the segments to assemble for each request.
type compiledRequest struct {
	name   string
	weight int
	head   bool   // HEAD: the response has no body
	static []byte // the whole request, when nothing varies
	// line is the request line and headers, up to the Content-Length of a
	// body that varies (length) and the blank line; body is the body.
	line    []seg
	body    []seg
	length  bool
	feeders []int // indexes of the feeders the request reads a row of
	usesSeq bool
	check   *checker
}

// feeder is a Target's feeder as the generator reads it.
type feeder struct {
	name string
	mode FeederMode
	cols []string
	rows [][]string
	next atomic.Uint64 // rows taken so far (circular and unique)
}

// take picks the row of the request being built.
func (f *feeder) take(st *reqState) (int, error) {
	n := uint64(len(f.rows))
	switch f.mode {
	case Random:
		return int(st.rng.Uint64N(n)), nil
	case Unique:
		i := f.next.Add(1) - 1
		if i >= n {
			return 0, &FeederDryError{Feeder: f.name, Rows: len(f.rows)}
		}
		return int(i), nil
	default:
		return int((f.next.Add(1) - 1) % n), nil
	}
}

// build assembles the request's bytes in st's buffers (valid until the next
// build on st). A request whose unique feeder ran dry is not built.
func (c *compiledRequest) build(st *reqState, feeders []*feeder) ([]byte, error) {
	st.nowSet = false
	for _, i := range c.feeders {
		row, err := feeders[i].take(st)
		if err != nil {
			return nil, err
		}
		st.rows[i] = row
	}
	st.body = appendSegs(st.body[:0], c.body, st, feeders)
	b := appendSegs(st.req[:0], c.line, st, feeders)
	if c.length {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(st.body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, st.body...)
	st.req = b
	return b, nil
}

// compileTarget validates t and resolves its requests once: the endpoint they
// share, each request's bytes or segments, and the feeders they read.
func compileTarget(t Target) (*endpoint, []*compiledRequest, []*feeder, error) {
	feeders, index, err := compileFeeders(t.Feeders)
	if err != nil {
		return nil, nil, nil, err
	}
	reqs := requestsOf(t)
	if err := validateMix(reqs); err != nil {
		return nil, nil, nil, err
	}
	var ep *endpoint
	out := make([]*compiledRequest, 0, len(reqs))
	for i, r := range reqs {
		e, c, err := compileRequest(r, index, feeders)
		if err != nil {
			if len(reqs) > 1 {
				return nil, nil, nil, fmt.Errorf("request %q: %w", r.Name, err)
			}
			return nil, nil, nil, err
		}
		if ep == nil {
			ep = e
		} else if e.addr != ep.addr || e.tls != ep.tls {
			return nil, nil, nil, fmt.Errorf("loadgen: request %q goes to %s, requests[0] to %s: every request of a mix shares the connections, so one scheme, host and port", reqs[i].Name, e.addr, ep.addr)
		}
		out = append(out, c)
	}
	return ep, out, feeders, nil
}

func compileFeeders(m map[string]*Feeder) ([]*feeder, map[string]int, error) {
	index := map[string]int{}
	var out []*feeder
	for _, name := range sortedKeys(m) {
		f := m[name]
		if f == nil || len(f.Columns) == 0 || len(f.Rows) == 0 {
			return nil, nil, fmt.Errorf("loadgen: feeder %q has no columns or no rows", name)
		}
		if f.Mode < Circular || f.Mode > Unique {
			return nil, nil, fmt.Errorf("loadgen: feeder %q: unknown mode %d", name, f.Mode)
		}
		for i, r := range f.Rows {
			if len(r) != len(f.Columns) {
				return nil, nil, fmt.Errorf("loadgen: feeder %q: row %d has %d values for %d columns", name, i+1, len(r), len(f.Columns))
			}
		}
		index[name] = len(out)
		out = append(out, &feeder{name: name, mode: f.Mode, cols: f.Columns, rows: f.Rows})
	}
	return out, index, nil
}

// segBuilder collects segments, merging adjacent text.
type segBuilder struct {
	segs     []seg
	computed bool // a segment is not text
}

func (b *segBuilder) text(s string) {
	if s == "" {
		return
	}
	if n := len(b.segs); n > 0 && b.segs[n-1].kind == partText {
		b.segs[n-1].lit = append(b.segs[n-1].lit, s...)
		return
	}
	b.segs = append(b.segs, seg{kind: partText, lit: []byte(s)})
}

// part adds a template part; escape percent-encodes its value (in a URL).
func (b *segBuilder) part(p Part, escape bool, index map[string]int, feeders []*feeder) error {
	s := seg{kind: p.kind, min: p.min, max: p.max, layout: p.layout, escape: escape}
	switch p.kind {
	case partText:
		b.text(p.text)
		return nil
	case partRandInt:
		if p.min > p.max {
			return fmt.Errorf("RandInt(%d, %d): min > max", p.min, p.max)
		}
	case partRandString:
		if p.min < 1 || p.min > 1<<16 {
			return fmt.Errorf("RandString(%d): the length must be from 1 to 65536", p.min)
		}
	case partField:
		i, ok := index[p.feeder]
		if !ok {
			return fmt.Errorf("field %q of feeder %q: no such feeder", p.column, p.feeder)
		}
		s.feeder = i
		s.column = -1
		for j, c := range feeders[i].cols {
			if c == p.column {
				s.column = j
			}
		}
		if s.column < 0 {
			return fmt.Errorf("field %q of feeder %q: no such column (it has %s)", p.column, p.feeder, strings.Join(feeders[i].cols, ", "))
		}
	case partSeq, partUUID, partNow, partNowUnix, partNowUnixMilli:
	default:
		return fmt.Errorf("unknown template part %d", p.kind)
	}
	b.segs = append(b.segs, s)
	b.computed = true
	return nil
}

// compileRequest resolves one request: its endpoint, and its bytes or segments.
func compileRequest(r Request, index map[string]int, feeders []*feeder) (*endpoint, *compiledRequest, error) {
	ep, path, err := splitURL(r.URL)
	if err != nil {
		return nil, nil, err
	}
	method := r.Method
	if method == "" {
		method = "GET"
	}
	if strings.ContainsAny(method, " \t\r\n") {
		return nil, nil, errors.New("loadgen: target method contains white space")
	}
	c := &compiledRequest{name: r.Name, weight: max(r.Weight, 1), head: strings.EqualFold(method, "HEAD")}
	if r.Check != nil {
		if c.check, err = compileCheck(*r.Check); err != nil {
			return nil, nil, err
		}
	}
	reads := map[int]bool{}
	var line, body segBuilder
	add := func(b *segBuilder, parts Template, escape bool) error {
		for _, p := range parts {
			if err := b.part(p, escape && p.kind != partText, index, feeders); err != nil {
				return fmt.Errorf("loadgen: %w", err)
			}
			switch p.kind {
			case partField:
				reads[index[p.feeder]] = true
			case partSeq:
				c.usesSeq = true
			}
		}
		return nil
	}
	line.text(method + " ")
	if err := add(&line, path, true); err != nil {
		return nil, nil, err
	}
	line.text(" HTTP/1.1\r\n")
	if err := add(&body, r.Body, false); err != nil {
		return nil, nil, err
	}
	hasHost, hasLen, hasUA := false, false, false
	for _, h := range r.Headers {
		k := h.Name
		if k == "" || strings.ContainsAny(k, ":\r\n \t") {
			return nil, nil, fmt.Errorf("loadgen: target header %q: invalid characters", k)
		}
		switch strings.ToLower(k) {
		case "host":
			hasHost = true
		case "content-length":
			hasLen = true
			if body.computed {
				return nil, nil, fmt.Errorf("loadgen: target header %q: the body varies per request, so the generator sets its length", k)
			}
		case "user-agent":
			hasUA = true
		case "connection", "transfer-encoding":
			return nil, nil, fmt.Errorf("loadgen: target header %q is managed by the generator", k)
		}
		for _, p := range h.Value {
			switch {
			case p.kind == partText && strings.ContainsAny(p.text, "\r\n"):
				return nil, nil, fmt.Errorf("loadgen: target header %q: invalid characters", k)
			case p.kind == partField:
				if err := fieldFitsHeader(p, index, feeders); err != nil {
					return nil, nil, fmt.Errorf("loadgen: target header %q: %w", k, err)
				}
			}
		}
		line.text(k + ": ")
		if err := add(&line, h.Value, false); err != nil {
			return nil, nil, err
		}
		line.text("\r\n")
	}
	if !hasHost {
		line.text("Host: " + ep.host + "\r\n")
	}
	switch {
	case body.computed:
		c.length = true // computed for each request, after the line
	case !hasLen && (bodyLen(body) > 0 || method == "POST" || method == "PUT" || method == "PATCH"):
		line.text("Content-Length: " + strconv.Itoa(bodyLen(body)) + "\r\n")
	}
	if !hasUA {
		line.text("User-Agent: loadramp\r\n")
	}
	c.line, c.body = line.segs, body.segs
	for i := range reads {
		c.feeders = append(c.feeders, i)
	}
	sort.Ints(c.feeders)
	if !line.computed && !body.computed {
		b := appendSegs(nil, c.line, nil, nil)
		b = append(b, "\r\n"...)
		c.static = appendSegs(b, c.body, nil, nil)
	}
	return ep, c, nil
}

func bodyLen(b segBuilder) int {
	n := 0
	for _, s := range b.segs {
		n += len(s.lit)
	}
	return n
}

// fieldFitsHeader checks that no value of a feeder column sent in a header
// holds a line break, which would end the header early.
func fieldFitsHeader(p Part, index map[string]int, feeders []*feeder) error {
	i, ok := index[p.feeder]
	if !ok {
		return nil // reported by the segment builder
	}
	f := feeders[i]
	for j, c := range f.cols {
		if c != p.column {
			continue
		}
		for r, row := range f.rows {
			if strings.ContainsAny(row[j], "\r\n") {
				return fmt.Errorf("row %d of feeder %q has a line break in column %q", r+1, p.feeder, p.column)
			}
		}
	}
	return nil
}

// splitURL parses a URL template into the endpoint (the scheme, host and
// port, which must be text) and the request target (path and query), whose
// computed parts are percent-encoded.
func splitURL(u Template) (*endpoint, Template, error) {
	var prefix strings.Builder
	rest := u
	for len(rest) > 0 && rest[0].kind == partText {
		prefix.WriteString(rest[0].text)
		rest = rest[1:]
	}
	raw := prefix.String()
	hostPart := raw
	var tail string
	if len(rest) > 0 {
		// The scheme, host and port are written before any computed part.
		scheme, after, ok := strings.Cut(raw, "://")
		end := strings.IndexAny(after, "/?")
		if !ok || end < 0 {
			return nil, nil, fmt.Errorf("loadgen: target url %q: the scheme, host and port must be written before any per-request value", raw)
		}
		hostPart = scheme + "://" + after[:end]
		tail = after[end:]
		if strings.ContainsFunc(tail, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return nil, nil, fmt.Errorf("loadgen: target url %q: white space or control characters in the path", raw)
		}
		for _, p := range rest {
			if p.kind == partText && strings.ContainsFunc(p.text, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				return nil, nil, fmt.Errorf("loadgen: target url: white space or control characters in %q", p.text)
			}
		}
	}
	pu, err := url.Parse(hostPart)
	if err != nil {
		return nil, nil, fmt.Errorf("loadgen: target url: %w", err)
	}
	ep := &endpoint{}
	switch pu.Scheme {
	case "http":
	case "https":
		ep.tls = true
	default:
		return nil, nil, fmt.Errorf("loadgen: target url %q: scheme must be http or https", hostPart)
	}
	if pu.Host == "" {
		return nil, nil, fmt.Errorf("loadgen: target url %q: no host", hostPart)
	}
	host, port := pu.Hostname(), pu.Port()
	if port == "" {
		port = "80"
		if ep.tls {
			port = "443"
		}
	}
	ep.addr = net.JoinHostPort(host, port)
	ep.server = host
	ep.host = pu.Host
	if len(rest) == 0 {
		return ep, Template{Text(pu.RequestURI())}, nil
	}
	if strings.HasPrefix(tail, "?") {
		tail = "/" + tail
	}
	return ep, append(Template{Text(tail)}, rest...), nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// keepBody reports whether the start of a response's body must be kept for
// the request's check.
func (r *compiledRequest) keepBody() bool { return r.check != nil && r.check.needBody }
