package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// checker is a Check compiled: it judges an answer without allocating.
type checker struct {
	status   []int
	contains []byte
	json     bool
	path     []string
	eq       jsonScalar
	needBody bool
}

// jsonScalar is the value a JSON check expects.
type jsonScalar struct {
	kind byte // 0 none (the field must exist), 's' string, 'n' number, 'b' bool
	s    string
	n    float64
	b    bool
}

func compileCheck(c Check) (*checker, error) {
	ck := &checker{status: c.Status}
	for _, s := range c.Status {
		if s < 100 || s > 999 {
			return nil, fmt.Errorf("loadgen: check: status %d is not an HTTP status code", s)
		}
	}
	if c.BodyContains != "" {
		ck.contains = []byte(c.BodyContains)
	}
	if j := c.JSON; j != nil {
		if j.Path == "" {
			return nil, errors.New("loadgen: check: a JSON check needs a path")
		}
		ck.json = true
		ck.path = strings.Split(j.Path, ".")
		for _, seg := range ck.path {
			if seg == "" {
				return nil, fmt.Errorf("loadgen: check: JSON path %q has an empty segment", j.Path)
			}
		}
		switch v := j.Equals.(type) {
		case nil:
		case string:
			ck.eq = jsonScalar{kind: 's', s: v}
		case bool:
			ck.eq = jsonScalar{kind: 'b', b: v}
		case int:
			ck.eq = jsonScalar{kind: 'n', n: float64(v)}
		case int64:
			ck.eq = jsonScalar{kind: 'n', n: float64(v)}
		case float64:
			ck.eq = jsonScalar{kind: 'n', n: v}
		default:
			return nil, fmt.Errorf("loadgen: check: JSON value %v (%T): use a string, number or bool", v, v)
		}
	}
	ck.needBody = ck.contains != nil || ck.json
	return ck, nil
}

// judge returns the class of an answer: cls (its status class) unless the
// check decides otherwise. body is the first MaxCheckedBody bytes of the body.
func (ck *checker) judge(status int, cls class, body []byte) class {
	if len(ck.status) > 0 {
		expected := false
		for _, s := range ck.status {
			if s == status {
				expected = true
				break
			}
		}
		if !expected {
			if cls != clsOK {
				return cls
			}
			return clsCheck
		}
	} else if cls != clsOK {
		return cls
	}
	if ck.contains != nil && !bytes.Contains(body, ck.contains) {
		return clsCheck
	}
	if ck.json {
		raw, ok := jsonLookup(body, ck.path)
		if !ok || !ck.eq.matches(raw) {
			return clsCheck
		}
	}
	return clsOK
}

// matches reports whether raw, a JSON value, is the expected one.
func (e jsonScalar) matches(raw []byte) bool {
	switch e.kind {
	case 0:
		return true
	case 's':
		return len(raw) > 0 && raw[0] == '"' && jsonStringEquals(raw, e.s)
	case 'b':
		return string(raw) == strconv.FormatBool(e.b)
	case 'n':
		if len(raw) == 0 || !(raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9') {
			return false
		}
		// raw is not kept past the call: no copy is needed to read it as a
		// string, and the check stays allocation-free.
		f, err := strconv.ParseFloat(unsafe.String(&raw[0], len(raw)), 64)
		return err == nil && (f == e.n || math.Abs(f-e.n) <= 1e-9*math.Max(math.Abs(f), math.Abs(e.n)))
	}
	return false
}

