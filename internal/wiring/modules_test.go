package wiring

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/loadramp/loadramp/infra"
	awsinfra "github.com/loadramp/loadramp/infra/aws"
	"github.com/loadramp/loadramp/infra/tfmodule"
	"github.com/loadramp/loadramp/orchestrator/plan"
)

// contract is what loadramp's own code needs of a bundled module, beyond
// what the example plans set and read (TestExamplePlansMatchTheirModules).
type contract struct {
	// sets are the variables loadramp sets itself, with the type it sets.
	sets map[string]string
	// reads are the outputs loadramp's code reads.
	reads []string
	// scale is the variable a plan's scale_var names (a number).
	scale string
	// required are the variables without a default: a plan must set them
	// (or loadramp does, sets), so one more is a change every plan sees.
	required []string
}

// contracts are the bundled modules' contracts, by directory.
var contracts = map[string]contract{
	"infra/modules/local": {
		sets:     map[string]string{infra.VarWorkdir: "string", infra.VarRunDir: "string"},
		reads:    []string{"endpoint"},
		required: []string{"eventbus", "port"},
	},
	"infra/modules/local-generators": {
		sets:     map[string]string{infra.VarRunDir: "string", infra.VarWorkdir: "string", infra.VarAgentToken: "string"},
		reads:    []string{"agents", "size"},
		scale:    "workers",
		required: []string{"workers"},
	},
	"infra/modules/aws/target": {
		sets: map[string]string{infra.VarRunID: "string", infra.VarAgentToken: "string"},
		reads: []string{"endpoint", awsinfra.OutputInstanceIDs, awsinfra.OutputLoadBalancer, awsinfra.OutputHealthURL,
			awsinfra.OutputAgents, "generator_security_group_id"},
		scale:    "instance_count",
		required: []string{"agent_sha256", "agent_url", infra.VarRunID, "operator_cidr", "subnet_ids", "vpc_id"},
	},
	"infra/modules/aws/generators": {
		sets:     map[string]string{infra.VarRunID: "string", infra.VarAgentToken: "string"},
		reads:    []string{awsinfra.OutputAgents, "master", "locust_workers", "size"},
		scale:    "workers",
		required: []string{"agent_sha256", "agent_url", "generator_security_group_id", infra.VarRunID, "operator_cidr", "subnet_ids", "vpc_id"},
	},
}

// repoRoot is the repository's top directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

// checkContract checks the module in dir against c and against the tables
// of its README.md.
func checkContract(dir string, c contract) []error {
	m, err := tfmodule.Load(dir)
	if err != nil {
		return []error{err}
	}
	errs := m.CheckReadme(filepath.Join(dir, "README.md"))
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range c.sets {
			if !yield(k) {
				return
			}
		}
	}) {
		v, ok := m.Variables[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: loadramp sets variable %q, which the module does not declare", dir, name))
		case v.Type != c.sets[name]:
			errs = append(errs, fmt.Errorf("%s: loadramp sets %q as %s, the module declares %s", dir, name, c.sets[name], v.Type))
		}
	}
	// A builtin variable the module declares is set by loadramp, as a string.
	for _, name := range BuiltinVars {
		if v, ok := m.Variables[name]; ok && v.Type != "string" {
			errs = append(errs, fmt.Errorf("%s: %s is %s; loadramp sets it as a string", dir, name, v.Type))
		}
	}
	for _, o := range c.reads {
		if _, ok := m.Outputs[o]; !ok {
			errs = append(errs, fmt.Errorf("%s: loadramp reads output %q, which the module does not have", dir, o))
		}
	}
	if c.scale != "" {
		if v, ok := m.Variables[c.scale]; !ok || v.Type != "number" {
			errs = append(errs, fmt.Errorf("%s: the scale variable %q must be a number the module declares (%+v)", dir, c.scale, v))
		}
	}
	var required []string
	for _, name := range m.VariableNames() {
		if m.Variables[name].Required {
			required = append(required, name)
		}
	}
	want := slices.Sorted(slices.Values(c.required))
	if !slices.Equal(required, want) {
		errs = append(errs, fmt.Errorf("%s: required variables %v, the contract (and the README) %v", dir, required, want))
	}
	return errs
}

