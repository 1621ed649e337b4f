package cli

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Ramps inside network namespaces the tests create, so kernel limits can be
// made tiny without touching the host: /proc/net counters and the net.*
// sysctls are per namespace, and the generator (loadramp) and the target share
// the namespace's loopback.

// helperEnv selects a helper server when this test binary is re-executed as a
// target process (the plan's command is os.Args[0]).
const (
	helperEnv     = "LRTEST_HELPER"
	helperAddrEnv = "LRTEST_ADDR"
)

func init() {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	addr := os.Getenv(helperAddrEnv)
	switch mode {
	case "slow-accept":
		// Accepts one connection per 100 ms: a listen queue of
		// net.core.somaxconn overflows once connections come faster.
		os.Exit(helperServer(addr, 100*time.Millisecond, false))
	case "client-closes":
		// Answers "Connection: close" and leaves the close to the client, so
		// the client's side of every connection ends in TIME_WAIT.
		os.Exit(helperServer(addr, 0, true))
	}
	fmt.Fprintf(os.Stderr, "%s=%q: unknown helper\n", helperEnv, mode)
	os.Exit(2)
}

// helperServer answers one HTTP request per connection. It runs until killed
// (loadramp stops its target processes at the end of a run).
func helperServer(addr string, acceptEvery time.Duration, clientCloses bool) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go serveOne(c, clientCloses)
		if acceptEvery > 0 {
			time.Sleep(acceptEvery)
		}
	}
}

func serveOne(c net.Conn, clientCloses bool) {
	defer c.Close()
	// Long enough that a connection the generator's pool opened ahead of
	// its requests is not closed while it waits for one: its first request
	// would fail on a connection the test, not the server's design, closed.
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, req.Body)
	if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"); err != nil {
		return
	}
	if clientCloses {
		_, _ = io.Copy(io.Discard, br) // until the client's FIN (or the deadline)
	}
}

// netns creates a network namespace with lo up and the given sysctls (name
// under /proc/sys -> value) and deletes it when the test ends. It skips when
// namespaces cannot be made here (not root, no ip).
func netns(t *testing.T, sysctls map[string]string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration")
	}
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (ip netns add)")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "lr-test-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add %s failed (%v): %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	inNetns(t, name, "ip", "link", "set", "lo", "up")
	for k, v := range sysctls {
		path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		inNetns(t, name, "sh", "-c", fmt.Sprintf("echo %q > %s", v, path))
		got := inNetns(t, name, "cat", path)
		if strings.Join(strings.Fields(got), " ") != v {
			t.Fatalf("%s in %s is %q after writing %q", k, name, got, v)
		}
	}
	return name
}

func inNetns(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns exec %s %v: %v: %s", ns, args, err, out)
	}
	return string(out)
}

// helperPlan is a plan whose target is this test binary as helper server mode.
func helperPlan(t *testing.T, name, mode, params, extra string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`version: 1
name: %s
fleets:
  target:
    provider: local
    processes:
      - name: %s
        command: [%q]
        env: { %s: %s, %s: '127.0.0.1:{{ port "srv" }}' }
        ready: 'tcp://127.0.0.1:{{ port "srv" }}'
    outputs:
      endpoint: 'http://127.0.0.1:{{ port "srv" }}'
workload:
  engine: builtin
  http:
    method: GET
    url: "{{ .fleets.target.endpoint }}/"
    timeout: 3s
parameters:
%s
%s
`, name, mode, self, helperEnv, mode, helperAddrEnv, params, extra)
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runInNetns runs bin/loadramp (built for the test) inside ns and reads its report.
func runInNetns(t *testing.T, ns, plan string) runOutcome {
	t.Helper()
	return runInNetnsWrapped(t, ns, plan)
}

// runOnGeneratorHost is runInNetns for a namespace that plays a host running
// only the generator. The namespaces share one kernel, so one kernel log: the
// target's "SYN flooding" would show there too, where a host of its own has
// none of the target's messages. loadramp reads an empty kernel log
// (/dev/null over /dev/kmsg, in a mount namespace of its own).
func runOnGeneratorHost(t *testing.T, ns, plan string) runOutcome {
	t.Helper()
	return runInNetnsWrapped(t, ns, plan, "unshare", "-m", "--propagation", "private", "sh", "-c", `mount --bind /dev/null /dev/kmsg && exec "$@"`, "sh")
}

func runInNetnsWrapped(t *testing.T, ns, plan string, wrap ...string) runOutcome {
	t.Helper()
	lr, _ := binaries(t)
	out := t.TempDir()
	args := append(append([]string{"netns", "exec", ns}, wrap...), lr, "run", plan, "--out", out, "--progress", "plain", "--log-level", "warn")
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("loadramp in %s did not finish in 3 minutes\n%s%s", ns, so.String(), se.String())
	}
	o := runOutcome{stdout: so.String(), stderr: se.String()}
	if err != nil {
		o.code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			o.code = ee.ExitCode()
		}
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

