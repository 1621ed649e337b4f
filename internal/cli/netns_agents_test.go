package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loadramp/loadramp/internal/wiring"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/durationpb"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/orchestrator/agent"
	"github.com/loadramp/loadramp/orchestrator/agents"
)

// Several hosts on one machine: network namespaces joined by a bridge that
// lives in a namespace of its own (the switch), each "host" with its own
// sysctls and netstat counters. loadramp runs in the root namespace as the
// coordinator, reaching the hosts through one veth into the switch; the
// address range is picked at random among unused 10.x.y.0/24 and exists only
// on links into the test's namespaces. Everything is deleted at the end.

// topo is a test's hosts.
type topo struct {
	t      *testing.T
	id     string
	subnet string // "10.x.y"
	root   string // the root namespace's veth
	ns     map[string]string
	addrs  map[string]string
	mu     sync.Mutex
	procs  []*exec.Cmd
}

// newTopo makes the switch and one namespace per host, each with the given
// sysctls (name -> value), host i at <subnet>.<i+2>; the root namespace is
// <subnet>.1.
func newTopo(t *testing.T, hosts []string, sysctls map[string]map[string]string) *topo {
	t.Helper()
	if testing.Short() {
		t.Skip("integration")
	}
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	tp := &topo{t: t, id: hex.EncodeToString(b), ns: map[string]string{}, addrs: map[string]string{}}
	tp.subnet = freeSubnet(t)
	tp.root = "lr15b" + tp.id
	sw := "lr15b-" + tp.id + "-sw"
	t.Cleanup(tp.teardown)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	tp.ns["switch"] = sw
	run("ip", "netns", "add", sw)
	run("ip", "-n", sw, "link", "set", "lo", "up")
	run("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	run("ip", "-n", sw, "link", "set", "br0", "up")
	for i, h := range hosts {
		ns := fmt.Sprintf("lr15b-%s-%s", tp.id, h)
		tp.ns[h] = ns
		tp.addrs[h] = fmt.Sprintf("%s.%d", tp.subnet, i+2)
		run("ip", "netns", "add", ns)
		run("ip", "-n", ns, "link", "set", "lo", "up")
		port := fmt.Sprintf("p%d", i)
		run("ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		run("ip", "-n", sw, "link", "set", port, "master", "br0", "up")
		run("ip", "-n", ns, "addr", "add", tp.addrs[h]+"/24", "dev", "eth0")
		run("ip", "-n", ns, "link", "set", "eth0", "up")
		for k, v := range sysctls[h] {
			path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
			run("ip", "netns", "exec", ns, "sh", "-c", fmt.Sprintf("echo %q > %s", v, path))
		}
	}
	run("ip", "link", "add", tp.root, "type", "veth", "peer", "name", "up0", "netns", sw)
	run("ip", "-n", sw, "link", "set", "up0", "master", "br0", "up")
	run("ip", "addr", "add", tp.subnet+".1/24", "dev", tp.root)
	run("ip", "link", "set", tp.root, "up")
	return tp
}

// freeSubnet picks a 10.x.y.0/24 no interface of the root namespace uses.
func freeSubnet(t *testing.T) string {
	out, err := exec.Command("ip", "-4", "-o", "addr").Output()
	if err != nil {
		t.Fatal(err)
	}
	routes, _ := exec.Command("ip", "-4", "route").Output()
	for range 100 {
		s := fmt.Sprintf("10.%d.%d", 160+mrand.IntN(90), mrand.IntN(256))
		if !bytes.Contains(out, []byte(" "+s+".")) && !bytes.Contains(routes, []byte(s+".")) {
			return s
		}
	}
	t.Fatal("no free 10.x.y.0/24")
	return ""
}

func (tp *topo) teardown() {
	tp.mu.Lock()
	procs := tp.procs
	tp.mu.Unlock()
	for _, c := range procs {
		if c.Process != nil {
			_ = c.Process.Kill()
			_, _ = c.Process.Wait()
		}
	}
	_ = exec.Command("ip", "link", "del", tp.root).Run()
	for _, ns := range tp.ns {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			tp.t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	}
	// Nothing of ours is left: no namespace, no veth, no address.
	out, _ := exec.Command("ip", "netns", "list").Output()
	if bytes.Contains(out, []byte("lr15b-"+tp.id)) {
		tp.t.Errorf("namespaces left: %s", out)
	}
	if out, _ := exec.Command("ip", "-o", "link").Output(); bytes.Contains(out, []byte(tp.root)) {
		tp.t.Errorf("veth %s left", tp.root)
	}
}

// start runs args inside host's namespace until the test ends.
func (tp *topo) start(host string, env []string, args ...string) *exec.Cmd {
	tp.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", tp.ns[host]}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	tp.mu.Lock()
	tp.procs = append(tp.procs, cmd)
	tp.mu.Unlock()
	return cmd
}

// agent is a `loadramp agent` started by the test on one host.
type agentProc struct {
	name, url string
	cmd       *exec.Cmd
	stderr    *bytes.Buffer
}

// startAgent starts loadramp agent on host, listening on its address, with
// the token in a file (none when token is "").
func (tp *topo) startAgent(host, name, token string, wrap ...string) *agentProc {
	return tp.startAgentOn(host, 7070, name, token, wrap...)
}

// startAgentOn is startAgent on another port, with a command (taskset...)
// wrapping the agent's.
func (tp *topo) startAgentOn(host string, port int, name, token string, wrap ...string) *agentProc {
	tp.t.Helper()
	lr, _ := binaries(tp.t)
	addr := fmt.Sprintf("%s:%d", tp.addrs[host], port)
	// The namespaces share one kernel, so one kernel log: the target's
	// "SYN flooding" would show on the generator hosts too, where a host of
	// its own has none of the target's messages. A generator host's agent
	// reads an empty kernel log (/dev/null over /dev/kmsg, in a mount
	// namespace of its own).
	if host != "target" {
		wrap = append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c", `mount --bind /dev/null /dev/kmsg && exec "$@"`, "sh"}, wrap...)
	}
	args := append(append([]string{}, wrap...), lr, "agent", "--listen", addr, "--name", name, "--log-format", "json")
	if token != "" {
		f := filepath.Join(tp.t.TempDir(), "token")
		if err := os.WriteFile(f, []byte(token+"\n"), 0o600); err != nil {
			tp.t.Fatal(err)
		}
		args = append(args, "--token-file", f)
	}
	cmd := tp.start(host, []string{"XDG_CONFIG_HOME=" + tp.t.TempDir(), wiring.EnvAgentToken + "="}, args...)
	a := &agentProc{name: name, url: "http://" + addr, cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = a.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tp.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tp.t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.Contains(line, "agent "+name+" listening on") {
		tp.t.Fatalf("agent %s on %s: first line %q (%v); stderr %s", name, host, line, err, a.stderr)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return a
}

// runLoadramp runs `loadramp run` in the root namespace with env and
// returns its outcome once it exits (within 3 minutes).
func runLoadramp(t *testing.T, plan string, env []string, during func(out string)) runOutcome {
	t.Helper()
	lr, _ := binaries(t)
	out := t.TempDir()
	cmd := exec.Command(lr, "run", plan, "--out", out, "--progress", "plain", "--log-level", "warn")
	cmd.Env = append(os.Environ(), append([]string{"XDG_CONFIG_HOME=" + t.TempDir()}, env...)...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if during != nil {
		during(out)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("loadramp did not finish in 3 minutes\n%s%s", so.String(), se.String())
	}
	o := runOutcome{stdout: so.String(), stderr: se.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		o.code = ee.ExitCode()
	} else if err != nil {
		o.code = -1
	}
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", o.code, o.stdout, o.stderr)
	if entries, _ := os.ReadDir(out); len(entries) == 1 {
		o.dir = filepath.Join(out, entries[0].Name())
		if b, err := os.ReadFile(filepath.Join(o.dir, "report.json")); err == nil {
			if err := json.Unmarshal(b, &o.report); err != nil {
				t.Fatalf("report.json: %v", err)
			}
		}
	}
	return o
}

// agentsPlan is a plan whose target is static with an agent on its host,
// and whose generators are the given agents.
func (tp *topo) agentsPlan(name, endpoint string, gens []string, params, extra string) string {
	tp.t.Helper()
	comm := "slowsrv"
	var eps []string
	for _, g := range gens {
		eps = append(eps, fmt.Sprintf("        - { name: %s, url: \"http://%s:7070\" }", g, tp.addrs[g]))
	}
	body := fmt.Sprintf(`version: 1
name: %s
fleets:
  target:
    provider: static
    outputs: { endpoint: %q }
    agents:
      endpoints: [{ name: target-host, url: "http://%s:7070" }]
      processes: [%q]
  generators:
    provider: static
    agents:
      endpoints:
%s
workload:
  engine: builtin
  http:
    method: GET
    url: "{{ .fleets.target.endpoint }}"
    timeout: 3s
parameters:
%s
%s
`, name, endpoint, tp.addrs["target"], comm, strings.Join(eps, "\n"), params, extra)
	path := filepath.Join(tp.t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		tp.t.Fatal(err)
	}
	return path
}

// steps reads a run's steps.jsonl.
func readSteps(t *testing.T, dir string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "steps.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestNetnsAgentsAcrossHosts(t *testing.T) {
	// Without SYN cookies a full queue drops SYNs (the client retries the
	// SYN at 1 s and 3 s, within the warmup), as the test's timing expects.
	// With them, a burst of dials can complete on the client's side while
	// the server drops their ACKs, and their requests then wait out data
	// retransmits into the hold.
	tp := newTopo(t, []string{"target", "gen-a", "gen-b"}, map[string]map[string]string{
		"target": {"net.core.somaxconn": "16", "net.ipv4.tcp_syncookies": "0"},
	})
	const token = "s3cret-token-of-the-fleet"
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The target server is this test binary under a name of its own, so
	// the target host's agent finds it, and only it, by that name.
	srv := filepath.Join(t.TempDir(), "slowsrv")
	if out, err := exec.Command("cp", self, srv).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	// The target host: a server that accepts 10 connections/s and closes
	// each after one answer (its accept queue of 16 overflows beyond), the
	// event bus (fast, for the fixed-rate runs), and an agent.
	slow := tp.start("target", []string{helperEnv + "=slow-accept", helperAddrEnv + "=" + tp.addrs["target"] + ":8080"}, srv)
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	_, bus := binaries(t)
	busCmd := tp.start("target", nil, bus, "--listen", tp.addrs["target"]+":8081", "--nofile", "4096")
	if err := busCmd.Start(); err != nil {
		t.Fatal(err)
	}
	tp.startAgent("target", "target-host", token)
	gens := map[string]*agentProc{}
	for _, g := range []string{"gen-a", "gen-b"} {
		gens[g] = tp.startAgent(g, g, token)
	}
	waitHTTP(t, "http://"+tp.addrs["target"]+":8081/healthz")
	tokenEnv := []string{wiring.EnvAgentToken + "=" + token}

	t.Run("token refused", func(t *testing.T) {
		plan := tp.agentsPlan("netns-token", "http://"+tp.addrs["target"]+":8081/healthz", []string{"gen-a", "gen-b"},
			"  - { name: rate, start: 100, max: 100 }", "ramp: { warmup: 0s, hold: 1s }\ngates: [latency.p99 < 1s]\n")
		for _, c := range []struct{ env, why string }{
			{wiring.EnvAgentToken + "=wrong", "agent gen-a: wrong bearer token"},
			{wiring.EnvAgentToken + "=", "agent gen-a: no bearer token in the call"},
		} {
			o := runLoadramp(t, plan, []string{c.env}, nil)
			if o.code != 1 {
				t.Errorf("%s: exit %d, want 1", c.env, o.code)
			}
			msg := strings.Join(strings.Fields(o.stderr), " ")
			want := "agent gen-a (http://" + tp.addrs["gen-a"] + ":7070) refused the coordinator's token (401): " + c.why
			if !strings.Contains(msg, want) {
				t.Errorf("%s: stderr does not say %q", c.env, want)
			}
			if strings.Contains(o.stdout, "step  1") {
				t.Errorf("%s: a step ran", c.env)
			}
		}
	})

	t.Run("no token on a host address", func(t *testing.T) {
		lr, _ := binaries(t)
		cmd := exec.Command("ip", "netns", "exec", tp.ns["gen-a"], lr, "agent", "--listen", tp.addrs["gen-a"]+":7071")
		cmd.Env = append(os.Environ(), wiring.EnvAgentToken+"=", "XDG_CONFIG_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "refusing to listen on "+tp.addrs["gen-a"]+" without a token") {
			t.Errorf("agent without a token on %s: %v: %s", tp.addrs["gen-a"], err, out)
		}
	})

	t.Run("listen overflow on the target host", func(t *testing.T) {
		plan := tp.agentsPlan("netns-overflow", "http://"+tp.addrs["target"]+":8080/", []string{"gen-a", "gen-b"},
			"  - { name: rate, start: 4, max: 64 }\n  - { name: connections, start: 48, max: 48 }",
			// The warmup outlasts the SYN retransmits (1 s, 3 s) of the pool's
			// connections opened at once; a connection per request is this
			// server's design, not a failure to hold connections.
			"ramp:\n  warmup: 4s\n  hold: 3s\n  cooldown: 500ms\n  confirm: 1\n  refine: 0\n"+
				"gates:\n  - latency.p99 < 500ms\n  - errors.ratio < 0.01\ngenerator_health:\n  - generator.lag.p99 < 500ms\n"+
				"default_checks: { parameters: false }\n")
		o := runLoadramp(t, plan, tokenEnv, nil)
		noSecret(t, o.dir, token)
		if o.code != 0 || str(o.report, "status") != "bottleneck" {
			t.Fatalf("exit %d, status %q: want a bottleneck", o.code, str(o.report, "status"))
		}
		b := o.report["bottleneck"].(map[string]any)
		var found map[string]any
		for _, f := range b["findings"].([]any) {
			fm := f.(map[string]any)
			if fm["rule"] == "listen-overflow" {
				if fm["host"] != "target-host" {
					t.Errorf("listen-overflow on host %v, want target-host (the coordinator's is not the target)", fm["host"])
				}
				found = fm
			}
		}
		if found == nil {
			for _, s := range readSteps(t, o.dir) {
				t.Logf("step %v (%v %v) %v: failed gates %v, failed health %v, metrics %v", s["index"], s["kind"], s["parameters"], s["verdict"],
					s["failed_gates"], s["failed_health"], s["metrics"])
				t.Logf("step %v hosts: %v", s["index"], s["hosts"])
			}
			t.Fatalf("no listen-overflow finding at the bottleneck: %v", b["findings"])
		}
		if ev := evidence(found); !strings.Contains(ev, "ListenOverflows +") || !strings.Contains(ev, "net.core.somaxconn = 16") {
			t.Errorf("listen-overflow evidence %s: want the target host's ListenOverflows and somaxconn 16", ev)
		}
		// The limits audit covers every host with an agent, each its own.
		if got := num(t, o.report, "limits", "hosts", "target-host", "net.core.somaxconn"); got != 16 {
			t.Errorf("target-host's somaxconn %g, want 16", got)
		}
		if got := num(t, o.report, "limits", "hosts", "gen-a", "net.core.somaxconn"); got == 16 {
			t.Errorf("gen-a's somaxconn is the target's 16: hosts mixed up")
		}
		if _, ok := o.report["limits"].(map[string]any)["net.core.somaxconn"]; ok {
			t.Errorf("the coordinator's own limits were audited although nothing of the run runs here")
		}
		// Each step records every host and every agent's share.
		for _, s := range readSteps(t, o.dir) {
			hosts := map[string]map[string]any{}
			for _, h := range s["hosts"].([]any) {
				hm := h.(map[string]any)
				hosts[hm["host"].(string)] = hm
			}
			for _, h := range []string{"target-host", "gen-a", "gen-b"} {
				if hm, ok := hosts[h]; !ok || hm["error"] != nil {
					t.Errorf("step %v: host %s missing or not observed: %v", s["index"], h, hm)
				}
			}
			if _, ok := hosts["local"]; ok {
				t.Errorf("step %v: this machine was sampled although nothing of the run runs on it", s["index"])
			}
			for _, f := range s["findings"].([]any) {
				if h := f.(map[string]any)["host"]; h != "target-host" && h != "gen-a" && h != "gen-b" {
					t.Errorf("step %v: a finding names host %v", s["index"], h)
				}
			}
			checkShares(t, s)
		}
	})

	t.Run("merged measurement is exact", func(t *testing.T) {
		// Through loadramp: the merged count is the agents' sum, the merged
		// p99 lies within theirs.
		plan := tp.agentsPlan("netns-merge", "http://"+tp.addrs["target"]+":8081/healthz", []string{"gen-a", "gen-b"},
			"  - { name: rate, start: 400, max: 400 }\n  - { name: connections, start: 8, max: 8 }",
			"ramp: { warmup: 1s, hold: 3s, cooldown: 0s, confirm: 0 }\ngates: [latency.p99 < 2s, errors.ratio < 0.01]\ngenerator_health: [generator.lag.p99 < 1s]\n")
		o := runLoadramp(t, plan, tokenEnv, nil)
		noSecret(t, o.dir, token)
		if o.code != 0 {
			t.Fatalf("exit %d", o.code)
		}
		steps := readSteps(t, o.dir)
		if len(steps) != 1 {
			t.Fatalf("%d steps, want 1", len(steps))
		}
		checkShares(t, steps[0])

		// Against the raw histograms: the agents' own, decoded off the wire,
		// replayed value by value into one histogram of their union.
		ctx := context.Background()
		var eps []agents.Endpoint
		for _, g := range []string{"gen-a", "gen-b"} {
			eps = append(eps, agents.Endpoint{Name: g, URL: gens[g].url})
		}
		f, err := agents.DialFleet(ctx, eps, agents.Options{Version: Version, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.RunStep(ctx, agents.StepSpec{ID: "exact-" + tp.id, Workload: httpWorkload("http://" + tp.addrs["target"] + ":8081/healthz"),
			Params: map[string]float64{"rate": 500, "connections": 8}, Shares: agents.Shares(false), Warmup: time.Second, Hold: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		union := newUnion()
		var sum int64
		for _, a := range res.Agents {
			union.add(a.Result.Latency)
			sum += a.Result.Requests
			if a.Result.Requests == 0 {
				t.Errorf("agent %s sent nothing", a.Agent)
			}
		}
		if res.Merged.Requests != sum || res.Merged.Latency.TotalCount() != union.h.TotalCount() {
			t.Errorf("merged count %d (histogram %d), want the sum %d (union %d)", res.Merged.Requests, res.Merged.Latency.TotalCount(), sum, union.h.TotalCount())
		}
		for _, q := range []float64{50, 90, 99, 99.9, 100} {
			if m, u := res.Merged.Latency.ValueAtQuantile(q), union.h.ValueAtQuantile(q); m != u {
				t.Errorf("merged p%g %dµs, the union's %dµs", q, m, u)
			}
		}
		t.Logf("p99: merged %dµs, agents %dµs and %dµs", res.Merged.Latency.ValueAtQuantile(99),
			res.Agents[0].Result.Latency.ValueAtQuantile(99), res.Agents[1].Result.Latency.ValueAtQuantile(99))
	})

	t.Run("a starved agent", func(t *testing.T) {
		// gen-a's second agent runs pinned to one CPU beside a hog that
		// outranks it (nice -19): it gets about a seventieth of that CPU,
		// waits on the run queue. It may still keep its schedule (its
		// share, 800 req/s, needs little CPU: CI saw it at 0.014 of a core,
		// lag p99 19 ms), so what names it is its starvation, which read
		// 0.887 and 0.890 in CI and 0.98-1.04 here: the plan judges it at
		// 0.5, not 0.9 (under 0.9, both CI readings let the step pass).
		// The agent beside it, not pinned, read 0.04. The
		// generators fleet also starts one agent on this machine, which it
		// grows. The hog goes away once the step has been judged (a noisy
		// neighbour moving on); the rerun runs on the grown fleet.
		cpu := lastCPU(t)
		hog := tp.start("gen-a", nil, "taskset", "-c", cpu, "sh", "-c", "while :; do :; done")
		if err := hog.Start(); err != nil {
			t.Fatal(err)
		}
		starved := tp.startAgentOn("gen-a", 7072, "gen-a-starved", token, "nice", "-n", "19", "taskset", "-c", cpu)
		defer func() { _ = starved.cmd.Process.Kill() }()
		plan := filepath.Join(t.TempDir(), "starved.yaml")
		body := fmt.Sprintf(`version: 1
name: netns-starved
fleets:
  target:
    provider: static
    outputs: { endpoint: "http://%s:8081/healthz" }
  generators:
    provider: local
    agents:
      endpoints: [{ name: gen-a-starved, url: %q }]
      local: 1
workload:
  engine: builtin
  http: { method: GET, url: "{{ .fleets.target.endpoint }}", timeout: 3s }
parameters:
  - { name: rate, start: 1600, max: 1600 }
  - { name: connections, start: 8, max: 8 }
ramp: { warmup: 1s, hold: 3s, cooldown: 0s, confirm: 0, refine: 0 }
gates: [latency.p99 < 2s, errors.ratio < 0.01]
generator_health: [generator.lag.p99 < 250ms, generator.starved.ratio < 0.5]
`, tp.addrs["target"], starved.url)
		if err := os.WriteFile(plan, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		o := runLoadramp(t, plan, tokenEnv, func(out string) {
			// The neighbour moves on once the first attempt is recorded.
			if waitForAttempts(out, 1, 2*time.Minute) != "" {
				_ = hog.Process.Kill()
			}
		})
		noSecret(t, o.dir, token) // the local agents got it in their environment only
		if o.code != 0 {
			t.Fatalf("exit %d", o.code)
		}
		steps := readSteps(t, o.dir)
		for _, s := range steps {
			b, _ := json.Marshal(s["agents"])
			t.Logf("attempt %v agents: %s", s["attempt"], b)
		}
		if len(steps) != 2 {
			t.Fatalf("%d attempts, want 2 (the starved one and the rerun)", len(steps))
		}
		first, rerun := steps[0], steps[1]
		if first["verdict"] != "generator-fail" || !strings.Contains(first["reason"].(string), "agent gen-a-starved") {
			t.Errorf("first attempt: %v (%v), want generator-fail naming gen-a-starved", first["verdict"], first["reason"])
		}
		var named map[string]any
		for _, f := range first["findings"].([]any) {
			if fm := f.(map[string]any); fm["rule"] == "generator-saturated" && fm["host"] == "gen-a-starved" {
				named = fm
			}
		}
		if named == nil || !strings.Contains(evidence(named), "generator.starved.ratio") {
			t.Errorf("no generator-saturated finding on gen-a-starved with its starvation: %v", first["findings"])
		}
		// The starvation was gen-a-starved's: this machine's diagnosis does
		// not read the agents' generator figures as its own threads'.
		for _, f := range first["findings"].([]any) {
			if fm := f.(map[string]any); strings.Contains(evidence(fm), "loadramp's threads waited") {
				t.Errorf("finding %v on host %v blames this machine's loadramp for an agent's starvation", fm["rule"], fm["host"])
			}
		}
		// The starved agent waited on the run queue more than the other
		// one (which, on a busy machine, may lag too).
		starvation := map[string]float64{}
		for _, a := range first["agents"].([]any) {
			am := a.(map[string]any)
			starvation[am["agent"].(string)] = am["metrics"].(map[string]any)["generator.starved.ratio"].(float64)
		}
		if starvation["gen-a-starved"] <= starvation["generators-agent-1"] {
			t.Errorf("starvation %v: the starved agent's is not the larger", starvation)
		}
		if n := len(first["agents"].([]any)); n != 2 {
			t.Errorf("first attempt on %d agents, want 2", n)
		}
		if rerun["kind"] != "rerun" || rerun["verdict"] != "pass" {
			t.Errorf("second attempt: %v %v (%v), want a passing rerun", rerun["kind"], rerun["verdict"], rerun["reason"])
		}
		if n := len(rerun["agents"].([]any)); n != 3 {
			t.Errorf("rerun on %d agents, want 3 (the fleet grown)", n)
		}
		checkShares(t, rerun)
	})

	t.Run("an agent killed mid-step", func(t *testing.T) {
		plan := tp.agentsPlan("netns-kill", "http://"+tp.addrs["target"]+":8081/healthz", []string{"gen-a", "gen-b"},
			"  - { name: rate, start: 200, max: 200 }\n  - { name: connections, start: 4, max: 4 }",
			"ramp: { warmup: 1s, hold: 20s, cooldown: 0s, confirm: 0 }\ngates: [latency.p99 < 2s]\n")
		ctx := context.Background()
		watch := func(g string) *agents.Client {
			c, err := agents.Dial(ctx, agents.Endpoint{Name: g, URL: gens[g].url}, agents.Options{Version: Version, Token: token})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		ca := watch("gen-a")
		o := runLoadramp(t, plan, tokenEnv, func(string) {
			// Kill gen-b's agent once its step runs.
			cb := watch("gen-b")
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
				h, err := cb.Health(ctx)
				if err == nil && h.StepState == "running" {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("gen-b never ran a step")
					return
				}
			}
			_ = gens["gen-b"].cmd.Process.Signal(syscall.SIGKILL)
		})
		noSecret(t, o.dir, token)
		if o.code != 1 {
			t.Errorf("exit %d, want 1 (the run ended in error)", o.code)
		}
		steps := readSteps(t, o.dir)
		if len(steps) != 1 || steps[0]["verdict"] != "error" {
			t.Fatalf("steps %v: want one attempt, an error", steps)
		}
		reason, _ := steps[0]["reason"].(string)
		if !strings.Contains(reason, "agent gen-b lost during step") {
			t.Errorf("reason %q does not name the lost agent", reason)
		}
		if str(o.report, "status") != "error" || o.report["bottleneck"] != nil {
			t.Errorf("status %q, bottleneck %v: a lost agent is an error, never a verdict on the target", str(o.report, "status"), o.report["bottleneck"])
		}
		// The other agent's load stopped with the step.
		h, err := ca.Health(ctx)
		if err != nil || h.StepState == "running" || h.StepState == "waiting" {
			t.Errorf("gen-a after the run: %v %v: its load still runs", h, err)
		}
		if len(h.GetObservations()) != 0 {
			t.Errorf("gen-a still has sampling windows open: %v", h.GetObservations())
		}
	})
}

// noSecret asserts that no file of the run directory holds secret.
func noSecret(t *testing.T, dir, secret string) {
	t.Helper()
	if dir == "" {
		t.Fatal("no run directory")
	}
	n := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the agents' token", path)
		}
		return nil
	})
	if err != nil || n < 5 {
		t.Errorf("walking %s: %v (%d files)", dir, err, n)
	}
}

// checkShares asserts that a step's agents' shares add up to its load and
// its merged count.
func checkShares(t *testing.T, s map[string]any) {
	t.Helper()
	as, _ := s["agents"].([]any)
	if len(as) == 0 {
		t.Errorf("step %v records no agent", s["index"])
		return
	}
	params := s["parameters"].(map[string]any)
	sums := map[string]float64{}
	var requests float64
	var p99s []float64
	for _, a := range as {
		am := a.(map[string]any)
		for k, v := range am["parameters"].(map[string]any) {
			sums[k] += v.(float64)
		}
		m, _ := am["metrics"].(map[string]any)
		if m == nil {
			t.Errorf("step %v: agent %v has no measurement", s["index"], am["agent"])
			continue
		}
		requests += m["requests.count"].(float64)
		p99s = append(p99s, m["latency.p99"].(float64))
	}
	for k, v := range params {
		if sums[k] != v.(float64) {
			t.Errorf("step %v: the agents' %s add up to %g, not %v", s["index"], k, sums[k], v)
		}
	}
	m := s["metrics"].(map[string]any)
	if m["requests.count"].(float64) != requests {
		t.Errorf("step %v: merged requests %v, the agents' sum %g", s["index"], m["requests.count"], requests)
	}
	if p99 := m["latency.p99"].(float64); p99 < minOf(p99s) || p99 > maxOf(p99s) {
		t.Errorf("step %v: merged p99 %g outside the agents' %v", s["index"], p99, p99s)
	}
}

// lastCPU is the last CPU this process may run on.
func lastCPU(t *testing.T) string {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	last := -1
	for i := range 1024 {
		if set.IsSet(i) {
			last = i
		}
	}
	return fmt.Sprint(last)
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// waitHTTP waits until url answers.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r, err := httpGet(url); err == nil && r == 200 {
			return
		}
	}
	t.Fatalf("%s did not answer", url)
}

func httpGet(url string) (int, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	r, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	r.Body.Close()
	return r.StatusCode, nil
}

func httpWorkload(url string) *agentv1.Workload {
	return &agentv1.Workload{Kind: &agentv1.Workload_Http{Http: &agentv1.HttpWorkload{Requests: []*agentv1.HttpRequest{{Method: "GET", Url: []*agentv1.TemplatePart{{Text: url}}}}, Timeout: durationpb.New(3 * time.Second)}}}
}

// union is a histogram of every value of other histograms, rebuilt value by
// value from their counts (not with Merge, the function under test).
type union struct{ h *hdrhistogram.Histogram }

func newUnion() *union { return &union{h: agent.NewHist(agent.HistDigits)} }

func (u *union) add(h *hdrhistogram.Histogram) {
	for _, b := range h.Distribution() {
		if b.Count > 0 {
			_ = u.h.RecordValues(b.From, b.Count)
		}
	}
}
