package cli

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/diagnose"
)

// Honest verdicts against real processes: a static nginx found from its
// listening port, whose worker_connections are named even when its error log
// is silent; a target closing connections on purpose, below the default
// threshold, passes; a generator starved by a CPU hog on its own core is
// never the target's bottleneck.

// staticNginxConf is an nginx.conf serving a static answer, with Debian's
// default error-log level (error: the warn-level "worker_connections are not
// enough, reusing connections" is not recorded). Its verbs: listen address,
// worker_connections, keepalive_requests.
const staticNginxConf = `worker_processes 1;
pid nginx.pid;
error_log error.log;
events { worker_connections %d; }
http {
    access_log off;
    client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp; uwsgi_temp_path tmp; scgi_temp_path tmp;
    keepalive_timeout 75s;
    keepalive_requests %d;
    server { listen %s; location / { return 200 "ok\n"; } }
}
`

// staticNginx runs nginx outside any plan, as a static target: in network
// namespace ns ("" for this one), on the CPUs cpus ("" for any), listening on
// addr (host:port; port 0 picks a free loopback port). It returns the
// address and nginx's directory, and stops nginx when the test ends.
func staticNginx(t *testing.T, ns, cpus, addr string, workerConns, keepaliveRequests int) (string, string) {
	t.Helper()
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skipf("nginx not installed (%v): scripts/test-deps.sh installs it", err)
	}
	if strings.HasSuffix(addr, ":0") {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		ln.Close()
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(fmt.Sprintf(staticNginxConf, workerConns, keepaliveRequests, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := []string{nginxBin, "-p", dir + "/", "-c", "nginx.conf", "-e", "error.log", "-g", "daemon off;"}
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			e, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %s%s", out.String(), e)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not accept on %s after 10 s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // its worker is forked after the listener opens
	return addr, dir
}

// staticPlan writes a plan whose target is the static endpoint addr: the
// plan names no process.
func staticPlan(t *testing.T, name, addr, params, extra string) string {
	t.Helper()
	body := fmt.Sprintf(`version: 1
name: %s
fleets:
  target:
    provider: static
    outputs: { endpoint: "http://%s" }
workload:
  engine: builtin
  http: { url: "{{ .fleets.target.endpoint }}/", timeout: 2s }
parameters:
%s
%s
report: { formats: [json, md] }
`, name, addr, params, extra)
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// stepsOf returns report.json's steps.
func stepsOf(o runOutcome) []map[string]any {
	var out []map[string]any
	steps, _ := o.report["steps"].([]any)
	for _, s := range steps {
		out = append(out, s.(map[string]any))
	}
	return out
}

func metric(s map[string]any, name string) (float64, bool) {
	m, _ := s["metrics"].(map[string]any)
	v, ok := m[name].(float64)
	return v, ok
}

// nginx with worker_connections 128 and the default error-log level, as a
// static target: the plan names no process. Doubling the connections at a
// fixed rate, the bottleneck is the step where 128 stop being enough, and
// nginx-worker-connections names worker_connections with its configured
// value, read from the nginx.conf of the process found listening on the
// target's port.
func TestStaticNginxConnectionsNotHeld(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	addr, dir := staticNginx(t, "", "", "127.0.0.1:0", 128, 100000)
	plan := staticPlan(t, "static-nginx-128", addr,
		"  - { name: connections, start: 16, max: 2048 }\n  - { name: rate, start: 2000, max: 2000 }",
		"ramp: { order: sequential, warmup: 1s, hold: 3s, cooldown: 500ms, confirm: 1, refine: 0 }\n"+
			"gates: [latency.p99 < 200ms, errors.ratio < 0.01]\n"+
			// This machine's cores are shared with other tests: the verdict
			// under test is the target's.
			"generator_health: [generator.lag.p99 < 500ms]\ndefault_checks: { generator_health: false }\n")
	o := runCLI(t, plan)
	wantTargetBottleneck(t, o, "connections")
	// One worker holds 128 connections, its listening socket among them:
	// 128 client connections are one too many.
	if from, to := num(t, o.report, "bottleneck", "from"), num(t, o.report, "bottleneck", "to"); from != 64 || to != 128 {
		t.Errorf("bottleneck connections %g -> %g, want 64 -> 128", from, to)
	}
	fs := bottleneckFindings(t, o)
	f, ok := fs["nginx-worker-connections"]
	if !ok {
		t.Fatalf("no nginx-worker-connections finding at the bottleneck: %v", fs)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if f["process"] != "nginx" || f["setting"] != "worker_connections" || f["side"] != "target" ||
		!strings.Contains(evidence(f), "worker_connections 128") || !strings.Contains(evidence(f), conf) {
		t.Errorf("finding %v: want nginx's worker_connections, 128 from %s as evidence", f, conf)
	}
	if c, ok := fs["connections-closed"]; !ok || !strings.Contains(fmt.Sprint(c["observed"]), "the churn began at about") {
		t.Errorf("connections-closed %v: want where the churn began", c)
	}
	// The error log said nothing: the finding came from the configuration.
	if b, _ := os.ReadFile(filepath.Join(dir, "error.log")); bytes.Contains(b, []byte("worker_connections are not enough")) {
		t.Errorf("nginx's error log recorded the warning at its default level: the test proves nothing\n%s", b)
	}
	if !strings.Contains(o.stderr, "target process found listening on "+addr+": nginx") {
		t.Errorf("progress does not say the target's nginx was found by its port")
	}
	if got := num(t, o.report, "limits", "nginx.worker_connections"); got != 128 {
		t.Errorf("limits nginx.worker_connections %g, want 128 (read from the nginx.conf of the process found)", got)
	}
	// Steps below 128 held their connections.
	for _, s := range stepsOf(o) {
		p := s["parameters"].(map[string]any)
		if c := p["connections"].(float64); c < 128 && s["verdict"] != "pass" {
			t.Errorf("step at %g connections: %v (%v)", c, s["verdict"], s["reason"])
		}
	}
}

// A target that closes every 20th request's connection on purpose
// (keepalive_requests 20) reopens one connection for 20 requests, below the
// default threshold of one in ten: the steps pass, judged by the default
// checks.
func TestReopenedBelowThresholdPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	addr, _ := staticNginx(t, "", "", "127.0.0.1:0", 1024, 20)
	plan := staticPlan(t, "keepalive-20", addr,
		"  - { name: connections, start: 32, max: 64 }\n  - { name: rate, start: 2000, max: 2000 }",
		"ramp: { order: sequential, warmup: 1s, hold: 3s, cooldown: 500ms, confirm: 1, refine: 0 }\n"+
			"gates: [latency.p99 < 200ms, errors.ratio < 0.01]\n"+
			"generator_health: [generator.lag.p99 < 500ms]\ndefault_checks: { generator_health: false }\n")
	o := runCLI(t, plan)
	if o.code != 0 || str(o.report, "status") != "max-reached" {
		t.Fatalf("exit %d status %q: want every step to pass", o.code, str(o.report, "status"))
	}
	for _, s := range stepsOf(o) {
		r, okR := metric(s, "connections.reopened.ratio")
		h, okH := metric(s, "connections.held.ratio")
		if !okR || !okH || r < 0.03 || r > 0.08 || h < 0.9 {
			t.Errorf("step %v: reopened ratio %.3f held ratio %.3f; want about 0.05 and held", s["parameters"], r, h)
		}
		judged := 0
		gates, _ := s["gates"].([]any)
		for _, g := range gates {
			gm := g.(map[string]any)
			if gm["default"] == true && strings.HasPrefix(fmt.Sprint(gm["metric"]), "connections.") {
				judged++
			}
		}
		if judged != 2 {
			t.Errorf("step %v judged by %d default connection checks, want 2: %v", s["parameters"], judged, gates)
		}
	}
}

// cpuHog keeps CPU cpu busy until the test ends.
func cpuHog(t *testing.T, cpu string) {
	t.Helper()
	cmd := exec.Command("taskset", "-c", cpu, "sh", "-c", "while :; do :; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

// runPinned runs bin/loadramp on the CPUs cpus, and reads its report.
func runPinned(t *testing.T, cpus, plan string) runOutcome {
	t.Helper()
	lr, _ := binaries(t)
	out := t.TempDir()
	cmd := exec.Command("taskset", "-c", cpus, lr, "run", plan, "--out", out, "--progress", "plain", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Signal(syscall.SIGINT)
		<-done
		t.Fatalf("loadramp did not finish in 3 minutes\n%s%s", so.String(), se.String())
	}
	o := runOutcome{stdout: so.String(), stderr: se.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		o.code = ee.ExitCode()
	}
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", o.code, o.stdout, o.stderr)
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 {
		t.Fatalf("%d run directories in %s, want 1", len(entries), out)
	}
	o.dir = filepath.Join(out, entries[0].Name())
	b, err := os.ReadFile(filepath.Join(o.dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &o.report); err != nil {
		t.Fatalf("report.json does not parse: %v", err)
	}
	return o
}

// vethNetns makes a network namespace reachable from this one through a
// veth pair, on addresses only that pair has; it returns the namespace and
// its address. Everything is deleted when the test ends.
func vethNetns(t *testing.T) (ns, addr string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (ip netns add)")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	ns, host, peer := "lr-hv-"+suffix, "lrh"+suffix, "lrp"+suffix
	// 10.(200..249).x.(4k+1, 4k+2)/30: two addresses no other link has.
	o2, o3, o4 := 200+int(b[0])%50, int(b[1]), 4*(int(b[2])%63)
	hostIP, peerIP := fmt.Sprintf("10.%d.%d.%d", o2, o3, o4+1), fmt.Sprintf("10.%d.%d.%d", o2, o3, o4+2)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("ip netns add %s failed (%v): %s", ns, err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", host).Run() // gone with the namespace, normally
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
	run("ip", "link", "set", peer, "netns", ns)
	run("ip", "addr", "add", hostIP+"/30", "dev", host)
	run("ip", "link", "set", host, "up")
	run("ip", "netns", "exec", ns, "ip", "addr", "add", peerIP+"/30", "dev", peer)
	run("ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")
	run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	return ns, peerIP
}

// A CPU hog on the core loadramp runs on, a fast nginx on the other core, a
// rate ramp with no generator_health in the plan: the run ends
// generator-limited (never a target bottleneck), and with the target on
// another host its CPU finding is the generator's.
func TestCPUHogOnTheGeneratorsCore(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs: the generator's and the target's")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed")
	}
	params := "  - { name: rate, start: 4000, max: 64000 }\n  - { name: connections, start: 64, max: 64 }"
	extra := "ramp: { warmup: 1s, hold: 2s, cooldown: 500ms, confirm: 1, refine: 0 }\n" +
		"gates: [latency.p99 < 50ms, throughput.ratio > 0.9]\n" // no generator_health: the defaults apply
	check := func(t *testing.T, o runOutcome, elsewhere bool) {
		t.Helper()
		if o.code != 0 {
			t.Fatalf("exit %d", o.code)
		}
		if steps := stepsOf(o); !elsewhere && len(steps) > 0 {
			if _, ok := metric(steps[0], "generator.starved.ratio"); !ok {
				// On a host running both sides, only the generator's own
				// starvation tells a starved generator from a slow target.
				t.Skip("the engine does not measure generator.starved.ratio yet (the generator-speed work adds it)")
			}
		}
		if b, ok := o.report["bottleneck"]; ok && b != nil {
			t.Fatalf("a starved generator was reported as the target's bottleneck: %v", b)
		}
		if s := str(o.report, "status"); s != "generator-limited" {
			t.Fatalf("status %q, want generator-limited", s)
		}
		steps := stepsOf(o)
		last := steps[len(steps)-1]
		if last["verdict"] != "generator-fail" || !strings.Contains(fmt.Sprint(last["reason"]), "not trustworthy") {
			t.Errorf("last step %v: %v; want generator-fail, the target's latency called untrustworthy", last["verdict"], last["reason"])
		}
		// The defaults were applied, and listed.
		if !strings.Contains(readFile(t, filepath.Join(o.dir, "report.md")), "generator health: generator.lag.p99 &lt; 10ms (default)") {
			t.Errorf("report.md does not list the default generator health checks")
		}
		checks, _ := o.report["checks"].(map[string]any)
		if hs, _ := checks["generator_health"].([]any); len(hs) != 3 {
			t.Errorf("report.json checks %v: want the three default generator health checks", checks)
		}
		// The CPU finding is the generator's when it runs elsewhere than the
		// target, or when its own starvation reached the health threshold.
		// On a shared host a step can fail on the generator's lag first,
		// before its run delay reaches the threshold: then the busy CPUs it
		// may run on are named, on neither side (diagnose's cpu rule).
		var genCPU, itsCPUs map[string]any
		fs, _ := last["findings"].([]any)
		for _, f := range fs {
			fm := f.(map[string]any)
			if fm["rule"] != "cpu-saturation" {
				continue
			}
			if fm["side"] == "generator" {
				genCPU = fm
			} else if fm["resource"] == "the generator's CPUs" || fm["resource"] == "host CPU" {
				itsCPUs = fm
			}
		}
		starved, starvedMeasured := metric(last, "generator.starved.ratio")
		switch {
		case elsewhere || (starvedMeasured && starved >= diagnose.GeneratorStarved):
			if genCPU == nil {
				t.Errorf("last step's findings %v (generator.starved.ratio %.3f): want a generator-side cpu-saturation finding", fs, starved)
			}
		case genCPU == nil && itsCPUs == nil:
			t.Errorf("last step's findings %v (generator.starved.ratio %.3f): want a cpu-saturation finding on the generator's busy CPUs", fs, starved)
		}
		// A generator whose CPU the hog took, and nothing else, is measured
		// again on the same generators (ramp.interference_reruns, 2 by
		// default) before the run ends generator-limited.
		othersOnly := genCPU != nil
		for _, f := range fs {
			if fm := f.(map[string]any); fm["side"] == "generator" && fm["rule"] != "cpu-saturation" {
				othersOnly = false
			}
		}
		if othersOnly && (last["kind"] != "rerun" || !strings.Contains(o.stderr, "rerunning the step on the same generators (2 of 2)") ||
			!strings.Contains(o.stderr, "other work took the generator's CPU in 3 attempts running")) {
			t.Errorf("last step %v.%v is %v: want the third attempt of a step whose generator's CPU was taken; progress:\n%s",
				last["index"], last["attempt"], last["kind"], o.stderr)
		}
	}
	t.Run("target elsewhere", func(t *testing.T) {
		ns, ip := vethNetns(t)
		addr, _ := staticNginx(t, ns, "1", ip+":8080", 4096, 100000)
		cpuHog(t, "0")
		o := runPinned(t, "0", staticPlan(t, "hog-remote", addr, params, extra))
		if !strings.Contains(o.stderr, "runs elsewhere: this host runs the generator only") {
			t.Errorf("progress does not say this host runs only the generator")
		}
		check(t, o, true)
	})
	t.Run("target on this host", func(t *testing.T) {
		addr, _ := staticNginx(t, "", "1", "127.0.0.1:0", 4096, 100000)
		cpuHog(t, "0")
		o := runPinned(t, "0", staticPlan(t, "hog-local", addr, params, extra))
		check(t, o, false)
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
