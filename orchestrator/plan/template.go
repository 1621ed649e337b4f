package plan

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"unicode/utf8"
)

// Ports allocates free loopback ports by name, once per run: the same name
// always gives the same port, so a process's --listen flag and its ready URL
// agree. It is safe for concurrent use.
//
// A port is found by binding 127.0.0.1:0. While Hold is in effect, Get keeps
// that listener open, so no other program (nor another run's allocator) can
// be handed the port, until Release closes it: the orchestrator holds the
// ports a fleet's templates allocate until the moment the fleet starts. The
// processes bind their ports themselves, so the listener cannot be handed
// over; what remains is the short window between Release and their bind,
// which the local provider covers by restarting a process that failed to
// start with "address already in use" (infra.LocalConfig).
type Ports struct {
	mu    sync.Mutex
	ports map[string]int
	hold  bool
	held  map[string]net.Listener
}

// NewPorts returns an empty port allocator that does not hold ports.
func NewPorts() *Ports { return &Ports{ports: map[string]int{}, held: map[string]net.Listener{}} }

// Hold makes Get keep each port it allocates from now on reserved (its
// listener open) until Release.
func (p *Ports) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = true
}

// Release closes the listeners holding ports, so the processes about to
// start can bind them, and stops holding later allocations. The ports stay
// allocated to their names.
func (p *Ports) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = false
	for name, l := range p.held {
		_ = l.Close()
		delete(p.held, name)
	}
}

// Get returns the port allocated to name, allocating a free one on 127.0.0.1
// the first time. Within a run no two names get the same port.
func (p *Ports) Get(name string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if port, ok := p.ports[name]; ok {
		return port, nil
	}
	used := map[int]bool{}
	for _, port := range p.ports {
		used[port] = true
	}
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("allocate port %q on 127.0.0.1: %w", name, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if used[port] {
			_ = l.Close()
			continue
		}
		p.ports[name] = port
		if p.hold {
			p.held[name] = l
		} else if err := l.Close(); err != nil {
			return 0, fmt.Errorf("release probe listener for port %q: %w", name, err)
		}
		return port, nil
	}
	return 0, fmt.Errorf("allocate port %q: the kernel kept returning ports already allocated", name)
}

// All returns a copy of every allocation so far, name -> port.
func (p *Ports) All() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.ports))
	for k, v := range p.ports {
		out[k] = v
	}
	return out
}

// RunInfo is what templates see as .run.
type RunInfo struct {
	ID, Dir string
}

// TemplateData is what a plan template sees: .static.X, .params.X,
// .fleets.F.O, .run.id and .run.dir.
type TemplateData struct {
	Static map[string]any
	Params map[string]float64
	Fleets map[string]map[string]string
	Run    RunInfo
}

// number prints the way users write numbers: 8000, not 8e+03.
type number float64

func (n number) String() string { return formatNumber(float64(n)) }

func (d TemplateData) root() map[string]any {
	params := make(map[string]any, len(d.Params))
	for k, v := range d.Params {
		params[k] = number(v)
	}
	fleets := make(map[string]any, len(d.Fleets))
	for f, outs := range d.Fleets {
		m := make(map[string]any, len(outs))
		for k, v := range outs {
			m[k] = v
		}
		fleets[f] = m
	}
	static := numbers(d.Static)
	if d.Static == nil {
		static = map[string]any{}
	}
	return map[string]any{
		"static": static,
		"params": params,
		"fleets": fleets,
		"run":    map[string]any{"id": d.Run.ID, "dir": d.Run.Dir},
	}
}

// numbers copies a free-form value, turning floats into number so they print
// as written.
func numbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = numbers(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = numbers(e)
		}
		return s
	case float64:
		return number(x)
	default:
		return v
	}
}

