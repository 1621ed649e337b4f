package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Integration tests of the whole ramp: real event bus processes on loopback,
// the real generator, real run directories. Holds are short.

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds loadramp and the event bus once per test binary.
func binaries(t testing.TB) (loadramp, eventbus string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "loadramp-bin-")
		if buildErr != nil {
			return
		}
		for _, b := range []struct{ out, pkg string }{
			{"loadramp", "github.com/loadramp/loadramp/cmd/loadramp"},
			{"eventbus", "github.com/loadramp/loadramp/cmd/eventbus"},
		} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, b.out), b.pkg)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "loadramp"), filepath.Join(binDir, "eventbus")
}

// busPlan writes a plan that ramps the event bus started with extra flags.
func busPlan(t *testing.T, name, busFlags, params, extra string) string {
	t.Helper()
	_, bus := binaries(t)
	var flags []string
	for _, f := range strings.Fields(busFlags) {
		flags = append(flags, fmt.Sprintf("%q", f))
	}
	body := fmt.Sprintf(`version: 1
name: %s
fleets:
  target:
    provider: local
    processes:
      - name: eventbus
        command: [%q, --listen, '127.0.0.1:{{ port "bus" }}'%s]
        ready: 'http://127.0.0.1:{{ port "bus" }}/healthz'
    outputs:
      endpoint: 'http://127.0.0.1:{{ port "bus" }}'
static:
  bus_flags: %q
workload:
  engine: builtin
  http:
    method: POST
    url: "{{ .fleets.target.endpoint }}/publish?topic=load"
    body: '{"msg":"hello"}'
    timeout: 1s
# These tests share this machine's cores with other tests: a generator that
# lags or waits for a CPU is likely, and the verdicts under test are the
# target's. The default generator health checks have tests of their own.
default_checks:
  generator_health: false
parameters:
%s
%s
`, name, bus, prefixComma(flags), busFlags, params, extra)
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func prefixComma(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return ", " + strings.Join(xs, ", ")
}

const shortRamp = `ramp:
  warmup: 1s
  hold: 3s
  cooldown: 500ms
  confirm: 1
  refine: 3
`

type runOutcome struct {
	code   int
	stdout string
	stderr string
	report map[string]any
	dir    string
}

// runCLI runs `loadramp run` in-process.
func runCLI(t *testing.T, args ...string) runOutcome {
	t.Helper()
	out := t.TempDir()
	var so, se bytes.Buffer
	args = append(args, "--out", out, "--progress", "plain", "--log-level", "warn")
	code := run(append([]string{"run"}, args...), IO{In: strings.NewReader(""), Out: &so, ErrOut: &se}, emptyEnv)
	o := runOutcome{code: code, stdout: so.String(), stderr: se.String()}
	entries, _ := os.ReadDir(out)
	if len(entries) == 1 {
		o.dir = filepath.Join(out, entries[0].Name())
		if b, err := os.ReadFile(filepath.Join(o.dir, "report.json")); err == nil {
			if err := json.Unmarshal(b, &o.report); err != nil {
				t.Fatalf("report.json does not parse: %v", err)
			}
		}
	}
	// The run's output is logged after the test's own messages, so that a
	// failure's reason leads the log instead of following pages of steps.
	t.Cleanup(func() { t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, o.stdout, o.stderr) })
	return o
}

// waitForAttempts waits until the one run directory under out holds n
// finished attempts and returns it ("" on timeout, with whatever it found).
func waitForAttempts(out string, n int, timeout time.Duration) string {
	var dir string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if entries, _ := os.ReadDir(out); len(entries) == 1 {
			dir = filepath.Join(out, entries[0].Name())
			if b, err := os.ReadFile(filepath.Join(dir, "steps.jsonl")); err == nil && bytes.Count(b, []byte("\n")) >= n {
				return dir
			}
		}
	}
	return dir
}

// emptyEnv isolates a run from the developer's configuration.
func emptyEnv(string) string { return "" }

