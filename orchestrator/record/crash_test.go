package record

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/result"
)

// TestCrashHelper is not a test: TestACrashLeavesItsStackInTheRunDirectory
// runs the test binary with LOADRAMP_CRASH_DIR to crash it as a run would.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv("LOADRAMP_CRASH_DIR")
	if dir == "" {
		t.Skip("helper process")
	}
	d, err := Create(dir, &Run{ID: "crash", Plan: "crash", Start: time.Now(), Status: result.StatusRunning}, []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	d.CaptureCrashes()
	done := make(chan struct{})
	go func() { // a goroutine's panic: nothing recovers it
		var m map[string]int
		m["x"]++
		close(done)
	}()
	<-done
}

// TestACrashLeavesItsStackInTheRunDirectory: a crash the process cannot
// recover from writes its stack to the run directory's crash.log; `runs`
// shows the run interrupted and crashed, with the first line.
func TestACrashLeavesItsStackInTheRunDirectory(t *testing.T) {
	runs := t.TempDir()
	dir := filepath.Join(runs, "20261127T063000Z-crash")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), "LOADRAMP_CRASH_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("helper: %v (want Go's exit 2 of a crash)\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, CrashFile))
	if err != nil || !strings.Contains(string(b), "assignment to entry in nil map") || !strings.Contains(string(b), "goroutine") {
		t.Fatalf("crash.log: %v\n%s", err, b)
	}
	list, err := List(runs)
	if err != nil || len(list) != 1 {
		t.Fatalf("List: %+v, %v", list, err)
	}
	if s := list[0]; s.Status != result.StatusInterrupted || !strings.Contains(s.Crash, "assignment to entry in nil map") {
		t.Errorf("summary status %q, crash %q", s.Status, s.Crash)
	}
	if got := list[0].StatusText(); !strings.HasPrefix(got, "interrupted (crashed: ") || !strings.Contains(got, "nil map") {
		t.Errorf("runs would show %q", got)
	}
}

// TestNoCrashLeavesNoCrashFile: released without a crash, crash.log goes.
func TestNoCrashLeavesNoCrashFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	d, err := Create(dir, &Run{ID: "ok", Plan: "ok", Start: time.Now(), Status: result.StatusRunning}, []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	release := d.CaptureCrashes()
	if _, err := os.Stat(filepath.Join(dir, CrashFile)); err != nil {
		t.Errorf("no crash.log while capturing: %v", err)
	}
	release()
	if _, err := os.Stat(filepath.Join(dir, CrashFile)); !os.IsNotExist(err) {
		t.Errorf("crash.log left after a run without a crash: %v", err)
	}
}
