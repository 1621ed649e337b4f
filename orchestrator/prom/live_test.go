package prom

// Tests against the real Debian packages (prometheus, prometheus-node-exporter,
// prometheus-process-exporter; scripts/test-deps.sh installs them) and the
// bundled event bus, on loopback or inside a network namespace the test makes.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

var (
	busOnce sync.Once
	busBin  string
	busErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// bus builds cmd/eventbus once, under a name of its own (ebus + 6 hex
// digits), so process-exporter can tell it from other buses on the machine.
func bus(t *testing.T) string {
	t.Helper()
	busOnce.Do(func() {
		binDir, busErr = os.MkdirTemp("", "lr-prom-bin-")
		if busErr != nil {
			return
		}
		busBin = filepath.Join(binDir, "ebus"+randHex(3))
		out, err := exec.Command("go", "build", "-o", busBin, "../../cmd/eventbus").CombinedOutput()
		if err != nil {
			busErr = fmt.Errorf("go build cmd/eventbus: %v: %s", err, out)
		}
	})
	if busErr != nil {
		t.Fatal(busErr)
	}
	return busBin
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func integration(t *testing.T, bins ...string) {
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

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a process the test started; it is killed when the test ends.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process is waited for
	mu   sync.Mutex
	out  bytes.Buffer
}

// kill ends the process and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), p.output())
		}
	})
	return p
}

// waitOK polls u until it answers 200, for at most 15 s.
func waitOK(t *testing.T, u string) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within 15 s: %v", u, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run runs a command and fails the test on error.
func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// netnsHost is a network namespace joined to the root namespace by a veth
// pair, with addresses that exist only on that pair: a "host" of its own with
// its own sysctls and TcpExt counters.
type netnsHost struct {
	name   string
	hostIP string // the namespace's side
}

func newNetnsHost(t *testing.T, sysctls map[string]string) *netnsHost {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed")
	}
	id := randHex(4)
	n := &netnsHost{name: "lr-prom-" + id}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.name, err, out)
		}
	})
	outer, inner := "lrp"+id+"a", "lrp"+id+"b"
	// A /30 in 10.64.0.0/10 not routed on this machine yet.
	var subnet [3]byte
	for range 20 {
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		subnet = [3]byte{64 + b[0]%64, b[1], b[2] &^ 3}
		cidr := fmt.Sprintf("10.%d.%d.%d/30", subnet[0], subnet[1], subnet[2])
		if out, _ := exec.Command("ip", "-4", "route", "show", "to", "match", cidr).Output(); !strings.Contains(string(out), "dev lrp") {
			break
		}
	}
	outerIP := fmt.Sprintf("10.%d.%d.%d", subnet[0], subnet[1], subnet[2]+1)
	n.hostIP = fmt.Sprintf("10.%d.%d.%d", subnet[0], subnet[1], subnet[2]+2)
	run(t, "ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", outer).Run() })
	run(t, "ip", "link", "set", inner, "netns", n.name)
	run(t, "ip", "addr", "add", outerIP+"/30", "dev", outer)
	run(t, "ip", "link", "set", outer, "up")
	n.exec(t, "ip", "addr", "add", n.hostIP+"/30", "dev", inner)
	n.exec(t, "ip", "link", "set", inner, "up")
	n.exec(t, "ip", "link", "set", "lo", "up")
	for k, v := range sysctls {
		n.exec(t, "sysctl", "-q", "-w", k+"="+v)
	}
	return n
}

func (n *netnsHost) exec(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "netns", "exec", n.name}, args...)...)
}

// tcpExt reads one TcpExt counter of the namespace's own /proc/net/netstat.
func (n *netnsHost) tcpExt(t *testing.T, field string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(n.exec(t, "cat", "/proc/net/netstat")))
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
	t.Fatalf("no TcpExt %s in the namespace's /proc/net/netstat", field)
	return 0
}

