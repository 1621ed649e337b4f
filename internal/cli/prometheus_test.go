package cli

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// `loadramp run` with Prometheus sources (docs/prometheus.md), against the
// real Debian packages (prometheus, prometheus-node-exporter,
// prometheus-process-exporter; scripts/test-deps.sh installs them).

func needBin(t *testing.T, bins ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration")
	}
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (scripts/test-deps.sh installs it)", b)
		}
	}
}

func randID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writePlan writes a plan file into a temporary directory.
func writePlan(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// bgProc is a process a test started; it is killed when the test ends.
type bgProc struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	mu   sync.Mutex
	done chan struct{}
}

func (p *bgProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *bgProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func startBg(t *testing.T, args ...string) *bgProc {
	t.Helper()
	p := &bgProc{cmd: exec.Command(args[0], args[1:]...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", args[0], err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s output:\n%s", filepath.Base(args[len(args)-1]), p.out.String())
			p.mu.Unlock()
		}
	})
	return p
}

// tcpExtIn reads one TcpExt counter of a namespace's own /proc/net/netstat.
func tcpExtIn(t *testing.T, ns, field string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(inNetns(t, ns, "cat", "/proc/net/netstat")))
	var header []string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "TcpExt:" {
			continue
		}
		if header == nil {
			header = f
			continue
		}
		for i, h := range header {
			if h == field && i < len(f) {
				v, _ := strconv.ParseFloat(f[i], 64)
				return v
			}
		}
	}
	t.Fatalf("no TcpExt %s in %s's /proc/net/netstat", field, ns)
	return 0
}

// vethBetween joins two namespaces with a veth pair and returns their
// addresses: a random /30 of 10.64.0.0/10 that exists only inside the two
// namespaces (neither end is in the root namespace).
func vethBetween(t *testing.T, a, b string) (ipA, ipB string) {
	t.Helper()
	id := randID()
	ea, eb := "lrv"+id+"a", "lrv"+id+"b"
	if out, err := exec.Command("ip", "link", "add", ea, "type", "veth", "peer", "name", eb).CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", ea).Run() }) // if still in the root namespace
	for _, c := range [][]string{{"ip", "link", "set", ea, "netns", a}, {"ip", "link", "set", eb, "netns", b}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", c, err, out)
		}
	}
	r := make([]byte, 3)
	_, _ = rand.Read(r)
	base := fmt.Sprintf("10.%d.%d.", 64+r[0]%64, r[1])
	last := r[2] &^ 3
	ipA, ipB = base+strconv.Itoa(int(last)+1), base+strconv.Itoa(int(last)+2)
	inNetns(t, a, "ip", "addr", "add", ipA+"/30", "dev", ea)
	inNetns(t, a, "ip", "link", "set", ea, "up")
	inNetns(t, b, "ip", "addr", "add", ipB+"/30", "dev", eb)
	inNetns(t, b, "ip", "link", "set", eb, "up")
	return ipA, ipB
}

// waitTCPFrom waits until addr accepts a connection made from namespace ns,
// for at most 15 s.
func waitTCPFrom(t *testing.T, ns, addr string) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := exec.Command("ip", "netns", "exec", ns, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", host, port)).Run()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not accept connections from %s within 15 s", addr, ns)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// allFindings lists every finding of every step of report.json.
func allFindings(o runOutcome) []map[string]any {
	var out []map[string]any
	steps, _ := o.report["steps"].([]any)
	for _, s := range steps {
		fs, _ := s.(map[string]any)["findings"].([]any)
		for _, f := range fs {
			out = append(out, f.(map[string]any))
		}
	}
	return out
}

// promSamples reads the prometheus samples of a run's samples.jsonl.
func promSamples(t *testing.T, dir string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "samples.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(b, []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["source"] == "prometheus" {
			out = append(out, m)
		}
	}
	return out
}

