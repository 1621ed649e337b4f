package tfmodule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const variablesTF = `
variable "count_of" {
  description = "how many"
  type        = number
  default     = 1
}

variable "names" {
  type    = list(string)
  default = []
}

variable "vpc" {
  description = "the VPC"
  type        = string
}

variable "token" {
  type      = string
  default   = ""
  sensitive = true
}

variable "anything" {
  default = { a = 1 }
}

output "endpoint" {
  value = "x"
}
`

const readme = "# m\n\n## Variables\n\n" +
	"| variable | type | default | description |\n|---|---|---|---|\n" +
	"| `count_of` | `number` | `1` | how many |\n" +
	"| `names` | `list(string)` | `[]` | names |\n" +
	"| `vpc` | `string` | required | the VPC |\n" +
	"| `token` | `string`, sensitive | `\"\"` | a token |\n" +
	"| `anything` | any | `{\"a\":1}` | what you like |\n" +
	"\n## Outputs\n\n| output | description |\n|---|---|\n| `endpoint` | where |\n"

func module(t *testing.T, tf, md string) *Module {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(tf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte(md), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLoadAndReadme(t *testing.T) {
	m := module(t, variablesTF, readme)
	if got := strings.Join(m.VariableNames(), ","); got != "anything,count_of,names,token,vpc" {
		t.Errorf("variables %s", got)
	}
	if v := m.Variables["vpc"]; !v.Required || v.Type != "string" || v.Description != "the VPC" {
		t.Errorf("vpc = %+v", v)
	}
	if !m.Variables["token"].Sensitive {
		t.Error("token is not sensitive")
	}
	if errs := m.CheckReadme(filepath.Join(m.Dir, "README.md")); len(errs) > 0 {
		t.Errorf("a README that matches: %v", errs)
	}
	// Drift: a default, a type, a variable gone, an output unlisted.
	bad := strings.NewReplacer("| `1` |", "| `2` |", "`list(string)`", "`list(number)`",
		"| `vpc` | `string` | required | the VPC |\n", "", "| `endpoint` | where |\n", "| `url` | where |\n").Replace(readme)
	os.WriteFile(filepath.Join(m.Dir, "README.md"), []byte(bad), 0o600)
	var got []string
	for _, err := range m.CheckReadme(filepath.Join(m.Dir, "README.md")) {
		got = append(got, err.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"variable \"count_of\": default `2`, the module says `1`",
		"variable \"names\": type `list(number)`, the module says `list(string)`",
		`variable "vpc" (`,
		`output "endpoint" (`,
		`the Outputs table lists "url"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no error says %q; got:\n%s", want, all)
		}
	}
	os.WriteFile(filepath.Join(m.Dir, "README.md"), []byte("# nothing\n"), 0o600)
	if errs := m.CheckReadme(filepath.Join(m.Dir, "README.md")); len(errs) != 1 || !strings.Contains(errs[0].Error(), "no Variables or Outputs table") {
		t.Errorf("a README without tables: %v", errs)
	}
}

func TestLoadRefusesBrokenModules(t *testing.T) {
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no .tf file") {
		t.Errorf("an empty directory: %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.tf"), []byte("variable \"x\" {\n"), 0o600)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "main.tf") {
		t.Errorf("a module that does not parse: %v", err)
	}
}

func TestCheckVars(t *testing.T) {
	m := module(t, variablesTF, readme)
	tmpl := func(s string) bool { return strings.Contains(s, "{{") }
	for _, c := range []struct {
		name string
		vars map[string]any
		want []string // "" entries: none
	}{
		{"good", map[string]any{"vpc": "vpc-1", "count_of": 3, "names": []any{"a", "{{ .x }}"}}, nil},
		{"numbers convert", map[string]any{"vpc": 12, "count_of": "3"}, nil},
		{"templates stand for a primitive", map[string]any{"vpc": "{{ .static.vpc }}", "count_of": "{{ .static.n }}"}, nil},
		{"anything takes anything", map[string]any{"vpc": "v", "anything": []any{1, "a"}}, nil},
		{"missing required", map[string]any{}, []string{`requires variable "vpc" (the VPC)`}},
		{"unknown with a hint", map[string]any{"vpc": "v", "count_off": 1}, []string{`declares no variable "count_off" (did you mean "count_of"?)`}},
		{"wrong type", map[string]any{"vpc": "v", "count_of": "many"}, []string{`vars.count_of: count_of takes number: "many" is not one`}},
		{"a template for a list", map[string]any{"vpc": "v", "names": "{{ .static.names }}"}, []string{"a template renders a string, and names takes list(string)"}},
		{"a map for a string", map[string]any{"vpc": map[string]any{"a": 1}}, []string{"vpc takes string"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			errs := m.CheckVars("fleets.x.terraform.vars", c.vars, []string{"loadramp_run_id"}, tmpl)
			if len(errs) != len(c.want) {
				t.Fatalf("%d errors, want %d: %v", len(errs), len(c.want), errs)
			}
			for i, w := range c.want {
				if !strings.Contains(errs[i].Error(), w) || !strings.HasPrefix(errs[i].Error(), "fleets.x.terraform.vars") {
					t.Errorf("error %q, want it to say %q", errs[i], w)
				}
			}
		})
	}
	// A required variable loadramp sets is not the plan's to set.
	m2 := module(t, "variable \"loadramp_run_id\" {\n  type = string\n}\n", readme)
	if errs := m2.CheckVars("p", nil, []string{"loadramp_run_id"}, tmpl); len(errs) != 0 {
		t.Errorf("a variable set elsewhere: %v", errs)
	}
}

func TestParseType(t *testing.T) {
	for _, s := range []string{"", "string", "number", "bool", "list(string)", "map(string)", "object({a = number})", "any"} {
		if _, err := ParseType(s); err != nil {
			t.Errorf("ParseType(%q): %v", s, err)
		}
	}
	if _, err := ParseType("lst(string)"); err == nil {
		t.Error("ParseType(lst(string)): no error")
	}
}
