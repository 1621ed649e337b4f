package cli

// The fault suite: real loadramp and event-bus processes on loopback, each
// fault injected from outside as an operator or the machine would, every
// wait bounded. Each test checks what the run leaves: its exit code, the
// steps it finished, its report, and that nothing it started is still
// running. busPlan turns the default generator health off: these tests are
// about the target and loadramp, and on a shared machine a starved generator
// would make a step generator-fail.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// faultRun is a `loadramp run` in a process of its own.
type faultRun struct {
	cmd            *exec.Cmd
	out            string // the runs directory
	stdout, stderr bytes.Buffer
	done           chan struct{}
	code           int
	// started is when loadramp started, in clock ticks after boot: every
	// process the run starts started later.
	started uint64
}

// startFaultRun starts `loadramp run plan --out out` with env added to an
// environment isolated from the developer's configuration.
func startFaultRun(t *testing.T, plan, out string, env ...string) *faultRun {
	t.Helper()
	lr, _ := binaries(t)
	r := &faultRun{out: out, done: make(chan struct{})}
	r.cmd = exec.Command(lr, "run", plan, "--out", out, "--progress", "plain", "--log-level", "warn")
	r.cmd.Env = append(os.Environ(), append([]string{"XDG_CONFIG_HOME=" + t.TempDir()}, env...)...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id, err := hoststat.ReadIdentity("", r.cmd.Process.Pid) // not reaped before Wait
	if err != nil {
		t.Fatal(err)
	}
	r.started = id.Start
	go func() {
		_ = r.cmd.Wait()
		r.code = r.cmd.ProcessState.ExitCode()
		if ws, ok := r.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.code = 128 + int(ws.Signal())
		}
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// wait waits up to d for the run to exit and returns its exit code.
func (r *faultRun) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(d):
		_ = r.cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, to stderr
		<-r.done
		t.Fatalf("loadramp did not exit within %s\nstdout:\n%s\nstderr:\n%s", d, r.stdout.String(), r.stderr.String())
		return -1
	}
}

// dir is the run directory, once loadramp has written its run.json ("" before).
func (r *faultRun) dir() string {
	entries, _ := os.ReadDir(r.out)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		// The directory is made before its run.json (written atomically):
		// until then it cannot be opened as a run directory.
		dir := filepath.Join(r.out, e.Name())
		if _, err := os.Stat(filepath.Join(dir, record.RunFile)); err == nil {
			return dir
		}
	}
	return ""
}

// stepped reports whether the run has finished a step yet.
func (r *faultRun) stepped(t *testing.T) bool {
	dir := r.dir()
	return dir != "" && len(stepsIn(t, dir)) >= 1
}

// waitFor polls cond every 20 ms for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// readRunJSON reads dir's run.json (nil when there is none yet).
func faultRunJSON(t *testing.T, dir string) *record.Run {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, record.RunFile))
	if err != nil {
		return nil
	}
	var run record.Run
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatalf("run.json does not parse: %v\n%s", err, b)
	}
	return &run
}

// fleetProcess waits until run.json records fleet's process name and
// returns its pid.
func fleetProcess(t *testing.T, r *faultRun, fleet, name string) int {
	t.Helper()
	pid := 0
	waitFor(30*time.Second, func() bool {
		if d := r.dir(); d != "" {
			if run := faultRunJSON(t, d); run != nil {
				for _, ref := range run.Infra {
					if ref.Fleet == fleet && ref.Pids[name] > 0 {
						pid = ref.Pids[name]
					}
				}
			}
		}
		return pid > 0
	})
	if pid == 0 {
		t.Fatalf("run.json never recorded %s/%s\nstderr:\n%s", fleet, name, r.stderr.String())
	}
	return pid
}

