// Package delivery is the format of what loadramp publishes and how it
// receives it: the message a publisher sends (its source, sequence number and
// intended send time, so a delivery's delay is measured from when the message
// should have left) and a Server-Sent Events subscription stream. The pubsub
// engine and the pubsub probe both use it.
package delivery

import (
	"bytes"
	"strconv"
	"time"
)

// Message is what the pubsub workload and the pubsub probe publish: who sent
// it, its sequence number and its intended send time. Sender and receiver are
// one process, so the send time is an offset from a shared monotonic base
// and the delivery delay needs no clock synchronization.
type Message struct {
	// Src names the sender and the step (letters, digits, '-', '_', '.').
	Src string
	Seq uint64
	// Sent is the intended send time, as an offset from the sender's base.
	Sent time.Duration
}

const (
	msgPrefix = `{"src":"`
	msgSeq    = `","seq":`
	msgT      = `,"t":`
	msgPad    = `,"pad":"`
)

// AppendMessage appends m as a JSON object padded with a "pad" field to at
// least size bytes.
func AppendMessage(b []byte, m Message, size int) []byte {
	start := len(b)
	b = append(b, msgPrefix...)
	b = append(b, m.Src...)
	b = append(b, msgSeq...)
	b = strconv.AppendUint(b, m.Seq, 10)
	b = append(b, msgT...)
	b = strconv.AppendInt(b, int64(m.Sent), 10)
	if n := size - (len(b) - start) - len(msgPad) - 2; n > 0 {
		b = append(b, msgPad...)
		for range n {
			b = append(b, 'x')
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

// ParseMessage reads a message written by AppendMessage; ok is false for
// anything else (other publishers' messages on the same topic).
func ParseMessage(b []byte) (m Message, ok bool) {
	rest, ok := bytes.CutPrefix(b, []byte(msgPrefix))
	if !ok {
		return m, false
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return m, false
	}
	m.Src = string(rest[:i])
	rest, ok = bytes.CutPrefix(rest[i:], []byte(msgSeq))
	if !ok {
		return m, false
	}
	seq, rest, ok := digits(rest)
	if !ok {
		return m, false
	}
	rest, ok = bytes.CutPrefix(rest, []byte(msgT))
	if !ok {
		return m, false
	}
	t, _, ok := digits(rest)
	if !ok {
		return m, false
	}
	m.Seq, m.Sent = seq, time.Duration(t)
	return m, true
}

// HasSrc reports whether b is a message of src, without allocating.
func HasSrc(b []byte, src string) bool {
	rest, ok := bytes.CutPrefix(b, []byte(msgPrefix))
	return ok && len(rest) > len(src) && string(rest[:len(src)]) == src && rest[len(src)] == '"'
}

func digits(b []byte) (uint64, []byte, bool) {
	var v uint64
	n := 0
	for n < len(b) && n < 19 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + uint64(b[n]-'0')
		n++
	}
	return v, b[n:], n > 0
}

// ParseFrom reads a message of src written by AppendMessage without
// allocating; ok is false for any other message.
func ParseFrom(b []byte, src string) (seq uint64, sent time.Duration, ok bool) {
	if !HasSrc(b, src) {
		return 0, 0, false
	}
	rest, ok := bytes.CutPrefix(b[len(msgPrefix)+len(src):], []byte(msgSeq))
	if !ok {
		return 0, 0, false
	}
	seq, rest, ok = digits(rest)
	if !ok {
		return 0, 0, false
	}
	rest, ok = bytes.CutPrefix(rest, []byte(msgT))
	if !ok {
		return 0, 0, false
	}
	t, _, ok := digits(rest)
	return seq, time.Duration(t), ok
}
