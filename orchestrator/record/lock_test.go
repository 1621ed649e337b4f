package record

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/result"

	"github.com/rs/zerolog"
)

// helperEnv selects a helper mode when the test binary is re-executed as a
// child process that owns a run directory (the os/exec test pattern).
const helperEnv = "LOADRAMP_RECORD_TEST_HELPER"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(helperEnv); mode {
	case "":
		os.Exit(m.Run())
	default:
		os.Exit(helper(mode, os.Getenv("HELPER_DIR")))
	}
}

// helper creates the run directory dir as a run does, then, by mode:
//   - "hold": prints "ready" and sleeps;
//   - "samples": appends 5 samples, prints "ready" and sleeps;
//   - "step": appends 5 samples and a step, prints "ready" and sleeps.
//
// It lives at most 60 s; the test kills it with SIGKILL.
func helper(mode, dir string) int {
	d, err := Create(dir, &Run{ID: "r", Plan: "p", Status: result.StatusRunning, Start: time.Now()}, []byte("version: 1\n"))
	if err != nil {
		fmt.Println("create:", err)
		return 1
	}
	if mode == "samples" || mode == "step" {
		for i := range 5 {
			if err := d.AppendSample(map[string]any{"i": i, "cpu": 0.5}); err != nil {
				fmt.Println("sample:", err)
				return 1
			}
		}
	}
	if mode == "step" {
		if err := d.AppendStep(step(1, 1, result.KindRamp, result.VerdictPass, map[string]float64{"rate": 250})); err != nil {
			fmt.Println("step:", err)
			return 1
		}
	}
	fmt.Println("ready")
	time.Sleep(60 * time.Second)
	return 0
}

// startOwner starts a helper owning a new run directory and waits until it
// is ready; the helper is killed at the end of the test.
func startOwner(t *testing.T, mode string) (dir string, cmd *exec.Cmd) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "runs", "r")
	cmd = exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "HELPER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Scan()
		line <- sc.Text()
	}()
	select {
	case l := <-line:
		if l != "ready" {
			t.Fatalf("helper: %q", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("helper not ready in 30s")
	}
	return dir, cmd
}

// kill9 kills the helper outright and waits until it is gone.
func kill9(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

func TestLockNamesTheLiveOwnerAndRunsShowsTheDeadOne(t *testing.T) {
	dir, owner := startOwner(t, "hold")
	pid := owner.Process.Pid

	_, err := Lock(dir)
	var le *LockedError
	if !errors.As(err, &le) || le.PID != pid {
		t.Fatalf("Lock of a directory process %d owns: %v, want a *LockedError naming it", pid, err)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("process %d", pid)) || !strings.Contains(msg, dir) {
		t.Errorf("message %q names neither the owner nor the directory", msg)
	}
	if _, err := OpenLocked(dir); !errors.As(err, &le) {
		t.Errorf("OpenLocked (resume) of an owned directory: %v, want a *LockedError", err)
	}
	sums, err := List(filepath.Dir(dir))
	if err != nil || len(sums) != 1 {
		t.Fatalf("List: %v, %v", sums, err)
	}
	if sums[0].Status != result.StatusRunning || sums[0].Owner != pid {
		t.Errorf("a live run is listed as %q (owner %d), want running (owner %d)", sums[0].Status, sums[0].Owner, pid)
	}

	kill9(t, owner)
	sums, _ = List(filepath.Dir(dir))
	if sums[0].Status != result.StatusInterrupted {
		t.Errorf("a run whose owner was killed is listed as %q, want %q", sums[0].Status, result.StatusInterrupted)
	}
	// The kernel dropped the dead owner's lock: a resume can take it.
	d, err := OpenLocked(dir)
	if err != nil {
		t.Fatalf("OpenLocked after the owner died: %v", err)
	}
	if _, err := Lock(dir); !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Errorf("second Lock while the resume holds it: %v, want a *LockedError naming this process", err)
	}
	// run.json still says running; List sees the live owner again.
	if sums, _ := List(filepath.Dir(dir)); sums[0].Status != result.StatusRunning || sums[0].Owner != os.Getpid() {
		t.Errorf("a resumed run is listed as %q (owner %d)", sums[0].Status, sums[0].Owner)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after Close released it: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
}

func TestListWithoutLockFileIsInterrupted(t *testing.T) {
	// A run directory from before the lock existed, left "running".
	runs := t.TempDir()
	dir := filepath.Join(runs, "old")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, RunFile), []byte(`{"id":"old","status":"running"}`), 0o644)
	sums, err := List(runs)
	if err != nil || len(sums) != 1 || sums[0].Status != result.StatusInterrupted {
		t.Fatalf("List = %+v, %v; want the run interrupted", sums, err)
	}
}

func TestSamplesSurviveKill9(t *testing.T) {
	lines := func(dir string) int {
		b, _ := os.ReadFile(filepath.Join(dir, SamplesFile))
		return bytes.Count(b, []byte("\n"))
	}
	t.Run("within a second", func(t *testing.T) {
		t.Parallel()
		dir, owner := startOwner(t, "samples")
		time.Sleep(SampleFlushInterval + 500*time.Millisecond)
		kill9(t, owner)
		if n := lines(dir); n != 5 {
			t.Errorf("samples.jsonl has %d lines after kill -9 %s after the samples, want 5", n, SampleFlushInterval+500*time.Millisecond)
		}
	})
	t.Run("at the end of a step", func(t *testing.T) {
		t.Parallel()
		dir, owner := startOwner(t, "step")
		kill9(t, owner) // at once: the step's end wrote them
		if n := lines(dir); n != 5 {
			t.Errorf("samples.jsonl has %d lines after kill -9 right after the step, want 5", n)
		}
	})
}

func TestRunDirectoryIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs", "r")
	d, err := Create(dir, testRun("r", time.Now()), []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AppendStep(step(1, 1, result.KindRamp, result.VerdictPass, nil)); err != nil {
		t.Fatal(err)
	}
	if err := d.AppendSample(map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	w, err := d.EventsLog()
	if err != nil {
		t.Fatal(err)
	}
	zl := zerolog.New(w)
	zl.Info().Msg("hello")
	if err := WriteFileAtomic(filepath.Join(dir, "report.md"), []byte("# r\n")); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	err = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if e.IsDir() {
			want = 0o700
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), want)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 8 { // the directory, plan, run, steps, samples, events, report, lock
		t.Errorf("walked %d entries, want at least 8", n)
	}
}

func TestRedactEventsLog(t *testing.T) {
	d, err := Create(filepath.Join(t.TempDir(), "r"), testRun("r", time.Now()), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := d.EventsLog()
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(w)
	secret := `s3cr<et>"&\x`
	d.Redact(secret, "ab") // too short to scrub
	log.Info().Str("token", secret).Msg("up " + secret)
	log.Info().Interface("outputs", map[string]string{"t": secret}).Msg("ab")
	d.Close()
	b, _ := os.ReadFile(filepath.Join(d.Path(), EventsFile))
	for _, form := range jsonForms(secret) {
		if bytes.Contains(b, form) {
			t.Errorf("events.log holds the secret as %s:\n%s", form, b)
		}
	}
	if bytes.Count(b, []byte(Redacted)) != 3 || !bytes.Contains(b, []byte(`"message":"ab"`)) {
		t.Errorf("events.log:\n%s", b)
	}
	if got := RedactOutputs(map[string]string{"a": "1", "t": secret}, []string{"t", "missing"}); got["a"] != "1" || got["t"] != Redacted || len(got) != 2 {
		t.Errorf("RedactOutputs = %v", got)
	}
}
