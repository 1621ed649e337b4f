package wiring

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	awsinfra "github.com/loadramp/loadramp/infra/aws"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/plan"
)

// messages records what the readiness wait tells the user.
type messages struct {
	mu   sync.Mutex
	msgs []string
	on   func(string)
}

func (m *messages) add(format string, args ...any) {
	s := strings.TrimSpace(strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " "))
	m.mu.Lock()
	m.msgs = append(m.msgs, s)
	on := m.on
	m.mu.Unlock()
	if on != nil {
		on(s)
	}
}

func (m *messages) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.msgs, "\n")
}

// TestTerraformFleetsReadyThroughTheirAgents provisions a Terraform target
// and generators fleet (fakes of Terraform's fleet and of EC2, real agents
// on loopback) whose outputs list their agents as the AWS modules do (a JSON
// object by instance id): the target's Up returns once its instance passes
// its status checks, its agent answers and its health URL answers through
// the agent (503 for a while here); the generators' Up once their agents
// answer. A wrong token ends the wait at once, naming the fleet.
func TestTerraformFleetsReadyThroughTheirAgents(t *testing.T) {
	const token = "ready-token"
	cfg := agentsConfig(token)
	targetAgent, genAgent := serveAgent(t, "i-0aaa", token), serveAgent(t, "i-0bbb", token)
	var healthy atomic.Bool
	var asked atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if !healthy.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer app.Close()

	n := &messages{}
	n.on = func(s string) {
		if strings.Contains(s, "0 of 1 host(s) ready") && asked.Load() >= 2 {
			healthy.Store(true) // the service came up behind the agent
		}
	}
	fa := &fleetAgents{cfg: cfg, specs: map[string]orchestrator.ProvisionSpec{}}
	tg := awsinfra.NewTarget(awsinfra.TargetConfig{
		Clients: func(context.Context) (awsinfra.TargetClients, error) {
			return awsinfra.TargetClients{EC2: fakeEC2{run: "run-a"}, CloudWatch: &fakeCloudWatch{}}, nil
		},
		ReadyPoll: 10 * time.Millisecond, ReadyTimeout: 20 * time.Second, AgentPoll: 20 * time.Millisecond,
		Notify: n.add, Agents: fa.of,
	})
	outputs := map[string]map[string]string{
		"target": {awsinfra.OutputInstanceIDs: "i-0aaa", awsinfra.OutputAgents: `{"i-0aaa":"` + targetAgent + `"}`,
			awsinfra.OutputHealthURL: app.URL + "/healthz"},
		"generators": {awsinfra.OutputAgents: `{"i-0bbb":"` + genAgent + `"}`},
	}
	next := func(_ context.Context, spec orchestrator.ProvisionSpec) (orchestrator.Fleet, error) {
		return &fakeFleet{outputs: outputs[spec.Name]}, nil
	}
	runDir := filepath.Join(t.TempDir(), "run-a")
	spec := func(name string) orchestrator.ProvisionSpec {
		return orchestrator.ProvisionSpec{Name: name, Render: noRender, RunDir: runDir, Log: zerolog.Nop(),
			Fleet: &plan.Fleet{Provider: plan.ProviderTerraform, Agents: &plan.Agents{Output: awsinfra.OutputAgents}}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	provision := awsProvision(tg, fa, next)
	for _, name := range []string{"target", "generators"} {
		fl, err := provision(ctx, spec(name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fl.Up(ctx); err != nil {
			t.Fatalf("%s Up: %v\n%s", name, err, n)
		}
	}
	msgs := n.String()
	for _, want := range []string{
		"target instances ready after",
		"fleet target: waiting up to 20s (from its apply) for their agents to answer and " + app.URL + "/healthz to answer through each on 1 host(s)",
		"503 Service Unavailable",
		"fleet target ready after",
		"fleet generators: waiting up to 20s (from its apply) for their agents to answer on 1 host(s)",
		"fleet generators ready after",
	} {
		if !strings.Contains(msgs, want) {
			t.Errorf("messages lack %q:\n%s", want, msgs)
		}
	}
	if !healthy.Load() {
		t.Errorf("the target was ready before its service was:\n%s", msgs)
	}

	// The wrong token: refused at once, named.
	bad := agentsConfig("not-the-token")
	fa.cfg = bad
	fl, err := provision(ctx, spec("generators"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = fl.Up(ctx)
	if err == nil || !strings.Contains(err.Error(), "fleet generators") || !strings.Contains(err.Error(), "i-0bbb") {
		t.Errorf("Up with the wrong token: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a refusal waited %s", d)
	}

	// A Terraform fleet that declares no agents output is not waited for.
	plain := spec("generators")
	plain.Fleet.Agents = nil
	fl, err = provision(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fl.(*agentsFleet); ok {
		t.Error("a fleet without agents wrapped for the agents' wait")
	}
}
