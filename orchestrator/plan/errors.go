package plan

import (
	"fmt"
	"strings"

	"github.com/agnivade/levenshtein"
)

// DecodeError is one problem found while decoding a plan: an unknown key, a
// value of the wrong type, a bad --set. Its Error reads
// `fleets.target.procesess: unknown key (line 7); did you mean "processes"?`.
type DecodeError struct {
	Path string // YAML path such as ramp.hold or parameters[1].max; "" for the whole document
	Line int    // 1-based line in the plan file, 0 if unknown (e.g. set by --set)
	Msg  string
	Hint string // optional, such as `did you mean "processes"?`
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Problem is one validation problem, with the YAML path it concerns. Its Error
// reads `ramp.hold (line 30): must be > 0`, or `ramp.hold: must be > 0` when the
// line is unknown.
type Problem struct {
	Path string
	Line int
	Msg  string
}

func (p *Problem) Error() string {
	switch {
	case p.Path == "":
		return p.Msg
	case p.Line > 0:
		return fmt.Sprintf("%s (line %d): %s", p.Path, p.Line, p.Msg)
	default:
		return p.Path + ": " + p.Msg
	}
}

// Errors is a list of problems reported together. Error lists them one a line.
type Errors []error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap gives errors.Is and errors.As access to every problem.
func (es Errors) Unwrap() []error { return es }

// suggest returns `did you mean "x"?` for the candidate closest to word, or ""
// when none is close enough to be a plausible typo.
func suggest(word string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := levenshtein.ComputeDistance(strings.ToLower(word), strings.ToLower(c))
		if bestD < 0 || d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	if bestD < 0 {
		return ""
	}
	limit := max(len(word), len(best))/3 + 1
	if bestD > limit || bestD >= max(len(word), len(best)) {
		return ""
	}
	return fmt.Sprintf("did you mean %q?", best)
}
