package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/viper"

	"github.com/loadramp/loadramp/internal/wiring"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/plan"
)

// Integration tests of Terraform fleets: the real ./bin/terraform applying
// infra/modules/local (the event bus on loopback) and
// infra/modules/local-generators, through whole runs.

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(wd))
}

// tfBin is ./bin/terraform (make bin/terraform); tests skip without it
// unless CI is set.
func tfBin(t *testing.T) string {
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

// tfModule copies infra/modules/<name> so runs at once never share a module
// directory.
func tfModule(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("cp", "-r", filepath.Join(repoRoot(t), "infra", "modules", name), dst).CombinedOutput(); err != nil {
		t.Fatalf("copying module: %v: %s", err, out)
	}
	return dst
}

// tfPlanArgs runs plans/local-terraform.yaml on a copy of the module with
// the test's event bus, and a short ramp of at most steps steps.
func tfPlanArgs(t *testing.T, mod string, extra ...string) []string {
	_, bus := binaries(t)
	args := []string{filepath.Join(repoRoot(t), "plans", "local-terraform.yaml"),
		"--terraform-bin", tfBin(t),
		"--set", "fleets.target.terraform.dir=" + mod,
		"--set", "fleets.target.terraform.vars.eventbus=" + bus,
		"--set", "ramp.warmup=0s", "--set", "ramp.hold=1s", "--set", "ramp.cooldown=0s",
		"--set", "gates[0]=latency.p99 < 2s",
		"--set", "generator_health[1]=generator.lag.p99 < 2s",
		// These tests run in parallel, each with a loadramp: their
		// generators wait for a CPU, and the Terraform lifecycle, not the
		// generator's health, is under test.
		"--set", "default_checks.generator_health=false",
	}
	return append(args, extra...)
}

type runJSON struct {
	Status string `json:"status"`
	Infra  []struct {
		Fleet     string            `json:"fleet"`
		Provider  string            `json:"provider"`
		Module    string            `json:"module"`
		Workspace string            `json:"workspace"`
		State     string            `json:"state"`
		Outputs   map[string]string `json:"outputs"`
	} `json:"infra"`
}

func readRunJSON(t *testing.T, dir string) runJSON {
	t.Helper()
	var r runJSON
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// busPid is the pid the local module recorded; 0 when the pid file is gone.
func busPid(t *testing.T, runDir string) int {
	b, err := os.ReadFile(filepath.Join(runDir, "target", "eventbus.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	st, err := hoststat.ReadProcStat(hoststat.DefaultRoot, pid)
	return err == nil && st.State != "Z"
}

// assertCleanedUp checks that no module process is left and the run's
// workspace is gone from the module.
func assertCleanedUp(t *testing.T, mod string, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		for i := 0; i < 50 && alive(pid); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if alive(pid) {
			syscall.Kill(-pid, syscall.SIGKILL)
			t.Errorf("process %d started by the module is still alive", pid)
		}
	}
	if ents, err := os.ReadDir(filepath.Join(mod, "terraform.tfstate.d")); err == nil && len(ents) > 0 {
		t.Errorf("workspaces left in %s: %v", mod, ents)
	}
}

func TestTerraformPlanRunsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	tfBin(t)
	t.Parallel()
	mod := tfModule(t, "local")
	o := runCLI(t, tfPlanArgs(t, mod, "--set", "parameters.rate.max=500", "--set", "parameters.connections.max=8")...)
	if o.code != 0 {
		t.Fatalf("exit %d", o.code)
	}
	if s := str(o.report, "status"); s != "max-reached" {
		t.Errorf("status %q, want max-reached", s)
	}
	steps, _ := o.report["steps"].([]any)
	if len(steps) != 2 {
		t.Errorf("%d steps, want 2", len(steps))
	}
	r := readRunJSON(t, o.dir)
	if len(r.Infra) == 0 || r.Infra[0].Provider != "terraform" {
		t.Fatalf("run.json infra %+v", r.Infra)
	}
	ref := r.Infra[0]
	if ref.Module != mod || ref.Workspace != "loadramp-"+filepath.Base(o.dir) ||
		ref.State != filepath.Join(mod, "terraform.tfstate.d", ref.Workspace, "terraform.tfstate") ||
		!strings.HasPrefix(ref.Outputs["endpoint"], "http://127.0.0.1:") {
		t.Errorf("run.json terraform ref %+v", ref)
	}
	ev, _ := os.ReadFile(filepath.Join(o.dir, "events.log"))
	for _, want := range []string{`"terraform":"stdout"`, "Apply complete!", "Destroy complete!", "terraform workspace deleted"} {
		if !bytes.Contains(ev, []byte(want)) {
			t.Errorf("events.log lacks %q", want)
		}
	}
	// The event bus's log, from the module's output, was scanned: it exists.
	if _, err := os.Stat(ref.Outputs["eventbus_log"]); err != nil {
		t.Errorf("eventbus log: %v", err)
	}
	// The pid file is gone after destroy: the pid is in start.sh's output.
	m := regexp.MustCompile(`eventbus: ready on 127\.0\.0\.1:\d+ \(pid (\d+)\)`).FindSubmatch(ev)
	if m == nil {
		t.Fatal("events.log lacks the module's start message")
	}
	pid, _ := strconv.Atoi(string(m[1]))
	assertCleanedUp(t, mod, pid)
	if _, err := os.Stat(filepath.Join(o.dir, "target", "eventbus.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left (the destroy provisioner did not run): %v", err)
	}
}

func TestTerraformGeneratorFailScalesTheFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	tfBin(t)
	t.Parallel()
	mod := tfModule(t, "local")
	gen := tfModule(t, "local-generators")
	plan := filepath.Join(t.TempDir(), "plan.yaml")
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "plans", "local-terraform.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// A Terraform generator fleet of real agents, and a health check no
	// generator meets (not one on lag: a request released ahead of its time
	// has lag 0, and a step can read lag p99 0).
	lr, _ := binaries(t)
	body := strings.Replace(string(b), "  generators:\n    provider: local                     # the builtin engine, inside loadramp\n",
		"  generators:\n    provider: terraform\n    terraform:\n      dir: "+gen+"\n      vars: { workers: 1, loadramp: "+lr+" }\n      scale_var: workers\n"+
			"    agents: { output: agents }\n", 1)
	if body == string(b) {
		t.Fatal("plans/local-terraform.yaml changed: cannot swap in the generator fleet")
	}
	if err := os.WriteFile(plan, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	args := tfPlanArgs(t, mod, "--set", "parameters.rate.max=250", "--set", "parameters.connections.max=8",
		"--set", "generator_health[1]=generator.cpu < 0.0001")
	args[0] = plan
	o := runCLI(t, args...)
	if o.code != 0 {
		t.Fatalf("exit %d", o.code)
	}
	if s := str(o.report, "status"); s != "generator-limited" {
		t.Errorf("status %q, want generator-limited", s)
	}
	// Step 1 ran once, then once more on each grown fleet (3 scales: 1->2->4->8).
	steps, _ := o.report["steps"].([]any)
	if len(steps) != 4 {
		t.Fatalf("%d attempts in report.json, want 4", len(steps))
	}
	for i, s := range steps {
		sm := s.(map[string]any)
		if sm["index"] != float64(1) || sm["attempt"] != float64(i+1) || sm["verdict"] != "generator-fail" {
			t.Errorf("attempt %d: index %v attempt %v verdict %v", i+1, sm["index"], sm["attempt"], sm["verdict"])
		}
		// Each attempt ran on the module's agents, one more doubling each
		// time, every agent named in the generator-fail.
		as, _ := sm["agents"].([]any)
		if want := 1 << i; len(as) != want {
			t.Errorf("attempt %d ran on %d agents, want %d", i+1, len(as), want)
		}
		for _, a := range as {
			name := a.(map[string]any)["agent"].(string)
			if !strings.HasPrefix(name, "worker-") || !strings.Contains(sm["reason"].(string), "agent "+name+":") {
				t.Errorf("attempt %d: agent %q not named in %q", i+1, name, sm["reason"])
			}
		}
	}
	sj, _ := os.ReadFile(filepath.Join(o.dir, "steps.jsonl"))
	if n := bytes.Count(bytes.TrimSpace(sj), []byte("\n")) + 1; n != 4 {
		t.Errorf("steps.jsonl holds %d attempts, want 4", n)
	}
	// The scale variable grew: the var file holds the last applied value, and
	// each apply is in events.log.
	var vars map[string]any
	vb, _ := os.ReadFile(filepath.Join(o.dir, "terraform", "generators", "loadramp.tfvars.json"))
	if err := json.Unmarshal(vb, &vars); err != nil || vars["workers"] != float64(8) {
		t.Errorf("generators var file %s (%v), want workers 8", vb, err)
	}
	ev, _ := os.ReadFile(filepath.Join(o.dir, "events.log"))
	for _, to := range []string{`"from":1,"to":2`, `"from":2,"to":4`, `"from":4,"to":8`} {
		if !bytes.Contains(ev, []byte(to)) {
			t.Errorf("events.log lacks the scaling %s", to)
		}
	}
	// Eight agents ran, each with its log; they are stopped: their pid
	// files are gone, and no process runs the agents' binary as a worker.
	if logs, _ := filepath.Glob(filepath.Join(o.dir, "generators", "worker-*", "agent.log")); len(logs) != 8 {
		t.Errorf("%d agent logs, want 8", len(logs))
	}
	if m, _ := filepath.Glob(filepath.Join(o.dir, "generators", "worker-*", "agent.pid")); len(m) != 0 {
		t.Errorf("agents' pid files left: %v", m)
	}
	pids, _ := hoststat.Pids("")
	for _, pid := range pids {
		args, _ := hoststat.Cmdline("", pid)
		if len(args) > 4 && args[0] == lr && args[1] == "agent" && strings.HasPrefix(args[5], "worker-") {
			t.Errorf("agent %v (pid %d) still runs", args, pid)
		}
	}
	assertCleanedUp(t, mod)
	assertCleanedUp(t, gen)
}

func TestTerraformErrorEndsTheRun(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	tfBin(t)
	t.Parallel()
	// A value of the wrong type is the plan's error, found against the
	// module's variables before anything starts.
	t.Run("wrong type", func(t *testing.T) {
		mod := tfModule(t, "local")
		o := runCLI(t, append(tfPlanArgs(t, mod), "--set", "fleets.target.terraform.vars.port=not-a-port")...)
		msg := strings.Join(strings.Fields(o.stderr), " ")
		if o.code != 2 || o.dir != "" || !strings.Contains(msg, "fleets.target.terraform.vars.port: port takes number") {
			t.Errorf("exit %d, run directory %q: want exit 2 naming the variable and its type, nothing started\n%s", o.code, o.dir, o.stderr)
		}
	})
	for _, c := range []struct {
		name, set, want string
	}{
		{"failing precondition", "fleets.target.terraform.vars.nginx=/usr/sbin/nginx", "nginx_port must be set"},
		{"failing provisioner", "fleets.target.terraform.vars.eventbus=/nonexistent/eventbus", "exited during startup"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mod := tfModule(t, "local")
			args := tfPlanArgs(t, mod)
			args = append(args, "--set", c.set)
			o := runCLI(t, args...)
			if o.code != 1 {
				t.Errorf("exit %d, want 1", o.code)
			}
			msg := strings.Join(strings.Fields(o.stderr), " ")
			if !strings.Contains(msg, c.want) || !strings.Contains(msg, "terraform apply") {
				t.Errorf("stderr lacks terraform's message %q", c.want)
			}
			if o.dir == "" {
				t.Fatal("no run directory")
			}
			if s := readRunJSON(t, o.dir).Status; s != "error" {
				t.Errorf("run.json status %q, want error", s)
			}
			assertCleanedUp(t, mod, busPid(t, o.dir))
		})
	}
}

// startRun runs the loadramp binary on the Terraform plan and waits until
// steps.jsonl holds n attempts.
func startRun(t *testing.T, mod string, n int) (*exec.Cmd, <-chan error, *bytes.Buffer, string) {
	t.Helper()
	lr, _ := binaries(t)
	out := t.TempDir()
	args := append([]string{"run"}, tfPlanArgs(t, mod, "--set", "parameters.rate.max=100000", "--set", "parameters.connections.max=8",
		"--set", "gates[0]=errors.ratio < 0.5", "--set", "generator_health[0]=generator.cpu < 1.1")...)
	cmd := exec.Command(lr, append(args, "--out", out, "--progress", "plain", "--log-level", "warn")...)
	var se bytes.Buffer
	cmd.Stderr = &se
	cmd.Stdout = &se
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("loadramp ended early (%v):\n%s", err, se.String())
		default:
		}
		if ents, _ := os.ReadDir(out); len(ents) == 1 {
			dir := filepath.Join(out, ents[0].Name())
			if b, err := os.ReadFile(filepath.Join(dir, "steps.jsonl")); err == nil && bytes.Count(b, []byte("\n")) >= n {
				time.Sleep(300 * time.Millisecond) // land mid-step
				return cmd, done, &se, dir
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-done
	t.Fatalf("no %d attempts in 90 s; output:\n%s", n, se.String())
	return nil, nil, nil, ""
}

func TestTerraformInterruptTearsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	tfBin(t)
	t.Parallel()
	mod := tfModule(t, "local")
	cmd, done, out, dir := startRun(t, mod, 1)
	pid := busPid(t, dir)
	if !alive(pid) {
		t.Fatalf("event bus (pid %d) not running mid-run", pid)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := <-done
	code := cmd.ProcessState.ExitCode()
	t.Logf("exit %d (%v)\n%s", code, err, out.String())
	if code != 130 {
		t.Errorf("exit %d, want 130", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.json")); err != nil {
		t.Errorf("no partial report: %v", err)
	}
	if s := readRunJSON(t, dir).Status; s != "aborted" {
		t.Errorf("run.json status %q, want aborted", s)
	}
	assertCleanedUp(t, mod, pid)
}

func TestTerraformKill9ThenDestroy(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	tfBin(t)
	t.Parallel()
	mod := tfModule(t, "local")
	cmd, done, _, dir := startRun(t, mod, 1)
	pid := busPid(t, dir)
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	// Terraform's processes are detached: they outlive loadramp.
	if !alive(pid) {
		t.Fatalf("event bus (pid %d) died with loadramp: nothing left to test", pid)
	}
	var so, se bytes.Buffer
	code := run([]string{"destroy", dir, "--terraform-bin", tfBin(t), "--log-level", "warn"}, IO{In: strings.NewReader(""), Out: &so, ErrOut: &se}, emptyEnv)
	t.Logf("destroy exit %d\nstdout:\n%s\nstderr:\n%s", code, so.String(), se.String())
	if code != 0 {
		t.Fatalf("destroy exit %d", code)
	}
	if !strings.Contains(so.String(), "workspace loadramp-"+filepath.Base(dir)+" deleted") {
		t.Errorf("destroy does not say the workspace was deleted")
	}
	assertCleanedUp(t, mod, pid)
	// Again: nothing left, still success.
	so.Reset()
	if code := run([]string{"destroy", dir, "--terraform-bin", tfBin(t)}, IO{In: strings.NewReader(""), Out: &so, ErrOut: &se}, emptyEnv); code != 0 {
		t.Errorf("second destroy exit %d", code)
	}
}

func TestTerraformPanicInRunTearsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	tfBin(t)
	t.Parallel()
	mod := tfModule(t, "local")
	a := &app{io: IO{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}, v: viper.New(), getenv: emptyEnv, log: zerolog.Nop()}
	cfg := wiring.DefaultConfig()
	cfg.TerraformBin = tfBin(t)
	args := tfPlanArgs(t, mod)
	var sets []string
	for i := 1; i < len(args); i++ {
		if args[i] == "--set" {
			sets = append(sets, args[i+1])
		}
	}
	p, err := a.loadPlan(args[0], sets)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	deps := orchestrator.Deps{
		Provision: wiring.Provision(cfg),
		// A fake engine whose construction panics, once the fleets are up.
		NewEngine: func(context.Context, *plan.Plan, orchestrator.Renderer, zerolog.Logger) (orchestrator.Engine, error) {
			panic("fake engine: boom")
		},
	}
	res, err := orchestrator.Run(context.Background(), p, deps, orchestrator.Options{OutDir: out})
	if err == nil || !strings.Contains(err.Error(), "panic during the run") || !strings.Contains(err.Error(), "fake engine: boom") {
		t.Fatalf("Run: %v, %v; want the panic as an error", res, err)
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 1 {
		t.Fatalf("%d run directories", len(ents))
	}
	dir := filepath.Join(out, ents[0].Name())
	if s := readRunJSON(t, dir).Status; s != "error" {
		t.Errorf("run.json status %q, want error", s)
	}
	ev, _ := os.ReadFile(filepath.Join(dir, "events.log"))
	m := regexp.MustCompile(`eventbus: ready on 127\.0\.0\.1:\d+ \(pid (\d+)\)`).FindSubmatch(ev)
	if m == nil {
		t.Fatal("events.log lacks the module's start message")
	}
	pid, _ := strconv.Atoi(string(m[1]))
	assertCleanedUp(t, mod, pid)
}
