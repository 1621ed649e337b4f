package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestResumeAfterKill9 kills a real run mid-way, resumes it, and checks it ends
// as an uninterrupted run of the same plan does, keeping every earlier attempt.
func TestResumeAfterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	lr, _ := binaries(t)
	plan := busPlan(t, "resume", "--capacity 1300",
		"  - { name: rate, start: 250, max: 4000 }\n  - { name: connections, start: 16, max: 16 }",
		"ramp:\n  warmup: 500ms\n  hold: 2s\n  cooldown: 0s\n  confirm: 1\n  refine: 1\ngates:\n  - latency.p99 < 100ms\n  - throughput.ratio > 0.95\n")

	whole := runCLI(t, plan)
	if whole.code != 0 {
		t.Fatalf("uninterrupted run: exit %d", whole.code)
	}

	out := t.TempDir()
	cmd := exec.Command(lr, "run", plan, "--out", out, "--progress", "plain")
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dir := waitForAttempts(out, 2, 60*time.Second)
	time.Sleep(700 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	before, err := os.ReadFile(filepath.Join(dir, "steps.jsonl"))
	if err != nil {
		t.Fatalf("no steps.jsonl: %v\n%s", err, se.String())
	}

	// A changed plan file is refused: the finished attempts belong to the old plan.
	orig := mustRead(t, plan)
	os.WriteFile(plan, append([]byte("# edited\n"), orig...), 0o644)
	var so, se2 bytes.Buffer
	if code := run([]string{"resume", dir}, IO{In: strings.NewReader(""), Out: &so, ErrOut: &se2}, emptyEnv); code != 2 || !strings.Contains(se2.String(), "changed since") {
		t.Errorf("resume with a changed plan: exit %d, want 2 naming the change\n%s", code, se2.String())
	}
	os.WriteFile(plan, orig, 0o644)
	so.Reset()
	se2.Reset()
	code := run([]string{"resume", dir, "--progress", "plain"}, IO{In: strings.NewReader(""), Out: &so, ErrOut: &se2}, emptyEnv)
	t.Logf("resume: exit %d\n%s\n%s", code, so.String(), se2.String())
	if code != 0 {
		t.Fatalf("resume: exit %d", code)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "steps.jsonl"))
	if !bytes.HasPrefix(after, before) {
		t.Errorf("resume did not keep the earlier attempts as they were")
	}
	var rep map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep["status"] != whole.report["status"] {
		t.Errorf("resumed status %v, uninterrupted %v", rep["status"], whole.report["status"])
	}
	if got, want := num(t, rep, "capacity", "parameters", "rate"), num(t, whole.report, "capacity", "parameters", "rate"); got != want {
		t.Errorf("resumed capacity rate %g, uninterrupted %g", got, want)
	}
	if rep["partial"] == true {
		t.Errorf("a resumed, finished run is still marked partial")
	}

	// A finished run is not resumed again.
	if code := run([]string{"resume", dir}, IO{In: strings.NewReader(""), Out: &so, ErrOut: &se2}, emptyEnv); code != 2 {
		t.Errorf("resume of a finished run: exit %d, want 2", code)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