// jsonLookup returns the raw bytes of the value at path in the JSON document
// doc (object keys, and array indexes in decimal), without allocating. ok is
// false when doc is not JSON up to that value, or the path leads nowhere.
func jsonLookup(doc []byte, path []string) ([]byte, bool) {
	i := skipWS(doc, 0)
	for _, seg := range path {
		if i >= len(doc) {
			return nil, false
		}
		switch doc[i] {
		case '{':
			i = skipWS(doc, i+1)
			found := false
			for i < len(doc) && doc[i] != '}' {
				if doc[i] != '"' {
					return nil, false
				}
				end, ok := skipString(doc, i)
				if !ok {
					return nil, false
				}
				match := jsonStringEquals(doc[i:end], seg)
				i = skipWS(doc, end)
				if i >= len(doc) || doc[i] != ':' {
					return nil, false
				}
				i = skipWS(doc, i+1)
				if match {
					found = true
					break
				}
				if i, ok = skipValue(doc, i, 0); !ok {
					return nil, false
				}
				i = skipWS(doc, i)
				if i < len(doc) && doc[i] == ',' {
					i = skipWS(doc, i+1)
				} else if i >= len(doc) || doc[i] != '}' {
					return nil, false
				}
			}
			if !found {
				return nil, false
			}
		case '[':
			want, err := strconv.Atoi(seg)
			if err != nil || want < 0 {
				return nil, false
			}
			i = skipWS(doc, i+1)
			for k := 0; ; k++ {
				if i >= len(doc) || doc[i] == ']' {
					return nil, false
				}
				if k == want {
					break
				}
				var ok bool
				if i, ok = skipValue(doc, i, 0); !ok {
					return nil, false
				}
				i = skipWS(doc, i)
				if i >= len(doc) || doc[i] != ',' {
					return nil, false
				}
				i = skipWS(doc, i+1)
			}
		default:
			return nil, false
		}
	}
	end, ok := skipValue(doc, i, 0)
	if !ok {
		return nil, false
	}
	return doc[i:end], true
}

// maxJSONDepth bounds the nesting jsonLookup follows.
const maxJSONDepth = 512

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] ('"').
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			i++
		case c < 0x20:
			return 0, false
		}
	}
	return 0, false
}

// skipValue returns the index after the JSON value starting at b[i].
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxJSONDepth {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, false
				}
				if i, ok = skipString(b, i); !ok {
					return 0, false
				}
				i = skipWS(b, i)
				if i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = skipWS(b, i+1)
			}
			if i, ok = skipValue(b, i, depth+1); !ok {
				return 0, false
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return 0, false
			}
			if b[i] == closer {
				return i + 1, true
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipWS(b, i+1)
		}
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	case c == '-' || '0' <= c && c <= '9':
		j := i
		if b[j] == '-' {
			j++
		}
		start := j
		for j < len(b) && ('0' <= b[j] && b[j] <= '9' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-') {
			j++
		}
		if j == start {
			return 0, false
		}
		return j, true
	}
	return 0, false
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), true
	}
	return 0, false
}

// jsonStringEquals reports whether the JSON string raw (quotes included)
// decodes to s, decoding escapes on the fly (no allocation).
func jsonStringEquals(raw []byte, s string) bool {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	raw = raw[1 : len(raw)-1]
	var buf [utf8.UTFMax]byte
	for len(raw) > 0 {
		c := raw[0]
		if c != '\\' {
			if len(s) == 0 || s[0] != c {
				return false
			}
			raw, s = raw[1:], s[1:]
			continue
		}
		if len(raw) < 2 {
			return false
		}
		var r rune
		n := 2
		switch raw[1] {
		case '"', '\\', '/':
			r = rune(raw[1])
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			var ok bool
			if r, ok = hex4(raw[2:]); !ok {
				return false
			}
			n = 6
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if len(raw) >= 12 && raw[6] == '\\' && raw[7] == 'u' {
					r2, ok = hex4(raw[8:])
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r, n = dec, 12
				} else {
					r = utf8.RuneError
				}
			}
		default:
			return false
		}
		k := utf8.EncodeRune(buf[:], r)
		if len(s) < k || s[:k] != string(buf[:k]) {
			return false
		}
		raw, s = raw[n:], s[k:]
	}
	return len(s) == 0
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	n, ok := parseHex(b[:4])
	return rune(n), ok
}
