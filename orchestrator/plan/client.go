package plan

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
)

// Per-client templates. The pub/sub settings (workload.pubsub and a pubsub
// probe: URLs, headers, body, topics, open messages) are rendered for each
// subscriber and publisher, so besides the plan's references they see:
//
//	.index   the subscriber's or publisher's index in the step, from 0
//	.topic   its topic, as its topic template rendered (not in the topic templates)
//	.marker  loadramp's marker (in the body only)
//
// The plan's references are rendered once, when the run sets up its engine
// (DeferClient); the client's, per client, by package delivery.

// Names a per-client template may refer to besides the plan's.
const (
	ClientIndex  = "index"
	ClientTopic  = "topic"
	ClientMarker = "marker"
)

var clientRoots = []string{ClientIndex, ClientTopic, ClientMarker}

// ClientFuncs are the functions templates have besides port and raw: add and
// mod (whole numbers) and json (a value as JSON text, for an envelope). Every
// template has them; package delivery renders client templates with them.
func ClientFuncs() template.FuncMap {
	return template.FuncMap{
		"add": func(a ...any) (int64, error) {
			var s int64
			for _, x := range a {
				v, err := wholeNumber(x)
				if err != nil {
					return 0, fmt.Errorf("add: %w", err)
				}
				s += v
			}
			return s, nil
		},
		"mod": func(a, b any) (int64, error) {
			x, err := wholeNumber(a)
			if err != nil {
				return 0, fmt.Errorf("mod: %w", err)
			}
			y, err := wholeNumber(b)
			if err != nil {
				return 0, fmt.Errorf("mod: %w", err)
			}
			if y == 0 {
				return 0, fmt.Errorf("mod: division by zero")
			}
			return x % y, nil
		},
		"json": func(v any) (string, error) {
			if n, ok := v.(number); ok {
				v = float64(n)
			}
			b, err := json.Marshal(v)
			return string(b), err
		},
	}
}

func wholeNumber(x any) (int64, error) {
	switch v := x.(type) {
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case number:
		return wholeNumber(float64(v))
	case float64:
		if v != float64(int64(v)) {
			return 0, fmt.Errorf("%v is not a whole number", v)
		}
		return int64(v), nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number", v)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%v (%T) is not a number", x, x)
}

// refUse is what a piece of template refers to.
type refUse struct{ client, plan, whole, variable bool }

func (u *refUse) add(o refUse) {
	u.client = u.client || o.client
	u.plan = u.plan || o.plan
	u.whole = u.whole || o.whole
	u.variable = u.variable || o.variable
}

// Where the dot points: the template's root, a client value (inside a range
// or with over one), or a plan value.
type dotScope int

const (
	dotRoot dotScope = iota
	dotClient
	dotPlan
)

func isClientRoot(name string) bool {
	for _, r := range clientRoots {
		if r == name {
			return true
		}
	}
	return false
}

func uses(n parse.Node, dot dotScope) refUse {
	var u refUse
	switch x := n.(type) {
	case *parse.PipeNode:
		if x == nil {
			return u
		}
		if len(x.Decl) > 0 {
			u.variable = true
		}
		for _, c := range x.Cmds {
			u.add(uses(c, dot))
		}
	case *parse.CommandNode:
		for _, a := range x.Args {
			u.add(uses(a, dot))
		}
	case *parse.FieldNode:
		switch {
		case dot == dotClient:
			u.client = true
		case dot == dotPlan:
			u.plan = true
		case isClientRoot(x.Ident[0]):
			u.client = true
		default:
			u.plan = true
		}
	case *parse.DotNode:
		switch dot {
		case dotClient:
			u.client = true
		case dotPlan:
			u.plan = true
		default:
			u.whole = true
		}
	case *parse.VariableNode:
		switch {
		case x.Ident[0] != "$":
			u.variable = true
		case len(x.Ident) == 1:
			u.whole = true
		case isClientRoot(x.Ident[1]):
			u.client = true
		default:
			u.plan = true
		}
	case *parse.ChainNode:
		u.add(uses(x.Node, dot))
	case *parse.IdentifierNode:
		if x.Ident == "port" || x.Ident == "raw" {
			u.plan = true
		}
	}
	return u
}

// DeferClient rewrites a per-client template into a plan template: rendered
// with the run's data (Render), it gives the client template with the plan's
// values written in as constants ({{"http://10.0.0.5:8080"}}, {{ mod .index 4 }})
// and the client's references left for package delivery. A plan value used
// as an argument of a client action keeps its type (a number stays a
// number); one printed is a string. Variables, define and template are not
// available. Text without "{{" is returned as is.
func DeferClient(text string) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	t, err := template.New("client").Funcs(funcs(nil)).Parse(text)
	if err != nil {
		return "", fmt.Errorf("template does not parse: %v", err)
	}
	if len(t.Templates()) > 1 {
		return "", fmt.Errorf("define and block are not available in this template")
	}
	var b strings.Builder
	if err := deferList(&b, t.Tree.Root, dotRoot); err != nil {
		return "", err
	}
	return b.String(), nil
}

