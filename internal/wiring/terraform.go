package wiring

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/loadramp/loadramp/infra"
	"github.com/loadramp/loadramp/orchestrator"
)

// TerraformDataDir is where a Terraform fleet keeps its TF_DATA_DIR and var
// file inside the run directory; `loadramp destroy` finds it there.
func TerraformDataDir(runDir, fleet string) string {
	return filepath.Join(runDir, "terraform", fleet)
}

// TerraformWorkspace is the workspace of a run (or of a campaign, whose
// variants share it).
func TerraformWorkspace(runID string) string { return "loadramp-" + runID }

// terraformProvider builds the Terraform provider of a fleet: the plan's
// vars rendered with the run's template data, one workspace per run (per
// campaign while one runs), state and data under the run directory.
func terraformProvider(cfg Config, spec orchestrator.ProvisionSpec) (*infra.Terraform, error) {
	name, f, render, runDir := spec.Name, spec.Fleet, spec.Render, spec.RunDir
	path := "fleets." + name + ".terraform"
	if f.Terraform == nil {
		return nil, fmt.Errorf("%s: missing; a terraform fleet needs the module directory", path)
	}
	dir, err := render(f.Terraform.Dir)
	if err != nil {
		return nil, fmt.Errorf("%s.dir: %w", path, err)
	}
	vars, err := renderVars(render, f.Terraform.Vars, path+".vars")
	if err != nil {
		return nil, err
	}
	bin, err := terraformBin(cfg)
	if err != nil {
		return nil, err
	}
	absRun, err := filepath.Abs(runDir)
	if err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("working directory: %w", err)
	}
	runID := filepath.Base(absRun)
	workspace := TerraformWorkspace(runID)
	if spec.CampaignID != "" {
		// A campaign's variants share one workspace: each re-applies it with
		// its own variables, updating the fleet in place.
		workspace = TerraformWorkspace(spec.CampaignID)
	}
	tf, err := infra.NewTerraform(infra.TerraformConfig{
		Fleet:     name,
		Dir:       dir,
		Workspace: workspace,
		Reuse:     spec.CampaignID != "",
		DataDir:   TerraformDataDir(absRun, name),
		Vars:      vars,
		Builtins:  map[string]string{infra.VarRunID: runID, infra.VarWorkdir: wd, infra.VarRunDir: absRun},
		Secrets:   map[string]string{infra.VarAgentToken: cfg.runToken},
		ScaleVar:  f.Terraform.ScaleVar,
		Bin:       bin,
		Log:       spec.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tf, nil
}

// renderVars renders every string inside a variable value (lists and maps
// included); other values keep their YAML types.
func renderVars(render orchestrator.Renderer, vars map[string]any, path string) (map[string]any, error) {
	if vars == nil {
		return nil, nil
	}
	v, err := renderValue(render, vars, path)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

func renderValue(render orchestrator.Renderer, v any, path string) (any, error) {
	switch x := v.(type) {
	case string:
		s, err := render(x)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return s, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := renderValue(render, e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make(map[string]any, len(x))
		for _, k := range keys {
			r, err := renderValue(render, x[k], path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	}
	return v, nil
}
