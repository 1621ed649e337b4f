package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// The plan's JSON Schema is generated, never written by hand: from the Go
// types the strict decoder walks (their yaml tags, through fieldsOf), the
// values ApplyDefaults fills in, the enums and name patterns validation
// checks against, and LoadParams. A key another part of loadramp adds to the
// types is in the schema the next time it is generated (`loadramp schema >
// docs/plan.schema.json`; a test fails while the committed file is stale).
//
// What the types alone do not say (descriptions, required keys, allowed
// values, name rules) is in schemaFields, by "GoType.yaml_key"; the allowed
// values and name rules it names are validation's own lists and patterns.
//
// The schema checks structure, key names, types, enums, names and the bounds
// of numbers (Bounds; a duration's and a load parameter's bound are in its
// description); `loadramp plan` checks everything else (templates, gates,
// cross-references).

// SchemaID is the schema's $id: its path in the repository.
const SchemaID = "https://github.com/loadramp/loadramp/docs/plan.schema.json"

// schemaEnums are the allowed values validation checks, by the name
// schemaFields gives them.
func schemaEnums() map[string][]any {
	anys := func(ss []string) []any {
		out := make([]any, len(ss))
		for i, s := range ss {
			out[i] = s
		}
		return out
	}
	var names []string
	seen := map[string]bool{}
	for _, lp := range LoadParams {
		if !seen[lp.Name] {
			seen[lp.Name] = true
			names = append(names, lp.Name)
		}
	}
	return map[string][]any{
		"version":    {SchemaVersion},
		"providers":  anys(providers),
		"engines":    anys(engines),
		"orders":     anys(orders),
		"arrivals":   anys(arrivals),
		"probeKinds": anys(probeKinds),
		"formats":    anys(ReportFormats),
		"params":     anys(names),

		"feederFormats": anys(feederFormats),
		"feederModes":   anys(feederModes),
	}
}

// schemaPatterns are the name rules validation checks, by the name
// schemaFields gives them.
var schemaPatterns = map[string]*regexp.Regexp{
	"planName": planNameRe,
	"ident":    identRe,
	"header":   httpTokenRe,
	"promName": promNameRe,

	"requestName": requestNameRe,
}

// durationPattern is what ParseDuration accepts: a Go duration, or a bare 0.
const durationPattern = `^([-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$|^0$`

type schemaGen struct {
	defs  map[string]any
	enums map[string][]any
	used  map[string]bool // schemaFields entries found
	err   error
}

// JSONSchema returns the plan's JSON Schema (draft-07), indented, with sorted
// keys: the same code gives the same bytes.
func JSONSchema() ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}, enums: schemaEnums(), used: map[string]bool{}}
	sample := reflect.ValueOf(defaultsSample()).Elem()
	root := g.object(reflect.TypeOf(Plan{}), sample)
	for _, k := range mapKeys(schemaFields) {
		if !g.used[k] {
			g.fail(fmt.Errorf("plan schema: schemaFields describes %s, which is no key of the plan", k))
		}
	}
	if g.err != nil {
		return nil, g.err
	}
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["$id"] = SchemaID
	root["title"] = fmt.Sprintf("loadramp ramp plan (version %d)", SchemaVersion)
	root["description"] = "A loadramp ramp plan. Generated from the plan's Go types by `loadramp schema`; `loadramp plan PLAN` checks what a schema cannot (ranges, templates, gates). Reference: docs/plan.md."
	root["definitions"] = g.defs
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// defaultsSample is a plan with every optional block present (one element in
// every list and map of blocks) and ApplyDefaults applied: its values are
// the defaults.
func defaultsSample() *Plan {
	p := &Plan{}
	fillSample(reflect.ValueOf(p).Elem(), 0)
	p.ApplyDefaults()
	return p
}

func fillSample(v reflect.Value, depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.Type().Elem().Kind() == reflect.Struct && v.Type().Elem() != durationType {
			v.Set(reflect.New(v.Type().Elem()))
			fillSample(v.Elem(), depth+1)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fillSample(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		if holdsBlocks(v.Type().Elem()) {
			s := reflect.MakeSlice(v.Type(), 1, 1)
			fillSample(s.Index(0), depth+1)
			v.Set(s)
		}
	case reflect.Map:
		if holdsBlocks(v.Type().Elem()) {
			m := reflect.MakeMap(v.Type())
			e := reflect.New(v.Type().Elem()).Elem()
			fillSample(e, depth+1)
			m.SetMapIndex(reflect.ValueOf("sample").Convert(v.Type().Key()), e)
			v.Set(m)
		}
	}
}

// holdsBlocks: t is a struct or a pointer to one (a block of keys).
func holdsBlocks(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct && t != durationType
}

// sampleOf is a container's first element in the sample (invalid if none).
func sampleOf(v reflect.Value) reflect.Value {
	if !v.IsValid() {
		return v
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return reflect.Value{}
		}
		return v.Elem()
	case reflect.Slice:
		if v.Len() == 0 {
			return reflect.Value{}
		}
		return v.Index(0)
	case reflect.Map:
		it := v.MapRange()
		if it.Next() {
			return it.Value()
		}
	}
	return reflect.Value{}
}