// literal is a plan-template action that prints s.
func literal(s string) string { return "{{" + strconv.Quote(s) + "}}" }

// litFunc is the plan-template function that writes a plan value as a
// template constant, for DeferClient.
const litFunc = "_lit"

// templateLiteral writes v as a text/template constant: a string quoted, a
// number or a bool as itself.
func templateLiteral(v any) string {
	switch x := v.(type) {
	case number:
		return formatNumber(float64(x))
	case float64:
		return formatNumber(x)
	case int, int64, bool:
		return fmt.Sprint(x)
	case string:
		return strconv.Quote(x)
	}
	return strconv.Quote(fmt.Sprint(v))
}

func checkUse(u refUse, what string) (client bool, err error) {
	switch {
	case u.variable:
		return false, fmt.Errorf("%s: variables are not available in this template", what)
	case u.whole:
		return false, fmt.Errorf("%s: refers to the whole context; name a value (.topic, .index, .fleets.F.O...)", what)
	}
	return u.client, nil
}

// deferPipe writes the plan-template text that renders to the client
// pipeline p: its plan arguments evaluated (as constants), the rest as
// written.
func deferPipe(b *strings.Builder, p *parse.PipeNode, dot dotScope) error {
	for i, c := range p.Cmds {
		if i > 0 {
			b.WriteString(literal(" | "))
		}
		if id, ok := c.Args[0].(*parse.IdentifierNode); ok && (id.Ident == "port" || id.Ident == "raw") {
			return fmt.Errorf("%s: %s takes the plan's values, not the client's (.index, .topic, .marker)", c.String(), id.Ident)
		}
		for j, a := range c.Args {
			if j > 0 {
				b.WriteString(literal(" "))
			}
			u := uses(a, dot)
			if _, ok := a.(*parse.IdentifierNode); ok || !u.plan {
				b.WriteString(literal(a.String()))
				continue
			}
			if !u.client {
				b.WriteString("{{" + litFunc + " (" + a.String() + ")}}")
				continue
			}
			inner, ok := a.(*parse.PipeNode)
			if !ok {
				return fmt.Errorf("%s: cannot tell the plan's values from the client's here; write them as separate actions", a.String())
			}
			b.WriteString(literal("("))
			if err := deferPipe(b, inner, dot); err != nil {
				return err
			}
			b.WriteString(literal(")"))
		}
	}
	return nil
}

func deferList(b *strings.Builder, l *parse.ListNode, dot dotScope) error {
	if l == nil {
		return nil
	}
	for _, n := range l.Nodes {
		switch x := n.(type) {
		case *parse.TextNode:
			b.Write(x.Text)
		case *parse.CommentNode:
		case *parse.ActionNode:
			u := uses(x.Pipe, dot)
			client, err := checkUse(u, x.String())
			if err != nil {
				return err
			}
			switch {
			case !client:
				b.WriteString(`{{printf "{{%q}}" (print (` + x.Pipe.String() + `))}}`)
			case !u.plan:
				b.WriteString(literal(x.String()))
			default:
				b.WriteString(literal("{{"))
				if err := deferPipe(b, x.Pipe, dot); err != nil {
					return err
				}
				b.WriteString(literal("}}"))
			}
		case *parse.IfNode:
			if err := deferBranch(b, "if", &x.BranchNode, dot, false); err != nil {
				return err
			}
		case *parse.RangeNode:
			if err := deferBranch(b, "range", &x.BranchNode, dot, true); err != nil {
				return err
			}
		case *parse.WithNode:
			if err := deferBranch(b, "with", &x.BranchNode, dot, true); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: not available in this template", n.String())
		}
	}
	return nil
}

// deferBranch writes an if, range or with: evaluated now when its pipeline
// is the plan's, written for the client when it uses the client's values.
func deferBranch(b *strings.Builder, keyword string, x *parse.BranchNode, dot dotScope, rebinds bool) error {
	u := uses(x.Pipe, dot)
	client, err := checkUse(u, "{{"+keyword+" "+x.Pipe.String()+"}}")
	if err != nil {
		return err
	}
	inner := dot
	if rebinds {
		inner = dotPlan
		if client {
			inner = dotClient
		}
	}
	emit := func(s string) {
		if client {
			s = literal(s)
		}
		b.WriteString(s)
	}
	if client {
		b.WriteString(literal("{{" + keyword + " "))
		if err := deferPipe(b, x.Pipe, dot); err != nil {
			return err
		}
		b.WriteString(literal("}}"))
	} else {
		b.WriteString("{{" + keyword + " " + x.Pipe.String() + "}}")
	}
	if err := deferList(b, x.List, inner); err != nil {
		return err
	}
	if x.ElseList != nil {
		emit("{{else}}")
		if err := deferList(b, x.ElseList, dot); err != nil {
			return err
		}
	}
	emit("{{end}}")
	return nil
}

