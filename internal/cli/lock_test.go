package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/result"

	"github.com/loadramp/loadramp/orchestrator/record"
)

// TestRunDirectoryOwnedByALiveProcess: resume and destroy of a run that is
// still going are refused, naming its owner; `runs` shows it running, and
// interrupted once its owner is gone.
func TestRunDirectoryOwnedByALiveProcess(t *testing.T) {
	runs := t.TempDir()
	planYAML, err := os.ReadFile("../../plans/local-eventbus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(runs, "20261127T063000Z-local-eventbus")
	// This test process is the owner: a run in progress.
	d, err := record.Create(dir, &record.Run{ID: filepath.Base(dir), Plan: "local-eventbus", Start: time.Now(), Status: result.StatusRunning}, planYAML)
	if err != nil {
		t.Fatal(err)
	}
	owner := fmt.Sprintf("in use by process %d", os.Getpid())

	code, _, errOut := runArgs(t, nil, "resume", dir, "--progress", "none")
	if code == 0 || !strings.Contains(errOut, owner) {
		t.Errorf("resume of a live run: exit %d, want a refusal naming %q:\n%s", code, owner, errOut)
	}
	code, _, errOut = runArgs(t, nil, "destroy", dir)
	if code == 0 || !strings.Contains(errOut, owner) {
		t.Errorf("destroy of a live run: exit %d, want a refusal naming %q:\n%s", code, owner, errOut)
	}
	if steps, _ := d.ReadSteps(); len(steps) != 0 {
		t.Errorf("the refused resume wrote %d steps", len(steps))
	}
	code, out, _ := runArgs(t, nil, "runs", "--dir", runs)
	if code != 0 || !strings.Contains(out, " running ") {
		t.Errorf("runs while the owner lives: exit %d\n%s", code, out)
	}

	d.Close() // as a kill -9 would: the kernel drops the lock
	code, out, _ = runArgs(t, nil, "runs", "--dir", runs)
	if code != 0 || !strings.Contains(out, " interrupted ") || strings.Contains(out, " running ") {
		t.Errorf("runs after the owner is gone: exit %d, want the run interrupted\n%s", code, out)
	}
	code, _, errOut = runArgs(t, nil, "destroy", dir)
	if code != 0 {
		t.Errorf("destroy after the owner is gone: exit %d\n%s", code, errOut)
	}
}