// TestModuleContracts checks every module under infra/modules against what
// loadramp sets and reads, and against its README's tables.
func TestModuleContracts(t *testing.T) {
	root := repoRoot(t)
	var found []string
	err := filepath.WalkDir(filepath.Join(root, "infra", "modules"), func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if tf, _ := filepath.Glob(filepath.Join(path, "*.tf")); len(tf) > 0 {
			rel, _ := filepath.Rel(root, path)
			found = append(found, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range found {
		t.Run(dir, func(t *testing.T) {
			c, ok := contracts[dir]
			if !ok {
				t.Fatalf("module %s has no contract: add what loadramp sets and reads of it to contracts", dir)
			}
			for _, err := range checkContract(filepath.Join(root, dir), c) {
				t.Error(err)
			}
		})
	}
	for dir := range contracts {
		if !slices.Contains(found, dir) {
			t.Errorf("contract of %s, which is not a module", dir)
		}
	}
}

// TestModuleContractsFailOnDrift renames a variable and an output of a copy
// of each AWS module, changes a type and adds a required variable, and
// expects the contract check to name each.
func TestModuleContractsFailOnDrift(t *testing.T) {
	root := repoRoot(t)
	for _, c := range []struct {
		module, file, old, new string
		want                   []string
	}{
		{"aws/target", "variables.tf", `variable "instance_count"`, `variable "instances"`,
			[]string{`"instances" (`, `lists "instance_count"`, `scale variable "instance_count"`}},
		{"aws/target", "outputs.tf", `output "load_balancer"`, `output "lb"`,
			[]string{`the Outputs table lists "load_balancer"`, `reads output "load_balancer"`}},
		{"aws/target", "outputs.tf", `output "health_url"`, `output "health"`, []string{`reads output "health_url"`}},
		{"aws/generators", "outputs.tf", `output "agents"`, `output "agent_urls"`, []string{`reads output "agents"`}},
		{"aws/generators", "variables.tf", "(set by loadramp).\"\n  type        = string", "(set by loadramp).\"\n  type        = number",
			[]string{`loadramp sets "loadramp_run_id" as string`, `variable "loadramp_run_id": type`}},
		{"aws/target", "variables.tf", `variable "vpc_id" {`, "variable \"subnet\" {\n  type = string\n}\n\nvariable \"vpc_id\" {",
			[]string{`required variables [agent_sha256 agent_url loadramp_run_id operator_cidr subnet subnet_ids vpc_id]`, `"subnet" (`}},
		{"aws/target", "variables.tf", `default     = 7070`, `default     = 7071`, []string{"variable \"agent_port\": default `7070`, the module says `7071`"}},
	} {
		t.Run(c.module+"/"+c.new, func(t *testing.T) {
			src := filepath.Join(root, "infra", "modules", c.module)
			dir := t.TempDir()
			files, _ := filepath.Glob(filepath.Join(src, "*"))
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if filepath.Base(f) == c.file {
					if !strings.Contains(string(b), c.old) {
						t.Fatalf("%s has no %q", f, c.old)
					}
					b = []byte(strings.Replace(string(b), c.old, c.new, 1))
				}
				if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if errs := checkContract(src, contracts["infra/modules/"+c.module]); len(errs) > 0 {
				t.Fatalf("the module itself breaks its contract: %v", errs)
			}
			var got []string
			for _, err := range checkContract(dir, contracts["infra/modules/"+c.module]) {
				got = append(got, err.Error())
			}
			all := strings.Join(got, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("no error says %q; got:\n%s", w, all)
				}
			}
		})
	}
}

// TestExamplePlansMatchTheirModules checks every example plan's Terraform
// fleets against their modules: the variables they set exist and take the
// values, the required ones are set, the scale_var is a number, and every
// .fleets.X.Y the plan reads is an output of X's module.
func TestExamplePlansMatchTheirModules(t *testing.T) {
	root := repoRoot(t)
	t.Chdir(root) // module directories are relative to where loadramp runs
	files, err := filepath.Glob("plans/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example plans: %v", err)
	}
	checked := 0
	for _, f := range files {
		p, err := plan.Load(f, nil)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, fl := range p.Fleets {
			if fl != nil && fl.Provider == plan.ProviderTerraform {
				checked++
			}
		}
		for _, err := range checkModules(p) {
			t.Errorf("%s: %v", f, err)
		}
	}
	if checked < 4 {
		t.Errorf("%d Terraform fleets in the example plans; want the local and the AWS ones", checked)
	}
}

// TestCheckModuleNamesTheProblem gives a plan's fleet bad values and reads.
func TestCheckModuleNamesTheProblem(t *testing.T) {
	m, err := tfmodule.Load(filepath.Join(repoRoot(t), "infra", "modules", "aws", "target"))
	if err != nil {
		t.Fatal(err)
	}
	tf := &plan.Terraform{ScaleVar: "instance_type", Vars: map[string]any{
		"vpc_id": "{{ .static.vpc }}", "subnet_ids": "{{ .static.subnet }}", "operator_cidr": "203.0.113.7/32",
		"agent_url": "https://example.com/loadramp", "instance_cont": 2, "load_balancer": "maybe", "tags": []any{"a"},
	}}
	var got []string
	for _, err := range CheckModule(m, "target", tf, []string{"endpoint", "lb_dns"}) {
		got = append(got, err.Error())
	}
	all := strings.Join(got, "\n")
	for _, re := range []string{
		`vars\.instance_cont: module .* declares no variable "instance_cont" \(did you mean "instance_count"\?\)`,
		`vars\.load_balancer: load_balancer takes bool: "maybe" is not one`,
		`vars\.tags: tags takes map\(string\)`,
		`vars\.subnet_ids: a template renders a string, and subnet_ids takes list\(string\)`,
		`requires variable "agent_sha256"`,
		`scale_var: instance_type is string .*; the scale var must be a number`,
		`reads \.fleets\.target\.lb_dns, but module .* has no output "lb_dns"`,
	} {
		if !regexp.MustCompile(re).MatchString(all) {
			t.Errorf("no error matches %s; got:\n%s", re, all)
		}
	}
	if strings.Contains(all, "vpc_id") || strings.Contains(all, infra.VarRunID) || strings.Contains(all, `"endpoint"`) {
		t.Errorf("a template value, a variable loadramp sets or an output the module has was refused:\n%s", all)
	}
}

// sampleStatics fill the values an AWS example plan marks REQUIRED, as a
// user would.
var sampleStatics = map[string]any{
	"vpc": "vpc-0123456789abcdef0", "subnet_a": "subnet-0aaa", "subnet_b": "subnet-0bbb",
	"operator_cidr": "10.0.1.25/32", "ami": "ami-0123456789abcdef0",
	"agent_url": "https://example-bucket.s3.amazonaws.com/loadramp?X-Amz-Signature=abc&X-Amz-Expires=14400", "agent_sha256": strings.Repeat("1f", 32),
	"eventbus_url": "https://example-bucket.s3.amazonaws.com/eventbus", "eventbus_sha256": strings.Repeat("2e", 32),
}

// TestExampleAWSPlansPassTheModulesChecks renders each AWS example plan's
// Terraform variables, for every campaign variant, with the REQUIRED values
// filled in, and plans them with the real terraform against the module's
// variables.tf and checks.tf (its validations and cross-variable checks,
// which need no provider): the examples must not fail the modules they use.
func TestExampleAWSPlansPassTheModulesChecks(t *testing.T) {
	root := repoRoot(t)
	bin := filepath.Join(root, "bin", "terraform")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s missing: run make bin/terraform", bin)
	}
	files, _ := filepath.Glob(filepath.Join(root, "plans", "aws-*.yaml"))
	if len(files) < 2 {
		t.Fatalf("AWS example plans: %v", files)
	}
	for _, f := range files {
		p, err := plan.Load(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		variants := 1
		if p.Campaign != nil {
			variants = len(p.Campaign.Variants)
		}
		for i := range variants {
			static := p.VariantStatic(i)
			for k, v := range static {
				if v == "REQUIRED" {
					s, ok := sampleStatics[k]
					if !ok {
						t.Fatalf("%s: no sample value for static.%s", f, k)
					}
					static[k] = s
				}
			}
			data := plan.TemplateData{Static: static, Fleets: map[string]map[string]string{
				"target": {"generator_security_group_id": "sg-0123456789abcdef0"}}}
			render := func(s string) (string, error) { return plan.Render(s, data, nil) }
			for _, name := range []string{"target", "generators"} {
				fl := p.Fleets[name]
				t.Run(fmt.Sprintf("%s/variant-%d/%s", filepath.Base(f), i+1, name), func(t *testing.T) {
					vars, err := renderVars(render, fl.Terraform.Vars, "vars")
					if err != nil {
						t.Fatal(err)
					}
					vars[infra.VarRunID] = "20261130T080000Z-" + p.Name
					out, err := planChecks(t, bin, filepath.Join(root, fl.Terraform.Dir), vars)
					if err != nil || strings.Contains(out, "Warning") {
						t.Errorf("terraform plan of the module's variables and checks: %v\n%s", err, out)
					}
				})
			}
		}
	}
}

// planChecks plans a copy of module's variables.tf and checks.tf with vars.
func planChecks(t *testing.T, bin, module string, vars map[string]any) (string, error) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"variables.tf", "checks.tf"} {
		b, err := os.ReadFile(filepath.Join(module, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o600)
	}
	b, err := json.Marshal(vars)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "vars.tfvars.json"), b, 0o600)
	os.WriteFile(filepath.Join(dir, "empty.tfrc"), nil, 0o600)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"-chdir=" + dir}, args...)...)
		cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+filepath.Join(dir, "empty.tfrc"), "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("init", "-input=false", "-no-color"); err != nil {
		return out, err
	}
	return run("plan", "-input=false", "-no-color", "-var-file=vars.tfvars.json")
}
