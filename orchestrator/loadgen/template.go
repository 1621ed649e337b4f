package loadgen

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// Template is a request field (URL, header value or body) as parts: text,
// and values computed for each request. Parse it once (package plan's
// ParseRequestTemplate does); the generator only appends.
type Template []Part

// Part is one piece of a Template. Build it with Text, Seq, UUID, RandInt,
// RandString, Now, NowUnix, NowUnixMilli or Field.
type Part struct {
	kind           partKind
	text           string
	min, max       int64
	layout         string
	feeder, column string
}

type partKind uint8

const (
	partText partKind = iota
	partSeq
	partUUID
	partRandInt
	partRandString
	partNow
	partNowUnix
	partNowUnixMilli
	partField
)

// Text is literal text.
func Text(s string) Part { return Part{kind: partText, text: s} }

// Seq is the request's sequence number: 1 for the Generator's first request,
// counting every request of the mix, across steps.
func Seq() Part { return Part{kind: partSeq} }

// UUID is a random version 4 UUID (36 characters), from a fast generator
// seeded from the operating system when the Generator is made: unique in
// practice, and not meant to be unguessable.
func UUID() Part { return Part{kind: partUUID} }

// RandInt is a random integer from lo to hi, both included (lo <= hi).
func RandInt(lo, hi int64) Part { return Part{kind: partRandInt, min: lo, max: hi} }

// RandString is n random ASCII letters and digits.
func RandString(n int) Part { return Part{kind: partRandString, min: int64(n)} }

// Now is the time the request is built, in UTC, in a Go time layout; ""
// is RFC 3339 with milliseconds (2006-01-02T15:04:05.000Z).
func Now(layout string) Part { return Part{kind: partNow, layout: layout} }

// NowUnix is the Unix time in seconds when the request is built.
func NowUnix() Part { return Part{kind: partNowUnix} }

// NowUnixMilli is the Unix time in milliseconds when the request is built.
func NowUnixMilli() Part { return Part{kind: partNowUnixMilli} }

// Field is the value of column in the request's row of the named feeder
// (Target.Feeders).
func Field(feeder, column string) Part {
	return Part{kind: partField, feeder: feeder, column: column}
}

// rfc3339Milli is Now's default layout.
const rfc3339Milli = "2006-01-02T15:04:05.000Z07:00"

// seg is a compiled part: text as bytes, a feeder and column as indexes.
type seg struct {
	kind     partKind
	lit      []byte
	min, max int64
	layout   string
	feeder   int
	column   int
	escape   bool // percent-encode the value (a URL's per-request values)
}

// reqState is one connection's state for building requests: its random
// source, the current request's sequence number, time and feeder rows, and
// the buffers requests are assembled in. Only the connection's goroutine
// uses it.
type reqState struct {
	rng    *rand.Rand
	seq    uint64
	now    time.Time
	nowSet bool
	rows   []int // per feeder of the Generator: the row of the current request
	req    []byte
	body   []byte
	tmp    []byte
}

func newReqState(seed1, seed2 uint64, feeders int) *reqState {
	return &reqState{rng: rand.New(rand.NewPCG(seed1, seed2)), rows: make([]int, feeders)}
}

// time returns the current request's time, read once per request.
func (st *reqState) time() time.Time {
	if !st.nowSet {
		st.now, st.nowSet = time.Now(), true
	}
	return st.now
}

// appendSegs appends the values of segs to dst.
func appendSegs(dst []byte, segs []seg, st *reqState, feeders []*feeder) []byte {
	for i := range segs {
		s := &segs[i]
		if s.kind == partText {
			dst = append(dst, s.lit...)
			continue
		}
		if !s.escape {
			dst = s.append(dst, st, feeders)
			continue
		}
		st.tmp = s.append(st.tmp[:0], st, feeders)
		dst = appendEscaped(dst, st.tmp)
	}
	return dst
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// append appends the value of one computed part.
func (s *seg) append(dst []byte, st *reqState, feeders []*feeder) []byte {
	switch s.kind {
	case partText:
		return append(dst, s.lit...)
	case partSeq:
		return strconv.AppendUint(dst, st.seq, 10)
	case partUUID:
		return appendUUID(dst, st.rng.Uint64(), st.rng.Uint64())
	case partRandInt:
		span := uint64(s.max - s.min)
		if span == ^uint64(0) {
			return strconv.AppendInt(dst, int64(st.rng.Uint64()), 10)
		}
		return strconv.AppendInt(dst, s.min+int64(st.rng.Uint64N(span+1)), 10)
	case partRandString:
		for n := s.min; n > 0; {
			// Ten characters from each 64-bit draw (6 bits each, mod 62:
			// a bias below 4 %, harmless for test data).
			x := st.rng.Uint64()
			for k := 0; k < 10 && n > 0; k++ {
				dst = append(dst, alnum[(x&63)%62])
				x >>= 6
				n--
			}
		}
		return dst
	case partNow:
		layout := s.layout
		if layout == "" {
			layout = rfc3339Milli
		}
		return st.time().UTC().AppendFormat(dst, layout)
	case partNowUnix:
		return strconv.AppendInt(dst, st.time().Unix(), 10)
	case partNowUnixMilli:
		return strconv.AppendInt(dst, st.time().UnixMilli(), 10)
	case partField:
		f := feeders[s.feeder]
		return append(dst, f.rows[st.rows[s.feeder]][s.column]...)
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendUUID appends a version 4, variant 1 UUID made of the bits of hi and lo.
func appendUUID(dst []byte, hi, lo uint64) []byte {
	hi = hi&^(0xf<<12) | 0x4<<12 // version 4
	lo = lo&^(0x3<<62) | 0x2<<62 // variant 10
	var b [16]byte
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&15])
	}
	return dst
}

// appendEscaped appends v percent-encoded as a URL component: everything but
// ASCII letters, digits and - . _ ~ (RFC 3986's unreserved characters), so a
// value is always one path segment or one query value.
func appendEscaped(dst, v []byte) []byte {
	for _, c := range v {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
	}
	return dst
}
