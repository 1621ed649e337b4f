package agents

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/gen/loadramp/agent/v1/agentv1connect"
	"github.com/loadramp/loadramp/orchestrator/agent"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

func httpWorkload() *agentv1.Workload {
	return &agentv1.Workload{Kind: &agentv1.Workload_Http{Http: &agentv1.HttpWorkload{Requests: []*agentv1.HttpRequest{{Url: []*agentv1.TemplatePart{{Text: "http://127.0.0.1:1/"}}}}}}}
}

func TestTokenRefused(t *testing.T) {
	a := startAgent(t, agentConfig("gen-a", "s3cret", nil))
	ctx := context.Background()
	cases := []struct{ token, reason string }{
		{"wrong", "wrong bearer token"},
		{"", "no bearer token in the call"},
	}
	for _, c := range cases {
		_, err := Dial(ctx, Endpoint{Name: "generators/1", URL: a.url}, opts(c.token))
		var ae *Error
		if !errors.As(err, &ae) || ae.Code != connect.CodeUnauthenticated {
			t.Fatalf("token %q: error %v, want an unauthenticated *Error", c.token, err)
		}
		msg := err.Error()
		for _, want := range []string{"agent generators/1", a.url, "refused the coordinator's token (401)", "agent gen-a", c.reason} {
			if !strings.Contains(msg, want) {
				t.Errorf("token %q: error %q does not say %q", c.token, msg, want)
			}
		}
	}
	if _, err := Dial(ctx, Endpoint{Name: "generators/1", URL: a.url}, opts("s3cret")); err != nil {
		t.Fatalf("right token: %v", err)
	}
}

// The agent refuses a coordinator of another version, and the coordinator
// an agent of another version, each with both versions in the message.
func TestVersionMismatch(t *testing.T) {
	a := startAgent(t, agentConfig("gen-a", "tok", nil))
	o := opts("tok")
	o.Version = "v-other"
	_, err := Dial(context.Background(), Endpoint{Name: "g1", URL: a.url}, o)
	if err == nil || !strings.Contains(err.Error(), "agent gen-a runs loadramp v-test") || !strings.Contains(err.Error(), "coordinator runs v-other") {
		t.Fatalf("agent side: error %v, want both versions named", err)
	}

	// An agent that answers hello with another version (a fake of the
	// agent's service, for the coordinator's own check).
	old := startFakeService(t, &oldAgent{})
	_, err = Dial(context.Background(), Endpoint{Name: "g2", URL: old}, opts(""))
	if err == nil || !strings.Contains(err.Error(), "agent g2") || !strings.Contains(err.Error(), "the agent runs loadramp v-old (protocol 1) but the coordinator runs v-test") {
		t.Fatalf("coordinator side: error %v, want both versions named", err)
	}
}

// oldAgent is a fake agent service that reports another loadramp version.
type oldAgent struct {
	agentv1connect.UnimplementedAgentServiceHandler
}

func (oldAgent) Hello(context.Context, *connect.Request[agentv1.HelloRequest]) (*connect.Response[agentv1.HelloResponse], error) {
	return connect.NewResponse(&agentv1.HelloResponse{AgentVersion: "v-old", Protocol: agent.Protocol, Name: "old"}), nil
}

func TestClockOffset(t *testing.T) {
	const skew = 1500 * time.Millisecond
	cfg := agentConfig("gen-skewed", "", nil)
	cfg.Now = func() time.Time { return time.Now().Add(skew) }
	a := startAgent(t, cfg)
	b := startAgent(t, agentConfig("gen-ok", "", nil))
	ctx := context.Background()
	f := ok(DialFleet(ctx, []Endpoint{{Name: "skewed", URL: a.url}, {Name: "ok", URL: b.url}}, opts("")))(t)
	if err := f.MeasureClocks(ctx, DefaultClockRounds, 0); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Agents() {
		clk := c.Clock()
		want := time.Duration(0)
		if c.Name() == "skewed" {
			want = skew
		}
		if d := (clk.Offset - want).Abs(); d > clk.Uncertainty+2*time.Millisecond {
			t.Errorf("%s: offset %v ± %v, want %v", c.Name(), clk.Offset, clk.Uncertainty, want)
		}
		if clk.Rounds != DefaultClockRounds || clk.RTT <= 0 {
			t.Errorf("%s: clock %+v: want %d rounds and a round trip", c.Name(), clk, DefaultClockRounds)
		}
	}
	err := f.MeasureClocks(ctx, DefaultClockRounds, 100*time.Millisecond)
	var ce *ClockError
	if !errors.As(err, &ce) || ce.Agent != "skewed" || !strings.Contains(err.Error(), "agent skewed: clock offset 1.") {
		t.Fatalf("bound 100ms: error %v, want a ClockError naming agent skewed", err)
	}
	if strings.Contains(err.Error(), "agent ok") {
		t.Errorf("error %v names the agent within the bound", err)
	}
}