func num(t *testing.T, m map[string]any, path ...string) float64 {
	t.Helper()
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("report.json: %s: not an object at %q", strings.Join(path, "."), p)
		}
		cur = mm[p]
	}
	f, ok := cur.(float64)
	if !ok {
		t.Fatalf("report.json: %s = %v, not a number", strings.Join(path, "."), cur)
	}
	return f
}

func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}

// wantTargetBottleneck asserts that a run finished (exit 0) with a bottleneck on
// the target side, found by ramping param.
func wantTargetBottleneck(t *testing.T, o runOutcome, param string) {
	t.Helper()
	if o.code != 0 {
		t.Fatalf("exit %d", o.code)
	}
	if s := str(o.report, "status"); s != "bottleneck" {
		t.Fatalf("status %q, want bottleneck", s)
	}
	if side := str(o.report, "bottleneck", "side"); side != "target" {
		t.Errorf("bottleneck side %q, want target", side)
	}
	if p := str(o.report, "bottleneck", "parameter"); p != param {
		t.Fatalf("bottleneck parameter %q, want %s", p, param)
	}
}

func TestRampFindsCapacity(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	plan := busPlan(t, "capacity", "--capacity 2000",
		"  - { name: rate, start: 250, max: 16000 }\n  - { name: connections, start: 32, max: 32 }",
		shortRamp+"gates:\n  - latency.p99 < 100ms\n  - errors.ratio < 0.01\n  - throughput.ratio > 0.95\n")
	o := runCLI(t, plan)
	wantTargetBottleneck(t, o, "rate")
	rate := num(t, o.report, "capacity", "parameters", "rate")
	rps := num(t, o.report, "capacity", "metrics", "throughput.rps")
	for name, v := range map[string]float64{"capacity rate": rate, "capacity throughput": rps} {
		if v < 2000*0.85 || v > 2000*1.15 {
			t.Errorf("%s %.0f, want within 15%% of 2000", name, v)
		}
	}
	if !strings.Contains(o.stdout, "Capacity ") || !strings.Contains(o.stdout, "bottleneck at step") {
		t.Errorf("summary missing from stdout")
	}
}

func TestRampFindsConnectionLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	plan := busPlan(t, "nofile", "--nofile 128",
		"  - { name: rate, start: 1000, max: 1000 }\n  - { name: connections, start: 16, max: 1024 }",
		shortRamp+"gates:\n  - latency.p99 < 200ms\n  - errors.ratio < 0.001\n")
	o := runCLI(t, plan)
	wantTargetBottleneck(t, o, "connections")
	from := num(t, o.report, "bottleneck", "from")
	to := num(t, o.report, "bottleneck", "to")
	// 128 files hold fewer than 128 connections (stdio, listener, epoll): the
	// step from 64 to 128 connections is the first one past the limit.
	if from != 64 || to != 128 {
		t.Errorf("bottleneck connections %g -> %g, want 64 -> 128", from, to)
	}
	steps, _ := o.report["steps"].([]any)
	found := false
	for _, s := range steps {
		sm := s.(map[string]any)
		if sm["verdict"] == "target-fail" && sm["changed"] == "connections" {
			found = true
		}
	}
	if !found {
		t.Errorf("no target-fail step with changed=connections in report.json steps")
	}
	// The cause is named: the event bus ran out of file descriptors, with its
	// accept error as evidence.
	b := o.report["bottleneck"].(map[string]any)
	findings, _ := b["findings"].([]any)
	ok := false
	for _, f := range findings {
		fm := f.(map[string]any)
		ev, _ := json.Marshal(fm["evidence"])
		if fm["rule"] == "fd-process" && fm["process"] == "eventbus" && strings.Contains(string(ev), "too many open files") {
			ok = true
		}
	}
	if !ok {
		t.Errorf("bottleneck findings lack fd-process on eventbus with the accept error: %v", findings)
	}
}