// clientRefs lists the client names text refers to ("index", "topic",
// "marker"), for validation.
func clientRefs(text string) map[string]bool {
	out := map[string]bool{}
	if !strings.Contains(text, "{{") {
		return out
	}
	t, err := template.New("client").Funcs(funcs(nil)).Parse(text)
	if err != nil {
		return out
	}
	for _, tr := range t.Templates() {
		if tr.Tree != nil {
			walkRefs(tr.Tree.Root, false, func(ref []string) {
				if len(ref) > 0 && isClientRoot(ref[0]) {
					out[ref[0]] = true
				}
			})
		}
	}
	return out
}

// Confirmation modes of a pub/sub subscription (the confirm key).
const (
	ConfirmNone       = "none"
	ConfirmFirstEvent = "first-event"
	ConfirmComment    = "comment"
)

// ParseConfirm reads a confirm setting: "none" (or empty), "first-event", or
// "comment PREFIX" where PREFIX is the rest of the text, or a double-quoted
// string (Go syntax) to keep spaces or quotes. It returns the mode and, for
// comment, the prefix.
func ParseConfirm(s string) (mode, prefix string, err error) {
	t := strings.TrimSpace(s)
	switch t {
	case "", ConfirmNone:
		return ConfirmNone, "", nil
	case ConfirmFirstEvent:
		return ConfirmFirstEvent, "", nil
	}
	rest, ok := strings.CutPrefix(t, ConfirmComment)
	if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
		return "", "", fmt.Errorf("unknown confirmation %q; use none, first-event, or comment PREFIX (for example comment \": subscribed\")", s)
	}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, `"`) {
		p, err := strconv.Unquote(rest)
		if err != nil {
			return "", "", fmt.Errorf("confirmation %q: the prefix %s is not a complete double-quoted string", s, rest)
		}
		rest = p
	}
	if rest == "" {
		return "", "", fmt.Errorf("confirmation %q: comment needs the prefix it waits for, for example comment \": subscribed\"", s)
	}
	return ConfirmComment, rest, nil
}

// keys lists the keys set in b, for "only for probe kind pubsub".
func (b *PubSubBus) keys() []string {
	var out []string
	set := func(k string, on bool) {
		if on {
			out = append(out, k)
		}
	}
	set("publish", b.Publish != "")
	set("subscribe", b.Subscribe != "")
	set("publish_method", b.PublishMethod != "")
	set("publish_headers", len(b.PublishHeaders) > 0)
	set("body", b.Body != "")
	set("publish_topic", b.PublishTopic != "")
	set("publish_open", len(b.PublishOpen) > 0)
	set("subscribe_headers", len(b.SubscribeHeaders) > 0)
	set("subscribe_topic", b.SubscribeTopic != "")
	set("subscribe_open", len(b.SubscribeOpen) > 0)
	set("replies", len(b.Replies) > 0)
	set("confirm", b.Confirm != "")
	set("settle", b.Settle != nil)
	return out
}

// clientTemplated lists b's per-client templates at path with the client
// names each may use.
func (b *PubSubBus) clientTemplated(path string) []templated {
	urlish := []string{ClientIndex, ClientTopic}
	var out []templated
	add := func(p, text string, roots []string) {
		if text != "" {
			out = append(out, templated{path: path + "." + p, text: text, client: roots})
		}
	}
	add("publish", b.Publish, urlish)
	add("subscribe", b.Subscribe, urlish)
	add("body", b.Body, clientRoots)
	add("publish_topic", b.PublishTopic, []string{ClientIndex})
	add("subscribe_topic", b.SubscribeTopic, []string{ClientIndex})
	for _, k := range mapKeys(b.PublishHeaders) {
		add("publish_headers."+k, b.PublishHeaders[k], urlish)
	}
	for _, k := range mapKeys(b.SubscribeHeaders) {
		add("subscribe_headers."+k, b.SubscribeHeaders[k], urlish)
	}
	for i, m := range b.PublishOpen {
		add(fmt.Sprintf("publish_open[%d]", i), m, urlish)
	}
	for i, m := range b.SubscribeOpen {
		add(fmt.Sprintf("subscribe_open[%d]", i), m, urlish)
	}
	return out
}