// TestNodeExporterInNetnsNamesListenOverflow: a "host" with net.core.somaxconn
// 4 runs node_exporter and the event bus; the bus stops accepting (SIGSTOP)
// while connections arrive from outside, so its accept queue overflows. The
// Source, scraping only node_exporter over the veth, must see the overflow
// and the diagnosis must name listen-overflow on that instance. Nothing here
// reads /proc of the namespace loadramp runs in: the figures are node_exporter's
// and match the namespace's own counters exactly, and the evidence names
// node_exporter's series.
func TestNodeExporterInNetnsNamesListenOverflow(t *testing.T) {
	integration(t, "prometheus-node-exporter")
	ns := newNetnsHost(t, map[string]string{"net.core.somaxconn": "4"})
	nodeURL := "http://" + ns.hostIP + ":9100/metrics"
	start(t, "ip", "netns", "exec", ns.name, "prometheus-node-exporter", "--web.listen-address="+ns.hostIP+":9100",
		"--collector.netstat.fields=^(TcpExt_(Listen.*|Syncookies.*|TCPReqQFull.*|TCPTimeWaitOverflow))$",
		"--collector.sysctl", "--collector.sysctl.include=net.core.somaxconn")
	busAddr := ns.hostIP + ":8080"
	busProc := start(t, "ip", "netns", "exec", ns.name, bus(t), "--listen", busAddr)
	waitOK(t, nodeURL)
	waitOK(t, "http://"+busAddr+"/healthz")

	src, err := New(Config{Scrape: []string{nodeURL}, Side: hoststat.SideTarget, Interval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := src.Check(ctx); err != nil {
		t.Fatal(err)
	}
	before := ns.tcpExt(t, "ListenOverflows")
	step := src.Start(ctx, StepSpec{})
	time.Sleep(600 * time.Millisecond)
	// `ip netns exec` execs the bus itself: its pid is the bus's.
	if err := busProc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	for range 24 { // bounded: 24 dials of at most 500 ms
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", busAddr, 500*time.Millisecond)
			if err == nil {
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// The kernel completes handshakes the full queue cannot take and counts
	// each dropped ACK; give the SYN-ACK retransmits a second.
	time.Sleep(1500 * time.Millisecond)
	res := step.Stop(ctx)
	after := ns.tcpExt(t, "ListenOverflows")
	for _, c := range conns {
		c.Close()
	}
	_ = busProc.cmd.Process.Signal(syscall.SIGCONT)

	if len(res.Hosts) != 1 {
		t.Fatalf("hosts %+v, problems %v", res.Hosts, res.Problems)
	}
	h := res.Hosts[0]
	inst := ns.hostIP + ":9100"
	if h.Instance != inst || h.Source != "node_exporter at "+inst {
		t.Errorf("host %q source %q", h.Instance, h.Source)
	}
	got := h.Summary.Deltas[hoststat.HostListenOverflows]
	t.Logf("ListenOverflows: node_exporter window +%v, namespace's own counter %v -> %v", got, before, after)
	if got <= 0 || got > after-before {
		t.Errorf("node_exporter saw +%v overflows; the namespace's counter rose by %v", got, after-before)
	}
	var lo *diagnoseFinding
	for _, f := range res.Findings() {
		if f.Rule == diagnose.RuleListenOverflow {
			lo = &diagnoseFinding{f.Host, f.Side, f.Setting + " | " + strings.Join(f.Evidence, " | ")}
		}
	}
	if lo == nil {
		t.Fatalf("no listen-overflow finding: %+v", res.Findings())
	}
	if lo.host != inst || lo.side != hoststat.SideTarget {
		t.Errorf("listen-overflow on host %q side %q, want %q target", lo.host, lo.side, inst)
	}
	// The setting's value comes from node_exporter's sysctl collector.
	if !strings.HasPrefix(lo.evidence, "net.core.somaxconn (now 4) and the listen backlog | ") {
		t.Errorf("setting: %q", lo.evidence)
	}
	if !strings.Contains(lo.evidence, "node_netstat_TcpExt_ListenOverflows") || !strings.Contains(lo.evidence, "from node_exporter at "+inst) || strings.Contains(lo.evidence, "/proc") {
		t.Errorf("evidence %q", lo.evidence)
	}
}

type diagnoseFinding struct{ host, side, evidence string }

// startBus runs the event bus on a free loopback port and returns its address.
func startBus(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := start(t, bus(t), append([]string{"--listen", addr}, args...)...)
	waitOK(t, "http://"+addr+"/healthz")
	return p, addr
}

// startPrometheus runs Debian's Prometheus on a free loopback port, scraping
// the targets (job name -> host:port) every second, and waits until every
// target is up.
func startPrometheus(t *testing.T, targets map[string]string) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\nscrape_configs:\n")
	for _, job := range sortedKeys(targets) {
		fmt.Fprintf(&cfg, "  - job_name: %s\n    static_configs: [{targets: ['%s']}]\n", job, targets[job])
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	p := start(t, "prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+strings.TrimPrefix(base, "http://"),
		"--log.level=warn")
	waitOK(t, base+"/-/ready")
	q, err := NewQuerier(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, _, err := q.api.Query(context.Background(), "count(up == 1)", time.Now())
		if err == nil && v.String() != "" && strings.Contains(v.String(), fmt.Sprintf("=> %d ", len(targets))) {
			return p, base
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not see its %d targets up within 20 s: %v %v", len(targets), v, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// publishAt posts n publishes to the bus at rate per second (each in its own
// goroutine, so a queued one does not hold up the next) and waits for their
// answers. Bounded: n requests of at most 15 s each.
func publishAt(t *testing.T, addr string, rate float64, n int) (ok, rejected int) {
	t.Helper()
	c := &http.Client{Timeout: 15 * time.Second}
	var wg sync.WaitGroup
	var mu sync.Mutex
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for range n {
		<-tick.C
		wg.Go(func() {
			resp, err := c.Post("http://"+addr+"/publish?topic=q", "text/plain", strings.NewReader("m"))
			if err != nil {
				return
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if resp.StatusCode == http.StatusOK {
				ok++
			} else {
				rejected++
			}
		})
	}
	wg.Wait()
	return ok, rejected
}

// TestQueryPrometheusServer: a real Prometheus scrapes the bus's /metrics
// every second; the Source range-queries the hold of a quiet step and of a
// step that publishes faster than the bus's capacity, whose queue grows.
func TestQueryPrometheusServer(t *testing.T) {
	integration(t, "prometheus")
	_, addr := startBus(t, "--capacity", "40", "--max-wait", "2s")
	promProc, base := startPrometheus(t, map[string]string{"bus": addr})
	queries := map[string]string{
		"queue":     `max(eventbus_queue_depth{job="bus"})`,
		"publishes": `sum(rate(eventbus_requests_total{job="bus",handler="publish"}[3s]))`,
		"fds":       `max(process_open_fds{job="bus"} / process_max_fds{job="bus"})`,
		"nodata":    `max(eventbus_queue_depth{job="nope"})`,
	}
	src, err := New(Config{Query: base, Metrics: queries, Settle: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := src.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	gate := func(m map[string]float64) string {
		if v, ok := m["prom.queue.peak"]; !ok {
			return "not measured"
		} else if v < 20 {
			return "pass"
		}
		return "fail"
	}

	var samples []Sample
	quiet := src.Start(ctx, StepSpec{Warmup: time.Second, Sink: func(v any) { samples = append(samples, v.(Sample)) }})
	time.Sleep(4 * time.Second)
	r1 := quiet.Stop(ctx)
	t.Logf("quiet step: %v, problems %v", r1.Metrics, r1.Problems)
	if gate(r1.Metrics) != "pass" || r1.Metrics["prom.queue"] != 0 {
		t.Errorf("quiet step: prom.queue %v peak %v", r1.Metrics["prom.queue"], r1.Metrics["prom.queue.peak"])
	}
	if v, ok := r1.Metrics["prom.fds"]; !ok || v <= 0 || v >= 1 {
		t.Errorf("prom.fds = %v, %v", v, ok)
	}
	if _, ok := r1.Metrics["prom.nodata"]; ok || !strings.Contains(strings.Join(r1.Problems, "\n"), "prom.nodata not measured: no data") {
		t.Errorf("a query without data: metrics %v problems %v", r1.Metrics, r1.Problems)
	}
	if len(samples) < 3 || samples[0].URL != base || samples[0].Source != SampleSource {
		t.Errorf("samples of the quiet step: %+v", samples)
	}

	// 100 publishes/s for 4 s against a capacity of 40/s: about 80 wait at
	// once (2 s of queue), the rest are refused.
	busy := src.Start(ctx, StepSpec{Warmup: time.Second})
	ok, rejected := publishAt(t, addr, 100, 400)
	r2 := busy.Stop(ctx)
	t.Logf("busy step: %d published, %d refused; %v, problems %v", ok, rejected, r2.Metrics, r2.Problems)
	if gate(r2.Metrics) != "fail" {
		t.Errorf("busy step: prom.queue.peak = %v, want the gate to fail", r2.Metrics["prom.queue.peak"])
	}
	if v := r2.Metrics["prom.publishes"]; v < 20 {
		t.Errorf("prom.publishes = %v/s during 100 publishes/s", v)
	}

	// PromQL the server rejects, a URL that is not a Prometheus server, and
	// a server that is down: errors that say so, or "not measured".
	q, _ := NewQuerier(base, nil)
	if err := q.Check(ctx, map[string]string{"bad": "rate(eventbus_queue_depth)"}); err == nil || !strings.Contains(err.Error(), "prom.bad: the Prometheus server at "+base+" rejects the query \"rate(eventbus_queue_depth)\": ") ||
		!strings.Contains(err.Error(), "range vector") {
		t.Errorf("bad PromQL: %v", err)
	}
	notProm, _ := NewQuerier("http://"+addr, nil)
	if err := notProm.Check(ctx, queries); err == nil || !strings.Contains(err.Error(), "http://"+addr+" does not answer as a Prometheus server's API") {
		t.Errorf("the bus as a Prometheus server: %v", err)
	}
	promProc.kill()
	if err := src.Check(ctx); err == nil || !strings.Contains(err.Error(), "the Prometheus server at "+base+" is not reachable") {
		t.Errorf("Check with the server down: %v", err)
	}
	down := src.Start(ctx, StepSpec{})
	r3 := down.Stop(ctx)
	if len(r3.Metrics) != 0 || len(r3.Problems) != len(queries) || !strings.Contains(r3.Problems[0], "is not reachable") {
		t.Errorf("server down: metrics %v problems %v", r3.Metrics, r3.Problems)
	}
}

// TestProcessExporterNamesFDLimit: the bus runs with --nofile 64 and is made
// to hold more connections than that; process-exporter, scraped beside the
// bus's own /metrics, names the bus's open-file limit (fd-process).
func TestProcessExporterNamesFDLimit(t *testing.T) {
	integration(t, "prometheus-process-exporter")
	busPath := bus(t)
	_, addr := startBus(t, "--nofile", "64")
	name := filepath.Base(busPath)
	pePort := freePort(t)
	peURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", pePort)
	start(t, "prometheus-process-exporter", "-procnames", name, "-threads=false", "-gather-smaps=false",
		fmt.Sprintf("-web.listen-address=127.0.0.1:%d", pePort))
	waitOK(t, peURL)
	busURL := "http://" + addr + "/metrics"
	src, err := New(Config{Scrape: []string{peURL, busURL}, Side: hoststat.SideTarget, Interval: 500 * time.Millisecond,
		Metrics: map[string]string{"bus_fds": "process_open_fds"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := src.Check(ctx); err != nil {
		t.Fatal(err)
	}
	step := src.Start(ctx, StepSpec{})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 80 { // bounded: more than the limit, each dial at most 1 s
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	time.Sleep(1500 * time.Millisecond)
	res := step.Stop(ctx)
	t.Logf("%d connections; metrics %v; problems %v", len(conns), res.Metrics, res.Problems)

	var found []string
	for _, f := range res.Findings() {
		if f.Rule == diagnose.RuleFDProcess {
			found = append(found, fmt.Sprintf("%s@%s: %s (%s)", f.Process, f.Host, f.Observed, strings.Join(f.Evidence, " | ")))
		}
	}
	peInst := fmt.Sprintf("127.0.0.1:%d", pePort)
	want := fmt.Sprintf("%s@%s: ", name, peInst)
	var byPE, bySelf bool
	for _, f := range found {
		byPE = byPE || strings.HasPrefix(f, want) && strings.Contains(f, " of 64 (") && strings.Contains(f, "process-exporter at "+peInst)
		bySelf = bySelf || strings.HasPrefix(f, addr+"@"+addr+": ") && strings.Contains(f, " of 64 ")
	}
	if !byPE {
		t.Errorf("process-exporter did not name %s's open-file limit of 64: %q", name, found)
	}
	// The bus's own process collector says the same of itself.
	if !bySelf {
		t.Errorf("the bus's process_open_fds/process_max_fds did not name its limit: %q", found)
	}
	if v := res.Metrics["prom.bus_fds.peak"]; v < 60 {
		t.Errorf("prom.bus_fds.peak = %v", v)
	}
}