// bottleneckStep is the step of report.json the bottleneck names.
func bottleneckStep(t *testing.T, o runOutcome) map[string]any {
	t.Helper()
	idx, att := num(t, o.report, "bottleneck", "step"), num(t, o.report, "bottleneck", "attempt")
	for _, s := range steps(t, o.report) {
		if num(t, s, "index") == idx && num(t, s, "attempt") == att {
			return s
		}
	}
	t.Fatalf("no step %v attempt %v in report.json", idx, att)
	return nil
}

var overflowsRE = regexp.MustCompile(`ListenOverflows \+(\d+)`)

// TestRunNamesListenOverflowFromNodeExporter: two "hosts", each a network
// namespace of the test's own, joined by a veth pair. The target host has
// net.core.somaxconn 4 and runs the event bus (accepting 10 connections a
// second) and node_exporter; loadramp runs on the other host, with a plan
// whose target is static and whose only view of the target host is
// node_exporter. Every request opens a connection (the bus runs with
// --no-keepalive), so the
// bus's accept queue overflows once the rate passes 10/s, and the ramp must
// name listen-overflow on node_exporter's instance from its counters.
//
// No agent runs and no /proc of the target host is read by loadramp: the
// finding's host is the instance and its evidence names node_exporter's
// series; the counter of the namespace loadramp reads (its own) does not
// move while the target's does, by at least what the finding says.
func TestRunNamesListenOverflowFromNodeExporter(t *testing.T) {
	needBin(t, "prometheus-node-exporter")
	gen := netns(t, nil)
	tgt := netns(t, map[string]string{"net.core.somaxconn": "4"})
	genIP, tgtIP := vethBetween(t, gen, tgt)
	_, bus := binaries(t)
	node, busAddr := tgtIP+":9100", tgtIP+":8080"
	startBg(t, "ip", "netns", "exec", tgt, "prometheus-node-exporter", "--web.listen-address="+node,
		"--collector.netstat.fields=^(TcpExt_(Listen.*|Syncookies.*|TCPReqQFull.*|TCPTimeWaitOverflow))$",
		"--collector.sysctl", "--collector.sysctl.include=net.core.somaxconn")
	startBg(t, "ip", "netns", "exec", tgt, bus, "--listen", busAddr, "--accept-rate", "10", "--no-keepalive")
	waitTCPFrom(t, gen, node)
	waitTCPFrom(t, gen, busAddr)
	t.Logf("loadramp on %s (%s), target host %s (%s)", gen, genIP, tgt, tgtIP)

	plan := writePlan(t, "prom-node", fmt.Sprintf(`version: 1
name: prom-node
fleets:
  target:
    provider: static
    outputs:
      endpoint: 'http://%s'
      node_exporter: 'http://%s/metrics'
    prometheus:
      scrape: ['{{ .fleets.target.node_exporter }}']
      metrics:
        overflows: 'node_netstat_TcpExt_ListenOverflows'
workload:
  engine: builtin
  http:
    method: POST
    url: "{{ .fleets.target.endpoint }}/publish?topic=load"
    body: 'm'
    timeout: 3s
parameters:
  - { name: rate, start: 4, max: 64 }
  - { name: connections, start: 16, max: 16 }
ramp: { warmup: 2s, hold: 3s, cooldown: 500ms, confirm: 1, refine: 0 }
gates:
  - latency.p99 < 500ms
  - errors.ratio < 0.01
generator_health:
  - generator.lag.p99 < 500ms
default_checks: { generator_health: false, parameters: false } # the bus closes a connection per request by design
`, busAddr, node))

	genBefore, tgtBefore := tcpExtIn(t, gen, "ListenOverflows"), tcpExtIn(t, tgt, "ListenOverflows")
	o := runOnGeneratorHost(t, gen, plan)
	genAfter, tgtAfter := tcpExtIn(t, gen, "ListenOverflows"), tcpExtIn(t, tgt, "ListenOverflows")
	t.Logf("ListenOverflows: loadramp's namespace %v -> %v, the target host's %v -> %v", genBefore, genAfter, tgtBefore, tgtAfter)

	if o.code != 0 || str(o.report, "status") != "bottleneck" || str(o.report, "bottleneck", "parameter") != "rate" {
		t.Fatalf("exit %d, status %q, bottleneck %v", o.code, str(o.report, "status"), o.report["bottleneck"])
	}
	b := o.report["bottleneck"].(map[string]any)
	fs, _ := b["findings"].([]any)
	var lo map[string]any
	for _, f := range fs {
		if fm := f.(map[string]any); fm["rule"] == "listen-overflow" {
			lo = fm
		}
	}
	if lo == nil {
		t.Fatalf("no listen-overflow at the bottleneck: %v", fs)
	}
	ev := evidence(lo)
	if lo["host"] != node || lo["side"] != "target" {
		t.Errorf("listen-overflow on host %v, side %v; want %s, target", lo["host"], lo["side"], node)
	}
	if !strings.Contains(ev, "node_netstat_TcpExt_ListenOverflows") || !strings.Contains(ev, "from node_exporter at "+node) || strings.Contains(ev, "/proc") {
		t.Errorf("evidence %s: want node_exporter's series, no /proc", ev)
	}
	if s, _ := lo["setting"].(string); !strings.HasPrefix(s, "net.core.somaxconn (now 4)") {
		t.Errorf("setting %q: want the target host's somaxconn, from node_exporter's sysctl collector", s)
	}
	m := overflowsRE.FindStringSubmatch(ev)
	if m == nil {
		t.Fatalf("evidence %s has no ListenOverflows delta", ev)
	}
	seen, _ := strconv.ParseFloat(m[1], 64)
	if seen <= 0 || seen > tgtAfter-tgtBefore {
		t.Errorf("node_exporter saw +%v overflows in the hold; the target host's counter rose by %v in the whole run", seen, tgtAfter-tgtBefore)
	}
	// loadramp's own namespace (the /proc it reads) saw no overflow, and no
	// finding says one happened there.
	if genAfter != genBefore {
		t.Errorf("ListenOverflows moved in loadramp's namespace: %v -> %v", genBefore, genAfter)
	}
	for _, f := range allFindings(o) {
		if f["rule"] == "listen-overflow" && f["host"] != node {
			t.Errorf("listen-overflow on host %v: %v", f["host"], f)
		}
	}
	if v := num(t, bottleneckStep(t, o), "metrics", "prom.overflows"); v <= 0 {
		t.Errorf("prom.overflows = %v/s at the bottleneck", v)
	}
	// Every scrape is in samples.jsonl, with the host figures it gave.
	var withHost int
	for _, s := range promSamples(t, o.dir) {
		if s["instance"] == node && s["host"] != nil {
			withHost++
		}
	}
	if withHost < 5 {
		t.Errorf("%d node_exporter samples with host figures in samples.jsonl", withHost)
	}
}