func TestSaturatedGeneratorIsNotABottleneck(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	// A health check no generator can meet: every step is the generator's
	// failure. (Not one on lag: since a wake-up releases requests due up to
	// half a tick later, with lag 0, a step at 500 req/s can read lag p99 0,
	// and did in CI.)
	plan := busPlan(t, "genlimited", "",
		"  - { name: rate, start: 500, max: 4000 }\n  - { name: connections, start: 8, max: 8 }",
		shortRamp+"gates:\n  - latency.p99 < 100ms\ngenerator_health:\n  - generator.cpu < 0.0001\n")
	o := runCLI(t, plan)
	if o.code != 0 {
		t.Fatalf("exit %d", o.code)
	}
	if s := str(o.report, "status"); s != "generator-limited" {
		t.Fatalf("status %q, want generator-limited", s)
	}
	if b, ok := o.report["bottleneck"]; ok && b != nil {
		t.Errorf("a generator-limited run reported a bottleneck: %v", b)
	}
	steps, _ := o.report["steps"].([]any)
	if len(steps) == 0 || steps[0].(map[string]any)["verdict"] != "generator-fail" ||
		!strings.Contains(fmt.Sprint(steps[0].(map[string]any)["reason"]), "generator.cpu") {
		t.Errorf("first step verdict is not generator-fail on generator.cpu: %v", steps)
	}
}

