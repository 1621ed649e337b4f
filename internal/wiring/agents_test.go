package wiring

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/internal/eventbus"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/agent"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/pubsub"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// The agents of these tests are real agent servers in this process, with
// the real roles (AgentRoles: loadgen, pubsub, observe), on loopback,
// against a real event bus.

const testVersion = "v-wiring-test"

// serveAgent serves an agent named name with the real roles until the test
// ends and returns its URL.
func serveAgent(t *testing.T, name, token string) string {
	t.Helper()
	engines, observer, auditor := AgentRoles(name, "", zerolog.Nop())
	srv, err := agent.New(agent.Config{Name: name, Version: testVersion, Token: token, Engines: engines, Observer: observer,
		Auditor: auditor, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("agent did not stop")
		}
	})
	return "http://" + ln.Addr().String()
}

// serveBus serves a real event bus until the test ends.
func serveBus(t *testing.T) string {
	t.Helper()
	srv, err := eventbus.New(eventbus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

// agentsPlan parses a plan whose generators are the agents at urls, with
// the workload block given.
func agentsPlan(t *testing.T, bus string, urls []string, target, workload, params string) (*plan.Plan, orchestrator.Renderer) {
	t.Helper()
	var eps []string
	for i, u := range urls {
		eps = append(eps, fmt.Sprintf("{ name: g%d, url: %q }", i+1, u))
	}
	src := fmt.Sprintf(`version: 1
name: agents
fleets:
  target:
    provider: static
    outputs: { endpoint: %q }
%s
  generators:
    provider: static
    agents: { endpoints: [%s] }
workload:
  engine: builtin
%s
parameters:
%s
ramp: { warmup: 1s, hold: 2s }
gates: [latency.p99 < 1s]
`, bus, target, strings.Join(eps, ", "), workload, params)
	p, err := plan.Parse([]byte(src), "agents.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if errs := p.Validate(); len(errs) > 0 {
		t.Fatalf("plan: %v", errs)
	}
	data := plan.TemplateData{Static: p.Static, Fleets: map[string]map[string]string{"target": {"endpoint": bus}, "generators": {}}}
	return p, func(s string) (string, error) { return plan.Render(s, data, nil) }
}

func agentsConfig(token string) Config {
	cfg := DefaultConfig()
	cfg.Version, cfg.AgentToken, cfg.runToken = testVersion, token, token
	return cfg
}

func TestAgentEngineHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	bus := serveBus(t)
	urls := []string{serveAgent(t, "a1", "tok"), serveAgent(t, "a2", "tok")}
	p, render := agentsPlan(t, bus, urls, "", "  http: { method: GET, url: '{{ .fleets.target.endpoint }}/healthz' }",
		"  - { name: rate, start: 200, max: 200 }")
	e, err := newAgentEngine(agentsConfig("tok"), p, render, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var seconds int
	res, err := e.Step(ctx, orchestrator.EngineStep{Params: map[string]float64{"rate": 200}, Warmup: time.Second, Hold: 2 * time.Second,
		OnSecond: func(result.Second) { seconds++ }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Agents) != 2 {
		t.Fatalf("agents %v, want 2", res.Agents)
	}
	var requests float64
	conns := 0.0
	for _, a := range res.Agents {
		requests += a.Metrics[metrics.RequestsCount]
		conns += a.Parameters[plan.ParamConnections]
		if a.Parameters[plan.ParamRate] != 100 || a.URL == "" {
			t.Errorf("agent %s: share %v url %q, want rate 100", a.Agent, a.Parameters, a.URL)
		}
	}
	// connections is not ramped: the fleet's default is split, not each
	// agent's.
	if def := plan.ParamValue(plan.WorkloadHTTP, nil, plan.ParamConnections); conns != def {
		t.Errorf("the agents' connections add up to %g, want the default %g", conns, def)
	}
	m := res.Metrics
	if m[metrics.RequestsCount] != requests || requests < 300 {
		t.Errorf("merged requests %g, the agents' sum %g (want about 400)", m[metrics.RequestsCount], requests)
	}
	if m[metrics.ErrorsRatio] != 0 || m[metrics.ThroughputOffered] != 200 || m[metrics.LatencyP99] <= 0 {
		t.Errorf("merged metrics %v", m)
	}
	if res.Histograms[metrics.HistLatency] == nil || res.Histograms[metrics.HistLatency].TotalCount() != int64(requests) {
		t.Errorf("merged latency histogram missing or not every request's")
	}
	if seconds < 2 || len(res.Series) < 2 {
		t.Errorf("%d seconds seen, series %v", seconds, res.Series)
	}
	worstAgent(t, res, metrics.GeneratorStealRatio, metrics.GeneratorStealPeak, metrics.GeneratorStarvedPeak)

	// With one connection, one agent sits the step out.
	res, err = e.Step(ctx, orchestrator.EngineStep{Params: map[string]float64{"rate": 50, "connections": 1}, Warmup: 0, Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Agents) != 2 || res.Agents[0].Idle || !res.Agents[1].Idle || res.Agents[1].URL != urls[1] {
		t.Errorf("shares %+v: want g1 running, g2 idle", res.Agents)
	}
}

// A mix runs on agents as it runs here: its templates, feeders and checks
// travel to them, and each request's figures are merged from every agent's
// (counts summed, percentiles from the merged latencies).
func TestAgentEngineMix(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	bus := serveBus(t)
	urls := []string{serveAgent(t, "a1", "tok"), serveAgent(t, "a2", "tok")}
	users := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(users, []byte("name\nann\nbob\ncid\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WIRING_MIX_TOKEN", "s3cret")
	workload := fmt.Sprintf(`  http:
    feeders: { users: { file: %q, mode: circular } }
    requests:
      - name: ok
        weight: 3
        url: '{{ .fleets.target.endpoint }}/healthz?u={{ feed "users" "name" }}&n={{ seq }}&id={{ uuid }}'
        headers: { Authorization: 'Bearer {{ env "WIRING_MIX_TOKEN" }}' }
        check: { status: [200] }
      - name: bad
        weight: 1
        url: '{{ .fleets.target.endpoint }}/healthz'
        check: { body_contains: no-such-text }`, users)
	p, render := agentsPlan(t, bus, urls, "", workload, "  - { name: rate, start: 200, max: 200 }")
	e, err := newAgentEngine(agentsConfig("tok"), p, render, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := e.Step(ctx, orchestrator.EngineStep{Params: map[string]float64{"rate": 200}, Warmup: time.Second, Hold: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	key := metrics.RequestMetric
	var ok, bad float64
	for _, a := range res.Agents {
		ok += a.Metrics[key("ok", metrics.RequestsCount)]
		bad += a.Metrics[key("bad", metrics.RequestsCount)]
		if a.Metrics[key("ok", metrics.RequestsCount)] == 0 {
			t.Errorf("agent %s sent no request ok: %v", a.Agent, a.Metrics)
		}
	}
	if m[key("ok", metrics.RequestsCount)] != ok || m[key("bad", metrics.RequestsCount)] != bad || ok+bad != m[metrics.RequestsCount] || ok+bad < 300 {
		t.Fatalf("merged ok %g bad %g of %g, the agents' ok %g bad %g", m[key("ok", metrics.RequestsCount)], m[key("bad", metrics.RequestsCount)],
			m[metrics.RequestsCount], ok, bad)
	}
	if m[key("ok", metrics.ErrorsRatio)] != 0 || m[key("bad", metrics.ErrorsRatio)] != 1 {
		t.Errorf("errors ratio ok %g (want 0), bad %g (want 1: the check fails every answer)", m[key("ok", metrics.ErrorsRatio)], m[key("bad", metrics.ErrorsRatio)])
	}
	if share := m[key("ok", metrics.RequestShare)]; share < 0.65 || share > 0.85 {
		t.Errorf("ok's share %g, want about 0.75 (weight 3 of 4)", share)
	}
	h := res.Histograms[key("ok", metrics.HistLatency)]
	if h == nil || float64(h.TotalCount()) != ok {
		t.Fatalf("ok's merged latency histogram %v, want %g values", h, ok)
	}
	if p99 := float64(h.ValueAtQuantile(99)) / 1e6; m[key("ok", metrics.LatencyP99)] != p99 {
		t.Errorf("request.ok.latency.p99 %g, the merged histogram's %g", m[key("ok", metrics.LatencyP99)], p99)
	}
	if len(res.Requests) != 2 || res.Requests[1].Name != "bad" || float64(res.Requests[1].ErrorClasses[metrics.ClassCheck]) != bad {
		t.Errorf("requests %+v: want ok and bad, bad's %g errors of class %s", res.Requests, bad, metrics.ClassCheck)
	}
	if _, ok := m[metrics.GeneratorStarvedRatio]; !ok {
		t.Errorf("no %s in %v", metrics.GeneratorStarvedRatio, m)
	}
}

// loadramp plan says whose agents a run calls and what for.
func TestDescribePlanNamesTheAgents(t *testing.T) {
	p, _ := agentsPlan(t, "http://127.0.0.1:9", []string{"http://127.0.0.1:7070", "http://127.0.0.1:7071"}, "",
		"  http: { url: '{{ .fleets.target.endpoint }}/' }", "  - { name: rate, start: 10, max: 10 }")
	var b strings.Builder
	DescribePlan(&b, p)
	if want := "agents:      fleet generators: 2 listed, to run the builtin engine and observe their hosts\n"; !strings.Contains(b.String(), want) {
		t.Errorf("loadramp plan says\n%s\nwant the line %q", b.String(), want)
	}
}

// A unique feeder cannot be shared by agents: the plan says so, naming the
// field.
func TestAgentsRefuseAUniqueFeeder(t *testing.T) {
	users := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(users, []byte("name\nann\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`version: 1
name: unique
fleets:
  target: { provider: static, outputs: { endpoint: "http://127.0.0.1:9" } }
  generators: { provider: static, agents: { endpoints: [{ url: "http://127.0.0.1:7070" }] } }
workload:
  engine: builtin
  http:
    feeders: { users: { file: %q, mode: unique } }
    url: '{{ .fleets.target.endpoint }}/?u={{ feed "users" "name" }}'
parameters: [{ name: rate, start: 10, max: 10 }]
ramp: { warmup: 1s, hold: 2s }
gates: [latency.p99 < 1s]
`, users)
	p, err := plan.Parse([]byte(src), "unique.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	errs := p.Validate()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "workload.http.feeders.users.mode") || !strings.Contains(errs[0].Error(), "circular or random") {
		t.Errorf("errors %v: want one on workload.http.feeders.users.mode", errs)
	}
}

func TestAgentEnginePubSub(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	bus := serveBus(t)
	urls := []string{serveAgent(t, "a1", "tok"), serveAgent(t, "a2", "tok")}
	p, render := agentsPlan(t, bus, urls, "",
		"  pubsub: { publish: '{{ .fleets.target.endpoint }}/publish?topic=t', subscribe: '{{ .fleets.target.endpoint }}/subscribe?topic=t', timeout: 2s }",
		"  - { name: publishers, start: 2, max: 2 }\n  - { name: subscribers, start: 4, max: 4 }\n  - { name: rate, start: 20, max: 20 }")
	e, err := newAgentEngine(agentsConfig("tok"), p, render, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := e.Step(ctx, orchestrator.EngineStep{Params: map[string]float64{"publishers": 2, "subscribers": 4, "rate": 20},
		Warmup: time.Second, Hold: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	var delivered, expected float64
	for _, a := range res.Agents {
		delivered += a.Metrics[pubsub.DeliveredCount]
		expected += a.Metrics[pubsub.ExpectedCount]
		if a.Parameters[plan.ParamRate] != 20 || a.Parameters[plan.ParamPublishers] != 1 || a.Parameters[plan.ParamSubscribers] != 2 {
			t.Errorf("agent %s share %v: want 1 publisher, 2 subscribers, rate 20 each", a.Agent, a.Parameters)
		}
	}
	if m[pubsub.Subscribers] != 4 || m[pubsub.DeliveredCount] != delivered || m[pubsub.ExpectedCount] != expected || expected == 0 {
		t.Errorf("merged subscribers %g delivered %g expected %g; agents' %g %g", m[pubsub.Subscribers], m[pubsub.DeliveredCount], m[pubsub.ExpectedCount], delivered, expected)
	}
	if m[pubsub.LostRatio] > 0.01 || m[pubsub.DelayP99] <= 0 || m[metrics.ThroughputOffered] != 40 {
		t.Errorf("merged pubsub metrics %v", m)
	}
	worstAgent(t, res, metrics.GeneratorStealRatio)
}

// worstAgent checks that each agent measured the figures names (this
// machine's kernel shows its steal and its threads' run delay) and that the
// step's is the worst agent's.
func worstAgent(t *testing.T, res *result.EngineResult, names ...string) {
	t.Helper()
	for _, k := range names {
		worst, all := -1.0, true
		for _, a := range res.Agents {
			v, ok := a.Metrics[k]
			all = all && ok
			worst = max(worst, v)
		}
		if got, ok := res.Metrics[k]; !all || !ok || got != worst {
			t.Errorf("%s: the step's %g (%v), want the worst agent's %g (every agent measured it: %v)", k, got, ok, worst, all)
		}
	}
}

func TestAgentSamplerObservesTheTargetHost(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	bus := serveBus(t)
	gen := serveAgent(t, "gen", "tok")
	tgt := serveAgent(t, "tgt", "tok")
	comm, err := hoststat.Comm("", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// The target host is this process (its agent's observer finds it by
	// name); its log is a file the agent scans.
	logFile := t.TempDir() + "/app.log"
	if err := os.WriteFile(logFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p, render := agentsPlan(t, bus, []string{gen},
		fmt.Sprintf("    agents: { endpoints: [{ name: target-host, url: %q }], processes: [%q, no-such-proc] }\n    logs: [%q]", tgt, comm, logFile),
		"  http: { method: GET, url: '{{ .fleets.target.endpoint }}/healthz' }", "  - { name: rate, start: 50, max: 50 }")
	s := newAgentSampler(agentsConfig("tok"), p, render, nil, zerolog.Nop())
	if s.Local() {
		t.Error("nothing of the run runs here, yet the sampler samples this machine")
	}
	ctx := context.Background()
	limits, warnings, err := s.AuditHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l := limits["target-host"]; l == nil || l["nofile."+comm] == nil || limits["g1"] == nil {
		t.Errorf("audits %v (warnings %v): want target-host with %s's open files, and gen", limits, warnings, comm)
	}
	var hosts []result.Host
	stop, err := s.Start(ctx, orchestrator.SampleSpec{Warmup: 0, Host: func(h result.Host) { hosts = append(hosts, h) }})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	f, _ := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintln(f, "2026/11/30 12:00:00 http: Accept error: accept tcp 127.0.0.1:8080: accept4: too many open files; retrying in 5ms")
	f.Close()
	m, findings := stop(orchestrator.StepFacts{})
	if _, ok := m[metrics.TargetCPU]; !ok {
		t.Errorf("step metrics %v: want the target host's target.cpu", m)
	}
	byHost := map[string]result.Host{}
	for _, h := range hosts {
		byHost[h.Host] = h
	}
	if h := byHost["target-host"]; h.Side != "target" || h.Samples < 2 || h.Metrics[metrics.TargetCPU] != m[metrics.TargetCPU] {
		t.Errorf("target host %+v", h)
	}
	if u := byHost["target-host"].Unavailable; len(u) != 1 || !strings.Contains(u[0], `process "no-such-proc": no process of that command name`) {
		t.Errorf("target host's unavailable %q: want the process named but not found", u)
	}
	if h := byHost["g1"]; h.Side != "generator" || h.Error != "" {
		t.Errorf("generator host %+v", h)
	}
	found := false
	for _, fd := range findings {
		if fd.Rule == "fd-process" && fd.Host == "target-host" && strings.Contains(strings.Join(fd.Evidence, "\n"), "accept4: too many open files") {
			found = true
		}
	}
	if !found {
		t.Errorf("findings %+v: want fd-process on target-host with the log line as evidence", findings)
	}
}

// A target host whose agent cannot be reached is recorded, with why; the
// step goes on.
// Agents of both sides on one kernel (network namespaces, containers) share
// a machine: its host-wide findings are neither side's.
func TestSharedMachines(t *testing.T) {
	got := sharedMachines(map[string][]string{"target": {"a", "b", ""}, "generator": {"b", "c", "c", ""}})
	if len(got) != 1 || !got["b"] {
		t.Errorf("shared %v, want only b (c is two generator agents, \"\" unknown)", got)
	}
}

func TestAgentSamplerRecordsAnUnreachableHost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String()
	ln.Close()
	p, render := agentsPlan(t, "http://127.0.0.1:1", []string{serveAgent(t, "g", "tok")},
		fmt.Sprintf("    agents: { endpoints: [{ name: target-host, url: %q }] }", gone),
		"  http: { method: GET, url: '{{ .fleets.target.endpoint }}/' }", "  - { name: rate, start: 10, max: 10 }")
	s := newAgentSampler(agentsConfig("tok"), p, render, nil, zerolog.Nop())
	var hosts []result.Host
	stop, err := s.Start(context.Background(), orchestrator.SampleSpec{Host: func(h result.Host) { hosts = append(hosts, h) }})
	if err != nil {
		t.Fatal(err)
	}
	stop(orchestrator.StepFacts{})
	var target *result.Host
	for i := range hosts {
		if hosts[i].Host == "target-host" {
			target = &hosts[i]
		}
	}
	if target == nil || target.Side != "target" || !strings.Contains(target.Error, "agent target-host ("+gone+") unreachable") {
		t.Errorf("hosts %+v: want target-host recorded as unreachable", hosts)
	}
}
