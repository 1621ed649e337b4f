// Package tfmodule reads the interface of a Terraform module, its variables
// and outputs, with hashicorp/terraform-config-inspect (no provider is
// needed), and checks values loadramp would give the module against it: a
// variable that does not exist, a value its type does not accept, a
// required variable left out.
package tfmodule

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/terraform-config-inspect/tfconfig"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Module is a Terraform module's interface.
type Module struct {
	// Dir is where it was read from.
	Dir       string
	Variables map[string]Variable
	Outputs   map[string]Output
}

// Variable is one of a module's input variables.
type Variable struct {
	Name string
	// Type is the type constraint as written ("string", "list(string)"...;
	// "" when the variable declares none, which accepts anything).
	Type string
	// Default is the default value (nil for none, or a null default).
	Default   any
	Required  bool
	Sensitive bool
	// Description is the variable's description.
	Description string
	// Pos is where it is declared (file:line).
	Pos string
}

// Output is one of a module's outputs.
type Output struct {
	Name        string
	Sensitive   bool
	Description string
	Pos         string
}

// Load reads the module in dir. A module that does not parse is an error
// naming where.
func Load(dir string) (*Module, error) {
	if !tfconfig.IsModuleDir(dir) {
		return nil, fmt.Errorf("%s: not a Terraform module (no .tf file)", dir)
	}
	mod, diags := tfconfig.LoadModule(dir)
	if diags.HasErrors() {
		var msgs []string
		for _, d := range diags {
			if d.Severity != tfconfig.DiagError {
				continue
			}
			at := dir
			if d.Pos != nil {
				at = fmt.Sprintf("%s:%d", d.Pos.Filename, d.Pos.Line)
			}
			msgs = append(msgs, fmt.Sprintf("%s: %s: %s", at, d.Summary, d.Detail))
		}
		return nil, fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	m := &Module{Dir: dir, Variables: map[string]Variable{}, Outputs: map[string]Output{}}
	for name, v := range mod.Variables {
		m.Variables[name] = Variable{Name: name, Type: v.Type, Default: v.Default, Required: v.Required, Sensitive: v.Sensitive,
			Description: v.Description, Pos: fmt.Sprintf("%s:%d", v.Pos.Filename, v.Pos.Line)}
	}
	for name, o := range mod.Outputs {
		m.Outputs[name] = Output{Name: name, Sensitive: o.Sensitive, Description: o.Description, Pos: fmt.Sprintf("%s:%d", o.Pos.Filename, o.Pos.Line)}
	}
	return m, nil
}

// VariableNames returns the module's variable names, sorted.
func (m *Module) VariableNames() []string { return sortedKeys(m.Variables) }

// OutputNames returns the module's output names, sorted.
func (m *Module) OutputNames() []string { return sortedKeys(m.Outputs) }

// ParseType parses a type constraint as variables.tf writes it.
func ParseType(s string) (cty.Type, error) {
	if strings.TrimSpace(s) == "" {
		return cty.DynamicPseudoType, nil
	}
	expr, diags := hclsyntax.ParseExpression([]byte(s), "type", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("type %q: %s", s, diags.Error())
	}
	ty, diags := typeexpr.TypeConstraint(expr)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("type %q: %s", s, diags.Error())
	}
	return ty, nil
}

// Accepts says why the variable's type does not accept v, a value as YAML
// or JSON decodes it (string, number, bool, []any, map[string]any), or nil
// when it does; the conversion is Terraform's (a string "2" is a number, a
// number is a string). template, when set, marks strings that are rendered
// later (a loadramp template): such a string stands for any primitive value.
func (v Variable) Accepts(val any, template func(string) bool) error {
	ty, err := ParseType(v.Type)
	if err != nil {
		return err
	}
	if s, ok := val.(string); ok && template != nil && template(s) {
		if ty.IsPrimitiveType() || ty == cty.DynamicPseudoType {
			return nil
		}
		return fmt.Errorf("a template renders a string, and %s takes %s", v.Name, v.Type)
	}
	b, err := json.Marshal(val)
	if err != nil {
		return fmt.Errorf("%v: %w", val, err)
	}
	implied, err := ctyjson.ImpliedType(b)
	if err != nil {
		return fmt.Errorf("%s: %w", b, err)
	}
	cv, err := ctyjson.Unmarshal(b, implied)
	if err != nil {
		return fmt.Errorf("%s: %w", b, err)
	}
	if _, err := convert.Convert(cv, ty); err != nil {
		return fmt.Errorf("%s takes %s: %s is not one (%v)", v.Name, typeName(v.Type), b, err)
	}
	return nil
}

func typeName(t string) string {
	if t == "" {
		return "any value"
	}
	return t
}

