package observe

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// TestWindowSamplesScansAndDiagnoses watches a real process of this host for
// a step: the window's metrics describe it, and a signature appended to its
// log during the window becomes a finding with that line as evidence.
func TestWindowSamplesScansAndDiagnoses(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	logPath := filepath.Join(t.TempDir(), "server.log")
	old := "http: Accept error: accept tcp 127.0.0.1:1: accept4: too many open files; retrying in 5ms (before the step)\n"
	if err := os.WriteFile(logPath, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}

	h := New("local", WithInterval(100*time.Millisecond))
	var samples int
	w, err := h.Start(context.Background(), Spec{
		Target: []Proc{{Name: "server", Pid: cmd.Process.Pid, LogPath: logPath}},
		Warmup: 150 * time.Millisecond,
		Sink:   func(any) { samples++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	line := "http: Accept error: accept tcp 127.0.0.1:1: accept4: too many open files; retrying in 5ms"
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(line + "\n")
	_ = f.Close()
	time.Sleep(600 * time.Millisecond)
	m, findings := w.Stop(map[string]int64{metrics.ClassEMFILE: 3})

	if _, ok := m[metrics.TargetCPU]; !ok {
		t.Errorf("no %s in %v", metrics.TargetCPU, m)
	}
	if _, ok := m[metrics.GeneratorCPU]; !ok {
		t.Errorf("no %s: the observer's own process is the generator when none is named", metrics.GeneratorCPU)
	}
	if samples < 3 {
		t.Errorf("%d samples in 750 ms at 100 ms", samples)
	}
	var target, generator *result.Finding
	for i, f := range findings {
		if f.Rule != "fd-process" {
			continue
		}
		switch f.Side {
		case result.SideTarget:
			target = &findings[i]
		case result.SideGenerator:
			generator = &findings[i]
		}
	}
	if target == nil || target.Host != "local" || target.Process != "server" || !strings.Contains(strings.Join(target.Evidence, "\n"), line) ||
		strings.Contains(strings.Join(target.Evidence, "\n"), "before the step") {
		t.Errorf("target fd-process finding %+v: want the line appended during the window only", target)
	}
	if generator == nil || !strings.Contains(generator.Observed, "3 EMFILE") {
		t.Errorf("generator fd-process finding %+v from the engine's gen_emfile count", generator)
	}
	if again, _ := w.Stop(nil); again != nil {
		t.Errorf("a second Stop measured again: %v", again)
	}
}

func TestAuditRecordsTheTargetsOpenFileLimit(t *testing.T) {
	cmd := exec.Command("sh", "-c", "ulimit -n 321 && exec sleep 30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		limits, _, err := New("local").Audit(context.Background(), []Proc{{Name: "sleeper", Pid: cmd.Process.Pid}})
		if err != nil {
			t.Fatal(err)
		}
		if limits["nofile.sleeper"] == int64(321) {
			if _, ok := limits["net.core.somaxconn"]; !ok {
				t.Errorf("no somaxconn in %v", limits)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("limits %v: want nofile.sleeper 321", limits)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