// assertNothingLeft checks that no event bus the run started is running,
// that no process it recorded is (by its identity, and its process group),
// and that no endpoint it recorded still accepts connections.
func assertNothingLeft(t *testing.T, r *faultRun) {
	t.Helper()
	_, bus := binaries(t)
	if !waitFor(5*time.Second, func() bool { return len(busesSince(r.started, bus)) == 0 }) {
		for _, pid := range busesSince(r.started, bus) {
			t.Errorf("an event bus the run started is still running: pid %d", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	dir := r.dir()
	if dir == "" {
		return
	}
	run := faultRunJSON(t, dir)
	if run == nil {
		return
	}
	for _, ref := range run.Infra {
		for name, id := range ref.Processes {
			hid := hoststat.Identity{Pid: id.Pid, Start: id.Start, Boot: id.Boot, Exe: id.Exe}
			var why string
			if !waitFor(5*time.Second, func() bool {
				m, w := hoststat.CheckIdentity("", hid)
				why = w
				return m != hoststat.Same && !hoststat.GroupLive("", id.Pid)
			}) {
				t.Errorf("fleet %s: process %s is still running: %s", ref.Fleet, name, why)
				_ = syscall.Kill(-id.Pid, syscall.SIGKILL)
			}
		}
		for k, v := range ref.Outputs {
			u, err := url.Parse(v)
			if err != nil || u.Host == "" {
				continue
			}
			if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
				c.Close()
				t.Errorf("fleet %s: output %s (%s) still accepts connections", ref.Fleet, k, u.Host)
			}
		}
	}
}

// busesSince lists the live processes running the event bus binary that
// started at or after tick since.
func busesSince(since uint64, bus string) []int {
	all, _ := hoststat.Processes("")
	var out []int
	for _, p := range all {
		if p.Start >= since && !p.Gone() && hoststat.Exe("", p.Pid) == bus {
			out = append(out, p.Pid)
		}
	}
	return out
}

// stepsIn parses dir's steps.jsonl.
func stepsIn(t *testing.T, dir string) []result.Step {
	t.Helper()
	d, err := record.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := d.ReadSteps()
	if err != nil {
		t.Fatalf("steps.jsonl: %v", err)
	}
	return steps
}

// TestFaultTargetKilledMidStep: the target is SIGKILLed during a step's hold.
// The step is an error naming the process and how it died, the run stops
// with exit 1 and its finished steps, the rest is torn down and the report
// says what happened.
func TestFaultTargetKilledMidStep(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	plan := busPlan(t, "fault-kill", "",
		"  - { name: rate, start: 100, max: 100000 }\n  - { name: connections, start: 4, max: 4 }",
		"ramp:\n  warmup: 0s\n  hold: 3s\n  cooldown: 0s\ngates:\n  - errors.ratio < 0.5\n")
	r := startFaultRun(t, plan, t.TempDir())
	bus := fleetProcess(t, r, "target", "eventbus")
	if !waitFor(60*time.Second, func() bool { return r.stepped(t) }) {
		t.Fatalf("no step finished\n%s", r.stderr.String())
	}
	time.Sleep(1500 * time.Millisecond) // into the next step's 3 s hold, with room either side
	if err := syscall.Kill(bus, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	code := r.wait(t, 60*time.Second)
	dir := r.dir()
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, r.stdout.String(), r.stderr.String())
	if code != ExitRuntime {
		t.Errorf("exit %d, want %d", code, ExitRuntime)
	}
	steps := stepsIn(t, dir)
	if len(steps) < 2 || steps[0].Verdict != result.VerdictPass {
		t.Fatalf("steps %d; want the finished passing step kept and the cut one recorded", len(steps))
	}
	last := steps[len(steps)-1]
	if last.Verdict != result.VerdictError || !strings.Contains(last.Reason, "eventbus") || !strings.Contains(last.Reason, "killed") {
		t.Errorf("the cut step: %s %q; want an error naming the killed process", last.Verdict, last.Reason)
	}
	if run := faultRunJSON(t, dir); run.Status != result.StatusError {
		t.Errorf("run.json status %s, want error", run.Status)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.json")); err != nil {
		t.Errorf("no report: %v", err)
	}
	assertNothingLeft(t, r)
}

// TestFaultTargetStoppedLongerThanTheTimeout: the target is SIGSTOPped for
// three times the request timeout, then continued. Requests to it time out
// (a target error, not the generator's), the run goes on by itself, and
// nothing is left running.
func TestFaultTargetStoppedLongerThanTheTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	// workload.http.timeout is 1s in busPlan.
	plan := busPlan(t, "fault-stop", "",
		"  - { name: rate, start: 100, max: 100 }\n  - { name: connections, start: 4, max: 4 }",
		"ramp:\n  warmup: 0s\n  hold: 8s\n  cooldown: 0s\n  confirm: 0\n  max_steps: 1\ngates:\n  - errors.count < 1\n")
	r := startFaultRun(t, plan, t.TempDir())
	bus := fleetProcess(t, r, "target", "eventbus")
	// Into the hold (once the step's host samples are written: within a
	// second or two of its start, however slow the machine was to get
	// there), then stopped for 3 s.
	if !waitFor(60*time.Second, func() bool {
		fi, err := os.Stat(filepath.Join(r.dir(), record.SamplesFile))
		return err == nil && fi.Size() > 0
	}) {
		t.Fatalf("the step wrote no samples in 60 s\nstderr:\n%s", r.stderr.String())
	}
	if err := syscall.Kill(bus, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	defer syscall.Kill(bus, syscall.SIGCONT)
	time.Sleep(3 * time.Second)
	_ = syscall.Kill(bus, syscall.SIGCONT)
	t.Logf("stopped for %s", time.Since(stopped))
	code := r.wait(t, 60*time.Second)
	dir := r.dir()
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, r.stdout.String(), r.stderr.String())
	if code != ExitOK {
		t.Errorf("exit %d, want %d (the run finishes; a failing step is a finding)", code, ExitOK)
	}
	steps := stepsIn(t, dir)
	if len(steps) != 1 {
		t.Fatalf("%d steps, want 1", len(steps))
	}
	s := steps[0]
	if s.Verdict != result.VerdictTargetFail || s.ErrorClasses["timeout"] == 0 {
		t.Errorf("the step with the target stopped: %s (%s), error classes %v; want target-fail with timeouts", s.Verdict, s.Reason, s.ErrorClasses)
	}
	assertNothingLeft(t, r)
}

// TestFaultDiskFull: the run directory's file system (a tmpfs of its own)
// fills up after the first step. The run stops with a clear error naming
// the full disk, the finished step stays in steps.jsonl, the fleets are torn
// down, and once there is room `loadramp report` rebuilds the report.
func TestFaultDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	out := filepath.Join(t.TempDir(), "runs")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "loadramp-fault-"+strconv.Itoa(os.Getpid()), out).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, b)
	}
	t.Cleanup(func() {
		if b, err := exec.Command("umount", "-l", out).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", out, err, b)
		}
	})
	plan := busPlan(t, "fault-disk", "",
		"  - { name: rate, start: 100, max: 100000 }\n  - { name: connections, start: 4, max: 4 }",
		"ramp:\n  warmup: 0s\n  hold: 2s\n  cooldown: 0s\ngates:\n  - errors.ratio < 0.5\n")
	r := startFaultRun(t, plan, out)
	if !waitFor(30*time.Second, func() bool { return r.stepped(t) }) {
		t.Fatalf("no step finished\n%s", r.stderr.String())
	}
	// Fill the file system to the last byte.
	filler := filepath.Join(out, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	for n := len(chunk) / 2; n > 0; n /= 2 {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	f.Close()
	code := r.wait(t, 60*time.Second)
	dir := r.dir()
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, r.stdout.String(), r.stderr.String())
	if code != ExitRuntime {
		t.Errorf("exit %d, want %d", code, ExitRuntime)
	}
	if !strings.Contains(r.stderr.String(), "the file system of the run directory") || !strings.Contains(r.stderr.String(), "is full") ||
		!strings.Contains(r.stderr.String(), "no space left on device") {
		t.Errorf("stderr does not say the disk is full")
	}
	if steps := stepsIn(t, dir); len(steps) < 1 || steps[0].Verdict != result.VerdictPass {
		t.Errorf("the finished step is not kept: %d steps", len(steps))
	}
	assertNothingLeft(t, r)
	// With room again, the report is rebuilt from what was kept.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	files := regenerate(t, dir)
	var rep struct {
		Steps []any `json:"steps"`
	}
	if err := json.Unmarshal(files["report.json"], &rep); err != nil || len(rep.Steps) < 1 {
		t.Errorf("rebuilt report: %v, %d steps", err, len(rep.Steps))
	}
}