// stepFindings lists the findings of every step attempt: rule/side -> finding.
func stepFindings(o runOutcome) []map[string]map[string]any {
	var out []map[string]map[string]any
	steps, _ := o.report["steps"].([]any)
	for _, s := range steps {
		m := map[string]map[string]any{}
		fs, _ := s.(map[string]any)["findings"].([]any)
		for _, f := range fs {
			fm := f.(map[string]any)
			side, _ := fm["side"].(string)
			m[fmt.Sprint(fm["rule"])+"/"+side] = fm
		}
		out = append(out, m)
	}
	return out
}

func TestNetnsListenOverflow(t *testing.T) {
	ns := netns(t, map[string]string{"net.core.somaxconn": "4"})
	// The server accepts 10 connections/s and closes each after one answer,
	// so every request needs a new connection through the accept queue of 4.
	plan := helperPlan(t, "netns-overflow", "slow-accept",
		"  - { name: rate, start: 4, max: 64 }\n  - { name: connections, start: 16, max: 16 }",
		// The warmup outlasts the SYN retransmits (1 s, 3 s) of the pool's
		// 16 connections opened at once into a queue of 4: the hold sees
		// the overflows of the load, not of the pool's opening.
		"ramp:\n  warmup: 4s\n  hold: 3s\n  cooldown: 500ms\n  confirm: 1\n  refine: 0\n"+
			"gates:\n  - latency.p99 < 500ms\n  - errors.ratio < 0.01\ngenerator_health:\n  - generator.lag.p99 < 500ms\n"+
			// A connection per request is this server's design, not a
			// failure to hold connections.
			"default_checks: { parameters: false }\n")
	o := runInNetns(t, ns, plan)
	if o.code != 0 {
		t.Fatalf("exit %d", o.code)
	}
	if s := str(o.report, "status"); s != "bottleneck" {
		t.Fatalf("status %q, want bottleneck", s)
	}
	if p := str(o.report, "bottleneck", "parameter"); p != "rate" {
		t.Errorf("bottleneck parameter %q, want rate", p)
	}
	if to := num(t, o.report, "bottleneck", "to"); to < 8 || to > 32 {
		t.Errorf("bottleneck at rate %g, want 8..32 for a server accepting 10 connections/s", to)
	}
	b := o.report["bottleneck"].(map[string]any)
	fs, _ := b["findings"].([]any)
	var found map[string]any
	for _, f := range fs {
		if fm := f.(map[string]any); fm["rule"] == "listen-overflow" {
			found = fm
		}
	}
	if found == nil {
		t.Fatalf("no listen-overflow finding at the bottleneck: %v", fs)
	}
	if ev := evidence(found); !strings.Contains(ev, "ListenOverflows +") || !strings.Contains(ev, "net.core.somaxconn = 4") {
		t.Errorf("listen-overflow evidence %s: want the ListenOverflows delta and somaxconn 4", ev)
	}
	// The namespace's somaxconn, not the host's, was audited before the run.
	if got := num(t, o.report, "limits", "net.core.somaxconn"); got != 4 {
		t.Errorf("limits net.core.somaxconn %g, want 4", got)
	}
}

func TestNetnsEphemeralPortsAreTheGenerators(t *testing.T) {
	// 101 local ports, no reuse of TIME_WAIT ports (tcp_tw_reuse is 2,
	// loopback only, by default): the generator's closed connections hold
	// its ports for 60 s.
	ns := netns(t, map[string]string{
		"net.ipv4.ip_local_port_range": "40000 40100",
		"net.ipv4.tcp_tw_reuse":        "0",
	})
	plan := helperPlan(t, "netns-ports", "client-closes",
		"  - { name: rate, start: 200, max: 800 }\n  - { name: connections, start: 8, max: 8 }",
		"ramp:\n  warmup: 1s\n  hold: 3s\n  cooldown: 500ms\n"+
			"gates:\n  - latency.p99 < 500ms\n  - errors.ratio < 0.01\ngenerator_health:\n  - generator.lag.p99 < 500ms\n"+
			"default_checks: { parameters: false }\n")
	o := runInNetns(t, ns, plan)
	if o.code != 0 {
		t.Fatalf("exit %d", o.code)
	}
	if s := str(o.report, "status"); s != "generator-limited" {
		t.Fatalf("status %q, want generator-limited", s)
	}
	if b, ok := o.report["bottleneck"]; ok && b != nil {
		t.Errorf("a run out of the generator's ports reported a target bottleneck: %v", b)
	}
	steps, _ := o.report["steps"].([]any)
	if len(steps) == 0 {
		t.Fatal("no steps")
	}
	first := steps[0].(map[string]any)
	if first["verdict"] != "generator-fail" {
		t.Errorf("first step verdict %v, want generator-fail", first["verdict"])
	}
	f, ok := stepFindings(o)[0]["ephemeral-ports/generator"]
	if !ok {
		t.Fatalf("first step has no generator-side ephemeral-ports finding: %v", stepFindings(o)[0])
	}
	if ev := evidence(f); !strings.Contains(ev, "EADDRNOTAVAIL") {
		t.Errorf("ephemeral-ports evidence %s: want the generator's EADDRNOTAVAIL count", ev)
	}
	if s, _ := f["setting"].(string); !strings.Contains(s, "ip_local_port_range (now 40000 40100)") {
		t.Errorf("setting %q: want the namespace's port range", s)
	}
}
