package delivery

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultBody is the envelope when a Bus gives none: a JSON object whose one
// field is the marker.
const DefaultBody = `{"loadramp":"{{ .marker }}"}`

// padByte fills a marker's padding (after its ';').
const padByte = 'x'

// Body is one publisher's envelope, rendered once: the text around each
// place the template prints the marker, so a message costs a copy and no
// template execution.
type Body struct {
	segs [][]byte // len(segs) = markers+1
	src  string
	pub  int
	pad  int
	pads []byte // pad bytes of padByte
}

// NewBody renders the envelope tmpl for the publisher pub of src (with its
// index and topic in v) and splits it around the marker. The marker is padded
// so that each message is at least size bytes. The template must print the
// marker unchanged, at least once, and the same way for every marker: it is
// rendered with two different markers of the same length to check that only
// the marker's text differs. A template that prints the marker's length
// (NATS: PUB subject {{ len .marker }}) works, because a marker's length is
// fixed per publisher.
func NewBody(tmpl *Template, v Vars, src string, pub, size int) (*Body, error) {
	if !ValidSrc(src) {
		return nil, fmt.Errorf("marker source %q: use 1-%d letters, digits, '-', '_' or '.'", src, maxSrc)
	}
	b := &Body{src: src, pub: pub}
	base := MarkerLen(src, pub)
	for range 4 {
		n, err := b.split(tmpl, v, base)
		if err != nil {
			return nil, err
		}
		if n >= size {
			break
		}
		b.pad += size - n
	}
	b.pads = bytes.Repeat([]byte{padByte}, b.pad)
	return b, nil
}

// split renders tmpl with two placeholder markers and keeps the segments
// around them; it returns the rendered length.
func (b *Body) split(tmpl *Template, v Vars, base int) (int, error) {
	var outs [2]string
	var holders [2]string
	for i, d := range []byte{'1', '2'} {
		ph := placeholder(b.src, b.pub, d, b.pad)
		if len(ph) != base+b.pad {
			return 0, fmt.Errorf("marker placeholder of %d bytes, want %d", len(ph), base+b.pad)
		}
		v.Marker, v.HasMarker = ph, true
		out, err := tmpl.Execute(v)
		if err != nil {
			return 0, err
		}
		outs[i], holders[i] = out, ph
	}
	a, c := strings.Split(outs[0], holders[0]), strings.Split(outs[1], holders[1])
	if len(a) < 2 {
		return 0, fmt.Errorf("%s: the body must print {{ .marker }} unchanged (it is where loadramp's marker goes); rendered %q", tmpl.name, clip(outs[0], 120))
	}
	if len(a) != len(c) {
		return 0, fmt.Errorf("%s: the body must print the marker the same way for every message", tmpl.name)
	}
	b.segs = b.segs[:0]
	for i := range a {
		if a[i] != c[i] {
			return 0, fmt.Errorf("%s: the body must print the marker unchanged; only its length may be used elsewhere (%q differs from %q)", tmpl.name, clip(a[i], 60), clip(c[i], 60))
		}
		b.segs = append(b.segs, []byte(a[i]))
	}
	return len(outs[0]), nil
}

func placeholder(src string, pub int, d byte, pad int) string {
	var s strings.Builder
	s.WriteString(MarkerPrefix)
	s.WriteString(src)
	s.WriteByte(':')
	s.WriteString(strconv.Itoa(pub))
	s.WriteByte(':')
	s.Write(bytes.Repeat([]byte{d}, seqDigits))
	s.WriteByte(':')
	s.Write(bytes.Repeat([]byte{d}, sentDigits))
	s.WriteByte(markerEnd)
	s.Write(bytes.Repeat([]byte{padByte}, pad))
	return s.String()
}

// Len is the length of every message of the publisher.
func (b *Body) Len() int {
	n := 0
	for _, s := range b.segs {
		n += len(s)
	}
	return n + (len(b.segs)-1)*(MarkerLen(b.src, b.pub)+b.pad)
}

// Append appends the message with sequence number seq and intended send time
// sent to dst.
func (b *Body) Append(dst []byte, seq uint64, sent time.Duration) []byte {
	m := Message{Src: b.src, Pub: b.pub, Seq: seq, Sent: sent}
	for i, s := range b.segs {
		dst = append(dst, s...)
		if i < len(b.segs)-1 {
			dst = AppendMarker(dst, m)
			dst = append(dst, b.pads...)
		}
	}
	return dst
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
