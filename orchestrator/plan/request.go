package plan

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
)

// Per-request templates. The url, headers and body of workload.http (and of
// each of its requests) are plan templates like any other, rendered once when
// the engine is built, with a few more functions whose values change with
// every request sent: a sequence number, a UUID, random numbers and strings,
// the current time, a field of a feeder's row. A secret comes from the
// environment with env.
//
// A template is parsed once, into parts (ParseRequestTemplate): text, which
// is rendered once like any plan template, and per-request function calls,
// which the engine evaluates for each request by appending their value to the
// bytes it is about to send. To keep that cheap, a per-request function is
// always written alone in its action, with literal arguments:
//
//	{{ uuid }}   {{ randInt 1 1000 }}   {{ feed "users" "email" }}
//
// and never inside a pipeline, a variable, if, range or with.

// Names of the per-request template functions.
const (
	FuncSeq          = "seq"
	FuncUUID         = "uuid"
	FuncRandInt      = "randInt"
	FuncRandString   = "randString"
	FuncNow          = "now"
	FuncNowUnix      = "nowUnix"
	FuncNowUnixMilli = "nowUnixMilli"
	FuncFeed         = "feed"
	FuncEnv          = "env"
)

// MaxRandString bounds randString's length.
const MaxRandString = 4096

type argKind int

const (
	argInt argKind = iota
	argString
)

// requestFunc is one per-request template function: its arguments (a
// trailing optional one is marked by optional) and what it yields.
type requestFunc struct {
	name     string
	args     []argKind
	optional bool // the last argument may be left out
	doc      string
}

// requestFuncs are the per-request template functions, in the order the
// documentation lists them.
var requestFuncs = []requestFunc{
	{FuncSeq, nil, false, "the request's sequence number in the run: 1, 2, 3... over every request of the mix"},
	{FuncUUID, nil, false, "a random (version 4) UUID"},
	{FuncRandInt, []argKind{argInt, argInt}, false, "a random integer from MIN to MAX, both included"},
	{FuncRandString, []argKind{argInt}, false, "N random letters and digits"},
	{FuncNow, []argKind{argString}, true, "the current time, RFC 3339 in UTC with milliseconds, or in the Go layout given"},
	{FuncNowUnix, nil, false, "the current Unix time in seconds"},
	{FuncNowUnixMilli, nil, false, "the current Unix time in milliseconds"},
	{FuncFeed, []argKind{argString, argString}, false, "the COLUMN of the request's row of feeder FEEDER"},
	{FuncEnv, []argKind{argString}, false, "the environment variable NAME of the loadramp process, read once when the run starts and kept out of every file the run writes"},
}

func lookupRequestFunc(name string) (requestFunc, bool) {
	for _, f := range requestFuncs {
		if f.name == name {
			return f, true
		}
	}
	return requestFunc{}, false
}

// IsRequestFunc reports whether name is a per-request template function.
func IsRequestFunc(name string) bool {
	_, ok := lookupRequestFunc(name)
	return ok
}

// requestFuncStubs are the per-request functions as plan template functions:
// they parse everywhere, and fail with a clear message when rendered as a
// plain plan template (validation refuses them outside workload.http first).
func requestFuncStubs() template.FuncMap {
	m := template.FuncMap{}
	for _, f := range requestFuncs {
		name := f.name
		m[name] = func(...any) (string, error) {
			return "", fmt.Errorf("%s is evaluated per request: use it only in workload.http's url, headers and body", name)
		}
	}
	return m
}

// syntaxError is a request template that does not parse at all (which the
// plan's template check reports for every template).
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

// RequestPart is one part of a parsed request template: text, or a call of a
// per-request function.
type RequestPart struct {
	// Text is template source rendered once when the engine is built (plain
	// text and the plan's own actions, such as {{ .fleets.target.endpoint }});
	// set when Func is "".
	Text string
	// Func is the per-request function called (FuncUUID...); Args are its
	// literal arguments as written (numbers in decimal).
	Func string
	Args []string
}

// IsText reports whether the part is text rendered once.
func (p RequestPart) IsText() bool { return p.Func == "" }