// funcs returns the template functions; port uses ports (nil: an error).
func funcs(ports *Ports) template.FuncMap {
	fm := ClientFuncs()
	fm["port"] = func(name string) (int, error) {
		if ports == nil {
			return 0, fmt.Errorf("port %q: no port allocator given", name)
		}
		return ports.Get(name)
	}
	// raw marks a value written into a generated file as meant to be file
	// syntax (see CheckFileStatics). It returns its argument.
	fm["raw"] = func(v any) any { return v }
	// _lit writes a plan value into a per-client template (DeferClient).
	fm[litFunc] = templateLiteral
	// The per-request functions parse everywhere and fail outside a request
	// template (see requestFuncStubs).
	for name, f := range requestFuncStubs() {
		fm[name] = f
	}
	return fm
}

// fileUnsafe are the characters a static parameter may not carry into a
// generated file (a process's files) unless the template marks its use raw:
// they end a directive or a block, open or close a quote, a comment or a
// substitution in the configuration languages and shells such files are
// written in (nginx, HAProxy, YAML, INI, sh). Control characters (newlines
// first) are refused too.
const fileUnsafe = ";{}\"'`\\$#&|<>()[]"

// CheckFileStatics checks the static parameters a file template prints: a
// value holding a newline or a structural character (fileUnsafe) could end
// its line or block and write its own configuration (nginx.conf runs as
// root). A use the template marks raw ({{ raw .static.X }}) is not checked.
// It returns one message per problem, naming the parameter and the
// character. A template that does not parse is checkTemplate's to report.
func CheckFileStatics(text string, static map[string]any) []string {
	if !strings.Contains(text, "{{") {
		return nil
	}
	t, err := template.New("file").Funcs(funcs(nil)).Parse(text)
	if err != nil {
		return nil
	}
	var probs []string
	seen := map[string]bool{}
	check := func(ref []string) {
		if len(ref) == 0 || ref[0] != "static" {
			return
		}
		keys := mapKeys(static) // the whole of .static, e.g. through index
		if len(ref) > 1 {
			keys = ref[1:2]
		}
		for _, k := range keys {
			v, ok := static[k]
			if !ok || seen[k] {
				continue
			}
			seen[k] = true
			s := fmt.Sprint(numbers(v))
			if i := strings.IndexFunc(s, func(r rune) bool {
				return r < 0x20 || r == 0x7f || strings.ContainsRune(fileUnsafe, r)
			}); i >= 0 {
				c, _ := utf8.DecodeRuneInString(s[i:])
				probs = append(probs, fmt.Sprintf("static.%s = %q holds %q, which would be written raw into a generated file; "+
					"use a plain value, or mark the use raw ({{ raw .static.%s }}) if the value is meant as file syntax", k, s, c, k))
			}
		}
	}
	for _, tr := range t.Templates() {
		if tr.Tree != nil {
			walkPrinted(tr.Tree.Root, check)
		}
	}
	return probs
}

// walkPrinted calls f with the references of every action that is not marked
// raw, and of the pipelines of if, range and with (whose values the body may
// print as the dot).
func walkPrinted(n parse.Node, f func([]string)) {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			walkPrinted(c, f)
		}
	case *parse.ActionNode:
		if !markedRaw(x.Pipe) {
			walkRefs(x.Pipe, false, f)
		}
	case *parse.IfNode:
		walkRefs(x.Pipe, false, f)
		walkPrinted(x.List, f)
		walkPrinted(x.ElseList, f)
	case *parse.RangeNode:
		walkRefs(x.Pipe, false, f)
		walkPrinted(x.List, f)
		walkPrinted(x.ElseList, f)
	case *parse.WithNode:
		walkRefs(x.Pipe, false, f)
		walkPrinted(x.List, f)
		walkPrinted(x.ElseList, f)
	case *parse.TemplateNode:
		walkRefs(x.Pipe, false, f)
	}
}

