package plan

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// SchemaVersion is the plan schema version this package reads.
const SchemaVersion = 1

// maxNodes bounds how many YAML nodes one decode visits, so a small document
// that expands aliases exponentially ("billion laughs") is refused, not decoded.
// maxDepth bounds nesting, which also stops an alias that contains itself.
const (
	maxNodes = 50_000
	maxDepth = 64
)

// Load reads the plan file at path, applies the --set overrides in sets
// (each "key=value") and decodes it strictly; see Parse.
func Load(path string, sets []string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	p, err := Parse(data, path, sets)
	if p != nil {
		p.dir = filepath.Dir(path)
	}
	return p, err
}

// Parse decodes a version-1 plan from data; name (usually the file name) only
// labels syntax errors. The --set overrides in sets are applied to the YAML
// tree first, so they are type-checked like the file. Unknown keys and values of
// the wrong type are errors; every one found is returned at once as Errors, each
// a *DecodeError with its path and line. On success the defaults are applied
// (ApplyDefaults); the plan is not validated (call Validate). When the YAML
// parses but has decoding problems, the plan decoded from the rest is returned
// with the errors, so its other problems can be validated and reported too.
func Parse(data []byte, name string, sets []string) (*Plan, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{&DecodeError{Msg: fmt.Sprintf("%s is not valid YAML: %v", name, err)}}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, Errors{&DecodeError{Msg: fmt.Sprintf("%s is empty", name)}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, Errors{&DecodeError{Line: root.Line, Msg: fmt.Sprintf("%s: a plan must be a mapping of keys (version, name, fleets, ...), found %s", name, kindName(root))}}
	}

	var errs Errors
	from := map[string]string{}
	for _, s := range sets {
		path, err := applySet(root, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		from[path] = s
	}
	raw := data
	if len(sets) > 0 {
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(&doc); err != nil {
			errs = append(errs, &DecodeError{Msg: fmt.Sprintf("re-encode plan after --set: %v", err)})
		}
		_ = enc.Close()
		raw = buf.Bytes()
	}

	p := &Plan{}
	d := &decoder{lines: map[string]int{}, from: from, failed: map[string]bool{}, budget: maxNodes}
	d.decode(root, reflect.ValueOf(p).Elem(), "")
	errs = append(errs, d.errs...)
	if _, ok := d.lines["version"]; !ok {
		errs = append(errs, &DecodeError{Path: "version", Msg: "missing", Hint: fmt.Sprintf("add version: %d", SchemaVersion)})
	} else if p.Version != SchemaVersion && !d.failed["version"] {
		errs = append(errs, d.errAt("version", fmt.Sprintf("unsupported version %d", p.Version), fmt.Sprintf("this loadramp reads version %d", SchemaVersion)))
	}
	p.lines = d.lines
	p.raw = raw
	p.ApplyDefaults()
	if len(errs) > 0 {
		sortErrors(errs)
		// The partial plan lets callers validate the rest, so a user sees
		// every problem at once, not the decoding ones first.
		return p, errs
	}
	return p, nil
}

// Raw returns the plan's YAML after the --set overrides: what to write as the
// run's plan.yaml. It is nil for a plan not made by Parse.
func (p *Plan) Raw() []byte { return p.raw }

// Line returns the line where path (such as "ramp.hold", "parameters[1].max",
// "gates[2]") was written, or 0 if unknown or set by --set. Parameters and
// processes may also be named as --set names them: "parameters.rate.max",
// "fleets.target.processes.eventbus.command".
func (p *Plan) Line(path string) int {
	if l, ok := p.lines[path]; ok {
		return l
	}
	return p.lines[p.canonical(path)]
}

// canonical rewrites list elements chosen by name into indexes:
// parameters.rate.max -> parameters[0].max.
func (p *Plan) canonical(path string) string {
	segs := strings.Split(path, ".")
	byName := func(i int, names []string) {
		if i >= len(segs) {
			return
		}
		for j, n := range names {
			if n == segs[i] {
				segs[i-1] += fmt.Sprintf("[%d]", j)
				segs = append(segs[:i], segs[i+1:]...)
				return
			}
		}
	}
	switch {
	case len(segs) >= 2 && segs[0] == "parameters":
		names := make([]string, len(p.Parameters))
		for i, par := range p.Parameters {
			names[i] = par.Name
		}
		byName(1, names)
	case len(segs) >= 4 && segs[0] == "fleets" && segs[2] == "processes":
		if f := p.Fleets[segs[1]]; f != nil {
			names := make([]string, len(f.Processes))
			for i, pr := range f.Processes {
				names[i] = pr.Name
			}
			byName(3, names)
		}
	}
	return strings.Join(segs, ".")
}

// given reports whether path was written in the plan (in the file or by --set).
func (p *Plan) given(path string) bool {
	_, ok := p.lines[path]
	return ok
}

// sortErrors orders decode errors by line, keeping --set errors (line 0) first
// in their given order.
func sortErrors(errs Errors) {
	sort.SliceStable(errs, func(i, j int) bool {
		return errLine(errs[i]) < errLine(errs[j])
	})
}

func errLine(err error) int {
	if e, ok := err.(*DecodeError); ok {
		return e.Line
	}
	return 0
}

type decoder struct {
	// key is the "GoType.yaml_key" of the value being decoded (Bounds'
	// names), for the bound an overflowing number is told.
	key    string
	lines  map[string]int
	from   map[string]string // path -> the --set expression that wrote it
	failed map[string]bool
	errs   Errors
	budget int
	depth  int
}

// enter accounts for one node at path; false means stop: the document is too
// large or too deep (both reported once).
func (d *decoder) enter(path string) bool {
	d.budget--
	if d.budget < 0 {
		if d.budget == -1 {
			d.fail(path, fmt.Sprintf("plan too large: more than %d YAML nodes after alias expansion", maxNodes), "")
		}
		return false
	}
	if d.depth >= maxDepth {
		if !d.failed["#depth"] {
			d.failed["#depth"] = true
			d.fail(path, fmt.Sprintf("nested more than %d levels deep (an alias that contains itself?)", maxDepth), "")
		}
		return false
	}
	d.depth++
	return true
}

var durationType = reflect.TypeOf(Duration(0))

func (d *decoder) errAt(path, msg, hint string) *DecodeError {
	e := &DecodeError{Path: path, Line: d.lines[path], Msg: msg, Hint: hint}
	if e.Line == 0 {
		for p, s := range d.from {
			if path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
				e.Msg += fmt.Sprintf(" (from --set %s)", s)
				break
			}
		}
	}
	return e
}

