package layout

import (
	"bufio"
	"bytes"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/loadramp/loadramp"

// deps returns every package of the module with its transitive
// dependencies, as `go list -deps` sees them.
func deps(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	all := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			all[f[0]] = f[1:]
		}
	}
	if len(all) < 20 {
		t.Fatalf("go list found %d packages; is the module %s?", len(all), module)
	}
	return all
}

// ours keeps the module's own packages of list.
func ours(list []string) []string {
	var out []string
	for _, p := range list {
		if p == module || strings.HasPrefix(p, module+"/") {
			out = append(out, strings.TrimPrefix(p, module+"/"))
		}
	}
	sort.Strings(out)
	return out
}

func TestImportRules(t *testing.T) {
	all := deps(t)
	// Leaves: what every other package shares imports nothing of ours.
	allowed := map[string][]string{
		"orchestrator/plan":    nil,
		"orchestrator/metrics": nil,
		"orchestrator/result":  nil,
		"orchestrator/gate":    {"orchestrator/metrics"},
	}
	for pkg, may := range allowed {
		d, ok := all[module+"/"+pkg]
		if !ok {
			t.Errorf("package %s not found", pkg)
			continue
		}
		for _, dep := range ours(d) {
			if !contains(may, dep) {
				t.Errorf("%s imports %s; it may import only %v of loadramp's packages", pkg, dep, may)
			}
		}
	}
	// Flags and configuration files are the CLI's: no library reads them.
	for pkg, d := range all {
		rel := strings.TrimPrefix(pkg, module+"/")
		if rel == "internal/cli" || strings.HasPrefix(rel, "cmd/") {
			continue
		}
		for _, dep := range d {
			if dep == "github.com/spf13/viper" || dep == "github.com/spf13/cobra" {
				t.Errorf("%s imports %s: only internal/cli and cmd/ may", rel, dep)
			}
		}
	}
	// The wiring layer sits below the CLI, the orchestrator below the wiring.
	for _, below := range []string{"internal/wiring", "orchestrator", "infra"} {
		for _, dep := range ours(all[module+"/"+below]) {
			if dep == "internal/cli" || (below != "internal/wiring" && dep == "internal/wiring") {
				t.Errorf("%s imports %s, which is above it", below, dep)
			}
		}
	}
	// The plan schema, which every package imports, stays light: PromQL is
	// parsed by orchestrator/prom (prom.CheckPlan), not by plan.
	for _, dep := range all[module+"/orchestrator/plan"] {
		if strings.HasPrefix(dep, "github.com/prometheus/") {
			t.Errorf("orchestrator/plan imports %s; PromQL checks belong to orchestrator/prom", dep)
		}
	}
	// The probe shares the message format, not the pubsub engine.
	if contains(ours(all[module+"/orchestrator/probe"]), "orchestrator/pubsub") {
		t.Error("orchestrator/probe imports the pubsub engine; the message format is orchestrator/delivery's")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
