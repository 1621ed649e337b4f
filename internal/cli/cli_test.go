package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runArgs(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	if _, ok := env["XDG_CONFIG_HOME"]; !ok {
		t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var so, se bytes.Buffer
	code := run(args, IO{In: strings.NewReader(""), Out: &so, ErrOut: &se}, os.Getenv)
	return code, so.String(), se.String()
}

func TestPlanPrintsDoublingSchedule(t *testing.T) {
	code, out, errOut := runArgs(t, nil, "plan", "../../plans/local-eventbus.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(out, "\n")
	var rows [][]string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] != "step" && isInt(f[0]) {
			rows = append(rows, f)
		}
	}
	if len(rows) < 10 {
		t.Fatalf("schedule has %d rows:\n%s", len(rows), out)
	}
	first, last := rows[0], rows[len(rows)-1]
	if first[1] != "250" || first[2] != "8" {
		t.Errorf("first step %v, want rate 250 connections 8", first)
	}
	if strings.TrimPrefix(last[1], "*") != "64000" || strings.TrimPrefix(last[2], "*") != "4096" {
		t.Errorf("last step %v, want rate 64000 connections 4096", last)
	}
	// Round-robin: rate and connections change in turn while both can grow.
	if !strings.HasPrefix(rows[1][1], "*") || !strings.HasPrefix(rows[2][2], "*") || !strings.HasPrefix(rows[3][1], "*") {
		t.Errorf("rate and connections do not double in turn:\n%s", out)
	}
}

func isInt(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

const brokenPlan = `version: 1
name: broken
fleets:
  target:
    provider: local
    processes:
      - name: marker
        command: [touch, MARKER]
        ready: 'http://127.0.0.1:{{ port "x" }}/'
    outputs:
      endpoint: 'http://127.0.0.1:{{ port "x" }}'
    procesess: []
workload:
  engine: builtin
  http:
    url: "{{ .fleets.tagret.endpoint }}/publish"
parameters:
  - { name: rate, start: -5, max: 100 }
  - { name: connections, start: 64, max: 8 }
  - { name: users, start: 1, max: 10 }
ramp:
  hold: soon
gates:
  - latency.p99 < 100xs
`

func TestInvalidPlanListsEveryProblemAndStartsNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(path, []byte(brokenPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	for _, cmd := range []string{"plan", "run"} {
		code, _, errOut := runArgs(t, nil, cmd, path, "--out", filepath.Join(dir, "runs"))
		if cmd == "plan" {
			code, _, errOut = runArgs(t, nil, cmd, path)
		}
		if code != 2 {
			t.Fatalf("%s: exit %d, want 2\n%s", cmd, code, errOut)
		}
		for _, want := range []string{
			"fleets.target.procesess", // unknown key
			`did you mean "processes"`,
			"ramp.hold",     // bad duration
			"parameters[0]", // negative start
			"parameters[1]", // start above max
			"users",         // unknown parameter for the engine
			"tagret",        // missing fleet
			"gates[0]",      // bad gate expression
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%s: problems do not mention %q:\n%s", cmd, want, errOut)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "MARKER")); err == nil {
			t.Fatalf("%s started a process of an invalid plan", cmd)
		}
		if _, err := os.Stat(filepath.Join(dir, "runs")); err == nil {
			t.Errorf("%s made a runs directory for an invalid plan", cmd)
		}
	}
}

func TestHelpIsUseful(t *testing.T) {
	code, out, _ := runArgs(t, nil, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"plan", "run", "version", "LOADRAMP_", "Exit codes", "plans/local-eventbus.yaml"} {
		if !strings.Contains(out, want) {
			t.Errorf("loadramp --help lacks %q", want)
		}
	}
	code, out, _ = runArgs(t, nil, "plan", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"--set", "Examples:", "parameters.rate.max=8000", "Nothing is started"} {
		if !strings.Contains(out, want) {
			t.Errorf("loadramp plan --help lacks %q", want)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"plan"},
		{"nosuchcommand"},
		{"plan", "--nosuchflag", "x.yaml"},
		{"plan", "/nonexistent/plan.yaml"},
		{"run", "../../plans/local-eventbus.yaml", "--progress", "fancy"},
	} {
		code, _, errOut := runArgs(t, nil, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
		if !strings.Contains(errOut, "rror") {
			t.Errorf("%v: no error message: %q", args, errOut)
		}
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("max_rate: 1000\n"), 0o644)
	// From the file: the plan's 64000 req/s is over the 1000 ceiling.
	code, _, errOut := runArgs(t, nil, "plan", "../../plans/local-eventbus.yaml", "--config", cfg)
	if code != 2 || !strings.Contains(errOut, "max_rate=1000") {
		t.Fatalf("config file ceiling not applied: exit %d\n%s", code, errOut)
	}
	// The environment overrides the file.
	env := map[string]string{"LOADRAMP_MAX_RATE": "2000", "XDG_CONFIG_HOME": dir}
	code, _, errOut = runArgs(t, env, "plan", "../../plans/local-eventbus.yaml", "--config", cfg)
	if code != 2 || !strings.Contains(errOut, "max_rate=2000") {
		t.Fatalf("env ceiling not applied: exit %d\n%s", code, errOut)
	}
	// Flags override both.
	code, _, errOut = runArgs(t, env, "plan", "../../plans/local-eventbus.yaml", "--config", cfg, "--max-rate", "100000")
	if code != 0 {
		t.Fatalf("flag did not override: exit %d\n%s", code, errOut)
	}
	// The default location is $XDG_CONFIG_HOME/loadramp/config.yaml.
	os.MkdirAll(filepath.Join(dir, "loadramp"), 0o755)
	os.WriteFile(filepath.Join(dir, "loadramp", "config.yaml"), []byte("max_rate: 3000\n"), 0o644)
	code, _, errOut = runArgs(t, map[string]string{"XDG_CONFIG_HOME": dir, "LOADRAMP_MAX_RATE": ""}, "plan", "../../plans/local-eventbus.yaml")
	if code != 2 || !strings.Contains(errOut, "max_rate=3000") {
		t.Fatalf("XDG config not read: exit %d\n%s", code, errOut)
	}
	// A broken config file is a usage error naming it.
	os.WriteFile(cfg, []byte("max_rate: [\n"), 0o644)
	code, _, errOut = runArgs(t, nil, "plan", "../../plans/local-eventbus.yaml", "--config", cfg)
	if code != 2 || !strings.Contains(errOut, cfg) {
		t.Fatalf("broken config: exit %d\n%s", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runArgs(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "loadramp ") {
		t.Fatalf("exit %d: %q", code, out)
	}
}
