package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const (
	schemaFile = "../../docs/plan.schema.json"
	modeline   = "# yaml-language-server: $schema=../docs/plan.schema.json"
)

// TestSchemaIsCurrent fails while docs/plan.schema.json is not what the code
// generates: a key, default or allowed value changed since it was written.
func TestSchemaIsCurrent(t *testing.T) {
	want, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(schemaFile)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("docs/plan.schema.json is stale (%v): regenerate it with\n\n    make schema   (go run ./cmd/loadramp schema > docs/plan.schema.json)\n", err)
	}
	again, _ := JSONSchema()
	if !bytes.Equal(again, want) {
		t.Error("JSONSchema is not deterministic")
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("the plan schema does not compile: %v", err)
	}
	return s
}

// instance reads a YAML plan as the JSON value a schema validator sees.
func instance(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	x, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func examplePlans(t *testing.T) map[string][]byte {
	t.Helper()
	files, _ := filepath.Glob("../../plans/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example plans")
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// TestExamplePlansMatchTheSchema validates every example plan with a JSON
// Schema library, and checks each names the schema for editors.
func TestExamplePlansMatchTheSchema(t *testing.T) {
	s := compileSchema(t)
	plans := examplePlans(t)
	starter, err := StarterPlan(Starter{URL: "http://10.0.0.5:8080/api/health?x=1"})
	if err != nil {
		t.Fatal(err)
	}
	plans["init starter"] = starter
	for name, data := range plans {
		t.Run(name, func(t *testing.T) {
			first, _, _ := strings.Cut(string(data), "\n")
			if name != "init starter" && first != modeline {
				t.Errorf("first line %q; want the modeline %q", first, modeline)
			}
			if err := s.Validate(instance(t, data)); err != nil {
				t.Errorf("does not match the schema: %v", err)
			}
		})
	}
}

// TestSchemaRefusesWhatValidationRefuses: plans the schema refuses are
// refused by loadramp too (the schema is no stricter than loadramp on
// these), and it refuses them at all (it is not vacuous).
func TestSchemaRefusesWhatValidationRefuses(t *testing.T) {
	s := compileSchema(t)
	base := examplePlans(t)["local-eventbus.yaml"]
	for _, c := range []struct{ name, set string }{
		{"unknown top-level key", "+gatez"},
		{"unknown nested key", "+ramp.hodl"},
		{"order not in the enum", "ramp.order=random"},
		{"engine not in the enum", "workload.engine=k6"},
		{"not a duration", "ramp.hold=soon"},
		{"a bare number as a duration", "ramp.hold=10"},
		{"not a number", "ramp.factor=double"},
		{"not an integer", "ramp.confirm=1.5"},
		{"unknown load parameter", "parameters[0].name=users_per_second"},
		{"unknown report format", "report.formats=[pdf]"},
		{"bad header name", "workload.http.headers={'Bad Header': x}"},
		{"plan name", "name='my plan'"},
		{"version", "version=2"},
		{"probe kind", "probe.kind=grpc"},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc, data := yamlWith(t, base, c.set)
			if err := s.Validate(instance(t, data)); err == nil {
				t.Errorf("the schema accepts %s", c.set)
			}
			p, err := Parse(data, "x", nil)
			if err == nil {
				err = errors.Join(p.Validate()...)
			}
			if err == nil {
				t.Errorf("loadramp accepts %s, which the schema refuses:\n%s", c.set, doc)
			}
		})
	}
}

// yamlWith applies one --set to a plan and returns its YAML; "+a.b" adds
// the key b (unknown to loadramp) to the mapping a instead.
func yamlWith(t *testing.T, data []byte, set string) (string, []byte) {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	if add, ok := strings.CutPrefix(set, "+"); ok {
		m := root.Content[0]
		segs := strings.Split(add, ".")
		for _, seg := range segs[:len(segs)-1] {
			for i := 0; i+1 < len(m.Content); i += 2 {
				if m.Content[i].Value == seg {
					m = m.Content[i+1]
					break
				}
			}
		}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: segs[len(segs)-1]}, &yaml.Node{Kind: yaml.ScalarNode, Value: "10s"})
	} else if _, err := applySet(root.Content[0], set); err != nil {
		t.Fatalf("--set %s: %v", set, err)
	}
	out, err := yaml.Marshal(&root)
	if err != nil {
		t.Fatal(err)
	}
	return string(out), out
}

