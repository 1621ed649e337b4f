package aws

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/agent"
	"github.com/loadramp/loadramp/orchestrator/agents"
)

const agentTestVersion = "v-test"

// instanceAgent is "the instance's agent": the real loadramp agent server,
// on a loopback address that nothing listens on until start is called (the
// instance still running its user_data).
type instanceAgent struct {
	addr   string
	srv    *agent.Server
	cancel context.CancelFunc
	done   chan struct{}
}

func newInstanceAgent(t *testing.T, name, token string) *instanceAgent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv, err := agent.New(agent.Config{Name: name, Version: agentTestVersion, Token: token, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	a := &instanceAgent{addr: addr, srv: srv}
	t.Cleanup(a.stop)
	return a
}

func (a *instanceAgent) url() string { return "http://" + a.addr }

// start makes the agent answer (its systemd unit started).
func (a *instanceAgent) start(t *testing.T) {
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		t.Errorf("agent listen %s: %v", a.addr, err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan struct{})
	go func() {
		defer close(a.done)
		_ = a.srv.Serve(ctx, ln, nil)
	}()
}

func (a *instanceAgent) stop() {
	if a.cancel != nil {
		a.cancel()
		<-a.done
		a.cancel = nil
	}
}

// agentsFrom is a TargetConfig.Agents that reads the fleet's agents output
// as the AWS modules write it: instance id → URL, comma-joined "id=url".
func agentsFrom(token string) func(string, map[string]string) ([]agents.Endpoint, agents.Options, error) {
	return func(_ string, outputs map[string]string) ([]agents.Endpoint, agents.Options, error) {
		var eps []agents.Endpoint
		for _, kv := range splitList(outputs[OutputAgents]) {
			name, u, _ := strings.Cut(kv, "=")
			eps = append(eps, agents.Endpoint{Name: name, URL: u})
		}
		return eps, agents.Options{Version: agentTestVersion, Token: token, CallTimeout: 2 * time.Second}, nil
	}
}

// The target is ready when its instances pass their status checks, each
// instance's agent answers, and the app's health URL answers through each
// agent: here the instances are pending then initializing, one agent is not
// up for a while, and the app answers 502 until both agents are up.
func TestTargetReadyWaitsForAgentsAndTheApp(t *testing.T) {
	f, ec2 := serveFakeEC2(t, &fakeEC2{pending: 1, okAfter: 1, instances: []fakeInstance{
		{"i-0aaa", "running", "run-a", "target"}, {"i-0bbb", "running", "run-a", "target"}}})
	var healthy atomic.Bool
	var appCalls atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		appCalls.Add(1)
		if r.URL.Path != "/healthz" || !healthy.Load() {
			http.Error(w, "upstream not ready", http.StatusBadGateway)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer app.Close()
	a1, a2 := newInstanceAgent(t, "ip-10-0-1-5", "tok"), newInstanceAgent(t, "ip-10-0-1-6", "tok")
	a1.start(t)
	n := &notes{}
	tg := testTarget(t, n, ec2, newFakeCloudWatch(t, &fakeCloudWatch{series: targetSeries, pageSize: 100}))
	tg.cfg.Agents = agentsFrom("tok")
	tg.cfg.AgentPoll = 20 * time.Millisecond
	var polls atomic.Int32
	tg.cfg.Notify = func(format string, args ...any) {
		n.add(format, args...)
		if strings.HasPrefix(format, "fleet %s: %d of %d host(s) ready") {
			switch polls.Add(1) {
			case 3:
				a2.start(t) // the second instance's user_data got to the agent
			case 6:
				healthy.Store(true) // and the app behind nginx came up
			}
		}
	}
	tg.cfg.ProgressEvery = 0
	outputs := map[string]string{
		OutputInstanceIDs:  "i-0aaa,i-0bbb",
		OutputAgents:       "i-0aaa=" + a1.url() + ",i-0bbb=" + a2.url(),
		OutputHealthURL:    app.URL + "/healthz",
		OutputLoadBalancer: testNLB,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tg.Ready(ctx, "run-a", outputs, ""); err != nil {
		t.Fatalf("%v\n%s", err, n)
	}
	if f.calls["DescribeInstanceStatus"] != 2 {
		t.Errorf("%d DescribeInstanceStatus calls, want 2 (initializing, then ok)", f.calls["DescribeInstanceStatus"])
	}
	msgs := n.String()
	for _, want := range []string{
		"target instances ready after",
		"waiting up to 10m0s (from its apply) for their agents to answer and " + app.URL + "/healthz to answer through each on 2 host(s)",
		"i-0bbb: its agent does not answer",
		"connection refused",
		app.URL + "/healthz through its agent: answered 502 Bad Gateway",
		"fleet target ready after",
	} {
		if !strings.Contains(msgs, want) {
			t.Errorf("messages lack %q:\n%s", want, msgs)
		}
	}
	// The instances' status checks came first: no agent was asked before.
	if i, j := strings.Index(msgs, "target instances ready after"), strings.Index(msgs, "host(s) ready"); i < 0 || j < i {
		t.Errorf("agents asked before the instances were ready:\n%s", msgs)
	}
	if !tg.Watched() || tg.lb != testNLB || strings.Join(tg.instances, ",") != "i-0aaa,i-0bbb" {
		t.Errorf("after the wait: watched %v lb %q instances %v", tg.Watched(), tg.lb, tg.instances)
	}
}

// Each wait is bounded, and its error names the instance that is not ready
// and why, with where to read its user_data's log.
func TestTargetReadyAgentBoundNamesTheInstance(t *testing.T) {
	_, ec2 := serveFakeEC2(t, &fakeEC2{instances: []fakeInstance{{"i-0aaa", "running", "run-b", "target"}, {"i-0bbb", "running", "run-b", "target"}}})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer app.Close()
	up, never := newInstanceAgent(t, "ip-10-0-1-5", "tok"), newInstanceAgent(t, "ip-10-0-1-6", "tok")
	up.start(t)
	tg := testTarget(t, &notes{}, ec2, nil)
	tg.cfg.Agents = agentsFrom("tok")
	tg.cfg.AgentPoll = 20 * time.Millisecond
	tg.cfg.ReadyTimeout = 500 * time.Millisecond
	outputs := map[string]string{OutputInstanceIDs: "i-0aaa,i-0bbb", OutputAgents: "i-0aaa=" + up.url() + ",i-0bbb=" + never.url(), OutputHealthURL: app.URL}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := tg.Ready(ctx, "run-b", outputs, "")
	if err == nil {
		t.Fatal("ready with an agent that never answered")
	}
	for _, want := range []string{"fleet target: not ready within aws_ready_timeout 500ms", "i-0bbb: its agent does not answer", "connection refused",
		"aws ec2 get-console-output --latest --output text --instance-id i-0bbb"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "i-0aaa:") {
		t.Errorf("error names the ready instance: %v", err)
	}
	if tg.Watched() {
		t.Error("CloudWatch sampling set up for a target that never got ready")
	}

	// A wrong token is said at once, not waited out.
	tg = testTarget(t, &notes{}, ec2, nil)
	tg.cfg.Agents = agentsFrom("wrong")
	start := time.Now()
	err = tg.Ready(ctx, "run-b", map[string]string{OutputInstanceIDs: "i-0aaa", OutputAgents: "i-0aaa=" + up.url()}, "")
	if err == nil || !strings.Contains(err.Error(), "agent i-0aaa") || !strings.Contains(err.Error(), "refused the coordinator's token") || time.Since(start) > 10*time.Second {
		t.Errorf("wrong token: %v after %s", err, time.Since(start))
	}
}

// A generators fleet is ready when its agents answer (no health URL, no
// EC2 call); a fleet without agents is ready at once.
func TestReadyAgentsOfGenerators(t *testing.T) {
	a := newInstanceAgent(t, "gen", "tok")
	tg := testTarget(t, &notes{}, nil, nil) // building AWS clients fails the test
	tg.cfg.Agents = agentsFrom("tok")
	tg.cfg.AgentPoll = 20 * time.Millisecond
	go func() {
		time.Sleep(200 * time.Millisecond)
		a.start(t)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tg.ReadyAgents(ctx, "generators", map[string]string{OutputAgents: "i-0ccc=" + a.url(), OutputHealthURL: "http://127.0.0.1:1/never-asked"}); err != nil {
		t.Fatal(err)
	}
	if err := tg.ReadyAgents(ctx, "generators", map[string]string{"size": "2"}); err != nil {
		t.Errorf("a fleet without agents: %v", err)
	}
}
