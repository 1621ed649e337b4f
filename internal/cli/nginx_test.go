package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// The seed article's sequence, automated: nginx in front of the event bus
// (plans/local-nginx.yaml), ramping connections. First nginx runs out of
// worker_connections; with those raised and its open-file limit left low, it
// runs out of files next.

// nginxRun runs plans/local-nginx.yaml, as shipped, with the event bus built
// for the test and shorter steps; sets change the static parameters.
func nginxRun(t *testing.T, sets ...string) runOutcome {
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
		"--set", "parameters.connections.start=128",
		"--set", "parameters.connections.max=2048",
		"--set", "ramp.warmup=1s", "--set", "ramp.hold=3s", "--set", "ramp.cooldown=500ms",
		"--set", "ramp.refine=1",
		// Other tests share this machine's two cores: a lagging or starved
		// generator would end the run generator-limited before nginx is
		// reached. The target's gates are the plan's (and the default checks
		// that the connections were held).
		"--set", "generator_health=[generator.lag.p99 < 500ms]",
		"--set", "default_checks.generator_health=false",
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return runCLI(t, args...)
}

// bottleneckFindings returns the bottleneck's findings of report.json by rule.
func bottleneckFindings(t *testing.T, o runOutcome) map[string]map[string]any {
	t.Helper()
	wantTargetBottleneck(t, o, "connections")
	out := map[string]map[string]any{}
	b, _ := o.report["bottleneck"].(map[string]any)
	fs, _ := b["findings"].([]any)
	for _, f := range fs {
		fm := f.(map[string]any)
		if r, _ := fm["rule"].(string); out[r] == nil {
			out[r] = fm
		}
	}
	return out
}

func evidence(f map[string]any) string {
	b, _ := json.Marshal(f["evidence"])
	return string(b)
}

func TestNginxRunsOutOfWorkerConnections(t *testing.T) {
	o := nginxRun(t) // the plan's defaults: worker_connections 256, worker_rlimit_nofile 1024
	fs := bottleneckFindings(t, o)
	f, ok := fs["nginx-worker-connections"]
	if !ok {
		t.Fatalf("no nginx-worker-connections finding at the bottleneck: %v", fs)
	}
	if f["process"] != "nginx" || f["setting"] != "worker_connections" || !strings.Contains(evidence(f), "256 worker_connections are not enough") {
		t.Errorf("finding %v: want process nginx, setting worker_connections, the error-log line as evidence", f)
	}
	if _, ok := fs["fd-process"]; ok {
		t.Errorf("fd-process named while nginx had 1024 files for 256 connections: %v", fs)
	}
	// Where 256 worker connections stop being enough (each proxied request
	// holds a client and an upstream connection), not at 2048: the step to
	// 256 did not hold its connections.
	if from, to := num(t, o.report, "bottleneck", "from"), num(t, o.report, "bottleneck", "to"); from != 128 || to != 256 {
		t.Errorf("bottleneck connections %g -> %g, want 128 -> 256", from, to)
	}
	c, ok := fs["connections-closed"]
	if !ok || c["side"] != "target" || !strings.Contains(evidence(c), "connections reopened for") {
		t.Errorf("connections-closed finding %v: want the target closing held connections, with the reopens as evidence", c)
	}
	// The static parameters and the preflight audit of nginx.conf are recorded.
	if got := num(t, o.report, "static", "nginx_worker_connections"); got != 256 {
		t.Errorf("static nginx_worker_connections %g, want 256", got)
	}
	if got := num(t, o.report, "limits", "nginx.worker_connections"); got != 256 {
		t.Errorf("limits nginx.worker_connections %g, want 256 (read from the run's nginx.conf)", got)
	}
	if got := num(t, o.report, "limits", "nofile.nginx worker"); got != 1024 {
		t.Errorf("limits nofile of the nginx worker %g, want 1024 (worker_rlimit_nofile)", got)
	}
}

func TestNginxRunsOutOfFilesOnceConnectionsAreRaised(t *testing.T) {
	// One static parameter changed from the run before: worker_connections
	// raised; the open-file limit (lowered here to reach it sooner) is next.
	o := nginxRun(t, "static.nginx_worker_connections=4096", "static.nginx_nofile=512")
	fs := bottleneckFindings(t, o)
	f, ok := fs["fd-process"]
	if !ok {
		t.Fatalf("no fd-process finding at the bottleneck: %v", fs)
	}
	if f["process"] != "nginx" || f["setting"] != "worker_rlimit_nofile" || !strings.Contains(evidence(f), "(24: Too many open files)") {
		t.Errorf("finding %v: want process nginx, setting worker_rlimit_nofile, nginx's EMFILE line as evidence", f)
	}
	if _, ok := fs["nginx-worker-connections"]; ok {
		t.Errorf("nginx-worker-connections named with 4096 of them: %v", fs)
	}
	// 512 files cannot serve 512 proxied connections: the step to 512 fails.
	if to := num(t, o.report, "bottleneck", "to"); to != 512 {
		t.Errorf("bottleneck at %g connections, want 512 with 512 files", to)
	}
	// The preflight audit saw the inverted funnel before the first step.
	if !strings.Contains(o.stderr, "limits: nginx open files (worker_rlimit_nofile = 512) are under twice worker_connections (4096)") {
		t.Errorf("the preflight warning about worker_rlimit_nofile is not in the progress output")
	}
}