func (d *decoder) fail(path, msg, hint string) {
	d.failed[path] = true
	d.errs = append(d.errs, d.errAt(path, msg, hint))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	default:
		return "nothing"
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// keyLine is the line a key's value was written on: the key's line, or 0 when
// --set replaced the value (its nodes carry no line).
func keyLine(k, val *yaml.Node) int {
	if val != nil && val.Line == 0 {
		return 0
	}
	return k.Line
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// fieldsOf maps yaml keys to struct field index paths (reflect's
// FieldByIndex): the fields of a struct embedded with ",inline" are keys of
// the struct that embeds it.
func fieldsOf(t reflect.Type) (map[string][]int, []string) {
	idx := map[string][]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && opts == "inline" && f.Type.Kind() == reflect.Struct {
			sub, subNames := fieldsOf(f.Type)
			for _, n := range subNames {
				idx[n] = append([]int{i}, sub[n]...)
				names = append(names, n)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		idx[name] = []int{i}
		names = append(names, name)
	}
	return idx, names
}

// decode fills v from n, recording the line of every path and an error for
// every unknown key and mistyped value.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if n == nil || n.Kind == yaml.AliasNode {
		d.fail(path, "alias cannot be resolved", "")
		return
	}
	if !d.enter(path) {
		return
	}
	defer func() { d.depth-- }()
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	t := v.Type()
	if t == durationType {
		d.duration(n, v, path)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			return
		}
		nv := reflect.New(t.Elem())
		d.decode(n, nv.Elem(), path)
		v.Set(nv)
	case reflect.Interface:
		if x, ok := d.generic(n, path); ok && x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(path, fmt.Sprintf("expected a mapping, found %s", kindName(n)), "")
		return
	}
	idx, names := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.lines[path] = n.Line
			d.fail(path, "keys must be plain strings", "")
			continue
		}
		p := join(path, k.Value)
		if _, ok := d.lines[p]; !ok {
			d.lines[p] = keyLine(k, val)
		}
		if seen[k.Value] {
			d.lines[p] = k.Line
			d.fail(p, "duplicate key", "")
			continue
		}
		seen[k.Value] = true
		fi, ok := idx[k.Value]
		if !ok {
			d.lines[p] = k.Line
			d.fail(p, "unknown key", suggest(k.Value, names))
			continue
		}
		owner := v.Type()
		for _, i := range fi[:len(fi)-1] {
			owner = owner.Field(i).Type
		}
		d.key = owner.Name() + "." + k.Value
		d.decode(val, v.FieldByIndex(fi), p)
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(path, fmt.Sprintf("expected a mapping, found %s", kindName(n)), "")
		return
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.fail(path, "unsupported map key type", "")
		return
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.fail(path, "keys must be plain strings", "")
			continue
		}
		p := join(path, k.Value)
		if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			d.lines[p] = k.Line
			d.fail(p, "duplicate key", "")
			continue
		}
		if _, ok := d.lines[p]; !ok {
			d.lines[p] = keyLine(k, val)
		}
		ev := reflect.New(t.Elem()).Elem()
		d.decode(val, ev, p)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), ev)
	}
	v.Set(m)
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(path, fmt.Sprintf("expected a list, found %s", kindName(n)), "")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if r := resolve(e); r != nil {
			d.lines[p] = r.Line
		}
		d.decode(e, s.Index(i), p)
	}
	v.Set(s)
}

