package cli

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadramp/loadramp/internal/wiring"

	"connectrpc.com/connect"

	"github.com/loadramp/loadramp/orchestrator/agents"
)

func TestAgentRefusesNonLoopbackWithoutToken(t *testing.T) {
	code, _, errOut := runArgs(t, map[string]string{wiring.EnvAgentToken: ""}, "agent", "--listen", "0.0.0.0:0")
	if code != ExitUsage || !strings.Contains(errOut, "refusing to listen on every address") || !strings.Contains(errOut, "without a token") {
		t.Fatalf("exit %d, stderr %q: want 2 and the refusal", code, errOut)
	}
	empty := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"agent"}, "--listen is required"},
		{[]string{"agent", "--listen", "nowhere"}, `--listen "nowhere": want HOST:PORT`},
		{[]string{"agent", "--listen", "127.0.0.1:0", "--token-file", empty}, "is empty"},
		{[]string{"agent", "--listen", "127.0.0.1:0", "--tls-cert", "x.pem"}, "--tls-cert and --tls-key go together"},
	} {
		code, _, errOut := runArgs(t, nil, c.args...)
		if code != ExitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q: want 2 and %q", c.args, code, errOut, c.want)
		}
	}
}

// The real binary: loadramp agent serves with the token from the
// environment, refuses a wrong one with 401 naming itself, answers a
// coordinator of its version, and stops on SIGTERM.
func TestAgentCommandServes(t *testing.T) {
	bin, _ := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "agent", "--listen", "127.0.0.1:0", "--name", "cli-agent", "--log-format", "json")
	cmd.Env = append(os.Environ(), wiring.EnvAgentToken+"=t0ken", "XDG_CONFIG_HOME="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v (stderr %s)", err, stderr.String())
	}
	m := regexp.MustCompile(`agent cli-agent listening on (127\.0\.0\.1:\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("first line %q", line)
	}
	url := "http://" + m[1]
	resp, err := http.Get(url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	_, err = agents.Dial(ctx, agents.Endpoint{Name: "gen-1", URL: url}, agents.Options{Version: Version, Token: "wrong"})
	var ae *agents.Error
	if !errors.As(err, &ae) || ae.Code != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "agent cli-agent: wrong bearer token") {
		t.Fatalf("wrong token: %v", err)
	}
	c, err := agents.Dial(ctx, agents.Endpoint{Name: "gen-1", URL: url}, agents.Options{Version: Version, Token: "t0ken"})
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Hello(); h.Name != "cli-agent" || h.AgentVersion != Version || int(h.Pid) != cmd.Process.Pid {
		t.Errorf("hello %v", h)
	}
	_, err = agents.Dial(ctx, agents.Endpoint{Name: "gen-1", URL: url}, agents.Options{Version: Version + "-other", Token: "t0ken"})
	if err == nil || !strings.Contains(err.Error(), "run the same loadramp version on both") {
		t.Errorf("other version: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent exit after SIGTERM: %v (stderr %s)", err, stderr.String())
	}
}

// A builtin-engine plan whose generators fleet is not local names its
// agents, or is refused before anything starts.
func TestPlanWithoutAgentsIsRefused(t *testing.T) {
	plan := filepath.Join(t.TempDir(), "plan.yaml")
	body := `version: 1
name: no-agents
fleets:
  target:
    provider: static
    outputs: { endpoint: "http://10.0.0.1:80" }
  generators:
    provider: terraform
    terraform: { dir: infra/modules/aws/generators, vars: { workers: 2 }, scale_var: workers }
workload:
  engine: builtin
  http: { url: "{{ .fleets.target.endpoint }}/" }
parameters:
  - { name: rate, start: 25000, max: 200000 }
gates: [latency.p99 < 100ms]
`
	if err := os.WriteFile(plan, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"plan", "run"} {
		code, _, errOut := runArgs(t, nil, cmd, plan)
		if code != ExitUsage || !strings.Contains(errOut, "fleets.generators.agents (line 7): the builtin engine runs inside loadramp on this machine, or on the agents of a terraform generators fleet") {
			t.Errorf("loadramp %s: exit %d, stderr %q: want 2 and the missing agents", cmd, code, errOut)
		}
	}
}