// Two agents run a step's halves; the merged measurement is exact: its
// request count is the sum of the agents', its p99 the p99 of the union of
// every latency they recorded, and the summed series adds them up second
// by second.
func TestRunStepMergesExactly(t *testing.T) {
	t.Parallel()
	e1 := &fakeEngine{seed: 1, scaleUS: 800, cpu: 0.4}
	e2 := &fakeEngine{seed: 2, scaleUS: 5000, cpu: 0.97} // a slower, saturated agent
	a1 := startAgent(t, agentConfig("one", "tok", e1))
	a2 := startAgent(t, agentConfig("two", "tok", e2))
	ctx := context.Background()
	f := ok(DialFleet(ctx, []Endpoint{{Name: "one", URL: a1.url}, {Name: "two", URL: a2.url}}, opts("tok")))(t)
	if err := f.MeasureClocks(ctx, 4, time.Second); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var series []result.Second
	res, err := f.RunStep(ctx, StepSpec{ID: "s1a1", Workload: httpWorkload(),
		Params: map[string]float64{"rate": 601, "connections": 4}, Shares: Shares(false),
		Warmup: time.Second, Hold: 2 * time.Second,
		OnSecond: func(s result.Second) { mu.Lock(); series = append(series, s); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Agents) != 2 || res.Agents[0].Params["rate"] != 301 || res.Agents[1].Params["rate"] != 300 ||
		res.Agents[0].Params["connections"] != 2 || res.Agents[1].Params["connections"] != 2 {
		t.Fatalf("shares %+v, want rate 301/300 and 2 connections each", res.Agents)
	}
	m := res.Merged
	sum := res.Agents[0].Result.Requests + res.Agents[1].Result.Requests
	if m.Requests != sum || m.Requests != 601*2 {
		t.Errorf("merged requests %d, agents' sum %d, want %d", m.Requests, sum, 601*2)
	}
	if m.Errors != 2 || m.ErrorClasses["http_5xx"] != 2 {
		t.Errorf("merged errors %d classes %v, want 2 (one a hold second each)", m.Errors, m.ErrorClasses)
	}
	u := union(map[*fakeEngine]float64{e1: 301, e2: 300}, 1, 3)
	if m.Latency.TotalCount() != u.TotalCount() {
		t.Fatalf("merged histogram holds %d values, the union %d", m.Latency.TotalCount(), u.TotalCount())
	}
	for _, q := range []float64{50, 90, 99, 99.9, 100} {
		if got, want := m.Latency.ValueAtQuantile(q), u.ValueAtQuantile(q); got != want {
			t.Errorf("merged p%v = %dµs, the union's %dµs", q, got, want)
		}
	}
	// The average of the agents' p99s is not the merged p99: the merge did
	// not average.
	avg := (res.Agents[0].Result.Latency.ValueAtQuantile(99) + res.Agents[1].Result.Latency.ValueAtQuantile(99)) / 2
	if avg == m.Latency.ValueAtQuantile(99) {
		t.Errorf("merged p99 equals the agents' average %d: the distributions should differ", avg)
	}
	if m.Offered != 601 || m.Connections != 4 {
		t.Errorf("merged offered %v connections %d, want 601 and 4", m.Offered, m.Connections)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(series) != 3 {
		t.Fatalf("summed series %+v, want 3 seconds", series)
	}
	for i, s := range series {
		if s.T != i || s.Requests != 601 || s.Offered != 601 {
			t.Errorf("second %d: %+v, want t=%d and 601 requests offered and sent", i, s, i)
		}
	}
	// The saturated agent is named; the other is not.
	b := res.Breaches(func(m metrics.Metrics) []string {
		if m[metrics.GeneratorCPU] >= 0.85 {
			return []string{"generator.cpu < 0.85"}
		}
		return nil
	})
	if len(b) != 1 || b[0].Agent != "two" || !strings.Contains(b[0].String(), "agent two saturated: generator.cpu < 0.85") {
		t.Errorf("breaches %v, want agent two alone", b)
	}
}

// An agent killed mid-step makes the step an error naming it; the other
// agent's load is stopped.
func TestLostAgent(t *testing.T) {
	t.Parallel()
	e1 := &fakeEngine{seed: 1, scaleUS: 500, stopped: make(chan error, 1)}
	e2 := &fakeEngine{seed: 2, scaleUS: 500}
	a1 := startAgent(t, agentConfig("stays", "tok", e1))
	a2 := startHandler(t, agentConfig("dies", "tok", e2))
	ctx := context.Background()
	f := ok(DialFleet(ctx, []Endpoint{{Name: "stays", URL: a1.url}, {Name: "dies", URL: a2.url}}, opts("tok")))(t)
	time.AfterFunc(1500*time.Millisecond, a2.kill)
	start := time.Now()
	_, err := f.RunStep(ctx, StepSpec{ID: "s2a1", Workload: httpWorkload(),
		Params: map[string]float64{"rate": 10, "connections": 2}, Shares: Shares(false),
		Hold: 20 * time.Second, LostAfter: time.Second, PollEvery: 200 * time.Millisecond})
	var lost *LostError
	if !errors.As(err, &lost) || lost.Agent != "dies" || lost.Step != "s2a1" {
		t.Fatalf("error %v, want a LostError naming agent dies in step s2a1", err)
	}
	if !strings.Contains(err.Error(), "agent dies lost during step s2a1") {
		t.Errorf("error %q does not say which agent was lost", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the loss took %v to notice, want about LostAfter after the kill", d)
	}
	cause := waitErr(t, e1.stopped, 5*time.Second, "the surviving agent's load")
	if cause == nil || !strings.Contains(cause.Error(), "agent dies lost") {
		t.Errorf("surviving agent stopped with %v, want the lost agent named", cause)
	}
}

// A coordinator that stops calling leaves no load running: the agent stops
// the step by itself after its keepalive.
func TestCoordinatorGoneWatchdog(t *testing.T) {
	t.Parallel()
	e := &fakeEngine{seed: 1, scaleUS: 500, stopped: make(chan error, 1)}
	a := startAgent(t, agentConfig("lonely", "tok", e))
	c := ok(Dial(context.Background(), Endpoint{Name: "lonely", URL: a.url}, opts("tok")))(t)
	svc := c.Service()
	ctx := context.Background()
	_, err := svc.PrepareStep(ctx, connect.NewRequest(&agentv1.PrepareStepRequest{StepId: "w1", Workload: httpWorkload(),
		Params: map[string]float64{"rate": 5, "connections": 1}, Hold: durationpb.New(time.Minute),
		Keepalive: durationpb.New(700 * time.Millisecond)}))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := svc.StartStep(ctx, connect.NewRequest(&agentv1.StartStepRequest{StepId: "w1", StartUnixNano: time.Now().UnixNano()})); err != nil {
		t.Fatal(err)
	}
	// The coordinator falls silent.
	cause := waitErr(t, e.stopped, 10*time.Second, "the watchdog")
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("stopped after %v, before the keepalive of 700ms", d)
	}
	if cause == nil || !strings.Contains(cause.Error(), "the coordinator did not call for") {
		t.Fatalf("stopped with %v, want the silent coordinator named as the reason", cause)
	}
	resp, err := svc.PollStep(ctx, connect.NewRequest(&agentv1.PollStepRequest{StepId: "w1"}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Msg.State != agentv1.StepState_STEP_STATE_ABANDONED || !strings.Contains(resp.Msg.Error, "stopped the step's load") {
		t.Errorf("state %v error %q, want abandoned with the reason", resp.Msg.State, resp.Msg.Error)
	}
}

// A step whose engine runs past warmup+hold+grace is stopped by the agent
// itself, and FinishStep says why.
func TestStepBound(t *testing.T) {
	t.Parallel()
	e := &fakeEngine{seed: 1, scaleUS: 500, ignoreHold: true, stopped: make(chan error, 1)}
	a := startAgent(t, agentConfig("stuck", "tok", e))
	f := ok(DialFleet(context.Background(), []Endpoint{{Name: "stuck", URL: a.url}}, opts("tok")))(t)
	start := time.Now()
	res, err := f.RunStep(context.Background(), StepSpec{ID: "b1", Workload: httpWorkload(),
		Params: map[string]float64{"rate": 5, "connections": 1}, Shares: Shares(false),
		Hold: time.Second, Grace: 500 * time.Millisecond, PollEvery: 200 * time.Millisecond})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the step took %v, want about hold+grace (1.5s)", d)
	}
	var ae *Error
	if !errors.As(err, &ae) || ae.Agent != "stuck" || !strings.Contains(err.Error(), "ran past warmup 0s + hold 1s + grace 500ms") {
		t.Fatalf("error %v, want agent stuck named with the bound it ran past", err)
	}
	if res == nil || res.Merged == nil {
		t.Fatal("no partial result")
	}
}

// Cancelling the step's context (an abort gate, an interrupt) stops every
// agent's load and returns what was measured with the context's error.
func TestRunStepCancelled(t *testing.T) {
	t.Parallel()
	e := &fakeEngine{seed: 3, scaleUS: 500, stopped: make(chan error, 1)}
	a := startAgent(t, agentConfig("g", "", e))
	f := ok(DialFleet(context.Background(), []Endpoint{{Name: "g", URL: a.url}}, opts("")))(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1200*time.Millisecond, cancel)
	res, err := f.RunStep(ctx, StepSpec{ID: "c1", Workload: httpWorkload(),
		Params: map[string]float64{"rate": 50, "connections": 1}, Shares: Shares(false),
		Hold: 30 * time.Second, PollEvery: 200 * time.Millisecond})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if res == nil || res.Merged == nil || res.Merged.Err == "" {
		t.Fatalf("result %+v, want the partial measurement with why it ended", res)
	}
	if cause := waitErr(t, e.stopped, 5*time.Second, "the agent's load"); cause == nil || !strings.Contains(cause.Error(), "the coordinator stopped the step") {
		t.Errorf("the agent stopped with %v", cause)
	}
}

// A needed count smaller than the fleet leaves agents idle, named.
func TestRunStepIdleAgents(t *testing.T) {
	t.Parallel()
	e1, e2 := &fakeEngine{seed: 1, scaleUS: 100}, &fakeEngine{seed: 2, scaleUS: 100}
	a1 := startAgent(t, agentConfig("a", "", e1))
	a2 := startAgent(t, agentConfig("b", "", e2))
	f := ok(DialFleet(context.Background(), []Endpoint{{Name: "a", URL: a1.url}, {Name: "b", URL: a2.url}}, opts("")))(t)
	res, err := f.RunStep(context.Background(), StepSpec{ID: "i1", Workload: httpWorkload(),
		Params: map[string]float64{"rate": 20, "connections": 1}, Shares: Shares(false), Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Agents) != 1 || res.Agents[0].Agent != "a" || len(res.Idle) != 1 || res.Idle[0] != "b" {
		t.Fatalf("agents %+v idle %v, want a working and b idle", res.Agents, res.Idle)
	}
	if e2.runs != 0 || res.Merged.Requests != 20 {
		t.Errorf("idle agent ran %d times, merged requests %d", e2.runs, res.Merged.Requests)
	}
}

// An engine that ignores its context cannot hold FinishStep forever: the
// agent answers at the step's bound and stops waiting for it.
func TestHungEngineBounded(t *testing.T) {
	t.Parallel()
	e := &fakeEngine{seed: 1, scaleUS: 500, ignoreCtx: true}
	a := startAgent(t, agentConfig("hung", "", e))
	f := ok(DialFleet(context.Background(), []Endpoint{{Name: "hung", URL: a.url}}, opts("")))(t)
	start := time.Now()
	_, err := f.RunStep(context.Background(), StepSpec{ID: "h1", Workload: httpWorkload(),
		Params: map[string]float64{"rate": 1, "connections": 1}, Shares: Shares(false),
		Hold: time.Second, Grace: 500 * time.Millisecond, PollEvery: 200 * time.Millisecond, LostAfter: 20 * time.Second})
	d := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "agent hung") || !strings.Contains(err.Error(), "the engine did not return") {
		t.Fatalf("error %v, want agent hung named with its hung engine", err)
	}
	if d > 15*time.Second {
		t.Errorf("took %v, want about hold+grace plus the agent's slack (~7s)", d)
	}
	t.Logf("after %v: %v", d.Round(time.Millisecond), err)
}

// A window held open longer than its keepalive stays open while the
// coordinator's Observing keeps calling; ena-allowance comes back on the
// agent's name. An agent that is unreachable is named.
func TestObserveKeepsWindowsOpen(t *testing.T) {
	t.Parallel()
	nd := &growingNetDev{}
	cfg := agentConfig("target-host", "tok", nil)
	cfg.NetDev = nd
	a := startAgent(t, cfg)
	ctx := context.Background()
	c := ok(Dial(ctx, Endpoint{Name: "target-host", URL: a.url}, opts("tok")))(t)
	o, err := Observe(ctx, []*Client{c}, "s1a1", 400*time.Millisecond, func(*Client) *agentv1.StartObservationRequest {
		return &agentv1.StartObservationRequest{Side: "target", Devices: []string{"eth0"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // several keepalives
	obs, err := o.Stop(ctx, nil)
	if err != nil {
		t.Fatalf("window closed under an active coordinator: %v", err)
	}
	if len(obs) != 1 || len(obs[0].Findings) != 1 || obs[0].Findings[0].Rule != "ena-allowance" || obs[0].Findings[0].Host != "target-host" {
		t.Fatalf("observation %v, want ena-allowance on target-host", obs)
	}

	dead := startHandler(t, agentConfig("gone", "", nil))
	dc := ok(Dial(ctx, Endpoint{Name: "gone", URL: dead.url}, opts("")))(t)
	dead.kill()
	_, err = Observe(ctx, []*Client{c, dc}, "s1a2", time.Second, func(*Client) *agentv1.StartObservationRequest {
		return &agentv1.StartObservationRequest{}
	})
	if err == nil || !strings.Contains(err.Error(), "agent gone") {
		t.Fatalf("unreachable agent: %v, want it named", err)
	}
	// The window the other agent opened was closed again.
	h, err := c.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Observations) != 0 {
		t.Errorf("windows left open: %v", h.Observations)
	}
}

// growingNetDev is a fake network device reader: eth0's ENA pps allowance
// counter grows at every read.
type growingNetDev struct {
	mu sync.Mutex
	n  uint64
}

func (g *growingNetDev) Stats(string) (map[string]uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n += 1000
	return map[string]uint64{"pps_allowance_exceeded": g.n}, nil
}
func (g *growingNetDev) Driver(string) (string, error) { return "ena", nil }

// Agents start at one instant although their clocks differ: the start is
// sent in each agent's own clock.
func TestSynchronizedStart(t *testing.T) {
	const skew = -2 * time.Second
	e1, e2 := &fakeEngine{seed: 1, scaleUS: 100}, &fakeEngine{seed: 2, scaleUS: 100}
	cfg2 := agentConfig("behind", "", e2)
	cfg2.Now = func() time.Time { return time.Now().Add(skew) }
	a1 := startAgent(t, agentConfig("on-time", "", e1))
	a2 := startAgent(t, cfg2)
	f := ok(DialFleet(context.Background(), []Endpoint{{Name: "on-time", URL: a1.url}, {Name: "behind", URL: a2.url}}, opts("")))(t)
	res, err := f.RunStep(context.Background(), StepSpec{ID: "sync1", Workload: httpWorkload(),
		Params: map[string]float64{"rate": 10, "connections": 2}, Shares: Shares(false), Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if off := f.Agents()[1].Clock().Offset; (off - skew).Abs() > 50*time.Millisecond {
		t.Fatalf("measured offset %v, want about %v", off, skew)
	}
	for i, e := range []*fakeEngine{e1, e2} {
		e.mu.Lock()
		d := e.started.Sub(res.Start)
		e.mu.Unlock()
		// Timers fire a little late, never early, but the offset is known
		// only to its uncertainty; a shared machine adds lateness.
		early := f.Agents()[i].Clock().Uncertainty + 2*time.Millisecond
		if d < -early || d > 100*time.Millisecond {
			t.Errorf("agent %s started %v from the agreed instant, want within [-%v, 100ms]", f.Agents()[i].Name(), d, early)
		}
	}
	for _, a := range res.Agents {
		if a.Lead <= 0 {
			t.Errorf("agent %s got the start %v late", a.Agent, -a.Lead)
		}
	}
}
