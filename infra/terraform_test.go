package infra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"
	"github.com/rs/zerolog"
)

// repoRoot is the repository root: infra is one level below it.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// terraformBin is ./bin/terraform of the repository (built by `make
// bin/terraform`). Tests skip without it, except in CI where it must exist.
func terraformBin(t *testing.T) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), "bin", "terraform")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: %s missing (make bin/terraform builds it): %v", p, err)
		}
		t.Skipf("%s missing: run make bin/terraform", p)
	}
	return p
}

var (
	busOnce sync.Once
	busPath string
	busErr  error
)

// eventbusBin builds the bundled event bus once.
func eventbusBin(t *testing.T) string {
	t.Helper()
	busOnce.Do(func() {
		dir, err := os.MkdirTemp("", "loadramp-infra-tf-")
		if err != nil {
			busErr = err
			return
		}
		busPath = filepath.Join(dir, "eventbus")
		out, err := exec.Command("go", "build", "-o", busPath, "github.com/loadramp/loadramp/cmd/eventbus").CombinedOutput()
		if err != nil {
			busErr = errors.New(string(out))
		}
	})
	if busErr != nil {
		t.Fatal(busErr)
	}
	return busPath
}

var (
	lrOnce sync.Once
	lrPath string
	lrErr  error
)

// loadrampBin builds loadramp once (local-generators runs its agents).
func loadrampBin(t *testing.T) string {
	t.Helper()
	lrOnce.Do(func() {
		dir, err := os.MkdirTemp("", "loadramp-infra-lr-")
		if err != nil {
			lrErr = err
			return
		}
		lrPath = filepath.Join(dir, "loadramp")
		out, err := exec.Command("go", "build", "-o", lrPath, "github.com/loadramp/loadramp/cmd/loadramp").CombinedOutput()
		if err != nil {
			lrErr = errors.New(string(out))
		}
	})
	if lrErr != nil {
		t.Fatal(lrErr)
	}
	return lrPath
}

// agentsOf reads local-generators' agents output (worker -> URL) and checks
// that each agent answers its health endpoint.
func agentsOf(t *testing.T, fl *Fleet) map[string]string {
	t.Helper()
	var agents map[string]string
	if err := json.Unmarshal([]byte(fl.Outputs["agents"]), &agents); err != nil {
		t.Fatalf("agents output %q: %v", fl.Outputs["agents"], err)
	}
	for w, u := range agents {
		resp, err := http.Get(u + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("agent %s at %q does not answer: %v", w, u, err)
			continue
		}
		resp.Body.Close()
	}
	return agents
}

