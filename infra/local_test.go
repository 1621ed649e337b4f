package infra

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// newTestLocal returns a Local whose fleet is torn down when the test ends.
func newTestLocal(t *testing.T, cfg LocalConfig) *Local {
	t.Helper()
	if cfg.Fleet == "" {
		cfg.Fleet = "target"
	}
	if cfg.LogDir == "" {
		cfg.LogDir = t.TempDir()
	}
	cfg.Log = zerolog.Nop()
	l := NewLocal(cfg)
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("cleanup Down: %v", err)
		}
	})
	return l
}

// shProc is a LocalProcess running script with sh -c.
func shProc(name, script string) LocalProcess {
	return LocalProcess{Name: name, Command: []string{"sh", "-c", script}}
}

// httpHelperProc runs the helper HTTP server at addr.
func httpHelperProc(name, addr, ready string, delay time.Duration, status int) LocalProcess {
	argv, env := helperCommand("http", map[string]string{
		"HELPER_ADDR":   addr,
		"HELPER_DELAY":  delay.String(),
		"HELPER_STATUS": strconv.Itoa(status),
	})
	return LocalProcess{Name: name, Command: argv, Env: env, Ready: ready}
}

func TestLocalReady(t *testing.T) {
	t.Parallel()
	const delay = 300 * time.Millisecond
	for _, tc := range []struct {
		name  string
		ready func(addr string) string
	}{
		{"http", func(addr string) string { return "http://" + addr + "/healthz" }},
		{"tcp", func(addr string) string { return "tcp://" + addr }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := freeAddr(t)
			logDir := t.TempDir()
			l := newTestLocal(t, LocalConfig{
				Processes: []LocalProcess{httpHelperProc("web", addr, tc.ready(addr), delay, 200)},
				Outputs:   map[string]string{"endpoint": "http://" + addr},
				LogDir:    logDir,
			})
			start := time.Now()
			f, err := l.Up(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < delay {
				t.Errorf("Up returned after %s, before the process could be ready (%s)", took, delay)
			}
			wantLog := filepath.Join(logDir, "target-web.log")
			if f.Name != "target" || f.Size != 1 || f.Outputs["endpoint"] != "http://"+addr ||
				len(f.Processes) != 1 || f.Processes[0].Name != "web" || f.Processes[0].Pid <= 0 ||
				f.Processes[0].LogPath != wantLog {
				t.Fatalf("fleet = %+v", f)
			}
			// Ready means ready: the endpoint answers right away.
			resp, err := http.Get(f.Outputs["endpoint"] + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "hello" {
				t.Fatalf("GET / = %q", body)
			}
			if !fileContains(wantLog, "helper-http listening on "+addr) {
				t.Errorf("log %s lacks the process output", wantLog)
			}
			if err := l.Check(); err != nil {
				t.Fatalf("Check on a healthy fleet: %v", err)
			}
			if err := l.Down(context.Background()); err != nil {
				t.Fatal(err)
			}
			if alive(f.Processes[0].Pid) {
				t.Fatal("process alive after Down")
			}
		})
	}
}

func TestLocalReadyTimeoutNamesEverything(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	url := "http://" + addr + "/healthz"
	logDir := t.TempDir()
	l := newTestLocal(t, LocalConfig{
		Processes: []LocalProcess{{
			Name: "web", Command: httpHelperProc("", addr, "", 0, 0).Command,
			Env:   httpHelperProc("", addr, "", 0, 503).Env,
			Ready: url, ReadyTimeout: 2 * time.Second,
		}},
		LogDir: logDir,
	})
	start := time.Now()
	_, err := l.Up(context.Background())
	took := time.Since(start)
	if err == nil {
		t.Fatal("Up succeeded though /healthz answers 503")
	}
	msg := err.Error()
	for _, want := range []string{"process web", url, "after 2s", "503", "helper-http booting", "target-web.log"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if took < 2*time.Second || took > 5*time.Second {
		t.Errorf("Up failed after %s, want about the 2s timeout", took)
	}
	// The process was stopped by Up's rollback.
	m := regexp.MustCompile(`booting pid=(\d+)`).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no pid in %q", msg)
	}
	pid, _ := strconv.Atoi(m[1])
	if alive(pid) {
		t.Fatalf("process %d still alive after a failed Up", pid)
	}
	if err := l.Down(context.Background()); err != nil {
		t.Fatalf("Down after failed Up: %v", err)
	}
}

func TestLocalEarlyExitFailsFast(t *testing.T) {
	t.Parallel()
	l := newTestLocal(t, LocalConfig{Processes: []LocalProcess{{
		Name:    "crashy",
		Command: []string{"sh", "-c", "echo boom-marker >&2; exit 3"},
		Ready:   "tcp://" + freeAddr(t), ReadyTimeout: 30 * time.Second,
	}}})
	start := time.Now()
	_, err := l.Up(context.Background())
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Up took %s to notice the exit, want well under the 30s timeout", took)
	}
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want an *ExitError in the chain", err)
	}
	if ee.Process != "crashy" || ee.ExitCode != 3 || ee.Status != "exit status 3" {
		t.Errorf("ExitError = %+v", ee)
	}
	if !slices.Contains(ee.LogTail, "boom-marker") { // a line of its own, not the quoted argv
		t.Errorf("log tail lacks the process output: %q", ee.LogTail)
	}
	for _, want := range []string{"crashy", "exit status 3", "\t| boom-marker\n", "never became ready"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
}

