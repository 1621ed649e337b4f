package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// TestInitPlanRunsAgainstTheBus: the starter plan `loadramp init` writes for
// the bundled bus's URL is accepted by `loadramp plan` and runs for real
// (short holds), with a note from --note in its reports.
func TestInitPlanRunsAgainstTheBus(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	_, url := startBusProcess(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "bus.yaml")
	code, out, errOut := runArgs(t, nil, "init", "--url", url+"/healthz", "--out", path)
	if code != 0 || !strings.Contains(out, "wrote "+path) {
		t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runArgs(t, nil, "init", "--url", url+"/other", "--out", path); code != 2 || !strings.Contains(errOut, "never overwrites") {
		t.Errorf("init over an existing file: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runArgs(t, nil, "init", "--out", filepath.Join(dir, "x.yaml")); code != 2 || !strings.Contains(errOut, "--url is required") {
		t.Errorf("init without --url: exit %d: %s", code, errOut)
	}
	if code, out, errOut := runArgs(t, nil, "plan", path); code != 0 || !strings.Contains(out, "rate") {
		t.Fatalf("plan of the starter: exit %d\n%s%s", code, out, errOut)
	}
	// Short holds; the generator's lag bound is loosened because this test
	// runs under the race detector on a shared machine, where a 10 ms lag
	// p99 at 50 req/s is common and would end the run generator-limited.
	o := runCLI(t, path, "--set", "ramp.warmup=500ms", "--set", "ramp.hold=2s", "--set", "ramp.cooldown=0s",
		"--set", "ramp.max_steps=2", "--set", "parameters.rate.max=100",
		"--set", "generator_health=[generator.lag.p99 < 1s, generator.cpu < 0.95]", "--note", "starter plan, bundled bus")
	if o.code != 0 || o.report == nil {
		t.Fatalf("run of the starter: exit %d", o.code)
	}
	if s := str(o.report, "status"); s == "error" || s == "aborted" {
		t.Fatalf("status %s", s)
	}
	steps, _ := o.report["steps"].([]any)
	if len(steps) < 2 {
		t.Errorf("%d step attempts, want the two steps of the schedule", len(steps))
	}
	if s := steps[0].(map[string]any); num(t, s, "metrics", "probe.delay.p99") <= 0 {
		t.Error("the starter's probe measured nothing")
	}
	notes, _ := o.report["notes"].([]any)
	if len(notes) != 1 || notes[0].(map[string]any)["text"] != "starter plan, bundled bus" {
		t.Errorf("report.json notes = %v", notes)
	}
	wb, err := excelize.OpenFile(filepath.Join(o.dir, "report.xlsx"))
	if err != nil {
		t.Fatalf("report.xlsx: %v", err)
	}
	defer wb.Close()
	if v, _ := wb.GetCellValue("Summary", "B5"); v != "run" {
		t.Errorf("the workbook's summary links sheet %q, want run", v)
	}
	if st, err := os.Stat(filepath.Join(o.dir, "notes.jsonl")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("notes.jsonl: %v %v", st, err)
	}
}

// TestCompletion: cobra's completion scripts for bash, zsh and fish, and
// note's step addresses completed from the run directory.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := runArgs(t, nil, "completion", sh)
		if code != 0 || !strings.Contains(out, "loadramp") || len(out) < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes: %s", sh, code, len(out), errOut)
		}
	}
	dir := finishedRun(t)
	code, out, _ := runArgs(t, nil, "__complete", "note", dir, "")
	if code != 0 || !strings.Contains(out, "run\tthe run itself") || !strings.Contains(out, "2.1\tramp target-fail") {
		t.Errorf("note's step completion: exit %d\n%s", code, out)
	}
	if code, out, _ := runArgs(t, nil, "__complete", "run", ""); code != 0 || !strings.Contains(out, "yaml") {
		t.Errorf("run's plan completion: exit %d\n%s", code, out)
	}
}