// String writes the part back as template source.
func (p RequestPart) String() string {
	if p.IsText() {
		return p.Text
	}
	var b strings.Builder
	b.WriteString("{{ " + p.Func)
	f, _ := lookupRequestFunc(p.Func)
	for i, a := range p.Args {
		if i < len(f.args) && f.args[i] == argString {
			a = strconv.Quote(a)
		}
		b.WriteString(" " + a)
	}
	b.WriteString(" }}")
	return b.String()
}

// IntArg returns argument i of a function part as an integer (validated by
// ParseRequestTemplate).
func (p RequestPart) IntArg(i int) int64 {
	n, _ := strconv.ParseInt(p.Args[i], 10, 64)
	return n
}

// ParseRequestTemplate parses a request template into its parts, in order:
// runs of text and plan actions, and per-request function calls. A template
// without per-request calls is one text part, as written; "" is no part.
// Around calls, the plan's actions are written back in text/template's
// canonical form ({{.fleets.target.endpoint}}), which renders the same. It refuses a per-request function
// that is not alone in its action with literal arguments, or that sits inside
// if, range or with.
func ParseRequestTemplate(text string) ([]RequestPart, error) {
	if text == "" {
		return nil, nil
	}
	if !strings.Contains(text, "{{") {
		return []RequestPart{{Text: text}}, nil
	}
	t, err := template.New("request").Funcs(funcs(nil)).Parse(text)
	if err != nil {
		return nil, &syntaxError{msg: "template does not parse: " + trimTemplateErr(err)}
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("a request template cannot define templates")
	}
	var parts []RequestPart
	var setup strings.Builder
	flush := func() {
		if setup.Len() > 0 {
			parts = append(parts, RequestPart{Text: setup.String()})
			setup.Reset()
		}
	}
	if t.Tree == nil || t.Tree.Root == nil {
		return nil, nil
	}
	if firstRequestFunc(t.Tree.Root) == "" {
		return []RequestPart{{Text: text}}, nil // rendered once, as written
	}
	for _, n := range t.Tree.Root.Nodes {
		switch x := n.(type) {
		case *parse.TextNode:
			setup.Write(x.Text)
		case *parse.ActionNode:
			part, isCall, err := requestCall(x)
			if err != nil {
				return nil, err
			}
			if !isCall {
				setup.WriteString(x.String())
				continue
			}
			flush()
			parts = append(parts, part)
		default:
			if name := firstRequestFunc(n); name != "" {
				return nil, fmt.Errorf("%s is evaluated per request: it cannot be inside if, range or with; write it alone, as {{ %s }}", name, usage(name))
			}
			setup.WriteString(n.String())
		}
	}
	flush()
	return parts, nil
}

// requestCall returns the per-request call an action is, if it is one.
func requestCall(a *parse.ActionNode) (RequestPart, bool, error) {
	name := firstRequestFunc(a.Pipe)
	if name == "" {
		return RequestPart{}, false, nil
	}
	alone := fmt.Errorf("%s is evaluated per request: write it alone in its action with literal arguments, as {{ %s }}, not in %s", name, usage(name), a.String())
	p := a.Pipe
	if len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) == 0 {
		return RequestPart{}, false, alone
	}
	args := p.Cmds[0].Args
	id, ok := args[0].(*parse.IdentifierNode)
	if !ok || id.Ident != name {
		return RequestPart{}, false, alone
	}
	f, _ := lookupRequestFunc(name)
	given := args[1:]
	if len(given) > len(f.args) || (len(given) < len(f.args) && !(f.optional && len(given) == len(f.args)-1)) {
		return RequestPart{}, false, fmt.Errorf("%s takes %s; write {{ %s }}", name, argCount(f), usage(name))
	}
	part := RequestPart{Func: name}
	for i, arg := range given {
		switch f.args[i] {
		case argInt:
			num, ok := arg.(*parse.NumberNode)
			if !ok || !num.IsInt {
				return RequestPart{}, false, fmt.Errorf("%s: argument %d must be a whole number, got %s; write {{ %s }}", name, i+1, arg, usage(name))
			}
			part.Args = append(part.Args, strconv.FormatInt(num.Int64, 10))
		case argString:
			s, ok := arg.(*parse.StringNode)
			if !ok {
				return RequestPart{}, false, fmt.Errorf("%s: argument %d must be a quoted string, got %s; write {{ %s }}", name, i+1, arg, usage(name))
			}
			part.Args = append(part.Args, s.Text)
		}
	}
	if err := checkCallArgs(part); err != nil {
		return RequestPart{}, false, err
	}
	return part, true, nil
}

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkCallArgs checks a call's argument values (what can be checked without
// the rest of the plan).
func checkCallArgs(p RequestPart) error {
	switch p.Func {
	case FuncRandInt:
		lo, hi := p.IntArg(0), p.IntArg(1)
		if lo > hi {
			return fmt.Errorf("randInt %d %d: MIN must be <= MAX", lo, hi)
		}
	case FuncRandString:
		if n := p.IntArg(0); n < 1 || n > MaxRandString {
			return fmt.Errorf("randString %d: the length must be from 1 to %d", n, MaxRandString)
		}
	case FuncNow:
		if len(p.Args) == 1 && p.Args[0] == "" {
			return errors.New(`now "": give a Go time layout such as "2006-01-02", or none for RFC 3339`)
		}
	case FuncEnv:
		if !envNameRe.MatchString(p.Args[0]) {
			return fmt.Errorf("env %q: not an environment variable name (letters, digits and _, not starting with a digit)", p.Args[0])
		}
	case FuncFeed:
		if p.Args[0] == "" || p.Args[1] == "" {
			return fmt.Errorf("feed %q %q: name a feeder and one of its columns", p.Args[0], p.Args[1])
		}
	}
	return nil
}