// scalarValue resolves a scalar node the way YAML does (int, float, bool,
// string, nil).
func scalarValue(n *yaml.Node) (any, error) {
	var x any
	if err := n.Decode(&x); err != nil {
		return nil, err
	}
	return x, nil
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	k := v.Kind()
	want := map[reflect.Kind]string{reflect.String: "a string", reflect.Bool: "true or false",
		reflect.Int: "an integer", reflect.Int64: "an integer", reflect.Float64: "a number"}[k]
	if want == "" {
		d.fail(path, fmt.Sprintf("unsupported field type %s", v.Type()), "")
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(path, fmt.Sprintf("expected %s, found %s", want, kindName(n)), "")
		return
	}
	if isNull(n) {
		return
	}
	x, err := scalarValue(n)
	if err != nil {
		d.fail(path, fmt.Sprintf("%q is not %s", n.Value, want), "")
		return
	}
	if msg := d.overflow(k, n.Value, x); msg != "" {
		d.fail(path, msg, "")
		return
	}
	switch k {
	case reflect.String:
		v.SetString(n.Value)
		return
	case reflect.Bool:
		if b, ok := x.(bool); ok {
			v.SetBool(b)
			return
		}
	case reflect.Int, reflect.Int64:
		switch i := x.(type) {
		case int:
			v.SetInt(int64(i))
			return
		case int64:
			v.SetInt(i)
			return
		case float64:
			if i == math.Trunc(i) && math.Abs(i) < 1<<53 {
				v.SetInt(int64(i))
				return
			}
		}
	case reflect.Float64:
		switch f := x.(type) {
		case int:
			v.SetFloat(float64(f))
			return
		case int64:
			v.SetFloat(float64(f))
			return
		case uint64:
			v.SetFloat(float64(f))
			return
		case float64:
			if math.IsNaN(f) || math.IsInf(f, 0) {
				d.fail(path, fmt.Sprintf("%q is not a finite number", n.Value), "")
				return
			}
			v.SetFloat(f)
			return
		}
	}
	d.fail(path, fmt.Sprintf("%q is not %s", n.Value, want), "")
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(path, fmt.Sprintf("expected a duration, found %s", kindName(n)), "use e.g. 5s, 250ms")
		return
	}
	dur, err := ParseDuration(n.Value)
	if err != nil && durationSyntax.MatchString(n.Value) {
		d.fail(path, fmt.Sprintf("%q is too long for a duration (at most %s)%s", n.Value, time.Duration(math.MaxInt64), d.boundHint()), "")
		return
	}
	if err != nil {
		d.fail(path, fmt.Sprintf("%q is not a duration", n.Value), "use e.g. 5s, 250ms")
		return
	}
	v.SetInt(int64(dur))
}