// running reports whether pid is a live process (not a zombie waiting for
// its new parent to reap it), within a second.
func running(pid int) bool {
	for range 20 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && (f[0] == "Z" || f[0] == "X") {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// agentPids are the pids local-generators recorded under dir.
func agentPids(t *testing.T, dir string) []int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(globEscape(dir), "worker-*", "agent.pid"))
	var out []int
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// copyModule copies a module of infra/modules into a temporary directory, so
// tests running at once never share a module directory's files.
func copyModule(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("cp", "-r", filepath.Join(repoRoot(t), "infra", "modules", name), dst).CombinedOutput()
	if err != nil {
		t.Fatalf("copying module: %v: %s", err, out)
	}
	return dst
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func pidAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %s: %v", path, err)
	}
	return pid
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestTerraformLocalModuleUpDown(t *testing.T) {
	bin := terraformBin(t)
	t.Parallel()
	mod := copyModule(t, "local")
	run := t.TempDir()
	port := freePort(t)
	cfg := TerraformConfig{
		Fleet: "target", Dir: mod, Workspace: "loadramp-test-updown", DataDir: filepath.Join(run, "terraform", "target"),
		Vars:     map[string]any{"eventbus": eventbusBin(t), "port": strconv.Itoa(port), "eventbus_args": []any{"--nofile", "256"}},
		Builtins: map[string]string{VarRunDir: run, VarRunID: "test", VarWorkdir: run},
		Bin:      bin, Log: zerolog.Nop(),
	}
	tf, err := NewTerraform(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	fl, err := tf.Up(ctx)
	if err != nil {
		tf.Down(ctx)
		t.Fatal(err)
	}
	pid := readPid(t, filepath.Join(run, "target", "eventbus.pid"))
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
	want := "http://127.0.0.1:" + strconv.Itoa(port)
	if fl.Outputs["endpoint"] != want || fl.Size != 1 || fl.Name != "target" {
		t.Errorf("fleet %+v, want endpoint %s, size 1", fl, want)
	}
	if fl.Ref[RefWorkspace] != cfg.Workspace || fl.Ref[RefModule] != mod ||
		fl.Ref[RefState] != filepath.Join(mod, "terraform.tfstate.d", cfg.Workspace, "terraform.tfstate") {
		t.Errorf("ref %v", fl.Ref)
	}
	if _, err := os.Stat(fl.Ref[RefState]); err != nil {
		t.Errorf("state file: %v", err)
	}
	resp, err := http.Get(want + "/healthz")
	if err != nil {
		t.Fatalf("event bus started by terraform does not answer: %v", err)
	}
	resp.Body.Close()
	// Detached: its own session, not terraform's child.
	if sid, _ := syscall.Getpgid(pid); sid != pid {
		t.Errorf("event bus pgid %d, want its own group %d", sid, pid)
	}
	if _, err := tf.Scale(ctx, 2); !errors.Is(err, ErrCannotScale) {
		t.Errorf("Scale without scale_var: %v, want ErrCannotScale", err)
	}
	// The var file holds the builtin variables the module declares, and not
	// the one it doesn't (loadramp_run_id).
	var vars map[string]any
	b, _ := os.ReadFile(filepath.Join(cfg.DataDir, TerraformVarFile))
	if err := json.Unmarshal(b, &vars); err != nil {
		t.Fatal(err)
	}
	if vars[VarRunDir] != run || vars[VarWorkdir] != run || vars[VarRunID] != nil {
		t.Errorf("var file %v", vars)
	}
	if err := tf.Down(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50 && pidAlive(pid); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if pidAlive(pid) {
		t.Errorf("event bus pid %d alive after Down", pid)
	}
	if _, err := os.Stat(filepath.Join(mod, "terraform.tfstate.d")); !os.IsNotExist(err) {
		t.Errorf("workspace state left in the module: %v", err)
	}
	if err := tf.Down(ctx); err != nil {
		t.Errorf("second Down: %v", err)
	}
}

func TestTerraformScaleGenerators(t *testing.T) {
	bin := terraformBin(t)
	t.Parallel()
	mod := copyModule(t, "local-generators")
	run := t.TempDir()
	cfg := TerraformConfig{
		Fleet: "generators", Dir: mod, Workspace: "loadramp-test-scale", DataDir: filepath.Join(run, "tf"),
		Vars: map[string]any{"workers": 1, "loadramp": loadrampBin(t)}, ScaleVar: "workers",
		Builtins: map[string]string{VarRunDir: run}, Secrets: map[string]string{VarAgentToken: "a-token-for-the-agents"},
		Bin: bin, Log: zerolog.Nop(),
	}
	tf, err := NewTerraform(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	defer tf.Down(ctx)
	fl, err := tf.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fl.Size != 1 || fl.Outputs["size"] != "1" {
		t.Fatalf("up: size %d, outputs %v", fl.Size, fl.Outputs)
	}
	if a := agentsOf(t, fl); len(a) != 1 {
		t.Errorf("up: agents %v, want 1", a)
	}
	for _, want := range []int{2, 4} {
		fl, err = tf.Scale(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if fl.Size != want || fl.Outputs["size"] != strconv.Itoa(want) {
			t.Errorf("after scale: size %d, outputs %v; want %d", fl.Size, fl.Outputs, want)
		}
		if a := agentsOf(t, fl); len(a) != want {
			t.Errorf("after scale: agents %v, want %d", a, want)
		}
	}
	pids := agentPids(t, filepath.Join(run, "generators"))
	if len(pids) != 4 {
		t.Fatalf("agent pids %v, want 4", pids)
	}
	// The token reached the agents, in their environment only.
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pids[0]))
	if err != nil || !strings.Contains(string(env), "LOADRAMP_AGENT_TOKEN=a-token-for-the-agents\x00") {
		t.Errorf("agent %d's environment lacks the token (%v)", pids[0], err)
	}
	if err := tf.Down(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if running(pid) {
			t.Errorf("agent %d still runs after Down", pid)
		}
	}
	if p := agentPids(t, filepath.Join(run, "generators")); len(p) != 0 {
		t.Errorf("pid files left after Down: %v", p)
	}
	// The token is in no file of the run directory, terraform's included.
	_ = filepath.WalkDir(run, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(path); strings.Contains(string(b), "a-token-for-the-agents") {
				t.Errorf("%s holds the agents' token", path)
			}
		}
		return nil
	})
}

func TestTerraformFailingProvisionerLeavesNothing(t *testing.T) {
	bin := terraformBin(t)
	t.Parallel()
	mod := copyModule(t, "local")
	run := t.TempDir()
	// The event bus refuses an unknown flag and exits during startup.
	cfg := TerraformConfig{
		Fleet: "target", Dir: mod, Workspace: "loadramp-test-fail", DataDir: filepath.Join(run, "tf"),
		Vars: map[string]any{"eventbus": eventbusBin(t), "port": freePort(t), "eventbus_args": []any{"--no-such-flag"}, "state_dir": filepath.Join(run, "st")},
		Bin:  bin, Log: zerolog.Nop(),
	}
	tf, err := NewTerraform(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	_, err = tf.Up(ctx)
	var te *TerraformError
	if !errors.As(err, &te) || te.Command != "apply" {
		t.Fatalf("Up: %v, want a TerraformError of apply", err)
	}
	// Terraform wraps its messages: compare with the spaces normalized.
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if !strings.Contains(msg, "exited during startup") || !strings.Contains(msg, "flag provided but not defined: -no-such-flag") {
		t.Errorf("error lacks terraform's message and the process log: %v", err)
	}
	if err := tf.Down(ctx); err != nil {
		t.Fatalf("Down after a failed apply: %v", err)
	}
	if _, err := os.Stat(filepath.Join(run, "st", "eventbus.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(mod, "terraform.tfstate.d")); !os.IsNotExist(err) {
		t.Errorf("workspace left: %v", err)
	}
}

func TestTerraformDownFromAFreshProvider(t *testing.T) {
	bin := terraformBin(t)
	t.Parallel()
	mod := copyModule(t, "local-generators")
	run := t.TempDir()
	cfg := TerraformConfig{
		Fleet: "generators", Dir: mod, Workspace: "loadramp-test-fresh", DataDir: filepath.Join(run, "tf"),
		Vars: map[string]any{"workers": 2, "state_dir": filepath.Join(run, "g"), "loadramp": loadrampBin(t)}, ScaleVar: "workers", Bin: bin, Log: zerolog.Nop(),
	}
	up, err := NewTerraform(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if _, err := up.Up(ctx); err != nil {
		up.Down(ctx)
		t.Fatal(err)
	}
	pids := agentPids(t, filepath.Join(run, "g"))
	if len(pids) != 2 {
		t.Fatalf("agent pids %v, want 2", pids)
	}
	defer func() {
		for _, pid := range pids {
			if running(pid) {
				t.Errorf("agent %d still runs after the fresh provider's Down", pid)
			}
		}
	}()
	// What `loadramp destroy` does: the references and the data directory,
	// no variables (they are in the var file).
	ref, err := ReadTerraformRef(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := NewTerraform(TerraformConfig{Fleet: "generators", Dir: ref[RefModule], Workspace: ref[RefWorkspace], DataDir: ref[RefDataDir], Bin: bin, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if p := agentPids(t, filepath.Join(run, "g")); len(p) != 0 {
		t.Errorf("agents left: %v", p)
	}
	if err := up.Down(ctx); err != nil {
		t.Errorf("Down of the first provider after the workspace is gone: %v", err)
	}
}

func TestTerraformBadVariable(t *testing.T) {
	bin := terraformBin(t)
	t.Parallel()
	mod := copyModule(t, "local-generators")
	run := t.TempDir()
	tf, err := NewTerraform(TerraformConfig{Fleet: "generators", Dir: mod, Workspace: "loadramp-test-badvar", DataDir: filepath.Join(run, "tf"),
		Vars: map[string]any{"workers": "many"}, Bin: bin, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	_, err = tf.Up(ctx)
	if err == nil || !strings.Contains(err.Error(), "workers") {
		t.Fatalf("Up with workers=many: %v, want terraform's message naming the variable", err)
	}
	if err := tf.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mod, "terraform.tfstate.d")); !os.IsNotExist(err) {
		t.Errorf("workspace left: %v", err)
	}
}

func TestTerraformFmt(t *testing.T) {
	bin := terraformBin(t)
	out, err := exec.Command(bin, "fmt", "-check", "-recursive", "-diff", filepath.Join(repoRoot(t), "infra", "modules")).CombinedOutput()
	if err != nil {
		t.Errorf("terraform fmt -check -recursive infra/modules: %v\n%s", err, out)
	}
}

func TestNewTerraformConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		cfg  TerraformConfig
		want string
	}{
		{"no dir", TerraformConfig{Workspace: "w", DataDir: dir}, "module directory missing"},
		{"dir missing", TerraformConfig{Dir: filepath.Join(dir, "nope"), Workspace: "w", DataDir: dir}, "is not a directory"},
		{"no workspace", TerraformConfig{Dir: dir, DataDir: dir}, "workspace missing"},
		{"scale var unset", TerraformConfig{Dir: dir, Workspace: "w", DataDir: dir, ScaleVar: "workers", Vars: map[string]any{"a": 1}}, `scale_var "workers" is not among the vars (a)`},
		{"scale var not a number", TerraformConfig{Dir: dir, Workspace: "w", DataDir: dir, ScaleVar: "n", Vars: map[string]any{"n": "x"}}, `value "x" is not a number`},
	} {
		_, err := NewTerraform(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestOutputStrings(t *testing.T) {
	in := map[string]tfexec.OutputMeta{
		"s":    {Value: json.RawMessage(`"http://x"`)},
		"n":    {Value: json.RawMessage(`3`)},
		"list": {Value: json.RawMessage(`["10.0.0.1","10.0.0.2"]`)},
		"obj":  {Value: json.RawMessage(`{"b": 1, "a": [1, 2]}`)},
		"b":    {Value: json.RawMessage(`true`)},
	}
	got, err := OutputStrings(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"s": "http://x", "n": "3", "list": "10.0.0.1,10.0.0.2", "obj": `{"a":[1,2],"b":1}`, "b": "true"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, err := OutputStrings(map[string]tfexec.OutputMeta{"x": {Value: json.RawMessage(`{`)}}); err == nil {
		t.Error("broken JSON accepted")
	}
}

func TestScaledSize(t *testing.T) {
	for _, c := range []struct {
		cur, factor float64
		want        int
	}{{1, 2, 2}, {2, 2, 4}, {3, 1.5, 5}, {1, 1.1, 2}, {4, 1.25, 5}, {10, 1.5, 15}} {
		if got := ScaledSize(c.cur, c.factor); got != c.want {
			t.Errorf("ScaledSize(%g, %g) = %d, want %d", c.cur, c.factor, got, c.want)
		}
	}
}

func TestLineLog(t *testing.T) {
	var buf strings.Builder
	l := newLineLog(zerolog.New(&buf), "stdout", nil)
	l.Write([]byte("first li"))
	l.Write([]byte("ne\nsecond\r\n\n  \nthi"))
	l.Write([]byte("rd\n"))
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if e["terraform"] != "stdout" {
			t.Errorf("event %v lacks the stream", e)
		}
		msgs = append(msgs, e["message"].(string))
	}
	if strings.Join(msgs, "|") != "first line|second|third" {
		t.Errorf("lines %q", msgs)
	}
}

// grepDir returns the files under dir whose content holds secret.
func grepDir(t *testing.T, dir, secret string) []string {
	t.Helper()
	var hits []string
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		if fileContains(path, secret) {
			hits = append(hits, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// TestTerraformSensitiveOutputStaysOutOfTheLog applies a module with a
// sensitive output, logging into the run directory as a run does: the
// output reaches the fleet (templates need it) marked sensitive, and no file
// of the run directory holds it, events included.
func TestTerraformSensitiveOutputStaysOutOfTheLog(t *testing.T) {
	bin := terraformBin(t)
	t.Parallel()
	mod := t.TempDir()
	os.WriteFile(filepath.Join(mod, "main.tf"), []byte(`
resource "terraform_data" "token" {
  input = sensitive("tok-${uuid()}")
}

output "endpoint" {
  value = "http://127.0.0.1:9"
}

output "token" {
  value     = terraform_data.token.output
  sensitive = true
}
`), 0o644)
	run := t.TempDir()
	events, err := os.Create(filepath.Join(run, "events.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	cfg := TerraformConfig{Fleet: "target", Dir: mod, Workspace: "loadramp-test-secret", DataDir: filepath.Join(run, "terraform", "target"),
		Bin: bin, Log: zerolog.New(events)}
	tf, err := NewTerraform(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	fl, err := tf.Up(ctx)
	if err != nil {
		tf.Down(ctx)
		t.Fatal(err)
	}
	token := fl.Outputs["token"]
	if !strings.HasPrefix(token, "tok-") || len(token) < 40 {
		t.Fatalf("token output %q", token)
	}
	if !slices.Equal(fl.Sensitive, []string{"token"}) || fl.Outputs["endpoint"] != "http://127.0.0.1:9" {
		t.Errorf("fleet outputs %v, sensitive %v; want token sensitive, endpoint not", fl.Outputs, fl.Sensitive)
	}
	if err := tf.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if !fileContains(events.Name(), "Apply complete!") || !fileContains(events.Name(), "Destroy complete!") {
		t.Fatalf("terraform's output is not in the log:\n%s", readFile(events.Name()))
	}
	// terraform output -json and show -json (Down) print it in clear.
	if hits := grepDir(t, run, token); len(hits) > 0 {
		t.Errorf("the secret is in %v", hits)
	}
}

// hostileDir makes a directory whose path holds quotes, a backtick command,
// a $(...) command, a semicolon and a space; each command would create a
// marker file if a shell ran it. It returns the path and the markers.
func hostileDir(t *testing.T) (string, []string) {
	t.Helper()
	var markers []string
	for _, s := range []string{"a", "b"} {
		m := filepath.Join(os.TempDir(), fmt.Sprintf("pwned-%d-%d-%s", os.Getpid(), time.Now().UnixNano(), s))
		markers = append(markers, m)
		t.Cleanup(func() { os.Remove(m) })
	}
	dir := filepath.Join(t.TempDir(), "run'\" `touch "+markers[0]+"`;$(touch "+markers[1]+")'x")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir, markers
}

func assertNotExecuted(t *testing.T, markers []string) {
	t.Helper()
	for _, m := range markers {
		if _, err := os.Stat(m); err == nil {
			t.Errorf("a command injected through the run directory's name ran: %s exists", m)
		}
	}
}

// TestTerraformLocalModuleHostileRunDir applies and destroys infra/modules/local
// (the event bus and nginx in front of it) for a run directory whose name is
// a shell injection: nothing runs, everything starts in that directory, and
// destroy stops it all.
func TestTerraformLocalModuleHostileRunDir(t *testing.T) {
	bin := terraformBin(t)
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if nginx, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Skip("no nginx")
		}
	}
	t.Parallel()
	mod := copyModule(t, "local")
	run, markers := hostileDir(t)
	port, nport := freePort(t), freePort(t)
	cfg := TerraformConfig{
		Fleet: "target", Dir: mod, Workspace: "loadramp-test-hostile", DataDir: filepath.Join(run, "terraform", "target"),
		Vars:     map[string]any{"eventbus": eventbusBin(t), "port": port, "nginx": nginx, "nginx_port": nport},
		Builtins: map[string]string{VarRunDir: run, VarWorkdir: run},
		Bin:      bin, Log: zerolog.Nop(),
	}
	tf, err := NewTerraform(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	fl, err := tf.Up(ctx)
	if err != nil {
		tf.Down(ctx)
		t.Fatal(err)
	}
	state := filepath.Join(run, "target")
	busPid, nginxPid := readPid(t, filepath.Join(state, "eventbus.pid")), readPid(t, filepath.Join(state, "nginx.pid"))
	t.Cleanup(func() { syscall.Kill(-busPid, syscall.SIGKILL); syscall.Kill(-nginxPid, syscall.SIGKILL) })
	resp, err := http.Get(fl.Outputs["endpoint"] + "/healthz")
	if err != nil {
		t.Fatalf("nginx in front of the event bus does not answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz through nginx: %s", resp.Status)
	}
	if !fileContains(filepath.Join(state, "nginx.conf"), "pid nginx-master.pid;") || fileContains(filepath.Join(state, "nginx.conf"), "touch") {
		t.Errorf("nginx.conf names the directory:\n%s", readFile(filepath.Join(state, "nginx.conf")))
	}
	assertNotExecuted(t, markers)
	if err := tf.Down(ctx); err != nil {
		t.Fatalf("Down: %v", err)
	}
	for _, pid := range []int{busPid, nginxPid} {
		if !waitFor(5*time.Second, func() bool { return !groupAlive(pid) }) {
			t.Errorf("process group %d alive after Down", pid)
		}
	}
	if _, err := os.Stat(filepath.Join(mod, "terraform.tfstate.d")); !os.IsNotExist(err) {
		t.Errorf("workspace left in the module: %v", err)
	}
	assertNotExecuted(t, markers)
}

// TestTerraformLocalGeneratorsHostileStateDir scales and destroys
// infra/modules/local-generators in a directory whose name is a shell
// injection.
func TestTerraformLocalGeneratorsHostileStateDir(t *testing.T) {
	bin := terraformBin(t)
	t.Parallel()
	mod := copyModule(t, "local-generators")
	run, markers := hostileDir(t)
	tf, err := NewTerraform(TerraformConfig{Fleet: "generators", Dir: mod, Workspace: "loadramp-test-hostile-gen", DataDir: filepath.Join(run, "tf"),
		Vars: map[string]any{"workers": 1, "loadramp": loadrampBin(t)}, ScaleVar: "workers", Builtins: map[string]string{VarRunDir: run}, Bin: bin, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	defer tf.Down(ctx)
	if _, err := tf.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tf.Scale(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if p := agentPids(t, filepath.Join(run, "generators")); len(p) != 2 {
		t.Errorf("%d agents in the hostile directory, want 2", len(p))
	}
	if err := tf.Down(ctx); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if p := agentPids(t, filepath.Join(run, "generators")); len(p) != 0 {
		t.Errorf("agents left after Down: %v", p)
	}
	assertNotExecuted(t, markers)
}

// globEscape quotes the glob metacharacters of a literal path.
func globEscape(p string) string {
	return regexp.MustCompile(`[*?[\\]`).ReplaceAllString(p, `\$0`)
}
