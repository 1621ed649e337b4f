package plan

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStarterPlan(t *testing.T) {
	b, err := StarterPlan(Starter{URL: "https://api.example.com:8443/v1/health?deep=1"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b, "starter", nil)
	if err != nil {
		t.Fatal(err)
	}
	if errs := p.Validate(); len(errs) > 0 {
		t.Fatal(Errors(errs))
	}
	if p.Name != "api.example.com-8443" || p.Fleets["target"].Provider != ProviderStatic ||
		p.Fleets["target"].Outputs["endpoint"] != "https://api.example.com:8443" {
		t.Errorf("name %q, target %+v", p.Name, p.Fleets["target"])
	}
	if p.Workload.HTTP.URL != "{{ .fleets.target.endpoint }}/v1/health?deep=1" || p.Probe == nil || p.Probe.URL != p.Workload.HTTP.URL {
		t.Errorf("workload %+v, probe %+v", p.Workload.HTTP, p.Probe)
	}
	if len(p.Gates) == 0 || len(p.GeneratorHealth) == 0 || len(p.Parameters) == 0 || p.Parameters[0].Name != ParamRate {
		t.Errorf("gates %v, generator health %v, parameters %v", p.Gates, p.GeneratorHealth, p.Parameters)
	}
	if !strings.HasPrefix(string(b), "# yaml-language-server: $schema="+SchemaURL+"\n") {
		t.Errorf("no modeline:\n%s", b)
	}
	if c := strings.Count(string(b), "#"); c < 15 {
		t.Errorf("only %d comments: a starter plan explains itself", c)
	}
	for _, bad := range []Starter{{URL: "ftp://x/"}, {URL: "localhost:8080"}, {URL: "http:///x"}, {URL: "http://u:p@x/"}, {URL: "http://x/{{ .a }}"}, {URL: "http://x/", Name: "my plan"}} {
		if _, err := StarterPlan(bad); err == nil {
			t.Errorf("StarterPlan(%+v) accepted", bad)
		}
	}
	if b, err := StarterPlan(Starter{URL: "http://127.0.0.1:9/", Name: "bus"}); err != nil || !strings.Contains(string(b), "name: \"bus\"") {
		t.Errorf("--name: %v\n%s", err, b)
	}
}

func TestWriteStarterNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteStarter(path, Starter{URL: "http://127.0.0.1:8080/"})
	if !errors.Is(err, os.ErrExist) || !strings.Contains(err.Error(), "never overwrites") {
		t.Errorf("WriteStarter over a file = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "mine" {
		t.Error("the file was changed")
	}
}
