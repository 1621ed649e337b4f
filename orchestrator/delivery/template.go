package delivery

import (
	"fmt"
	"strings"
	"text/template"

	"github.com/loadramp/loadramp/orchestrator/plan"
)

// A client template is one of a Bus's per-subscriber or per-publisher
// settings: a Go text/template that sees
//
//	.index   the subscriber's or publisher's index in the step, from 0
//	.topic   its topic (the rendered topic template; not in a topic template)
//	.marker  loadramp's marker (in the publisher's body only)
//
// and the functions add, mod (integers) and json (a value as JSON): package
// plan's ClientFuncs. The plan's own references (.static, .fleets...) were
// rendered before (plan.DeferClient).

// Names a client template may refer to (package plan's).
const (
	VarIndex  = plan.ClientIndex
	VarTopic  = plan.ClientTopic
	VarMarker = plan.ClientMarker
)

// Template is a parsed client template.
type Template struct {
	name, text string
	t          *template.Template // nil: text has no action
}

// ParseTemplate parses a client template; name labels its errors (a plan
// path such as workload.pubsub.subscribe).
func ParseTemplate(name, text string) (*Template, error) {
	t := &Template{name: name, text: text}
	if !strings.Contains(text, "{{") {
		return t, nil
	}
	var err error
	t.t, err = template.New(name).Option("missingkey=error").Funcs(plan.ClientFuncs()).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// Vars are what a client template sees.
type Vars struct {
	Index  int
	Topic  string
	Marker string
	// HasTopic and HasMarker say whether .topic and .marker exist.
	HasTopic, HasMarker bool
}

// Execute renders t with v.
func (t *Template) Execute(v Vars) (string, error) {
	if t == nil {
		return "", nil
	}
	if t.t == nil {
		return t.text, nil
	}
	data := map[string]any{VarIndex: v.Index}
	if v.HasTopic {
		data[VarTopic] = v.Topic
	}
	if v.HasMarker {
		data[VarMarker] = v.Marker
	}
	var b strings.Builder
	if err := t.t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("%s: %w", t.name, err)
	}
	return b.String(), nil
}

// Text is the template's source.
func (t *Template) Text() string { return t.text }