// TestFaultInterruptAtRandomInstants: SIGINT at ten random instants of a
// short run (seeded; LOADRAMP_FAULT_SEED replays one): every time exit 130,
// nothing the run started left running, and a report `loadramp report` can
// rebuild.
func TestFaultInterruptAtRandomInstants(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LOADRAMP_FAULT_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("LOADRAMP_FAULT_SEED: %v", err)
		}
	}
	t.Logf("seed %d (replay with LOADRAMP_FAULT_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	// About 12 s of steps; the instants fall in the first 6 s after the run
	// directory exists: provisioning, warmups, holds, cooldowns.
	plan := busPlan(t, "fault-int", "",
		"  - { name: rate, start: 100, max: 100000 }\n  - { name: connections, start: 4, max: 4 }",
		"ramp:\n  warmup: 500ms\n  hold: 1s\n  cooldown: 500ms\ngates:\n  - errors.ratio < 0.5\n")
	for i := range 10 {
		at := time.Duration(rng.Int64N(int64(6 * time.Second)))
		t.Run(fmt.Sprintf("%d-at-%s", i, at.Round(time.Millisecond)), func(t *testing.T) {
			r := startFaultRun(t, plan, t.TempDir())
			if !waitFor(30*time.Second, func() bool { return r.dir() != "" }) {
				t.Fatalf("no run directory\n%s", r.stderr.String())
			}
			time.Sleep(at)
			if err := r.cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			code := r.wait(t, 60*time.Second)
			dir := r.dir()
			if code != ExitInterrupted {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitInterrupted, r.stdout.String(), r.stderr.String())
			}
			assertNothingLeft(t, r)
			// The report is rebuilt from the record, the same every time,
			// and says the run was stopped.
			first, second := regenerate(t, dir), regenerate(t, dir)
			for name, b := range first {
				if !bytes.Equal(b, second[name]) {
					t.Errorf("rebuilding %s twice gave different bytes", name)
				}
			}
			var rep struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal(first["report.json"], &rep); err != nil || rep.Status != result.StatusAborted {
				t.Errorf("rebuilt report: %v, status %q, want %s", err, rep.Status, result.StatusAborted)
			}
			if run := faultRunJSON(t, dir); run == nil || run.Status != result.StatusAborted {
				t.Errorf("run.json after the interrupt: %+v", run)
			}
		})
	}
}

// TestFaultMemoryLimit: a loadramp over its memory limit stops the run with
// exit 1 (never 2, "bad plan"), an error naming memory_limit, run.json in
// error, and the fleets torn down.
func TestFaultMemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	plan := busPlan(t, "fault-mem", "",
		"  - { name: rate, start: 100, max: 100000 }\n  - { name: connections, start: 4, max: 4 }",
		"ramp:\n  warmup: 0s\n  hold: 2s\n  cooldown: 0s\ngates:\n  - errors.ratio < 0.5\n")
	r := startFaultRun(t, plan, t.TempDir(), "LOADRAMP_MEMORY_LIMIT=1MiB")
	code := r.wait(t, 60*time.Second)
	dir := r.dir()
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, r.stdout.String(), r.stderr.String())
	if code != ExitRuntime || !strings.Contains(r.stderr.String(), "memory_limit") {
		t.Errorf("exit %d, want %d with an error naming memory_limit", code, ExitRuntime)
	}
	if run := faultRunJSON(t, dir); run == nil || run.Status != result.StatusError || !strings.Contains(run.Error, "memory") {
		t.Errorf("run.json: %+v", run)
	}
	assertNothingLeft(t, r)
}
