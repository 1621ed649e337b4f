// Package gate parses and evaluates gate expressions such as "latency.p99 < 100ms".
//
// The grammar is
//
//	gate   = metric op number [unit]
//	metric = [a-z][a-z0-9_]* ( "." [a-z0-9_]+ )*
//	op     = "<" | "<=" | ">" | ">="
//	number = [+-] digits [ "." digits ] [ ("e"|"E") [+-] digits ]   (or "." digits)
//	unit   = "ns" | "us" | "µs" | "ms" | "s" | "%"
//
// with optional whitespace between the parts. Duration units are converted to
// seconds and "%" is divided by 100, so a Gate's Threshold is in SI units
// (seconds, ratios 0..1), like the metrics it is compared with. A number without
// a unit is used as is.
//
// The package imports nothing of loadramp's but metrics (units and formatting):
// plans, records and reports depend on it, not the other way round.
package gate

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// Op is a comparison operator of a gate.
type Op int

// Comparison operators. The zero Op is invalid, so an unset Gate never passes.
const (
	OpInvalid Op = iota
	Less
	LessEqual
	Greater
	GreaterEqual
)

// String returns the operator as written in a gate ("<", "<=", ">", ">=").
func (o Op) String() string {
	switch o {
	case Less:
		return "<"
	case LessEqual:
		return "<="
	case Greater:
		return ">"
	case GreaterEqual:
		return ">="
	}
	return "?"
}

// holds reports whether observed op threshold is true. NaN never holds.
func (o Op) holds(observed, threshold float64) bool {
	switch o {
	case Less:
		return observed < threshold
	case LessEqual:
		return observed <= threshold
	case Greater:
		return observed > threshold
	case GreaterEqual:
		return observed >= threshold
	}
	return false
}

// Gate is one parsed gate expression.
type Gate struct {
	// Expr is the expression as written.
	Expr   string
	Metric string
	Op     Op
	// Threshold is in SI units: seconds for durations, 0..1 for percentages.
	Threshold float64
	// Value and Unit are the threshold as written ("100" and "ms"); Unit is
	// canonical ("us" for "µs") and "" when none was given.
	Value float64
	Unit  string
}

// String returns the gate in canonical form ("latency.p99 < 100ms"). Parsing it
// gives back the same Metric, Op, Threshold, Value and Unit.
func (g Gate) String() string {
	return g.Metric + " " + g.Op.String() + " " + strconv.FormatFloat(g.Value, 'f', -1, 64) + g.Unit
}

// units maps each accepted unit to the divisor that brings it to SI. Dividing by
// an exact power of ten (rather than multiplying by 1e-3) keeps "100ms" exactly
// equal to the float64 nearest 0.1.
var units = map[string]float64{
	"":   1,
	"ns": 1e9,
	"us": 1e6,
	"µs": 1e6,
	"ms": 1e3,
	"s":  1,
	"%":  100,
}

// SyntaxError is a gate expression that does not parse.
type SyntaxError struct {
	Expr string
	// Col is the 1-based column (in characters) where the problem starts.
	Col int
	Msg string
}

// Error returns a one-line message such as
// `gate "latency.p99 < 100xs": column 18: unknown unit "xs" (allowed: ns, us, ms, s, %)`.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("gate %q: column %d: %s", e.Expr, e.Col, e.Msg)
}

// Caret returns the expression and a caret under the offending column, two lines
// for a terminal:
//
//	latency.p99 < 100xs
//	                 ^
func (e *SyntaxError) Caret() string {
	col := e.Col
	if col < 1 {
		col = 1
	}
	return e.Expr + "\n" + strings.Repeat(" ", col-1) + "^"
}

// parser walks an expression rune by rune, tracking the column.
type parser struct {
	expr  string
	runes []rune
	pos   int // index into runes
}

func (p *parser) errAt(pos int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Expr: p.expr, Col: pos + 1, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) peek() rune {
	if p.pos < len(p.runes) {
		return p.runes[p.pos]
	}
	return 0
}

func (p *parser) eof() bool { return p.pos >= len(p.runes) }