// markedRaw reports whether a pipeline ends in raw: {{ raw X }} or {{ X | raw }}.
func markedRaw(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) == 0 || len(p.Decl) > 0 {
		return false
	}
	last := p.Cmds[len(p.Cmds)-1]
	if len(last.Args) == 0 {
		return false
	}
	id, ok := last.Args[0].(*parse.IdentifierNode)
	return ok && id.Ident == "raw"
}

// Render expands one plan template. A missing key is an error (missingkey=error)
// and `port "name"` allocates from ports. Text without "{{" is returned as is.
func Render(text string, data TemplateData, ports *Ports) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	t, err := template.New("plan").Option("missingkey=error").Funcs(funcs(ports)).Parse(text)
	if err != nil {
		return "", fmt.Errorf("parse template %q: %w", text, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, data.root()); err != nil {
		return "", fmt.Errorf("render template %q: %w", text, err)
	}
	return b.String(), nil
}

// refScope is what the template checker knows of a plan: the names a template
// may refer to.
type refScope struct {
	static map[string]any
	params map[string]bool
	fleets map[string]*Fleet
	// client lists the client names of a per-client template (ClientIndex,
	// ClientTopic, ClientMarker); nil for a plan template.
	client []string
}

// checkTemplate parses text and checks every field reference it makes against
// the plan. It returns one message per problem.
func checkTemplate(text string, sc refScope) []string {
	if !strings.Contains(text, "{{") {
		return nil
	}
	t, err := template.New("plan").Funcs(funcs(nil)).Parse(text)
	if err != nil {
		msg := err.Error()
		// text/template prefixes "template: plan:1: "; the path says where.
		if i := strings.Index(msg, "plan:"); i >= 0 {
			msg = msg[i+len("plan:"):]
			if j := strings.Index(msg, ": "); j >= 0 {
				msg = msg[j+2:]
			}
		}
		return []string{"template does not parse: " + msg}
	}
	var probs []string
	seen := map[string]bool{}
	for _, tr := range t.Templates() {
		if tr.Tree == nil {
			continue
		}
		walkRefs(tr.Tree.Root, false, func(ref []string) {
			if msg := checkRef(ref, sc); msg != "" && !seen[msg] {
				seen[msg] = true
				probs = append(probs, msg)
			}
		})
	}
	return probs
}

// walkRefs calls f with the identifiers of every field reference made against
// the template's root ({{ .a.b }} and {{ $.a.b }}). Inside range and with the
// dot is rebound, so only their pipelines are checked there.
func walkRefs(n parse.Node, rebound bool, f func([]string)) {
	switch x := n.(type) {
	case nil:
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			walkRefs(c, rebound, f)
		}
	case *parse.ActionNode:
		walkRefs(x.Pipe, rebound, f)
	case *parse.PipeNode:
		if x == nil {
			return
		}
		for _, c := range x.Cmds {
			walkRefs(c, rebound, f)
		}
	case *parse.CommandNode:
		for _, a := range x.Args {
			walkRefs(a, rebound, f)
		}
	case *parse.FieldNode:
		if !rebound {
			f(x.Ident)
		}
	case *parse.VariableNode:
		if len(x.Ident) > 1 && x.Ident[0] == "$" {
			f(x.Ident[1:])
		}
	case *parse.ChainNode:
		if _, ok := x.Node.(*parse.DotNode); ok && !rebound {
			f(x.Field)
		} else {
			walkRefs(x.Node, rebound, f)
		}
	case *parse.IfNode:
		walkRefs(x.Pipe, rebound, f)
		walkRefs(x.List, rebound, f)
		walkRefs(x.ElseList, rebound, f)
	case *parse.RangeNode:
		walkRefs(x.Pipe, rebound, f)
		walkRefs(x.List, true, f)
		walkRefs(x.ElseList, rebound, f)
	case *parse.WithNode:
		walkRefs(x.Pipe, rebound, f)
		walkRefs(x.List, true, f)
		walkRefs(x.ElseList, rebound, f)
	case *parse.TemplateNode:
		walkRefs(x.Pipe, rebound, f)
	}
}

func mapKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func hint(word string, candidates []string) string {
	if s := suggest(word, candidates); s != "" {
		return "; " + s
	}
	return ""
}

// checkRef checks one reference such as [fleets target endpoint].
func checkRef(ref []string, sc refScope) string {
	full := "." + strings.Join(ref, ".")
	roots := []string{"static", "params", "fleets", "run"}
	if len(ref) == 0 {
		return "template refers to the whole context; use .static.X, .params.X, .fleets.F.O, .run.id or .run.dir"
	}
	if isClientRoot(ref[0]) {
		for _, c := range sc.client {
			if c == ref[0] {
				if len(ref) > 1 {
					return fmt.Sprintf("%s: .%s is a value, it has no fields", full, ref[0])
				}
				return ""
			}
		}
		switch {
		case sc.client == nil:
			return fmt.Sprintf("%s: only the pub/sub settings, rendered per subscriber and publisher, see .%s", full, ref[0])
		case ref[0] == ClientMarker:
			return fmt.Sprintf("%s: only the body sees .marker (where loadramp's marker goes)", full)
		default:
			return fmt.Sprintf("%s: a topic template sees .index, not .%s", full, ref[0])
		}
	}
	switch ref[0] {
	case "static":
		if len(ref) < 2 {
			return fmt.Sprintf("%s: name a static parameter, e.g. .static.X", full)
		}
		if _, ok := sc.static[ref[1]]; !ok {
			return fmt.Sprintf("%s: no static parameter %q%s", full, ref[1], hint(ref[1], mapKeys(sc.static)))
		}
	case "params":
		if len(ref) != 2 {
			return fmt.Sprintf("%s: name one parameter, e.g. .params.rate", full)
		}
		if !sc.params[ref[1]] {
			return fmt.Sprintf("%s: no parameter %q is declared%s", full, ref[1], hint(ref[1], mapKeys(sc.params)))
		}
	case "fleets":
		if len(ref) != 3 {
			return fmt.Sprintf("%s: name a fleet and an output, e.g. .fleets.target.endpoint", full)
		}
		fl, ok := sc.fleets[ref[1]]
		if !ok {
			return fmt.Sprintf("%s: no fleet %q%s", full, ref[1], hint(ref[1], mapKeys(sc.fleets)))
		}
		if fl != nil && fl.Provider == ProviderTerraform {
			return "" // terraform outputs are known only after apply
		}
		var outs map[string]string
		if fl != nil {
			outs = fl.Outputs
		}
		if ref[2] == "size" && fl != nil && hasScalable(fl.Processes) {
			return "" // a local fleet with scalable processes reports its size
		}
		if (ref[2] == "size" || ref[2] == AgentsOutput) && fl != nil && fl.Agents != nil && fl.Agents.Local > 0 {
			return "" // a local fleet with local agents lists them, and counts them
		}
		if _, ok := outs[ref[2]]; !ok {
			return fmt.Sprintf("%s: fleet %q has no output %q%s", full, ref[1], ref[2], hint(ref[2], mapKeys(outs)))
		}
	case "run":
		if len(ref) != 2 || (ref[1] != "id" && ref[1] != "dir") {
			return fmt.Sprintf("%s: .run has only .run.id and .run.dir", full)
		}
	default:
		if sc.client != nil {
			roots = append(roots, sc.client...)
			return fmt.Sprintf("%s: unknown reference; this template sees .static, .params, .fleets, .run, .%s%s", full, strings.Join(sc.client, ", ."), hint(ref[0], roots))
		}
		return fmt.Sprintf("%s: unknown reference; templates see .static, .params, .fleets, .run%s", full, hint(ref[0], roots))
	}
	return ""
}

func hasScalable(ps []Process) bool {
	for _, p := range ps {
		if p.Scalable {
			return true
		}
	}
	return false
}
