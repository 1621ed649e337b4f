// Package delivery is how loadramp talks to a publish/subscribe server: the
// marker it puts in every message it publishes (source, publisher, sequence
// number and intended send time, so a delivery's delay is measured from when
// the message should have left), the user's envelope around the marker, the
// subscription streams (Server-Sent Events or WebSocket) with their
// confirmation modes, and the publishers (HTTP requests or WebSocket
// messages). The pubsub engine and the pubsub probe both use it.
package delivery

import (
	"bytes"
	"strconv"
	"time"
)

// The marker is plain text:
//
//	loadramp:<src>:<pub>:<seq>:<sent>;
//
// src names the sender and the step (letters, digits, '-', '_', '.'), pub is
// the publisher's index, seq its sequence number (10 digits) and sent the
// intended send time in microseconds from the sender's base (12 digits); the
// ';' ends it, so a truncated marker is not misread. Every character is one
// that JSON, SSE, NATS and HTTP carry unchanged, so the marker is found in an
// event's data whatever the bus wraps around it, even JSON-escaped inside a
// string. Its length depends only on src and pub: an envelope renders to the
// same size for every message of a publisher (see Body).
const (
	// MarkerPrefix starts every marker.
	MarkerPrefix = "loadramp:"
	markerEnd    = ';'
	seqDigits    = 10
	sentDigits   = 12
	// maxSrc bounds a source's length.
	maxSrc = 64
	// maxPubDigits bounds a publisher index's digits when parsing.
	maxPubDigits = 9
)

// Message is what a marker carries. Sender and receiver are one process, so
// the send time is an offset from a base they share and the delivery delay
// needs no clock synchronization.
type Message struct {
	// Src names the sender and the step.
	Src string
	// Pub is the publisher's index within the step.
	Pub int
	Seq uint64
	// Sent is the intended send time, as an offset from the sender's base
	// (microsecond resolution).
	Sent time.Duration
}

// Kind says what Find made of an event's data.
type Kind int

// What an event can be.
const (
	// Foreign data carries no marker: another program's message, or a
	// protocol message of the bus. Counted, never an error.
	Foreign Kind = iota
	// Mangled data has the marker's prefix but no well-formed marker after
	// it (truncated or altered on the way).
	Mangled
	// Other data carries a well-formed marker of another source.
	Other
	// Ours carries a marker of the source asked for.
	Ours
)

// ValidSrc reports whether s can name a marker's source.
func ValidSrc(s string) bool {
	if s == "" || len(s) > maxSrc {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !srcByte(s[i]) {
			return false
		}
	}
	return true
}

func srcByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// MarkerLen is the length of every marker of src and publisher pub.
func MarkerLen(src string, pub int) int {
	return len(MarkerPrefix) + len(src) + 1 + len(strconv.Itoa(pub)) + 1 + seqDigits + 1 + sentDigits + 1
}

// AppendMarker appends m's marker to b. Seq and Sent are written with fixed
// widths (a larger value wraps around), so every marker of one source and
// publisher has the same length. Src must be ValidSrc.
func AppendMarker(b []byte, m Message) []byte {
	b = append(b, MarkerPrefix...)
	b = append(b, m.Src...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(m.Pub), 10)
	b = append(b, ':')
	b = appendFixed(b, m.Seq, seqDigits)
	b = append(b, ':')
	b = appendFixed(b, uint64(max(m.Sent, 0)/time.Microsecond), sentDigits)
	return append(b, markerEnd)
}