func argCount(f requestFunc) string {
	n := len(f.args)
	switch {
	case n == 0:
		return "no arguments"
	case f.optional:
		return fmt.Sprintf("at most %d argument(s)", n)
	default:
		return fmt.Sprintf("%d argument(s)", n)
	}
}

// usage is how a call of name is written, for messages.
func usage(name string) string {
	switch name {
	case FuncRandInt:
		return "randInt 1 100"
	case FuncRandString:
		return "randString 16"
	case FuncFeed:
		return `feed "users" "email"`
	case FuncEnv:
		return `env "API_TOKEN"`
	}
	return name
}

// RequestFuncsIn returns the per-request functions text calls, in order of
// first use (nil when it does not parse or calls none).
func RequestFuncsIn(text string) []string {
	if !strings.Contains(text, "{{") {
		return nil
	}
	t, err := template.New("x").Funcs(funcs(nil)).Parse(text)
	if err != nil {
		return nil
	}
	var names []string
	for _, tr := range t.Templates() {
		if tr.Tree == nil {
			continue
		}
		eachIdent(tr.Tree.Root, func(id string) {
			if IsRequestFunc(id) && !contains(names, id) {
				names = append(names, id)
			}
		})
	}
	return names
}

// firstRequestFunc returns the first per-request function n calls, or "".
func firstRequestFunc(n parse.Node) string {
	var found string
	eachIdent(n, func(id string) {
		if found == "" && IsRequestFunc(id) {
			found = id
		}
	})
	return found
}

// eachIdent calls f with every function identifier under n.
func eachIdent(n parse.Node, f func(string)) {
	switch x := n.(type) {
	case nil:
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			eachIdent(c, f)
		}
	case *parse.ActionNode:
		eachIdent(x.Pipe, f)
	case *parse.PipeNode:
		if x == nil {
			return
		}
		for _, c := range x.Cmds {
			eachIdent(c, f)
		}
	case *parse.CommandNode:
		for _, a := range x.Args {
			eachIdent(a, f)
		}
	case *parse.IdentifierNode:
		f(x.Ident)
	case *parse.ChainNode:
		eachIdent(x.Node, f)
	case *parse.IfNode:
		eachIdent(x.Pipe, f)
		eachIdent(x.List, f)
		eachIdent(x.ElseList, f)
	case *parse.RangeNode:
		eachIdent(x.Pipe, f)
		eachIdent(x.List, f)
		eachIdent(x.ElseList, f)
	case *parse.WithNode:
		eachIdent(x.Pipe, f)
		eachIdent(x.List, f)
		eachIdent(x.ElseList, f)
	case *parse.TemplateNode:
		eachIdent(x.Pipe, f)
	}
}