func TestLocalUpRollsBackEarlierProcesses(t *testing.T) {
	t.Parallel()
	logDir := t.TempDir()
	l := newTestLocal(t, LocalConfig{
		Processes: []LocalProcess{
			{Name: "first", Command: []string{"sleep", "60"}},
			{Name: "second", Command: []string{"sh", "-c", "exit 1"}, Ready: "tcp://" + freeAddr(t)},
		},
		LogDir: logDir,
	})
	if _, err := l.Up(context.Background()); err == nil {
		t.Fatal("Up succeeded though the second process exits")
	}
	if !fileContains(filepath.Join(logDir, "target-first.log"), "stopped: signal: terminated") {
		t.Fatal("first process was not stopped by the rollback")
	}
}

func TestLocalUpCancelled(t *testing.T) {
	t.Parallel()
	logDir := t.TempDir()
	l := newTestLocal(t, LocalConfig{
		Processes: []LocalProcess{{Name: "never", Command: []string{"sleep", "60"}, Ready: "tcp://" + freeAddr(t)}},
		LogDir:    logDir,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := l.Up(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Up took %s after its context ended", took)
	}
	if !fileContains(filepath.Join(logDir, "target-never.log"), "stopped: signal: terminated") {
		t.Fatal("process was not stopped after the cancelled Up")
	}
}

func TestLocalStopsInReverseOrder(t *testing.T) {
	t.Parallel()
	logDir := t.TempDir()
	order := filepath.Join(logDir, "order")
	var procs []LocalProcess
	for _, name := range []string{"a", "b", "c"} {
		procs = append(procs, shProc(name,
			`trap 'echo `+name+` >> "$ORDER"; exit 0' TERM; echo ready; while :; do sleep 0.05; done`))
		procs[len(procs)-1].Env = map[string]string{"ORDER": order}
	}
	l := newTestLocal(t, LocalConfig{Processes: procs, LogDir: logDir})
	f, err := l.Up(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Processes {
		if !waitFor(5*time.Second, func() bool { return hasLine(p.LogPath, "ready") }) {
			t.Fatalf("%s never installed its trap", p.Name)
		}
	}
	if err := l.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(order)
	if string(got) != "c\nb\na\n" {
		t.Fatalf("stop order = %q, want c, b, a", got)
	}
	for _, p := range f.Processes {
		if !fileContains(p.LogPath, "stopped: exit status 0") {
			t.Errorf("%s log lacks its exit status", p.Name)
		}
	}
}

func TestLocalDownSignals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		script        string
		stopTimeout   time.Duration
		minTook       time.Duration
		maxTook       time.Duration
		wantLogStatus string
	}{
		{"terminates", "sleep 60 & echo child=$!; echo ready; wait", 5 * time.Second, 0, 1 * time.Second, "stopped: signal: terminated"},
		// sh and its sleep child both ignore SIGTERM (ignored signals survive exec).
		{"ignores SIGTERM", `trap "" TERM; sleep 60 & echo child=$!; echo ready; wait`, 300 * time.Millisecond, 300 * time.Millisecond, 3 * time.Second, "stopped: signal: killed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newTestLocal(t, LocalConfig{Processes: []LocalProcess{shProc("p", tc.script)}, StopTimeout: tc.stopTimeout})
			f, err := l.Up(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			p := f.Processes[0]
			if !waitFor(5*time.Second, func() bool { return hasLine(p.LogPath, "ready") }) {
				t.Fatal("process never got ready")
			}
			start := time.Now()
			if err := l.Down(context.Background()); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			if took < tc.minTook || took > tc.maxTook {
				t.Errorf("Down took %s, want %s..%s", took, tc.minTook, tc.maxTook)
			}
			if groupAlive(p.Pid) {
				t.Error("a process of the group survived Down")
			}
			m := regexp.MustCompile(`(?m)^child=(\d+)$`).FindStringSubmatch(readFile(p.LogPath))
			if m == nil {
				t.Fatal("no child pid in the log")
			}
			if child, _ := strconv.Atoi(m[1]); alive(child) {
				_ = syscall.Kill(child, syscall.SIGKILL)
				t.Errorf("the process's child %d survived Down", child)
			}
			if !fileContains(p.LogPath, tc.wantLogStatus) {
				b, _ := os.ReadFile(p.LogPath)
				t.Errorf("log lacks %q:\n%s", tc.wantLogStatus, b)
			}
		})
	}
}

func TestLocalDownCancelledKillsAtOnce(t *testing.T) {
	t.Parallel()
	l := newTestLocal(t, LocalConfig{
		Processes:   []LocalProcess{shProc("stubborn", `trap "" TERM; echo ready; sleep 60`)},
		StopTimeout: 30 * time.Second,
	})
	f, err := l.Up(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return hasLine(f.Processes[0].LogPath, "ready") }) {
		t.Fatal("process never got ready")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := l.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Down with a cancelled context took %s", took)
	}
	if groupAlive(f.Processes[0].Pid) {
		t.Error("process survived Down")
	}
}

