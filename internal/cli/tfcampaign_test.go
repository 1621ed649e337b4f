package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestTerraformCampaignUpdatesInPlace runs a two-variant campaign on a
// Terraform fleet: the first variant leaves its fleet up, the second
// re-applies the same workspace with its own variables, and the fleet is
// destroyed once, at the end.
func TestTerraformCampaignUpdatesInPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	tfBin(t)
	mod := tfModule(t, "local")
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "plans", "local-terraform.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src = append(src, []byte("\ncampaign:\n  variants:\n    - { eventbus_capacity: 4000 }\n    - { eventbus_capacity: 8000 }\n")...)
	plan := filepath.Join(t.TempDir(), "tf-campaign.yaml")
	if err := os.WriteFile(plan, src, 0o644); err != nil {
		t.Fatal(err)
	}
	args := tfPlanArgs(t, mod, "--set", "parameters.rate.max=250", "--set", "parameters.connections.max=8")
	args[0] = plan
	out := t.TempDir()
	var so, se bytes.Buffer
	code := run(append([]string{"run"}, append(args, "--out", out, "--progress", "plain", "--log-level", "warn")...),
		IO{In: strings.NewReader(""), Out: &so, ErrOut: &se}, emptyEnv)
	t.Logf("exit %d\n%s\n%s", code, so.String(), se.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	camps, _ := os.ReadDir(out)
	if len(camps) != 1 {
		t.Fatalf("want one campaign directory, got %v", camps)
	}
	cdir := filepath.Join(out, camps[0].Name())
	var events [][]byte
	var pids []int
	for _, v := range []string{"v1-base", "v2-eventbus_capacity_8000"} {
		dir := filepath.Join(cdir, v)
		r := readRunJSON(t, dir)
		if len(r.Infra) == 0 || r.Infra[0].Workspace != "loadramp-"+camps[0].Name() {
			t.Errorf("%s: workspace %+v, want the campaign's loadramp-%s", v, r.Infra, camps[0].Name())
		}
		ev, err := os.ReadFile(filepath.Join(dir, "events.log"))
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
		for _, m := range regexp.MustCompile(`eventbus: ready on 127\.0\.0\.1:\d+ \(pid (\d+)\)`).FindAllSubmatch(ev, -1) {
			pid, _ := strconv.Atoi(string(m[1]))
			pids = append(pids, pid)
		}
	}
	if !bytes.Contains(events[0], []byte("Apply complete!")) || bytes.Contains(events[0], []byte("Destroy complete!")) {
		t.Errorf("variant 1 should apply and keep its fleet for variant 2")
	}
	if !bytes.Contains(events[1], []byte("Apply complete!")) || !bytes.Contains(events[1], []byte("Destroy complete!")) {
		t.Errorf("variant 2 should re-apply the fleet and destroy it at the end")
	}
	if !strings.Contains(se.String(), "keeping fleet target (terraform) for the next variant") {
		t.Errorf("no progress line says the fleet is kept")
	}
	assertCleanedUp(t, mod, pids...)
}