// durationSyntax matches what time.ParseDuration reads; a string it matches
// that does not parse overflows (2562048h and more).
var durationSyntax = regexp.MustCompile(`^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

// integerSyntax matches YAML 1.2 integers (as yaml.v3 reads them);
// floatSyntax its decimal numbers.
var (
	integerSyntax = regexp.MustCompile(`^[-+]?([0-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+)$`)
	floatSyntax   = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$`)
)

// overflow says why a number does not fit a field of kind k: written as an
// integer but too large for one, or too large for a float64 at all. It is ""
// for anything else (including what is not a number).
func (d *decoder) overflow(k reflect.Kind, text string, x any) string {
	tooLarge := func(what string) string {
		return fmt.Sprintf("%q is too large for %s%s", text, what, d.boundHint())
	}
	switch k {
	case reflect.Int, reflect.Int64:
		switch i := x.(type) {
		case uint64:
			return tooLarge(fmt.Sprintf("an integer (at most %d)", int64(math.MaxInt64)))
		case float64:
			if i == math.Trunc(i) && math.Abs(i) >= 1<<53 {
				return tooLarge(fmt.Sprintf("an integer (at most %d)", int64(math.MaxInt64)))
			}
		case string:
			if integerSyntax.MatchString(text) {
				return tooLarge(fmt.Sprintf("an integer (at most %d)", int64(math.MaxInt64)))
			}
		}
	case reflect.Float64:
		if _, ok := x.(string); ok && (floatSyntax.MatchString(text) || integerSyntax.MatchString(text)) {
			return tooLarge(fmt.Sprintf("a number (at most %g)", math.MaxFloat64))
		}
	}
	return ""
}

// boundHint names the bound of the key being decoded, when it has one.
func (d *decoder) boundHint() string {
	if b, ok := Bounds[d.key]; ok {
		return fmt.Sprintf("; allowed here: %s", b)
	}
	return ""
}

// generic decodes a free-form value (static parameters, terraform vars,
// campaign variants) into map[string]any, []any and scalars, recording lines.
func (d *decoder) generic(n *yaml.Node, path string) (any, bool) {
	n = resolve(n)
	if n == nil || n.Kind == yaml.AliasNode {
		d.fail(path, "alias cannot be resolved", "")
		return nil, false
	}
	if !d.enter(path) {
		return nil, false
	}
	defer func() { d.depth-- }()
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if k == nil || k.Kind != yaml.ScalarNode {
				d.fail(path, "keys must be plain strings", "")
				ok = false
				continue
			}
			p := join(path, k.Value)
			if _, dup := m[k.Value]; dup {
				d.lines[p] = k.Line
				d.fail(p, "duplicate key", "")
				ok = false
				continue
			}
			if _, seen := d.lines[p]; !seen {
				d.lines[p] = keyLine(k, n.Content[i+1])
			}
			x, good := d.generic(n.Content[i+1], p)
			ok = ok && good
			m[k.Value] = x
		}
		return m, ok
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		ok := true
		for i, e := range n.Content {
			x, good := d.generic(e, fmt.Sprintf("%s[%d]", path, i))
			ok = ok && good
			s[i] = x
		}
		return s, ok
	case yaml.ScalarNode:
		x, err := scalarValue(n)
		if err != nil {
			d.fail(path, fmt.Sprintf("%q is not a valid value: %v", n.Value, err), "")
			return nil, false
		}
		switch f := x.(type) {
		case float64:
			if math.IsNaN(f) || math.IsInf(f, 0) {
				d.fail(path, fmt.Sprintf("%q is not a finite number", n.Value), "")
				return nil, false
			}
		case int64, uint64:
			// Keep big integers exact but in a type templates and JSON handle.
			return x, true
		case []byte:
			return string(f), true
		}
		return x, true
	default:
		d.fail(path, "unsupported YAML node", "")
		return nil, false
	}
}

// formatNumber renders a number the way a user wrote it: 8000, not 8e+03.
func formatNumber(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// formatLarge is formatNumber, but in exponent form from 1e15 on (1e+20,
// not twenty-one digits).
func formatLarge(f float64) string {
	if math.Abs(f) >= 1e15 {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return formatNumber(f)
}
