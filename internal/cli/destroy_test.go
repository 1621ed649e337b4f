package cli

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// unrelatedSleep starts `setsid sleep 300`: a process group leader loadramp
// did not start. It returns its pid and a channel closed when it exits.
func unrelatedSleep(t *testing.T) (int, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command("setsid", "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	// setsid execs sleep in place (the test's child leads no group).
	for i := 0; !hoststat.LeadsGroup("", cmd.Process.Pid) || !strings.HasSuffix(hoststat.Exe("", cmd.Process.Pid), "sleep"); i++ {
		if i > 100 {
			t.Fatalf("pid %d never became a sleep leading its own group", cmd.Process.Pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cmd.Process.Pid, done
}

// destroyRunJSON writes a run directory whose run.json records one local
// fleet process, bus, at pid with identity ids (nil: none, as an older
// loadramp wrote), and runs `loadramp destroy` on it.
func destroyRunJSON(t *testing.T, pid int, id *result.ProcessID) (int, string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "20261127T063000Z-destroy")
	ref := result.InfraRef{Fleet: "target", Provider: plan.ProviderLocal, Pids: map[string]int{"bus": pid}}
	if id != nil {
		ref.Processes = map[string]result.ProcessID{"bus": *id}
	}
	d, err := record.Create(dir, &record.Run{ID: filepath.Base(dir), Plan: "destroy", Start: time.Now(),
		Status: result.StatusRunning, Infra: []result.InfraRef{ref}}, []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	d.Close() // the owner is gone, as after a kill -9
	return runArgs(t, nil, "destroy", dir)
}

func stillRunning(done <-chan struct{}) bool {
	select {
	case <-done:
		return false
	case <-time.After(200 * time.Millisecond):
		return true
	}
}

// TestDestroyLeavesAProcessItDidNotStart: a run.json pointed at an unrelated
// process group leader (a pid reused after a reboot or a wrap) gets it
// reported gone, not killed; only the recorded process itself is stopped.
func TestDestroyLeavesAProcessItDidNotStart(t *testing.T) {
	pid, done := unrelatedSleep(t)
	real, err := hoststat.ReadIdentity("", pid)
	if err != nil {
		t.Fatal(err)
	}

	// The pid recorded with another process's start time: the process
	// loadramp started has exited and the pid is the sleep's now.
	old := result.ProcessID{Pid: pid, Start: real.Start - 1, Boot: real.Boot, Exe: "/usr/local/bin/eventbus"}
	code, out, errOut := destroyRunJSON(t, pid, &old)
	if code != 0 || !strings.Contains(out, "gone") || !strings.Contains(out, "another process") {
		t.Errorf("destroy of a reused pid: exit %d, want it reported gone (another process):\n%s%s", code, out, errOut)
	}
	if !stillRunning(done) {
		t.Fatalf("destroy killed pid %d, an unrelated sleep", pid)
	}

	// An older run.json, with a bare pid: nothing proves it is the fleet's.
	code, out, errOut = destroyRunJSON(t, pid, nil)
	if code != 0 || !strings.Contains(out, "not signalled") {
		t.Errorf("destroy of a pid without identity: exit %d, want it not signalled:\n%s%s", code, out, errOut)
	}
	if !stillRunning(done) {
		t.Fatalf("destroy killed pid %d, recorded without identity", pid)
	}

	// The recorded identity is the sleep's own: it is the run's, and stopped.
	mine := result.ProcessID{Pid: pid, Start: real.Start, Boot: real.Boot, Exe: real.Exe}
	code, out, errOut = destroyRunJSON(t, pid, &mine)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("pid %d", pid)) || !strings.Contains(out, "stopped") {
		t.Errorf("destroy of the recorded process: exit %d\n%s%s", code, out, errOut)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("destroy did not stop pid %d, whose identity run.json records", pid)
	}
}