// TestRunGatesOnPromQL runs plans/local-prometheus.yaml, as shipped: a real
// Prometheus started by the plan scrapes the bus's /metrics, and the gate
// prom.queue.peak < 20 (a PromQL range query over each hold) passes while
// the rate is under the bus's capacity and fails the step where the queue of
// publishes waiting for capacity grows, with the query's value in the
// report.
func TestRunGatesOnPromQL(t *testing.T) {
	needBin(t, "prometheus")
	_, bus := binaries(t)
	o := runCLI(t, "../../plans/local-prometheus.yaml",
		"--set", "fleets.target.processes.eventbus.command[0]="+bus,
		"--set", "static.eventbus_capacity=500",
		"--set", "parameters.rate.start=100",
		"--set", "ramp.warmup=1s", "--set", "ramp.hold=3s", "--set", "ramp.cooldown=500ms", "--set", "ramp.refine=0",
		// Other tests share this machine's two cores: a lagging generator
		// would end the run generator-limited first.
		"--set", "generator_health=[generator.lag.p99 < 500ms]",
	)
	wantTargetBottleneck(t, o, "rate")
	if to := num(t, o.report, "bottleneck", "to"); to != 800 {
		t.Errorf("bottleneck at rate %v, want 800 (the first rate over the capacity of 500/s)", to)
	}
	for _, s := range steps(t, o.report) {
		rate := num(t, s, "parameters", "rate")
		var g map[string]any
		for _, x := range s["gates"].([]any) {
			if xm := x.(map[string]any); xm["metric"] == "prom.queue.peak" {
				g = xm
			}
		}
		if g == nil {
			t.Fatalf("step at rate %v has no prom.queue.peak gate: %v", rate, s["gates"])
		}
		obs, _ := g["observed"].(float64)
		t.Logf("rate %v: %s %v (%v)", rate, s["verdict"], obs, g["explain"])
		switch {
		case g["missing"] == true:
			t.Errorf("rate %v: prom.queue.peak not measured: %v", rate, s["reason"])
		case rate <= 400 && (g["pass"] != true || s["verdict"] != "pass"):
			t.Errorf("rate %v (under the capacity): %v, %v", rate, s["verdict"], g["explain"])
		case rate >= 800 && (g["pass"] == true || obs < 20):
			t.Errorf("rate %v (over the capacity): prom.queue.peak %v passed", rate, obs)
		}
		if rate == 400 {
			// The query reads the bus itself: its publish rate is the load's.
			if p := num(t, s, "metrics", "prom.published"); p < 200 || p > 600 {
				t.Errorf("prom.published = %v at 400 publishes/s", p)
			}
		}
	}
	md, err := os.ReadFile(filepath.Join(o.dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	obs := num(t, o.report["bottleneck"].(map[string]any)["failed_gates"].([]any)[0].(map[string]any), "observed")
	if row := fmt.Sprintf("| `prom.queue.peak < 20` | %s | 20 |", metrics.FormatValue("prom.queue.peak", obs)); !strings.Contains(string(md), row) {
		t.Errorf("report.md lacks the bottleneck's gate row %q:\n%s", row, md)
	}
	html, _ := os.ReadFile(filepath.Join(o.dir, "report.html"))
	if !bytes.Contains(html, []byte(`id="plot-prom-queue"`)) {
		t.Error("report.html has no plot of prom.queue")
	}
	var points int
	for _, s := range promSamples(t, o.dir) {
		if m, _ := s["metrics"].(map[string]any); m != nil && m["queue"] != nil {
			points++
		}
	}
	if points < 10 {
		t.Errorf("%d points of prom.queue in samples.jsonl", points)
	}
}

// TestRunNamesFDLimitFromProcessExporter: the bus runs with --nofile 64
// under a name of the test's own, with process-exporter watching it (a
// monitoring fleet), and the ramp doubles connections. The bus's open-file
// limit is named (fd-process) by this host's direct observation, and
// process-exporter's finding of the same process joins it as "exporter
// agrees" evidence naming its series (docs/prometheus.md).
func TestRunNamesFDLimitFromProcessExporter(t *testing.T) {
	needBin(t, "prometheus-process-exporter")
	_, bus := binaries(t)
	// A name of its own, so process-exporter's group is this bus only.
	name := "ebus" + randID()
	own := filepath.Join(t.TempDir(), name)
	if b, err := os.ReadFile(bus); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(own, b, 0o755); err != nil {
		t.Fatal(err)
	}
	plan := writePlan(t, "prom-fds", fmt.Sprintf(`version: 1
name: prom-fds
fleets:
  target:
    provider: local
    processes:
      - name: %[1]s
        command: [%[2]q, --listen, '127.0.0.1:{{ port "bus" }}', --nofile, '64']
        ready: 'http://127.0.0.1:{{ port "bus" }}/healthz'
    outputs:
      endpoint: 'http://127.0.0.1:{{ port "bus" }}'
  monitoring:
    provider: local
    processes:
      - name: process-exporter
        command: [prometheus-process-exporter, -procnames, %[1]s, -threads=false, -gather-smaps=false,
                  '-web.listen-address=127.0.0.1:{{ port "pe" }}']
        ready: 'http://127.0.0.1:{{ port "pe" }}/metrics'
    outputs:
      metrics: 'http://127.0.0.1:{{ port "pe" }}/metrics'
    prometheus:
      scrape: ['{{ .fleets.monitoring.metrics }}']
      metrics:
        bus_fds: 'namedprocess_namegroup_open_filedesc{groupname=%[1]q}'
workload:
  engine: builtin
  http:
    method: POST
    url: "{{ .fleets.target.endpoint }}/publish?topic=load"
    body: 'm'
    timeout: 2s
parameters:
  - { name: connections, start: 16, max: 256 }
  - { name: rate, start: 200, max: 200 }
ramp: { warmup: 1s, hold: 3s, cooldown: 500ms, confirm: 1, refine: 0 }
gates:
  - errors.ratio < 0.01
  - latency.p99 < 500ms
generator_health:
  - generator.lag.p99 < 500ms
`, name, own))
	o := runCLI(t, plan)
	wantTargetBottleneck(t, o, "connections")
	pe := ""
	for _, s := range promSamples(t, o.dir) {
		pe, _ = s["instance"].(string)
	}
	if pe == "" {
		t.Fatal("no process-exporter sample in samples.jsonl")
	}
	var fd map[string]any
	fs, _ := o.report["bottleneck"].(map[string]any)["findings"].([]any)
	for _, f := range fs {
		if fm := f.(map[string]any); fm["rule"] == "fd-process" && fm["process"] == name {
			fd = fm
		}
	}
	if fd == nil {
		t.Fatalf("no fd-process finding on %s at the bottleneck", name)
	}
	ev := evidence(fd)
	t.Logf("fd-process: host %v, observed %v, evidence %s", fd["host"], fd["observed"], ev)
	if fd["host"] != "local" || fd["side"] != "target" || !strings.Contains(fmt.Sprint(fd["observed"]), "of 64") {
		t.Errorf("fd-process: host %v side %v observed %v", fd["host"], fd["side"], fd["observed"])
	}
	if !strings.Contains(ev, "exporter agrees: ") || !strings.Contains(ev, "namedprocess_namegroup_open_filedesc") || !strings.Contains(ev, "process-exporter at "+pe) {
		t.Errorf("fd-process evidence %s: want process-exporter's finding beside the direct one", ev)
	}
	if v := num(t, bottleneckStep(t, o), "metrics", "prom.bus_fds.peak"); v < 60 {
		t.Errorf("prom.bus_fds.peak = %v at the bottleneck", v)
	}
}

// startPrometheusServer runs Debian's Prometheus on a free loopback port,
// scraping itself every second, and waits until it has.
func startPrometheusServer(t *testing.T) (*bgProc, string) {
	t.Helper()
	dir := t.TempDir()
	addr := freePort(t)
	cfg := fmt.Sprintf("global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n  - job_name: self\n    static_configs: [{targets: ['%s']}]\n", addr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startBg(t, "prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/api/v1/query?query=up")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Contains(b, []byte(`"job":"self"`)) {
				return p, base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus at %s did not scrape itself within 30 s", base)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// runCLIIn runs `loadramp run` in-process with its runs under out.
func runCLIIn(t *testing.T, out string, args ...string) runOutcome {
	t.Helper()
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
	t.Cleanup(func() { t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, o.stdout, o.stderr) })
	return o
}

// afterAttempts calls fn once the run under out has recorded n attempts
// (at most 3 minutes), in the background; wait waits for it.
func afterAttempts(out string, n int, fn func()) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		waitForAttempts(out, n, 3*time.Minute)
		fn()
	}()
	return func() { <-done }
}

// TestRunWhenPrometheusIsDownOrAnswersGarbage: the rules of
// docs/prometheus.md, "When the source fails".
func TestRunWhenPrometheusIsDownOrAnswersGarbage(t *testing.T) {
	needBin(t, "prometheus")
	const rest = `workload:
  engine: builtin
  http:
    method: POST
    url: "{{ .fleets.target.endpoint }}/publish?topic=load"
    body: 'm'
parameters:
  - { name: rate, start: 50, max: 200 }
ramp: { warmup: 1s, hold: 2s, cooldown: 200ms, confirm: 0, refine: 0 }
generator_health:
  - generator.lag.p99 < 500ms
`
	target := func() string {
		_, bus := binaries(t)
		return fmt.Sprintf(`fleets:
  target:
    provider: local
    processes:
      - name: eventbus
        command: [%q, --listen, '127.0.0.1:{{ port "bus" }}']
        ready: 'http://127.0.0.1:{{ port "bus" }}/healthz'
    outputs:
      endpoint: 'http://127.0.0.1:{{ port "bus" }}'
`, bus)
	}

	t.Run("a server that is down stops the run before any load", func(t *testing.T) {
		down := "http://" + freePort(t)
		plan := writePlan(t, "prom-down", "version: 1\nname: prom-down\n"+target()+rest+
			fmt.Sprintf("prometheus: {query: '%s', metrics: {up: 'max(up)'}}\ngates: [errors.ratio < 0.01, prom.up.min > 0]\n", down))
		o := runCLI(t, plan)
		want := "prometheus: the Prometheus server at " + down + " is not reachable"
		if o.code != ExitRuntime || !strings.Contains(o.stderr, want) || !strings.Contains(o.stderr, "the run stops before any load") {
			t.Errorf("exit %d, stderr lacks %q", o.code, want)
		}
		if ss, _ := o.report["steps"].([]any); len(ss) != 0 || str(o.report, "status") != "error" {
			t.Errorf("%d steps ran, status %q", len(ss), str(o.report, "status"))
		}
	})

	t.Run("a page of garbage stops the run before any load", func(t *testing.T) {
		// The bus's /healthz answers "ok": text, not metrics.
		plan := writePlan(t, "prom-garbage", "version: 1\nname: prom-garbage\n"+
			strings.Replace(target(), "    outputs:", "    prometheus: {scrape: ['http://127.0.0.1:{{ port \"bus\" }}/healthz']}\n    outputs:", 1)+
			rest+"gates: [errors.ratio < 0.01]\n")
		o := runCLI(t, plan)
		want := "fleets.target.prometheus: scrape http://127.0.0.1:"
		if o.code != ExitRuntime || !strings.Contains(o.stderr, want) || !strings.Contains(o.stderr, "/healthz: did not answer Prometheus metrics") {
			t.Errorf("exit %d, stderr lacks %q ... did not answer Prometheus metrics", o.code, want)
		}
		if ss, _ := o.report["steps"].([]any); len(ss) != 0 {
			t.Errorf("%d steps ran", len(ss))
		}
	})

	t.Run("a page that turns to garbage mid-run: not measured, the run goes on", func(t *testing.T) {
		var garbage atomic.Bool
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if garbage.Load() {
				fmt.Fprint(w, "<<<< not metrics >>>>\n")
				return
			}
			fmt.Fprintf(w, "# TYPE side_total counter\nside_total %d\n", time.Now().UnixMilli())
		}))
		defer srv.Close()
		plan := writePlan(t, "prom-flaky", "version: 1\nname: prom-flaky\n"+
			strings.Replace(target(), "    outputs:", "    prometheus: {scrape: ['http://127.0.0.1:{{ port \"bus\" }}/metrics'], metrics: {queue: eventbus_queue_depth}}\n    outputs:", 1)+
			rest+fmt.Sprintf("prometheus: {scrape: ['%s/metrics'], metrics: {side: side_total}}\ngates: [errors.ratio < 0.01, prom.queue.peak < 1000]\n", srv.URL))
		out := t.TempDir()
		wait := afterAttempts(out, 1, func() { garbage.Store(true) })
		o := runCLIIn(t, out, plan)
		wait()
		if o.code != 0 || str(o.report, "status") != "max-reached" {
			t.Fatalf("exit %d, status %q: the run should go on", o.code, str(o.report, "status"))
		}
		ss := steps(t, o.report)
		if len(ss) != 3 {
			t.Fatalf("%d steps", len(ss))
		}
		if _, ok := ss[0]["metrics"].(map[string]any)["prom.side"]; !ok {
			t.Errorf("step 1 did not measure prom.side: %v", ss[0]["not_measured"])
		}
		for _, s := range ss[1:] {
			notes := fmt.Sprint(s["not_measured"])
			if _, ok := s["metrics"].(map[string]any)["prom.side"]; ok || !strings.Contains(notes, "prom.side not measured: ") ||
				!strings.Contains(notes, srv.URL+"/metrics was not read during the hold: scrape "+srv.URL+"/metrics: did not answer Prometheus metrics") {
				t.Errorf("step %v: not_measured %s", s["index"], notes)
			}
			if s["verdict"] != "pass" {
				t.Errorf("step %v: %v (%v); a metric no gate reads does not fail a step", s["index"], s["verdict"], s["reason"])
			}
		}
		md, _ := os.ReadFile(filepath.Join(o.dir, "report.md"))
		if !bytes.Contains(md, []byte("## Not measured")) || !bytes.Contains(md, []byte("prom.side not measured: ")) {
			t.Errorf("report.md does not say what was not measured:\n%s", md)
		}
	})

	t.Run("a server that goes down mid-run: a gate on it makes the step an error, which ends the run", func(t *testing.T) {
		prom, base := startPrometheusServer(t)
		plan := writePlan(t, "prom-gone", "version: 1\nname: prom-gone\n"+target()+rest+
			fmt.Sprintf("prometheus: {query: '%s', metrics: {up: 'max(up{job=\"self\"})'}}\ngates: [errors.ratio < 0.01, prom.up.min > 0]\n", base))
		out := t.TempDir()
		wait := afterAttempts(out, 1, func() { _ = prom.cmd.Process.Signal(syscall.SIGKILL) })
		o := runCLIIn(t, out, plan)
		wait()
		ss := steps(t, o.report)
		if o.code != ExitRuntime || str(o.report, "status") != "error" || len(ss) != 2 {
			t.Fatalf("exit %d, status %q, %d steps; want 1, error, 2", o.code, str(o.report, "status"), len(ss))
		}
		if ss[0]["verdict"] != "pass" || num(t, ss[0], "metrics", "prom.up.min") != 1 {
			t.Errorf("step 1: %v, prom.up.min %v", ss[0]["verdict"], ss[0]["metrics"].(map[string]any)["prom.up.min"])
		}
		reason := fmt.Sprint(ss[1]["reason"])
		if ss[1]["verdict"] != "error" || !strings.Contains(reason, "gate metrics not measured: prom.up.min; prom.up not measured: ") ||
			!strings.Contains(reason, "the Prometheus server at "+base+" is not reachable") {
			t.Errorf("step 2: %v: %s", ss[1]["verdict"], reason)
		}
	})
}

// TestPlanRefusesBadPromQL: `loadramp plan` parses PromQL with Prometheus's
// parser (prom.CheckPlan) and names the metric's path and line, beside the
// plan's other problems.
func TestPlanRefusesBadPromQL(t *testing.T) {
	plan := writePlan(t, "bad-promql", `version: 1
name: bad-promql
fleets:
  target: { provider: static, outputs: { endpoint: 'http://127.0.0.1:1' } }
workload:
  engine: builtin
  http: { url: '{{ .fleets.target.endpoint }}/' }
parameters:
  - { name: rate, start: 1, max: 1 }
prometheus:
  query: http://127.0.0.1:9090
  metrics:
    q: 'sum(rate(x[1m])'
gates: [latency.p99 < 1s, prom.q < 1, prom.nope < 1]
`)
	code, _, stderr := runArgs(t, nil, "plan", plan)
	for _, want := range []string{
		`prometheus.metrics.q (line 13): bad PromQL "sum(rate(x[1m])": 1:16: parse error: unclosed left parenthesis`,
		`no prometheus metric is named "nope"`,
	} {
		if code != ExitUsage || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr lacks %q:\n%s", code, want, stderr)
		}
	}
}