// CheckVars checks values given to the module: each must be a variable it
// declares whose type accepts the value, and every required variable must be
// given or be among setElsewhere (variables loadramp sets itself). path
// prefixes each problem ("fleets.target.terraform.vars"); template marks
// strings rendered later.
func (m *Module) CheckVars(path string, vars map[string]any, setElsewhere []string, template func(string) bool) []error {
	var errs []error
	for _, name := range sortedKeys(vars) {
		v, ok := m.Variables[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s.%s: module %s declares no variable %q%s", path, name, m.Dir, name, m.hint(name)))
			continue
		}
		if err := v.Accepts(vars[name], template); err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: %w", path, name, err))
		}
	}
	for _, name := range m.VariableNames() {
		v := m.Variables[name]
		if _, given := vars[name]; given || !v.Required || slices.Contains(setElsewhere, name) {
			continue
		}
		errs = append(errs, fmt.Errorf("%s: module %s requires variable %q (%s), which is not given", path, m.Dir, name, v.Description))
	}
	return errs
}

// hint suggests the variable a misspelt name may be.
func (m *Module) hint(name string) string {
	best, dist := "", 4
	for _, n := range m.VariableNames() {
		if d := levenshtein.Distance(name, n, nil); d < dist {
			best, dist = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CheckReadme checks the tables of a module's README (markdown) against the
// module: under a "## Variables" heading, one row per variable, `name` |
// `type` (", sensitive" when it is) | default as Terraform prints it (JSON:
// `""`, `[]`, `30`, `"target"`), or "required" | description; under "##
// Outputs", one row per output, `name` | description. Every variable and
// output must have its row and every row its variable or output, so a
// rename, a new default or a variable becoming required is drift until the
// README says so too.
func (m *Module) CheckReadme(readme string) []error {
	vars, outs, err := readmeTables(readme)
	if err != nil {
		return []error{err}
	}
	var errs []error
	drift := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{readme}, args...)...))
	}
	for _, name := range m.VariableNames() {
		v := m.Variables[name]
		row, ok := vars[name]
		if !ok {
			drift("variable %q (%s) has no row in the Variables table", name, v.Pos)
			continue
		}
		if want := docType(v); row[1] != want {
			drift("variable %q: type %s, the module says %s", name, row[1], want)
		}
		if want := docDefault(v); row[2] != want {
			drift("variable %q: default %s, the module says %s", name, row[2], want)
		}
	}
	for _, name := range sortedKeys(vars) {
		if _, ok := m.Variables[name]; !ok {
			drift("the Variables table lists %q, which the module does not declare%s", name, m.hint(name))
		}
	}
	for _, name := range m.OutputNames() {
		if _, ok := outs[name]; !ok {
			drift("output %q (%s) has no row in the Outputs table", name, m.Outputs[name].Pos)
		}
	}
	for _, name := range sortedKeys(outs) {
		if _, ok := m.Outputs[name]; !ok {
			drift("the Outputs table lists %q, which the module does not declare", name)
		}
	}
	return errs
}

// docType is a variable's type as a README writes it.
func docType(v Variable) string {
	t := "`" + typeName(v.Type) + "`"
	if v.Type == "" {
		t = "any"
	}
	if v.Sensitive {
		t += ", sensitive"
	}
	return t
}

// docDefault is a variable's default as a README writes it.
func docDefault(v Variable) string {
	if v.Required {
		return "required"
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v.Default); err != nil {
		return fmt.Sprint(v.Default)
	}
	return "`" + strings.TrimSpace(b.String()) + "`"
}

// readmeTables reads the Variables and Outputs tables of a README: for each
// row, its cells, trimmed, keyed by the first cell without its backquotes.
func readmeTables(path string) (vars, outs map[string][]string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	vars, outs = map[string][]string{}, map[string][]string{}
	var into map[string][]string
	want := 0 // cells per row of the table being read
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			switch strings.TrimSpace(line[3:]) {
			case "Variables":
				into, want = vars, 4
			case "Outputs":
				into, want = outs, 2
			default:
				into = nil
			}
			continue
		case into == nil || !strings.HasPrefix(line, "|"):
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		name := strings.Trim(cells[0], "`")
		if name == "variable" || name == "output" || strings.Trim(cells[0], "-: ") == "" {
			continue // the header and its rule
		}
		if len(cells) != want {
			return nil, nil, fmt.Errorf("%s:%d: a row of %d cells, want %d", path, i+1, len(cells), want)
		}
		if _, dup := into[name]; dup {
			return nil, nil, fmt.Errorf("%s:%d: %q is listed twice", path, i+1, name)
		}
		into[name] = cells
	}
	if len(vars) == 0 && len(outs) == 0 {
		return nil, nil, fmt.Errorf("%s: no Variables or Outputs table", path)
	}
	return vars, outs, nil
}
