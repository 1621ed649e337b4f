package wiring

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/loadramp/loadramp/infra"
	"github.com/loadramp/loadramp/infra/tfmodule"
	"github.com/loadramp/loadramp/orchestrator/plan"
)

// BuiltinVars are the variables loadramp sets on a Terraform module that
// declares them (infra.TerraformConfig.Builtins), unless the plan does.
var BuiltinVars = []string{infra.VarRunID, infra.VarWorkdir, infra.VarRunDir}

// fleetRef finds a template's references to fleet outputs.
var fleetRef = regexp.MustCompile(`\.fleets\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)`)

// FleetOutputsRead returns, for each fleet, the outputs the plan's
// templates read (.fleets.<fleet>.<output> anywhere in the plan), sorted.
func FleetOutputsRead(p *plan.Plan) map[string][]string {
	b, err := json.Marshal(p)
	if err != nil {
		return nil
	}
	seen := map[string]map[string]bool{}
	for _, m := range fleetRef.FindAllStringSubmatch(string(b), -1) {
		if seen[m[1]] == nil {
			seen[m[1]] = map[string]bool{}
		}
		seen[m[1]][m[2]] = true
	}
	out := map[string][]string{}
	for f, outs := range seen {
		for o := range outs {
			out[f] = append(out[f], o)
		}
		sort.Strings(out[f])
	}
	return out
}

// CheckModule checks a Terraform fleet's use of its module m: every
// variable the plan sets exists and its type accepts the value (a template
// stands for any single value), every variable the module requires is set by
// the plan or by loadramp (BuiltinVars), the scale_var is a number, and
// every output of the fleet the plan reads (reads) is one the module has.
func CheckModule(m *tfmodule.Module, fleet string, tf *plan.Terraform, reads []string) []error {
	path := "fleets." + fleet + ".terraform"
	isTemplate := func(s string) bool { return strings.Contains(s, "{{") }
	errs := m.CheckVars(path+".vars", tf.Vars, BuiltinVars, isTemplate)
	if sv := tf.ScaleVar; sv != "" {
		v, ok := m.Variables[sv]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s.scale_var: module %s declares no variable %q", path, m.Dir, sv))
		case v.Type != "number":
			errs = append(errs, fmt.Errorf("%s.scale_var: %s is %s in module %s; the scale var must be a number", path, sv, v.Type, m.Dir))
		}
	}
	for _, o := range reads {
		if _, ok := m.Outputs[o]; !ok {
			errs = append(errs, fmt.Errorf("fleets.%s: the plan reads .fleets.%s.%s, but module %s has no output %q (it has %s)",
				fleet, fleet, o, m.Dir, o, strings.Join(m.OutputNames(), ", ")))
		}
	}
	return errs
}

// checkModules checks each Terraform fleet of p whose module directory is
// written without a template and exists where loadramp runs (CheckModule).
// A module elsewhere is Terraform's to check at apply.
func checkModules(p *plan.Plan) []error {
	reads := FleetOutputsRead(p)
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(p.Fleets)) {
		f := p.Fleets[name]
		if f == nil || f.Provider != plan.ProviderTerraform || f.Terraform == nil || strings.Contains(f.Terraform.Dir, "{{") {
			continue
		}
		dir := filepath.Clean(f.Terraform.Dir)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		m, err := tfmodule.Load(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("fleets.%s.terraform.dir: %w", name, err))
			continue
		}
		errs = append(errs, CheckModule(m, name, f.Terraform, slices.Clone(reads[name]))...)
	}
	return errs
}
