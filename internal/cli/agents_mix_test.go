package cli

import (
	"crypto/rand"
	"encoding/hex"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// withLocalAgents adds a local generators fleet of n agents to a plan
// written by staticMixPlan, with the feeder in mode.
func withLocalAgents(t *testing.T, path string, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(string(b), "workload:\n", "  generators:\n    provider: local\n    agents: { local: "+strconv.Itoa(n)+" }\nworkload:\n", 1)
	if body == string(b) {
		t.Fatal("staticMixPlan changed: cannot add the generators fleet")
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A request mix runs on the generators fleet's agents as it runs inside
// loadramp: two real loadramp agents on this machine send both requests,
// with the feeder's rows, the env token and the checks; each request's
// figures are the agents' merged, and the token stays out of the run
// directory.
func TestMixOnLocalAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := "tok-" + hex.EncodeToString(b)
	srv := newAuthServer(t, token)
	path := staticMixPlan(t, srv.URL, "circular", 7)
	withLocalAgents(t, path, 2)

	o := runLoadramp(t, path, []string{"LOADRAMP_TEST_TOKEN=" + token}, nil)
	if o.code != 0 || str(o.report, "status") != "max-reached" {
		t.Fatalf("exit %d, status %q", o.code, str(o.report, "status"))
	}
	noSecret(t, o.dir, token)
	steps := readSteps(t, o.dir)
	if len(steps) != 1 {
		t.Fatalf("%d steps, want 1", len(steps))
	}
	s := steps[0]
	m := map[string]float64{}
	for k, v := range s["metrics"].(map[string]any) {
		m[k], _ = v.(float64)
	}
	as, _ := s["agents"].([]any)
	if len(as) != 2 {
		t.Fatalf("the step ran on %d agents, want 2", len(as))
	}
	for _, name := range []string{"write", "read"} {
		var sum float64
		for _, a := range as {
			am := a.(map[string]any)["metrics"].(map[string]any)
			n, _ := am["request."+name+".requests.count"].(float64)
			if n == 0 {
				t.Errorf("agent %v sent no %s request", a.(map[string]any)["agent"], name)
			}
			sum += n
		}
		if got := m["request."+name+".requests.count"]; got != sum || got == 0 {
			t.Errorf("request.%s.requests.count %v, the agents' sum %v", name, got, sum)
		}
		if m["request."+name+".errors.count"] != 0 || m["request."+name+".latency.p99"] <= 0 {
			t.Errorf("%s: errors %v, p99 %v", name, m["request."+name+".errors.count"], m["request."+name+".latency.p99"])
		}
	}
	if share := m["request.write.share"]; math.Abs(share-0.75) > 0.05 {
		t.Errorf("write's share %v, want about 0.75 (weight 3 of 4)", share)
	}
	if m["request.write.requests.count"]+m["request.read.requests.count"] != m["requests.count"] {
		t.Errorf("the requests add up to %v, the step counted %v", m["request.write.requests.count"]+m["request.read.requests.count"], m["requests.count"])
	}
	// Both agents read the feeder: every row reached the server.
	srv.mu.Lock()
	seen := map[string]bool{}
	for _, u := range srv.users {
		seen[u] = true
	}
	srv.mu.Unlock()
	for i := range 7 {
		if u := "u" + strconv.Itoa(i); !seen[u] {
			t.Errorf("user %s never sent (seen %v)", u, seen)
		}
	}
}

// A unique feeder cannot be shared by agents: loadramp plan refuses it,
// naming the field, before anything starts.
func TestUniqueFeederOnAgentsIsRefused(t *testing.T) {
	path := staticMixPlan(t, "http://127.0.0.1:9", "unique", 3)
	withLocalAgents(t, path, 2)
	code, _, errOut := runArgs(t, map[string]string{"LOADRAMP_TEST_TOKEN": "x"}, "plan", path)
	if code != ExitUsage || !strings.Contains(errOut, "workload.http.feeders.users.mode") || !strings.Contains(errOut, "use circular or random") {
		t.Errorf("exit %d, stderr %q: want 2 naming workload.http.feeders.users.mode", code, errOut)
	}
}