func TestLocalCheckReportsUnexpectedExit(t *testing.T) {
	t.Parallel()
	l := newTestLocal(t, LocalConfig{Processes: []LocalProcess{
		{Name: "keeper", Command: []string{"sleep", "60"}},
		shProc("crasher", "echo ready; sleep 0.3; echo dying-marker; exit 7"),
	}})
	f, err := l.Up(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(); err != nil {
		t.Fatalf("Check right after Up: %v", err)
	}
	start := time.Now()
	if !waitFor(5*time.Second, func() bool { return l.Check() != nil }) {
		t.Fatal("Check never reported the crash")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("crash reported after %s", took)
	}
	var ee *ExitError
	if err := l.Check(); !errors.As(err, &ee) {
		t.Fatalf("Check = %v, want *ExitError", err)
	}
	if ee.Process != "crasher" || ee.ExitCode != 7 || ee.Pid != f.Processes[1].Pid ||
		!slices.Contains(ee.LogTail, "dying-marker") {
		t.Errorf("ExitError = %+v", ee)
	}
	if !fileContains(f.Processes[1].LogPath, "exited on its own: exit status 7") {
		t.Error("crash not recorded in the process log")
	}
	if err := l.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Check(); err != nil {
		t.Errorf("Check after Down = %v, want nil", err)
	}
	if !fileContains(f.Processes[0].LogPath, "stopped: signal: terminated") {
		t.Error("keeper was not stopped")
	}
}

func TestLocalDownIdempotentAndRestart(t *testing.T) {
	t.Parallel()
	logDir := t.TempDir()
	l := newTestLocal(t, LocalConfig{Processes: []LocalProcess{shProc("p", "echo run-marker; exec sleep 60")}, LogDir: logDir})
	if err := l.Down(context.Background()); err != nil {
		t.Fatalf("Down before Up: %v", err)
	}
	runs := func() int { return strings.Count(readFile(filepath.Join(logDir, "target-p.log")), "\nrun-marker\n") }
	for i := range 2 {
		if _, err := l.Up(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Up(context.Background()); err == nil || !strings.Contains(err.Error(), "already up") {
			t.Fatalf("second Up err = %v, want already up", err)
		}
		if !waitFor(5*time.Second, func() bool { return runs() == i+1 }) {
			t.Fatal("no output in log")
		}
		for range 2 {
			if err := l.Down(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := runs(); n != 2 {
		t.Fatalf("log has %d runs, want 2 (appended):\n%s", n, readFile(filepath.Join(logDir, "target-p.log")))
	}
}

func TestLocalScaleCannot(t *testing.T) {
	t.Parallel()
	l := newTestLocal(t, LocalConfig{})
	if _, err := l.Scale(context.Background(), 2); !errors.Is(err, ErrCannotScale) {
		t.Fatalf("Scale err = %v, want ErrCannotScale", err)
	}
}

func TestLocalFilesEnvAndDir(t *testing.T) {
	t.Parallel()
	logDir := t.TempDir()
	l := newTestLocal(t, LocalConfig{
		Processes: []LocalProcess{{
			Name:    "app",
			Command: []string{"sh", "-c", `cat conf/app.conf; echo "foo=$FOO"; exec sleep 60`},
			Env:     map[string]string{"FOO": "bar"},
			Dir:     logDir,
			Files:   map[string]string{"conf/app.conf": "answer=42\n"},
		}},
		LogDir: logDir,
	})
	f, err := l.Up(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(logDir, "conf", "app.conf")); err != nil || string(b) != "answer=42\n" {
		t.Fatalf("file = %q, %v", b, err)
	}
	log := f.Processes[0].LogPath
	if !waitFor(5*time.Second, func() bool { return hasLine(log, "answer=42") && hasLine(log, "foo=bar") }) {
		b, _ := os.ReadFile(log)
		t.Fatalf("process did not see its file and env:\n%s", b)
	}
}

func TestLocalRelativeCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho rel-ok\nexec sleep 60\n"
	if err := os.WriteFile(filepath.Join(dir, "bin", "run.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	l := newTestLocal(t, LocalConfig{Processes: []LocalProcess{{Name: "rel", Command: []string{"bin/run.sh"}, Dir: dir}}})
	f, err := l.Up(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return hasLine(f.Processes[0].LogPath, "rel-ok") }) {
		t.Fatal("relative command did not run")
	}
}

func TestLocalConfigErrors(t *testing.T) {
	t.Parallel()
	ok := LocalProcess{Name: "p", Command: []string{"sleep", "60"}}
	with := func(mod func(*LocalProcess)) []LocalProcess {
		p := ok
		mod(&p)
		return []LocalProcess{p}
	}
	for _, tc := range []struct {
		name  string
		cfg   LocalConfig
		wants []string
	}{
		{"empty fleet", LocalConfig{LogDir: "x", Processes: []LocalProcess{ok}}, []string{"fleet name is empty"}},
		{"fleet with slash", LocalConfig{Fleet: "a/b", LogDir: "x"}, []string{`fleet name "a/b"`}},
		{"no log dir", LocalConfig{Fleet: "t"}, []string{"log directory is empty"}},
		{"empty name", LocalConfig{Fleet: "t", LogDir: "x", Processes: with(func(p *LocalProcess) { p.Name = "" })}, []string{"processes[0]: name is empty"}},
		{"name with slash", LocalConfig{Fleet: "t", LogDir: "x", Processes: with(func(p *LocalProcess) { p.Name = "../p" })}, []string{"cannot be part of a file name"}},
		{"duplicate names", LocalConfig{Fleet: "t", LogDir: "x", Processes: []LocalProcess{ok, ok}}, []string{`processes[1]: name "p" is used twice`}},
		{"empty command", LocalConfig{Fleet: "t", LogDir: "x", Processes: with(func(p *LocalProcess) { p.Command = nil })}, []string{"command is empty"}},
		{"bad scheme", LocalConfig{Fleet: "t", LogDir: "x", Processes: with(func(p *LocalProcess) { p.Ready = "ftp://127.0.0.1:21" })}, []string{"scheme must be http, https or tcp"}},
		{"tcp without port", LocalConfig{Fleet: "t", LogDir: "x", Processes: with(func(p *LocalProcess) { p.Ready = "tcp://127.0.0.1" })}, []string{"want tcp://host:port"}},
		{"http without host", LocalConfig{Fleet: "t", LogDir: "x", Processes: with(func(p *LocalProcess) { p.Ready = "http:///healthz" })}, []string{"has no host"}},
		{"negative timeout", LocalConfig{Fleet: "t", LogDir: "x", Processes: with(func(p *LocalProcess) { p.ReadyTimeout = -time.Second })}, []string{"is negative"}},
		{"file escapes", LocalConfig{Fleet: "t", LogDir: "x", Processes: with(func(p *LocalProcess) { p.Files = map[string]string{"../evil": ""} })}, []string{`file "../evil"`}},
		{"absolute file", LocalConfig{Fleet: "t", LogDir: "x", Processes: with(func(p *LocalProcess) { p.Files = map[string]string{"/etc/evil": ""} })}, []string{`file "/etc/evil"`}},
		{"every problem listed", LocalConfig{Processes: []LocalProcess{{}}}, []string{"fleet name is empty", "log directory is empty", "name is empty", "command is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Log = zerolog.Nop()
			_, err := NewLocal(tc.cfg).Up(context.Background())
			if err == nil {
				t.Fatal("Up accepted an invalid config")
			}
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}

func TestLocalMissingCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		proc LocalProcess
		want string
	}{
		{"not in PATH", LocalProcess{Name: "ghost", Command: []string{"loadramp-no-such-binary"}}, `process ghost: command "loadramp-no-such-binary"`},
		{"relative to Dir", LocalProcess{Name: "ghost", Command: []string{"bin/missing"}, Dir: dir}, filepath.Join(dir, "bin", "missing")},
		{"not executable", LocalProcess{Name: "ghost", Command: []string{"./plain"}, Dir: dir}, "is not an executable file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, "plain"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			l := newTestLocal(t, LocalConfig{Processes: []LocalProcess{tc.proc}})
			_, err := l.Up(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestLocalChildDiesWithLoadramp kills (SIGKILL) a helper process that brought
// a fleet up and checks the fleet's process does not outlive it.
func TestLocalChildDiesWithLoadramp(t *testing.T) {
	t.Parallel()
	argv, env := helperCommand("fleet", map[string]string{"HELPER_LOGDIR": t.TempDir()})
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := readLine(bufio.NewScanner(out), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pidText, ok := strings.CutPrefix(line, "child-pid ")
	if !ok {
		t.Fatalf("helper said %q", line)
	}
	child, _ := strconv.Atoi(pidText)
	if !alive(child) {
		t.Fatalf("child %d not running before the kill", child)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !waitFor(2*time.Second, func() bool { return !alive(child) }) {
		_ = syscall.Kill(child, syscall.SIGKILL)
		t.Fatalf("child %d outlived its killed parent by 2s", child)
	}
}

// TestLocalSurvivesCallerThreadExit calls Up from a goroutine whose OS thread
// then exits. Pdeathsig watches the forking thread, so a provider that forked
// on the caller's thread would see its fleet killed here.
//
// Not parallel: retiring a thread kills every child any goroutine forked on
// it with Pdeathsig, and the parallel Terraform tests fork terraform that way.
func TestLocalSurvivesCallerThreadExit(t *testing.T) {
	l := newTestLocal(t, LocalConfig{Processes: []LocalProcess{{Name: "p", Command: []string{"sleep", "60"}}}})
	type upResult struct {
		f   *Fleet
		tid int
		err error
	}
	res := make(chan upResult, 1)
	release := make(chan struct{})
	defer close(release)
	var up func()
	up = func() {
		runtime.LockOSThread()
		if syscall.Gettid() == os.Getpid() {
			// The main thread is never retired (Go wedges it instead), so
			// hold it and make the caller run on another thread.
			go up()
			<-release
			runtime.UnlockOSThread()
			return
		}
		// Never unlocked: the thread exits with this goroutine.
		f, err := l.Up(context.Background())
		res <- upResult{f, syscall.Gettid(), err}
	}
	go up()
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	task := "/proc/self/task/" + strconv.Itoa(r.tid)
	if !waitFor(2*time.Second, func() bool { _, err := os.Stat(task); return err != nil }) {
		t.Fatal("the calling thread did not exit; the test proves nothing")
	}
	time.Sleep(200 * time.Millisecond)
	if !alive(r.f.Processes[0].Pid) || l.Check() != nil {
		t.Fatalf("process died when the thread that called Up exited (Check: %v)", l.Check())
	}
}

func TestLocalReplicasAndScale(t *testing.T) {
	t.Parallel()
	logDir := t.TempDir()
	l := newTestLocal(t, LocalConfig{
		Fleet:  "generators",
		LogDir: logDir,
		Processes: []LocalProcess{
			shProc("master", "echo master-marker; exec sleep 60"),
			{Name: "worker", Command: []string{"sh", "-c", "echo worker-marker; exec sleep 60"}, Replicas: 2, Scalable: true},
		},
		Outputs: map[string]string{"web": "http://127.0.0.1:1"},
	})
	names := func(f *Fleet) []string {
		var out []string
		for _, p := range f.Processes {
			out = append(out, p.Name)
		}
		return out
	}
	f, err := l.Up(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := names(f); !slices.Equal(got, []string{"master", "worker-1", "worker-2"}) {
		t.Fatalf("processes %q", got)
	}
	if f.Size != 2 || f.Outputs[SizeOutput] != "2" || f.Outputs["web"] != "http://127.0.0.1:1" {
		t.Fatalf("fleet after Up: size %d, outputs %v", f.Size, f.Outputs)
	}
	for _, p := range f.Processes[1:] {
		if p.LogPath != filepath.Join(logDir, "generators-"+p.Name+".log") {
			t.Errorf("%s logs to %s", p.Name, p.LogPath)
		}
		if !waitFor(5*time.Second, func() bool { return fileContains(p.LogPath, "worker-marker") }) {
			t.Errorf("%s wrote nothing to its own log", p.Name)
		}
	}

	// A lost replica of a scalable process is not a fleet failure...
	lost := f.Processes[2]
	if err := syscall.Kill(lost.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return fileContains(lost.LogPath, "exited on its own") }) {
		t.Fatal("the killed replica's exit was not recorded")
	}
	if err := l.Check(); err != nil {
		t.Fatalf("Check after losing a scalable replica = %v, want nil", err)
	}

	// ...and Scale replaces it while doubling: 2 -> 4 running replicas.
	g, err := l.Scale(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(g); !slices.Equal(got, []string{"master", "worker-1", "worker-3", "worker-4", "worker-5"}) {
		t.Fatalf("processes after Scale %q", got)
	}
	if g.Size != 4 || g.Outputs[SizeOutput] != "4" {
		t.Fatalf("fleet after Scale: size %d, outputs %v", g.Size, g.Outputs)
	}
	for _, p := range g.Processes {
		if !alive(p.Pid) {
			t.Errorf("%s (pid %d) is not running", p.Name, p.Pid)
		}
	}
	// Non-integer factors round up and always grow by at least one.
	h, err := l.Scale(context.Background(), 1.1)
	if err != nil {
		t.Fatal(err)
	}
	if h.Size != 5 {
		t.Errorf("size after Scale(1.1) = %d, want 5", h.Size)
	}
	if _, err := l.Scale(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "must be a finite number > 1") {
		t.Errorf("Scale(1) err = %v", err)
	}

	// A non-scalable process that dies still fails the fleet.
	if err := syscall.Kill(h.Processes[0].Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return l.Check() != nil }) {
		t.Fatal("Check did not report the master's death")
	}
	if err := l.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range h.Processes {
		if !waitFor(5*time.Second, func() bool { return !alive(p.Pid) }) {
			t.Errorf("%s (pid %d) outlived Down", p.Name, p.Pid)
		}
	}
}

func TestLocalScaleNeedsUpAndScalable(t *testing.T) {
	t.Parallel()
	l := newTestLocal(t, LocalConfig{Processes: []LocalProcess{{Name: "w", Command: []string{"sleep", "60"}, Replicas: 3}}})
	f, err := l.Up(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Processes) != 3 || f.Size != 1 || f.Outputs[SizeOutput] != "" {
		t.Errorf("replicated, not scalable: %d processes, size %d, outputs %v", len(f.Processes), f.Size, f.Outputs)
	}
	if _, err := l.Scale(context.Background(), 2); !errors.Is(err, ErrCannotScale) {
		t.Errorf("Scale of a fleet without scalable processes = %v, want ErrCannotScale", err)
	}
	m := newTestLocal(t, LocalConfig{Processes: []LocalProcess{{Name: "w", Command: []string{"sleep", "60"}, Scalable: true}}})
	if _, err := m.Scale(context.Background(), 2); err == nil || !strings.Contains(err.Error(), "not up") {
		t.Errorf("Scale before Up = %v, want not up", err)
	}
	bad := newTestLocal(t, LocalConfig{Processes: []LocalProcess{{Name: "w", Command: []string{"sleep", "60"}, Replicas: -1}}})
	if _, err := bad.Up(context.Background()); err == nil || !strings.Contains(err.Error(), "replicas -1 is negative") {
		t.Errorf("Up with replicas -1 = %v", err)
	}
}

// TestLocalRetriesAddressInUse: a port taken for a moment when the process
// binds it (another program's probe, another run's allocator) is retried,
// not a failed fleet.
func TestLocalRetriesAddressInUse(t *testing.T) {
	t.Parallel()
	squatter, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := squatter.Addr().String()
	go func() {
		time.Sleep(400 * time.Millisecond)
		squatter.Close()
	}()
	logDir := t.TempDir()
	l := newTestLocal(t, LocalConfig{
		Processes: []LocalProcess{httpHelperProc("web", addr, "http://"+addr+"/healthz", 0, 200)},
		LogDir:    logDir,
	})
	f, err := l.Up(context.Background())
	if err != nil {
		t.Fatalf("Up while the port was taken for 400ms: %v", err)
	}
	if len(f.Processes) != 1 || !alive(f.Processes[0].Pid) {
		t.Fatalf("processes %+v, want the one that bound the port", f.Processes)
	}
	if err := l.Check(); err != nil {
		t.Errorf("Check counts the failed start as a dead process: %v", err)
	}
	log := readFile(filepath.Join(logDir, "target-web.log"))
	if !strings.Contains(log, "address already in use") || !strings.Contains(log, "starting it again") {
		t.Errorf("the log does not show the retry:\n%s", log)
	}
}

// TestLocalAddressInUseGivesUp: a port that stays taken fails the fleet
// after the retries, naming the process and the cause.
func TestLocalAddressInUseGivesUp(t *testing.T) {
	t.Parallel()
	squatter, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	addr := squatter.Addr().String()
	l := newTestLocal(t, LocalConfig{Processes: []LocalProcess{httpHelperProc("web", addr, "http://"+addr+"/healthz", 0, 200)}})
	start := time.Now()
	_, err = l.Up(context.Background())
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Process != "web" || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Up: %v, want an ExitError of web naming the address in use", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("gave up after %s", took)
	}
}

// TestLocalRecordsProcessIdentity: each process's identity (pid, start time,
// boot, executable) is read as it starts, for run.json and destroy.
func TestLocalRecordsProcessIdentity(t *testing.T) {
	t.Parallel()
	l := newTestLocal(t, LocalConfig{Processes: []LocalProcess{shProc("a", "exec sleep 100"), {Name: "b", Command: []string{"sleep", "100"}, Replicas: 2}}})
	f, err := l.Up(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Processes) != 3 {
		t.Fatalf("%d processes, want 3", len(f.Processes))
	}
	for _, p := range f.Processes {
		if p.Identity.Pid != p.Pid || !p.Identity.Known() || p.Identity.Boot == "" || p.Identity.Exe == "" {
			t.Errorf("process %s: identity %+v", p.Name, p.Identity)
		}
		if m, why := hoststat.CheckIdentity("", p.Identity); m != hoststat.Same {
			t.Errorf("process %s: %s", p.Name, why)
		}
	}
	if err := l.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Processes {
		if m, why := hoststat.CheckIdentity("", p.Identity); m == hoststat.Same {
			t.Errorf("process %s after Down: %s", p.Name, why)
		}
	}
}