// TestSchemaRequiredIsRequired: every key the schema marks required is one
// loadramp refuses a plan without, naming it. Each required key found in an
// example plan is deleted in turn.
func TestSchemaRequiredIsRequired(t *testing.T) {
	b, _ := JSONSchema()
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	defs := schema["definitions"].(map[string]any)
	tried := map[string]bool{}
	for name, data := range examplePlans(t) {
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		for _, path := range requiredPaths(schema, defs, doc, nil) {
			key := strings.Join(generic(path), ".")
			if tried[key] {
				continue
			}
			tried[key] = true
			without := deleteAt(doc, path)
			out, _ := yaml.Marshal(without)
			p, err := Parse(out, name, nil)
			var errs []error
			if err != nil {
				errs = append(errs, err.(Errors)...)
			}
			if p != nil {
				errs = append(errs, p.Validate()...)
			}
			want := pathString(path)
			found := false
			for _, e := range errs {
				var pe *Problem
				var de *DecodeError
				switch {
				case errors.As(e, &pe):
					found = found || pe.Path == want
				case errors.As(e, &de):
					found = found || de.Path == want
				}
			}
			if !found {
				t.Errorf("%s: without the required %s, loadramp does not name it: %v", name, want, Errors(errs))
			}
		}
	}
	for _, want := range []string{"version", "name", "fleets", "parameters", "gates", "parameters.*.name", "fleets.*.processes.*.command", "workload.http.requests.*.url", "workload.http.requests.*.name", "workload.http.feeders.users.file", "workload.http.requests.*.check.json.path", "probe.kind", "campaign.variants", "workload.pubsub.publish"} {
		if !tried[want] {
			t.Errorf("no example plan tried the required %s (tried %v)", want, triedKeys(tried))
		}
	}
}

func triedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// requiredPaths lists the paths of doc that the schema s marks required.
func requiredPaths(s, defs map[string]any, doc any, path []any) [][]any {
	s = resolveRef(s, defs)
	var out [][]any
	switch d := doc.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, k := range req {
				if _, present := d[k.(string)]; present {
					out = append(out, append(append([]any{}, path...), k))
				}
			}
		}
		for k, v := range d {
			var sub map[string]any
			if props != nil {
				sub, _ = props[k].(map[string]any)
			} else if ap, ok := s["additionalProperties"].(map[string]any); ok {
				sub = ap
			}
			if sub != nil {
				out = append(out, requiredPaths(sub, defs, v, append(append([]any{}, path...), k))...)
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok && len(d) > 0 {
			out = append(out, requiredPaths(items, defs, d[0], append(append([]any{}, path...), 0))...)
		}
	}
	return out
}

func resolveRef(s, defs map[string]any) map[string]any {
	for i := 0; i < 8; i++ {
		if all, ok := s["allOf"].([]any); ok && len(all) == 1 {
			s = all[0].(map[string]any)
			continue
		}
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		s = defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
	}
	return s
}

// pathString is a path as loadramp's problems name it: fleets.target.processes[0].command.
func pathString(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch x := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", x)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(x)
		}
	}
	return b.String()
}

// generic is a path with list indexes and map keys below fleets made "*".
func generic(path []any) []string {
	var out []string
	for i, p := range path {
		switch x := p.(type) {
		case int:
			out = append(out, "*")
		case string:
			if i > 0 && path[i-1] == "fleets" {
				x = "*"
			}
			out = append(out, x)
		}
	}
	return out
}

// deleteAt returns a deep copy of doc without the key at path.
func deleteAt(doc any, path []any) any {
	switch d := doc.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, v := range d {
			switch {
			case len(path) == 1 && k == path[0]:
			case len(path) > 1 && k == path[0]:
				out[k] = deleteAt(v, path[1:])
			default:
				out[k] = v
			}
		}
		return out
	case []any:
		out := make([]any, len(d))
		copy(out, d)
		if i, ok := path[0].(int); ok && len(path) > 1 {
			out[i] = deleteAt(d[i], path[1:])
		}
		return out
	}
	return doc
}

// TestSchemaFieldsNameRealKeys: a description of a key the plan no longer
// has is an error, not a silent leftover.
func TestSchemaFieldsNameRealKeys(t *testing.T) {
	schemaFields["Ramp.hodl"] = fieldInfo{doc: "a typo"}
	defer delete(schemaFields, "Ramp.hodl")
	if _, err := JSONSchema(); err == nil || !strings.Contains(err.Error(), "Ramp.hodl") {
		t.Errorf("JSONSchema with a stale description = %v", err)
	}
}