// object is the schema of a struct: its keys as the decoder reads them, no
// others.
func (g *schemaGen) object(t reflect.Type, sample reflect.Value) map[string]any {
	props := map[string]any{}
	var required []string
	idx, names := fieldsOf(t)
	for _, name := range names {
		f := t.FieldByIndex(idx[name])
		var fv reflect.Value
		if sample.IsValid() {
			fv = sample.FieldByIndex(idx[name])
		}
		// A key of an inline struct (PubSubBus in PubSub and Probe) is
		// described for the struct that holds it, or else for its own.
		key := t.Name() + "." + name
		info, described := schemaFields[key]
		if !described {
			owner := t
			for _, i := range idx[name][:len(idx[name])-1] {
				owner = owner.Field(i).Type
			}
			if owner != t {
				key = owner.Name() + "." + name
				info, described = schemaFields[key]
			}
		}
		g.used[key] = described
		s := g.value(f.Type, fv, info.enum, info.pattern)
		if ref, ok := s["$ref"]; ok {
			// draft-07 ignores the siblings of a $ref: wrap it.
			s = map[string]any{"allOf": []any{map[string]any{"$ref": ref}}}
		}
		doc := info.doc
		if b, ok := Bounds[key]; ok {
			doc = g.bound(s, b, doc)
		}
		if key == "Parameter.start" || key == "Parameter.max" {
			doc += "; at most the parameter's bound: " + paramBounds()
		}
		if doc != "" {
			if d, ok := s["description"].(string); ok {
				doc += "; " + d
			}
			s["description"] = doc
		}
		if fv.IsValid() && !fv.IsZero() && !info.noDefault {
			if d, ok := defaultOf(fv); ok {
				s["default"] = d
			}
		}
		if info.required {
			required = append(required, name)
		}
		props[name] = s
	}
	out := map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	if len(required) > 0 {
		sort.Strings(required)
		out["required"] = required
	}
	return out
}

// value is the schema of a value of type t.
func (g *schemaGen) value(t reflect.Type, sample reflect.Value, enum, keys string) map[string]any {
	if t == durationType {
		return map[string]any{
			"anyOf":       []any{map[string]any{"type": "string", "pattern": durationPattern}, map[string]any{"const": 0}},
			"description": "a Go duration: 5s, 250ms, 1m30s (a bare 0 is zero)",
		}
	}
	var s map[string]any
	switch t.Kind() {
	case reflect.Pointer:
		return g.value(t.Elem(), sampleOf(sample), enum, keys)
	case reflect.Struct:
		name := t.Name()
		if _, ok := g.defs[name]; !ok {
			g.defs[name] = nil // a cycle stops here
			g.defs[name] = g.object(t, sample)
		}
		return map[string]any{"$ref": "#/definitions/" + name}
	case reflect.Map:
		s = map[string]any{"type": "object", "additionalProperties": g.value(t.Elem(), sampleOf(sample), enum, "")}
		if keys != "" {
			s["propertyNames"] = map[string]any{"pattern": g.pattern(keys)}
		}
		return s
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.value(t.Elem(), sampleOf(sample), enum, keys)}
	case reflect.Interface:
		s = map[string]any{}
	case reflect.String:
		s = map[string]any{"type": "string"}
		if keys != "" {
			s["pattern"] = g.pattern(keys)
		}
	case reflect.Bool:
		s = map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		s = map[string]any{"type": "integer"}
	case reflect.Float64:
		s = map[string]any{"type": "number"}
	default:
		g.fail(fmt.Errorf("plan schema: no JSON type for %s", t))
		return map[string]any{}
	}
	if enum != "" {
		vals, ok := g.enums[enum]
		if !ok {
			g.fail(fmt.Errorf("plan schema: unknown enum %q", enum))
		}
		s["enum"] = vals
	}
	return s
}

// bound puts b into the schema s of a number (minimum, maximum), and into
// doc for every key (a duration's range is no JSON Schema keyword).
func (g *schemaGen) bound(s map[string]any, b Bound, doc string) string {
	if items, ok := s["items"].(map[string]any); ok && s["type"] == "array" {
		s = items // a list of numbers (check.status): each is bounded
	}
	if !b.Duration {
		if b.MinExclusive {
			s["exclusiveMinimum"] = b.Min
		} else {
			s["minimum"] = b.Min
		}
		s["maximum"] = b.Max
	}
	if doc != "" {
		doc += "; "
	}
	return doc + "allowed: " + b.String()
}

// paramBounds lists the load parameters' bounds: "rate 100000000
// requests/s (builtin/http), ...".
func paramBounds() string {
	var out []string
	for _, lp := range LoadParams {
		out = append(out, fmt.Sprintf("%s %s%s (%s)", lp.Name, formatLarge(lp.Max), unitSuffix(lp.Unit), lp.Workload))
	}
	return strings.Join(out, ", ")
}

func (g *schemaGen) pattern(name string) string {
	re, ok := schemaPatterns[name]
	if !ok {
		g.fail(fmt.Errorf("plan schema: unknown pattern %q", name))
		return ""
	}
	return re.String()
}

func (g *schemaGen) fail(err error) {
	if g.err == nil {
		g.err = err
	}
}

// defaultOf is a default value as the plan writes it (durations as strings).
func defaultOf(v reflect.Value) (any, bool) {
	switch {
	case v.Type() == durationType:
		return Duration(v.Int()).String(), true
	case v.Kind() == reflect.String, v.Kind() == reflect.Bool, v.Kind() == reflect.Int, v.Kind() == reflect.Int64, v.Kind() == reflect.Float64:
		return v.Interface(), true
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		return v.Interface(), true
	}
	return nil, false
}
