package infra

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/rs/zerolog"
)

// maxLineLog bounds a line kept while waiting for its end.
const maxLineLog = 64 << 10

// lineLog is an io.Writer that logs each line written to it as one event, so
// terraform's output lands in the run's events.log line by line.
type lineLog struct {
	log    zerolog.Logger
	stream string
	red    *secrets

	mu  sync.Mutex
	buf []byte
}

// minSecret is the shortest secret scrubbed from terraform's output: shorter
// ones would match ordinary words and numbers.
const minSecret = 4

// redactedText replaces a secret in terraform's output.
const redactedText = "(sensitive)"

// secrets are the values of a fleet's sensitive outputs, replaced in every
// line of terraform's output. Terraform masks them itself where it knows
// they are sensitive, but not everywhere: a destroy plan prints a resource
// attribute that only its input marked sensitive.
type secrets struct {
	mu   sync.RWMutex
	vals []string // longest first
}

func (s *secrets) add(vals ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range vals {
		if len(v) >= minSecret && !slices.Contains(s.vals, v) {
			s.vals = append(s.vals, v)
		}
	}
	slices.SortFunc(s.vals, func(a, b string) int { return len(b) - len(a) })
}

func (s *secrets) scrub(line string) string {
	if s == nil {
		return line
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.vals {
		line = strings.ReplaceAll(line, v, redactedText)
	}
	return line
}

// secretStrings returns v as text and every string inside it (a sensitive
// map or list output shows in logs piece by piece).
func secretStrings(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	if _, ok := v.(string); !ok {
		if b, err := json.Marshal(v); err == nil {
			out = append(out, string(b))
		}
	}
	return out
}

func newLineLog(log zerolog.Logger, stream string, red *secrets) *lineLog {
	return &lineLog{log: log, stream: stream, red: red}
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > maxLineLog {
		l.emit(l.buf)
		l.buf = nil
	}
	if len(l.buf) == 0 {
		l.buf = nil // let a large buffer go
	}
	return len(p), nil
}

func (l *lineLog) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	l.log.Info().Str("terraform", l.stream).Msg(l.red.scrub(string(line)))
}