// trimTemplateErr drops text/template's "template: NAME:1: " prefix.
func trimTemplateErr(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "template: ") {
		msg = msg[i+2:]
		if j := strings.Index(msg, ": "); j >= 0 {
			msg = msg[j+2:]
		}
	}
	return msg
}

// RequestField is one request template of the plan: its path and text.
type RequestField struct {
	Path, Text string
	// Header is set for a header's value, URL for a URL, Body for a body.
	Header, URL, Body bool
}

// RequestFields lists the request templates of workload.http: the single
// request's url, headers and body, or each request's.
func (p *Plan) RequestFields() []RequestField {
	h := p.Workload.HTTP
	if h == nil {
		return nil
	}
	var out []RequestField
	add := func(prefix, url, body string, headers map[string]string) {
		if url != "" {
			out = append(out, RequestField{Path: prefix + ".url", Text: url, URL: true})
		}
		for _, k := range mapKeys(headers) {
			out = append(out, RequestField{Path: prefix + ".headers." + k, Text: headers[k], Header: true})
		}
		if body != "" {
			out = append(out, RequestField{Path: prefix + ".body", Text: body, Body: true})
		}
	}
	add("workload.http", h.URL, h.Body, h.Headers)
	for i, r := range h.Requests {
		add(fmt.Sprintf("workload.http.requests[%d]", i), r.URL, r.Body, r.Headers)
	}
	return out
}

// isRequestField reports whether path is one of RequestFields' paths.
func isRequestField(path string) bool {
	if strings.HasPrefix(path, "workload.http.requests[") {
		_, rest, _ := strings.Cut(path, "].")
		return rest == "url" || rest == "body" || strings.HasPrefix(rest, "headers.")
	}
	return path == "workload.http.url" || path == "workload.http.body" || strings.HasPrefix(path, "workload.http.headers.")
}

// EnvRef is one use of {{ env "NAME" }} in a request template.
type EnvRef struct {
	Name string
	Path string // the field, e.g. workload.http.requests[0].headers.Authorization
	Line int
	// Header is set when the value goes into a header, where it must not
	// hold a line break.
	Header bool
}

// EnvRefs lists every environment variable the request templates read, in
// the order of RequestFields.
func (p *Plan) EnvRefs() []EnvRef {
	var out []EnvRef
	for _, f := range p.RequestFields() {
		parts, err := ParseRequestTemplate(f.Text)
		if err != nil {
			continue
		}
		for _, part := range parts {
			if part.Func == FuncEnv {
				out = append(out, EnvRef{Name: part.Args[0], Path: f.Path, Line: p.Line(f.Path), Header: f.Header || f.URL})
			}
		}
	}
	return out
}

// CheckEnv checks that every environment variable the request templates read
// is set (lookup is os.LookupEnv in loadramp), and that one going into a
// header or the URL holds no control character. It returns one problem per
// variable, naming the field, never the value.
func (p *Plan) CheckEnv(lookup func(string) (string, bool)) []error {
	var errs []error
	seen := map[string]bool{}
	for _, r := range p.EnvRefs() {
		key := r.Name + "\x00" + r.Path
		if seen[key] {
			continue
		}
		seen[key] = true
		v, ok := lookup(r.Name)
		switch {
		case !ok:
			errs = append(errs, &Problem{Path: r.Path, Line: r.Line, Msg: fmt.Sprintf("env %q is not set; export it before the run (its value is read once and kept out of the run directory)", r.Name)})
		case r.Header && strings.ContainsFunc(v, isControl):
			errs = append(errs, &Problem{Path: r.Path, Line: r.Line, Msg: fmt.Sprintf("env %q holds a control character (a line break?), which cannot go into a header or URL", r.Name)})
		}
	}
	return errs
}

func isControl(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }

// RequestNames are the names of workload.http's requests, in plan order
// (none for the single request).
func (p *Plan) RequestNames() []string {
	h := p.Workload.HTTP
	if h == nil || p.Workload.Engine != EngineBuiltin {
		return nil
	}
	names := make([]string, 0, len(h.Requests))
	for _, r := range h.Requests {
		names = append(names, r.Name)
	}
	return names
}

// Suggest returns `; did you mean "x"?` for the candidate closest to word, or
// "" when none is close.
func Suggest(word string, candidates []string) string { return hint(word, candidates) }