func TestAbortGateStopsStep(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	// Every request gets a 405 (GET on /publish): the abort gate must trip in
	// the first seconds of a 20 s hold.
	plan := busPlan(t, "abort", "",
		"  - { name: rate, start: 200, max: 200 }\n  - { name: connections, start: 4, max: 4 }",
		"ramp:\n  warmup: 0s\n  hold: 20s\n  cooldown: 0s\n  confirm: 0\n  refine: 0\ngates:\n  - errors.ratio < 0.01\nabort:\n  - errors.ratio > 0.5\n")
	b, _ := os.ReadFile(plan)
	os.WriteFile(plan, bytes.Replace(b, []byte("method: POST"), []byte("method: GET"), 1), 0o644)
	start := time.Now()
	o := runCLI(t, plan)
	if o.code != 0 {
		t.Fatalf("exit %d", o.code)
	}
	steps, _ := o.report["steps"].([]any)
	if len(steps) != 1 {
		t.Fatalf("%d steps, want 1", len(steps))
	}
	f, err := os.Open(filepath.Join(o.dir, "steps.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st struct {
		Aborted bool      `json:"aborted"`
		Verdict string    `json:"verdict"`
		Start   time.Time `json:"start"`
		End     time.Time `json:"end"`
	}
	sc := bufio.NewScanner(f)
	sc.Scan()
	if err := json.Unmarshal(sc.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Aborted || st.Verdict != "target-fail" {
		t.Errorf("step aborted=%v verdict=%s, want aborted target-fail", st.Aborted, st.Verdict)
	}
	if d := st.End.Sub(st.Start); d > 2500*time.Millisecond {
		t.Errorf("aborted step lasted %s, want the abort within 2 s", d)
	}
	t.Logf("whole run took %s", time.Since(start))
}

func TestKill9KeepsStepsAndLeavesNoOrphan(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	lr, _ := binaries(t)
	plan := busPlan(t, "kill9", "",
		"  - { name: rate, start: 200, max: 200000 }\n  - { name: connections, start: 4, max: 4 }",
		"ramp:\n  warmup: 0s\n  hold: 1s\n  cooldown: 0s\ngates:\n  - errors.ratio < 0.5\n")
	out := t.TempDir()
	cmd := exec.Command(lr, "run", plan, "--out", out, "--progress", "plain")
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dir := waitForAttempts(out, 2, 30*time.Second)
	time.Sleep(300 * time.Millisecond) // land mid-step
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if dir == "" {
		t.Fatalf("no run directory; stderr:\n%s", se.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "steps.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var v map[string]any
		if err := json.Unmarshal(l, &v); err != nil {
			t.Fatalf("steps.jsonl line %d does not parse: %v", lines+1, err)
		}
		lines++
	}
	if lines < 2 {
		t.Errorf("steps.jsonl holds %d attempts, want >= 2", lines)
	}
	var runJSON struct {
		Infra []struct {
			Pids      map[string]int `json:"pids"`
			Processes map[string]struct {
				Pid   int    `json:"pid"`
				Start uint64 `json:"start"`
				Boot  string `json:"boot"`
			} `json:"processes"`
		} `json:"infra"`
	}
	rb, _ := os.ReadFile(filepath.Join(dir, "run.json"))
	if err := json.Unmarshal(rb, &runJSON); err != nil || len(runJSON.Infra) == 0 {
		t.Fatalf("run.json has no infra pids: %v %s", err, rb)
	}
	// Each process is recorded with its identity, for destroy to check.
	for _, inf := range runJSON.Infra {
		for name, pid := range inf.Pids {
			if id := inf.Processes[name]; id.Pid != pid || id.Start == 0 || id.Boot == "" {
				t.Errorf("run.json: process %s (pid %d) recorded without its identity: %+v", name, pid, id)
			}
		}
	}
	// The killed run still gets its report, marked partial, and regenerating
	// it gives identical files.
	first := regenerate(t, dir)
	var rep map[string]any
	if err := json.Unmarshal(first["report.json"], &rep); err != nil {
		t.Fatal(err)
	}
	if rep["partial"] != true {
		t.Errorf("report of a killed run: partial = %v, want true", rep["partial"])
	}
	if !bytes.Contains(first["report.html"], []byte("PARTIAL")) {
		t.Errorf("report.html of a killed run does not say it is partial")
	}
	second := regenerate(t, dir)
	for name, b := range first {
		if !bytes.Equal(b, second[name]) {
			t.Errorf("regenerating %s gave different bytes", name)
		}
	}
	var so bytes.Buffer
	if code := run([]string{"runs", "--dir", out}, IO{In: strings.NewReader(""), Out: &so, ErrOut: &so}, emptyEnv); code != 0 || !strings.Contains(so.String(), filepath.Base(dir)) {
		t.Errorf("loadramp runs (exit %d) does not list the run:\n%s", code, so.String())
	}

	for _, inf := range runJSON.Infra {
		for name, pid := range inf.Pids {
			gone := false
			for i := 0; i < 40 && !gone; i++ {
				gone = syscall.Kill(pid, 0) != nil
				time.Sleep(50 * time.Millisecond)
			}
			if !gone {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Errorf("process %s (pid %d) outlived loadramp's kill -9", name, pid)
			}
		}
	}
}

// regenerate runs `loadramp report DIR` and returns every report file's bytes.
func regenerate(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	var so, se bytes.Buffer
	if code := run([]string{"report", dir}, IO{In: strings.NewReader(""), Out: &so, ErrOut: &se}, emptyEnv); code != 0 {
		t.Fatalf("loadramp report: exit %d\n%s%s", code, so.String(), se.String())
	}
	files := map[string][]byte{}
	for _, name := range []string{"report.json", "report.html", "report.md", "steps.csv", "junit.xml"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("loadramp report did not write %s: %v", name, err)
		}
		files[name] = b
	}
	return files
}

func TestTwoRunsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	plan := busPlan(t, "twice", "",
		"  - { name: rate, start: 200, max: 400 }\n  - { name: connections, start: 4, max: 4 }",
		"ramp:\n  warmup: 0s\n  hold: 1s\n  cooldown: 0s\ngates:\n  - errors.ratio < 0.01\n")
	out := t.TempDir()
	var wg sync.WaitGroup
	codes := make([]int, 2)
	errs := make([]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var so, se bytes.Buffer
			codes[i] = run([]string{"run", plan, "--out", out, "--progress", "plain", "--log-level", "warn"},
				IO{In: strings.NewReader(""), Out: &so, ErrOut: &se}, emptyEnv)
			errs[i] = se.String()
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 0 {
			t.Errorf("run %d exit %d:\n%s", i, c, errs[i])
		}
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 2 {
		t.Fatalf("%d run directories, want 2", len(entries))
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(out, e.Name(), "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		var r map[string]any
		json.Unmarshal(b, &r)
		if r["status"] != "max-reached" {
			t.Errorf("%s: status %v, want max-reached", e.Name(), r["status"])
		}
	}
}
