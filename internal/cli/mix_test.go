package cli

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Integration tests of workload.http.requests: real loadramp runs (in
// process) against the bundled event bus behind Debian's nginx, and against
// a loopback server of the test's own where a test must see what each
// request carried. One step each, bounded by the hold; nothing is timed.

// nginxMix is a three-request mix through plans/local-nginx.yaml's nginx:
// publishes with a generated id go through nginx to the bus, reads of the
// bus's stats too, and nginx answers the health checks itself.
const nginxMix = `workload.http={timeout: 2s, requests: [
  {name: publish, weight: 5, method: POST, url: '{{ .fleets.target.endpoint }}/publish?topic=load',
   headers: {Content-Type: application/json}, body: '{"id":"{{ uuid }}","seq":{{ seq }}}',
   check: {status: [200], json: {path: receivers}}},
  {name: stats, weight: 3, url: '{{ .fleets.target.endpoint }}/stats', check: {json: {path: published}}},
  {name: health, weight: 2, url: '{{ .fleets.target.endpoint }}/healthz', check: {body_contains: ok}}]}`

// mixNginxRun runs plans/local-nginx.yaml with the mix, one step of 1,000
// requests/s on 16 connections; sets add or replace settings.
func mixNginxRun(t *testing.T, sets ...string) runOutcome {
	t.Helper()
	if testing.Short() {
		t.Skip("integration")
	}
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skipf("nginx not installed (%v): scripts/test-deps.sh installs it", err)
	}
	_, bus := binaries(t)
	args := []string{"../../plans/local-nginx.yaml",
		"--set", "fleets.target.processes.eventbus.command[0]=" + bus,
		"--set", nginxMix,
		"--set", "parameters=[{name: connections, start: 16, max: 16}, {name: rate, start: 1000, max: 1000}]",
		"--set", "ramp.warmup=1s", "--set", "ramp.hold=3s", "--set", "ramp.confirm=0", "--set", "ramp.refine=0",
		// Other tests share this machine's two cores: only a generator far
		// behind its schedule is unhealthy here.
		"--set", "generator_health=[generator.lag.p99 < 1s]",
		"--set", "gates=[errors.ratio < 50%]",
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return runCLI(t, args...)
}

// reportStep returns step i of report.json with its metrics and requests.
func reportStep(t *testing.T, o runOutcome, i int) (map[string]float64, map[string]map[string]float64, map[string]any) {
	t.Helper()
	steps, _ := o.report["steps"].([]any)
	if len(steps) <= i {
		t.Fatalf("report.json has %d steps", len(steps))
	}
	s := steps[i].(map[string]any)
	m := map[string]float64{}
	for k, v := range s["metrics"].(map[string]any) {
		m[k], _ = v.(float64)
	}
	classes := map[string]map[string]float64{}
	reqs, _ := s["requests"].([]any)
	for _, r := range reqs {
		rm := r.(map[string]any)
		c := map[string]float64{}
		if ec, ok := rm["error_classes"].(map[string]any); ok {
			for k, v := range ec {
				c[k], _ = v.(float64)
			}
		}
		classes[rm["name"].(string)] = c
	}
	return m, classes, s
}

func TestMixSharesMatchWeightsThroughNginxToTheBus(t *testing.T) {
	o := mixNginxRun(t)
	if o.code != 0 || str(o.report, "status") != "max-reached" {
		t.Fatalf("exit %d, status %q", o.code, str(o.report, "status"))
	}
	m, classes, _ := reportStep(t, o, 0)
	for name, weight := range map[string]float64{"publish": 0.5, "stats": 0.3, "health": 0.2} {
		share := m["request."+name+".share"]
		if math.Abs(share-weight) > 0.02 {
			t.Errorf("%s: share %.4f of the requests, weight %.2f", name, share, weight)
		}
		n := m["request."+name+".requests.count"]
		if n < 100 || m["request."+name+".errors.count"] != 0 || len(classes[name]) != 0 {
			t.Errorf("%s: %v requests, %v errors %v", name, n, m["request."+name+".errors.count"], classes[name])
		}
		if m["request."+name+".latency.p99"] <= 0 || m["request."+name+".throughput.rps"] <= 0 {
			t.Errorf("%s: latency or throughput not measured: %v", name, m)
		}
	}
	if total := m["request.publish.requests.count"] + m["request.stats.requests.count"] + m["request.health.requests.count"]; total != m["requests.count"] {
		t.Errorf("the requests add up to %v, the step counted %v", total, m["requests.count"])
	}
	md, _ := os.ReadFile(filepath.Join(o.dir, "report.md"))
	if !bytes.Contains(md, []byte("## Requests per step")) || !bytes.Contains(md, []byte("| `publish` | 5 (50%) |")) {
		t.Errorf("report.md has no per-request table:\n%s", md)
	}
}

// A check that fails turns into errors of class check for its request only;
// a gate on one request fails the step and names that request.
func TestMixFailingCheckAndPerRequestGate(t *testing.T) {
	o := mixNginxRun(t,
		"workload.http.requests.stats.check.body_contains=no such text",
		"gates=[errors.ratio < 50%, request.health.latency.p99 < 1ns]")
	if o.code != 0 || str(o.report, "status") != "bottleneck" {
		t.Fatalf("exit %d, status %q", o.code, str(o.report, "status"))
	}
	m, classes, step := reportStep(t, o, 0)
	if got := classes["stats"]["check"]; got == 0 || got != m["request.stats.requests.count"] || len(classes["stats"]) != 1 {
		t.Errorf("stats: classes %v of %v requests; want every one of class check", classes["stats"], m["request.stats.requests.count"])
	}
	for _, name := range []string{"publish", "health"} {
		if len(classes[name]) != 0 || m["request."+name+".errors.count"] != 0 {
			t.Errorf("%s: errors %v, want none: the check is stats'", name, classes[name])
		}
	}
	var ec map[string]any
	if e, ok := step["error_classes"].(map[string]any); ok {
		ec = e
	}
	if ec["check"] != m["request.stats.requests.count"] {
		t.Errorf("step error classes %v", ec)
	}
	if step["verdict"] != "target-fail" || !strings.Contains(fmt.Sprint(step["reason"]), "request.health.latency.p99") {
		t.Errorf("verdict %v, reason %v: want target-fail naming the health request", step["verdict"], step["reason"])
	}
	b, _ := o.report["bottleneck"].(map[string]any)
	fg, _ := b["failed_gates"].([]any)
	if len(fg) != 1 || fg[0].(map[string]any)["metric"] != "request.health.latency.p99" {
		t.Errorf("bottleneck failed gates %v", fg)
	}
	reqs, _ := b["requests"].([]any)
	named := false
	for _, r := range reqs {
		rm := r.(map[string]any)
		if rm["name"] == "health" && fmt.Sprint(rm["failed_gates"]) == "[request.health.latency.p99 < 1ns]" {
			named = true
		}
	}
	if !named {
		t.Errorf("the bottleneck's per-request table does not name health's failed gate: %v", reqs)
	}
	// The step's progress line says why it failed, naming the request (the
	// summary may lead with a finding instead, on a busy machine).
	if !strings.Contains(o.stderr, "-> target-fail (request.health.latency.p99") {
		t.Errorf("the step's line does not name the request:\n%s", o.stderr)
	}
}

// authServer is a loopback HTTP server of the test's own: it answers 401 to
// a request without the bearer token and records the X-User header of the
// others that have one.
type authServer struct {
	*httptest.Server
	mu    sync.Mutex
	users []string
}

func newAuthServer(t *testing.T, token string) *authServer {
	s := &authServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		if u := r.Header.Get("X-User"); u != "" {
			s.mu.Lock()
			s.users = append(s.users, u)
			s.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(s.Close)
	return s
}

// staticMixPlan is a plan whose target is url, with a feeder of users and a
// mix of two requests that send a token from the environment.
func staticMixPlan(t *testing.T, url, mode string, rows int) string {
	t.Helper()
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("user_id,name\n")
	for i := range rows {
		fmt.Fprintf(&csv, "u%d,user %d\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	plan := fmt.Sprintf(`version: 1
name: static-mix
fleets:
  target:
    provider: static
    outputs: { endpoint: %q }
workload:
  engine: builtin
  http:
    timeout: 2s
    feeders:
      users: { file: users.csv, mode: %s }
    requests:
      - name: write
        weight: 3
        method: POST
        url: '{{ .fleets.target.endpoint }}/orders?user={{ feed "users" "user_id" }}'
        headers:
          Authorization: 'Bearer {{ env "LOADRAMP_TEST_TOKEN" }}'
          X-User: '{{ feed "users" "user_id" }}'
        body: '{"id":"{{ uuid }}","token_echo":"{{ env "LOADRAMP_TEST_TOKEN" }}"}'
        check: { status: [200], json: { path: ok, equals: true } }
      - name: read
        weight: 1
        url: '{{ .fleets.target.endpoint }}/orders'
        headers:
          Authorization: 'Bearer {{ env "LOADRAMP_TEST_TOKEN" }}'
parameters:
  - { name: rate, start: 200, max: 200 }
  - { name: connections, start: 4, max: 4 }
ramp: { warmup: 0s, hold: 2s, confirm: 0, refine: 0 }
gates: [errors.ratio < 1%%]
generator_health: [generator.lag.p99 < 1s]
`, url, mode)
	path := filepath.Join(dir, "static-mix.yaml")
	if err := os.WriteFile(path, []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMixEnvTokenStaysOutOfTheRunDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := "tok-" + hex.EncodeToString(b)
	srv := newAuthServer(t, token)
	path := staticMixPlan(t, srv.URL, "circular", 7)

	// Unset: refused before anything starts, naming the field.
	t.Setenv("LOADRAMP_TEST_TOKEN", "")
	os.Unsetenv("LOADRAMP_TEST_TOKEN")
	o := runCLI(t, path)
	if o.code != ExitUsage || !strings.Contains(o.stderr, `workload.http.requests[0].headers.Authorization (line 19): env "LOADRAMP_TEST_TOKEN" is not set`) || o.dir != "" {
		t.Fatalf("unset token: exit %d, run directory %q\n%s", o.code, o.dir, o.stderr)
	}

	t.Setenv("LOADRAMP_TEST_TOKEN", token)
	o = runCLI(t, path)
	if o.code != 0 || str(o.report, "status") != "max-reached" {
		t.Fatalf("exit %d, status %q", o.code, str(o.report, "status"))
	}
	// The server saw the token (401 would be errors), and every row of the
	// feeder in turn, wrapping: a circular feeder of 7 rows gives each row
	// to a seventh of the writes, give or take one per connection.
	m, _, _ := reportStep(t, o, 0)
	if m["errors.count"] != 0 || m["request.write.requests.count"] < 50 {
		t.Fatalf("errors %v of %v writes", m["errors.count"], m["request.write.requests.count"])
	}
	srv.mu.Lock()
	count := map[string]int{}
	for _, u := range srv.users {
		count[u]++
	}
	n := len(srv.users)
	srv.mu.Unlock()
	if len(count) != 7 || n < 7*3 {
		t.Fatalf("the writes carried %d distinct users in %d requests, want all 7 rows, several times over", len(count), n)
	}
	for u, c := range count {
		if c < n/7-4 || c > n/7+4 {
			t.Errorf("user %s sent %d times in %d writes: the rows do not wrap evenly", u, c, n)
		}
	}
	if strings.Contains(o.stdout+o.stderr, token) {
		t.Error("the token was printed")
	}
	found := []string{}
	err := filepath.WalkDir(o.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(token)) || bytes.Contains(data, []byte(hex.EncodeToString([]byte(token)))) {
			found = append(found, p)
		}
		// A workbook is a zip: its parts are compressed, so read them too.
		if zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data))); err == nil {
			for _, f := range zr.File {
				rc, err := f.Open()
				if err != nil {
					return err
				}
				part, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					return err
				}
				if bytes.Contains(part, []byte(token)) {
					found = append(found, p+":"+f.Name)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) > 0 {
		t.Errorf("the token is in %v", found)
	}
	plan, _ := os.ReadFile(filepath.Join(o.dir, "plan.yaml"))
	if !bytes.Contains(plan, []byte(`{{ env "LOADRAMP_TEST_TOKEN" }}`)) {
		t.Errorf("plan.yaml does not keep the reference to the variable:\n%s", plan)
	}
}

func TestMixUniqueFeederRunsDryStopsTheStep(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	srv := newAuthServer(t, "t")
	t.Setenv("LOADRAMP_TEST_TOKEN", "t")
	// 30 rows for 2 s of 150 writes/s: dry after a fifth of a second.
	o := runCLI(t, staticMixPlan(t, srv.URL, "unique", 30))
	if o.code == 0 || str(o.report, "status") != "error" {
		t.Fatalf("exit %d, status %q: want the run to end in error", o.code, str(o.report, "status"))
	}
	_, _, step := reportStep(t, o, 0)
	want := `feeder "users" (mode unique) ran dry: all of its 30 rows were used`
	if step["verdict"] != "error" || !strings.Contains(fmt.Sprint(step["error"]), want) {
		t.Errorf("step verdict %v, error %v: want %q", step["verdict"], step["error"], want)
	}
	if !strings.Contains(o.stdout+o.stderr, want) {
		t.Errorf("the output does not say why: %s", o.stdout+o.stderr)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	seen := map[string]bool{}
	for _, u := range srv.users {
		if seen[u] {
			t.Fatalf("row %s was sent twice by a unique feeder", u)
		}
		seen[u] = true
	}
}

// A bad feeder file is a clear error naming the field, before anything
// starts: from loadramp plan and from loadramp run (exit 2).
func TestMixBadFeederFiles(t *testing.T) {
	srv := newAuthServer(t, "t")
	t.Setenv("LOADRAMP_TEST_TOKEN", "t")
	for _, tt := range []struct {
		name, content, sets, want string
	}{
		{"missing", "", "", "users.csv: no such file"},
		{"empty", "-", "", "users.csv: empty: a CSV feeder needs a header line naming its columns, then rows"},
		{"ragged", "user_id,name\nu1,ann\nu2\n", "", "users.csv: line 3: a ragged row: the header has 2 columns (user_id, name)"},
		{"unknown column", "user_id,name\nu1,ann\n", `workload.http.requests[1].url={{ .fleets.target.endpoint }}/orders/{{ feed "users" "email" }}`,
			`workload.http.requests[1].url: feed "users" "email": feeder "users" has no column "email" (its columns: user_id, name)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := staticMixPlan(t, srv.URL, "circular", 1)
			feeder := filepath.Join(filepath.Dir(path), "users.csv")
			switch tt.content {
			case "":
				os.Remove(feeder)
			case "-":
				os.WriteFile(feeder, nil, 0o600)
			default:
				os.WriteFile(feeder, []byte(tt.content), 0o600)
			}
			field := "workload.http.feeders.users.file (line 12): "
			if tt.sets != "" {
				field = ""
			}
			out := filepath.Join(t.TempDir(), "runs")
			for _, cmd := range []string{"plan", "run"} {
				args := []string{cmd, path}
				if tt.sets != "" {
					args = append(args, "--set", tt.sets)
				}
				if cmd == "run" {
					args = append(args, "--out", out)
				}
				code, _, errOut := runArgs(t, nil, args...)
				if code != ExitUsage || !strings.Contains(errOut, field) || !strings.Contains(errOut, tt.want) {
					t.Errorf("%s: exit %d, want 2 and %q%q:\n%s", cmd, code, field, tt.want, errOut)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("run made a runs directory for a plan with a bad feeder")
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.users) > 0 {
				t.Error("a request was sent")
			}
		})
	}
}

func TestPlanPrintsTheMix(t *testing.T) {
	t.Setenv("LOADRAMP_BUS_TOKEN", "")
	os.Unsetenv("LOADRAMP_BUS_TOKEN")
	code, out, errOut := runArgs(t, nil, "plan", "../../plans/local-mix.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"engine:      builtin: a mix of 3 requests",
		"publish  weight 6 (60%)  POST {{ .fleets.target.endpoint }}/publish?topic=orders",
		"health   weight 1 (10%)  GET {{ .fleets.target.endpoint }}/healthz",
		"secrets:     from the environment, kept out of the run directory: LOADRAMP_BUS_TOKEN (NOT SET",
		"request.publish.latency.p99 < 50ms",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("loadramp plan does not print %q:\n%s", want, out)
		}
	}
}

// The report.json of a mix decodes into the report package's rows (a
// compile-time check that the keys the tests read exist).
var _ = json.Unmarshal