func (p *parser) skipSpace() {
	for !p.eof() {
		switch p.peek() {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func isLower(r rune) bool { return r >= 'a' && r <= 'z' }
func isDigit(r rune) bool { return r >= '0' && r <= '9' }
func isIdent(r rune) bool { return isLower(r) || isDigit(r) || r == '_' }

// Parse parses one gate expression. The error, if any, is a *SyntaxError.
func Parse(expr string) (Gate, error) {
	p := &parser{expr: expr, runes: []rune(expr)}
	g := Gate{Expr: expr}
	var err error
	p.skipSpace()
	if g.Metric, err = p.metric(); err != nil {
		return Gate{}, err
	}
	p.skipSpace()
	if g.Op, err = p.op(); err != nil {
		return Gate{}, err
	}
	p.skipSpace()
	if g.Value, err = p.number(); err != nil {
		return Gate{}, err
	}
	p.skipSpace()
	unitPos := p.pos
	unit := p.unit()
	div, ok := units[unit]
	if !ok {
		return Gate{}, p.errAt(unitPos, "unknown unit %q (allowed: ns, us, ms, s, %%)", unit)
	}
	if unit == "µs" {
		unit = "us"
	}
	g.Unit = unit
	g.Threshold = g.Value / div
	p.skipSpace()
	if !p.eof() {
		return Gate{}, p.errAt(p.pos, "unexpected %q after the threshold", string(p.runes[p.pos:]))
	}
	return g, nil
}

func (p *parser) metric() (string, error) {
	start := p.pos
	if p.eof() {
		return "", p.errAt(p.pos, "missing metric name (for example latency.p99)")
	}
	if r := p.peek(); !isLower(r) {
		if r >= 'A' && r <= 'Z' {
			return "", p.errAt(p.pos, "metric names are lowercase")
		}
		return "", p.errAt(p.pos, "expected a metric name (for example latency.p99), found %q", string(r))
	}
	for !p.eof() && isIdent(p.peek()) {
		p.pos++
	}
	for !p.eof() && p.peek() == '.' {
		dot := p.pos
		p.pos++
		if !p.eof() && p.peek() >= 'A' && p.peek() <= 'Z' {
			return "", p.errAt(p.pos, "metric names are lowercase")
		}
		if p.eof() || !isIdent(p.peek()) {
			return "", p.errAt(dot, "a metric name segment is empty or has a character other than a-z, 0-9, _ after the dot")
		}
		for !p.eof() && isIdent(p.peek()) {
			p.pos++
		}
	}
	if !p.eof() {
		if r := p.peek(); r >= 'A' && r <= 'Z' {
			return "", p.errAt(p.pos, "metric names are lowercase")
		}
	}
	return string(p.runes[start:p.pos]), nil
}

func (p *parser) op() (Op, error) {
	start := p.pos
	for !p.eof() && strings.ContainsRune("<>=!", p.peek()) {
		p.pos++
	}
	switch s := string(p.runes[start:p.pos]); s {
	case "<":
		return Less, nil
	case "<=":
		return LessEqual, nil
	case ">":
		return Greater, nil
	case ">=":
		return GreaterEqual, nil
	case "":
		if p.eof() {
			return OpInvalid, p.errAt(start, "missing operator after the metric (allowed: <, <=, >, >=)")
		}
		return OpInvalid, p.errAt(start, "expected an operator (<, <=, >, >=), found %q", string(p.peek()))
	default:
		return OpInvalid, p.errAt(start, "unknown operator %q (allowed: <, <=, >, >=)", s)
	}
}

func (p *parser) number() (float64, error) {
	start := p.pos
	if p.eof() {
		return 0, p.errAt(p.pos, "missing threshold after the operator")
	}
	if r := p.peek(); r == '+' || r == '-' {
		p.pos++
	}
	digits := 0
	for !p.eof() && isDigit(p.peek()) {
		p.pos++
		digits++
	}
	if !p.eof() && p.peek() == '.' {
		p.pos++
		for !p.eof() && isDigit(p.peek()) {
			p.pos++
			digits++
		}
	}
	if digits == 0 {
		return 0, p.errAt(start, "expected a number, found %q", string(p.runes[start:min(len(p.runes), start+8)]))
	}
	// An exponent only when digits follow, so that "1e" reads as a unit error.
	if !p.eof() && (p.peek() == 'e' || p.peek() == 'E') {
		q := p.pos + 1
		if q < len(p.runes) && (p.runes[q] == '+' || p.runes[q] == '-') {
			q++
		}
		if q < len(p.runes) && isDigit(p.runes[q]) {
			for q < len(p.runes) && isDigit(p.runes[q]) {
				q++
			}
			p.pos = q
		}
	}
	text := string(p.runes[start:p.pos])
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, p.errAt(start, "threshold %s is out of range", text)
	}
	return v, nil
}

// unit consumes a run of letters (or a single %) and returns it.
func (p *parser) unit() string {
	start := p.pos
	if !p.eof() && p.peek() == '%' {
		p.pos++
		return "%"
	}
	for !p.eof() {
		r := p.peek()
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' || isDigit(r) || r == '.' {
			break
		}
		p.pos++
	}
	return string(p.runes[start:p.pos])
}

// MustParse is Parse that panics on error. Use it in tests and for constants.
func MustParse(expr string) Gate {
	g, err := Parse(expr)
	if err != nil {
		panic(err)
	}
	return g
}

// IndexError is a problem with the Index-th expression of a list.
type IndexError struct {
	Index int
	Err   error
}

// Error returns "gates[Index]: " and the underlying message.
func (e *IndexError) Error() string { return fmt.Sprintf("gates[%d]: %v", e.Index, e.Err) }

// Unwrap returns the underlying error (a *SyntaxError from Parse).
func (e *IndexError) Unwrap() error { return e.Err }

// ParseAll parses every expression and returns the gates that parsed, in order,
// and one *IndexError for each that did not. Callers usually refuse to start
// when any error is returned; every problem is reported at once.
func ParseAll(exprs []string) ([]Gate, []error) {
	gates := make([]Gate, 0, len(exprs))
	var errs []error
	for i, e := range exprs {
		g, err := Parse(e)
		if err != nil {
			errs = append(errs, &IndexError{Index: i, Err: err})
			continue
		}
		gates = append(gates, g)
	}
	return gates, errs
}

// Result is one gate judged against one step's metrics.
type Result struct {
	Gate      string
	Metric    string
	Observed  float64
	Threshold float64
	Pass      bool
	// Missing is true when the metric was not measured (absent or NaN); the
	// gate then fails, since an unmeasured requirement is not a met one.
	Missing bool
	// Explain says it in words: "latency.p99 812 ms > 100 ms" or
	// "latency.p99 12.3 ms < 100 ms: ok".
	Explain string
}

// Evaluate judges the gate against m, a step window's metrics by name.
func (g Gate) Evaluate(m map[string]float64) Result {
	r := Result{Gate: g.Expr, Metric: g.Metric, Threshold: g.Threshold}
	if strings.TrimSpace(r.Gate) == "" {
		r.Gate = g.String()
	}
	v, ok := m[g.Metric]
	if !ok || math.IsNaN(v) {
		r.Missing = true
		r.Explain = g.Metric + " not measured"
		return r
	}
	r.Observed = v
	r.Pass = g.Op.holds(v, g.Threshold)
	obs, thr := metrics.FormatValue(g.Metric, v), metrics.FormatValue(g.Metric, g.Threshold)
	if r.Pass {
		r.Explain = fmt.Sprintf("%s %s %s %s: ok", g.Metric, obs, g.Op, thr)
		return r
	}
	rel := "="
	switch {
	case v < g.Threshold:
		rel = "<"
	case v > g.Threshold:
		rel = ">"
	}
	r.Explain = fmt.Sprintf("%s %s %s %s", g.Metric, obs, rel, thr)
	if rel == "=" || obs == thr {
		// Rounding can make both sides print alike; say what was required.
		r.Explain += fmt.Sprintf(" (required %s %s)", g.Op, thr)
	}
	return r
}