// appendFixed appends the last n decimal digits of v, zero-padded.
func appendFixed(b []byte, v uint64, n int) []byte {
	var d [20]byte
	for i := n - 1; i >= 0; i-- {
		d[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, d[:n]...)
}

var prefix = []byte(MarkerPrefix)

// Find returns the first well-formed marker in data. Its kind is Ours for
// any well-formed marker (Find asks for no source), Mangled when the prefix
// is there but no marker parses, and Foreign when there is no prefix.
func Find(data []byte) (Message, Kind) {
	kind := Foreign
	for rest := data; ; {
		i := bytes.Index(rest, prefix)
		if i < 0 {
			return Message{}, kind
		}
		rest = rest[i+len(prefix):]
		if m, ok := parseAfterPrefix(rest); ok {
			return m, Ours
		}
		kind = Mangled
	}
}

// FindFrom looks in data for a marker of src without allocating: Ours with
// its publisher, sequence number and send time, and end, the offset in data
// just after it (an event may carry several messages: a NATS server packs
// messages into one WebSocket message, so look again in data[end:]); or what
// else data is.
func FindFrom(data []byte, src string) (pub int, seq uint64, sent time.Duration, kind Kind, end int) {
	kind = Foreign
	for off := 0; ; {
		i := bytes.Index(data[off:], prefix)
		if i < 0 {
			return 0, 0, 0, kind, 0
		}
		off += i + len(prefix)
		s, after, ok := cutSrc(data[off:])
		if !ok {
			if kind == Foreign {
				kind = Mangled
			}
			continue
		}
		p, q, t, n, ok := parseFields(after)
		switch {
		case !ok:
			if kind == Foreign {
				kind = Mangled
			}
		case string(s) == src:
			return p, q, t, Ours, len(data) - len(after) + n
		default:
			kind = Other
		}
	}
}

// cutSrc splits "src:rest" after the prefix.
func cutSrc(b []byte) (src, rest []byte, ok bool) {
	n := 0
	for n < len(b) && n <= maxSrc && srcByte(b[n]) {
		n++
	}
	if n == 0 || n > maxSrc || n >= len(b) || b[n] != ':' {
		return nil, nil, false
	}
	return b[:n], b[n+1:], true
}

// parseFields parses "pub:seq:sent;" at the start of b; n is its length.
func parseFields(b []byte) (pub int, seq uint64, sent time.Duration, n int, ok bool) {
	all := len(b)
	p, b, ok := digits(b, maxPubDigits)
	if !ok || len(b) == 0 || b[0] != ':' {
		return 0, 0, 0, 0, false
	}
	q, b, ok := digits(b[1:], 19)
	if !ok || len(b) == 0 || b[0] != ':' {
		return 0, 0, 0, 0, false
	}
	t, b, ok := digits(b[1:], 15)
	if !ok || len(b) == 0 || b[0] != markerEnd {
		return 0, 0, 0, 0, false
	}
	return int(p), q, time.Duration(t) * time.Microsecond, all - len(b) + 1, true
}

func parseAfterPrefix(b []byte) (Message, bool) {
	s, rest, ok := cutSrc(b)
	if !ok {
		return Message{}, false
	}
	p, q, t, _, ok := parseFields(rest)
	if !ok {
		return Message{}, false
	}
	return Message{Src: string(s), Pub: p, Seq: q, Sent: t}, true
}

// digits reads 1 to max decimal digits; more is not a number of ours.
func digits(b []byte, max int) (uint64, []byte, bool) {
	var v uint64
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		if n == max {
			return 0, nil, false
		}
		v = v*10 + uint64(b[n]-'0')
		n++
	}
	return v, b[n:], n > 0
}

// EachFrom calls f with every marker of src in data, in order (an event may
// carry several messages), skipping a marker that repeats the one before it
// (a body may print its marker twice). It returns Ours when it found one,
// else what data is: Other, Mangled or Foreign.
func EachFrom(data []byte, src string, f func(pub int, seq uint64, sent time.Duration)) Kind {
	first := true
	var lastPub int
	var lastSeq uint64
	for {
		pub, seq, sent, kind, end := FindFrom(data, src)
		if kind != Ours {
			if first {
				return kind
			}
			return Ours
		}
		if first || pub != lastPub || seq != lastSeq {
			f(pub, seq, sent)
		}
		first, lastPub, lastSeq = false, pub, seq
		data = data[end:]
	}
}
