package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/loadramp/loadramp/internal/pubsubtest"
)

// Ramps of subscribers against real pub/sub servers from Debian's packages,
// each run through `loadramp run` on a plan shipped in plans/: each finds its
// server's limit, names it with one of loadramp's rules, and measures the
// delivery delay on every step that passed.

// serverRun runs a plan of plans/ with short steps. Other tests share this
// machine's two cores: a lagging generator would end the run
// generator-limited before the server is reached, so the generator's health
// and the delay gates are looser than the plan's.
func serverRun(t *testing.T, plan string, need []string, sets ...string) runOutcome {
	t.Helper()
	if testing.Short() {
		t.Skip("integration")
	}
	for _, f := range need {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s is not installed (%v): scripts/test-deps.sh installs it", f, err)
		}
	}
	args := []string{"../../plans/" + plan,
		"--set", "ramp.warmup=1s", "--set", "ramp.hold=2s", "--set", "ramp.cooldown=500ms", "--set", "ramp.refine=1",
		"--set", "parameters.subscribers.max=512",
		"--set", "generator_health=[generator.lag.p99 < 500ms]", "--set", "default_checks.generator_health=false",
		"--set", "gates[2]=pubsub.delay.p99 < 1s", "--set", "gates[4]=probe.delay.p99 < 1s",
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return runCLI(t, args...)
}

// wantDelayOnPassingSteps checks that every step that passed measured the
// delivery delay of the load and of the probe.
func wantDelayOnPassingSteps(t *testing.T, o runOutcome) {
	t.Helper()
	steps, _ := o.report["steps"].([]any)
	passed := 0
	for _, s := range steps {
		st := s.(map[string]any)
		if st["verdict"] != "pass" {
			continue
		}
		passed++
		for _, k := range []string{"pubsub.delay.p99", "pubsub.delay.max", "probe.delay.p99"} {
			if d := num(t, st, "metrics", k); d <= 0 {
				t.Errorf("step %v: %s = %v", st["index"], k, d)
			}
		}
		if lost := num(t, st, "metrics", "pubsub.lost.ratio"); lost != 0 {
			t.Errorf("step %v passed with pubsub.lost.ratio %v", st["index"], lost)
		}
	}
	if passed < 2 {
		t.Errorf("%d steps passed, want the ramp to pass a few before the limit", passed)
	}
}

// wantFinding returns the bottleneck's finding of rule, failing without one.
func wantFinding(t *testing.T, o runOutcome, rule string) map[string]any {
	t.Helper()
	wantTargetBottleneck(t, o, "subscribers")
	b, _ := o.report["bottleneck"].(map[string]any)
	fs, _ := b["findings"].([]any)
	for _, f := range fs {
		if fm := f.(map[string]any); fm["rule"] == rule {
			return fm
		}
	}
	t.Fatalf("no %s finding at the bottleneck: %v", rule, fs)
	return nil
}

// nchan holds one connection per subscriber: with worker_connections 128,
// the step past about 120 subscribers fails, named from nginx's error log.
func testNchanRamp(t *testing.T, plan string) {
	o := serverRun(t, plan, []string{pubsubtest.NginxBin, pubsubtest.NchanModule})
	f := wantFinding(t, o, "nginx-worker-connections")
	if f["process"] != "nginx" || !strings.Contains(evidence(f), "128 worker_connections are not enough") {
		t.Errorf("finding %v: want nginx, with its error-log line as evidence", f)
	}
	if subs := num(t, o.report, "capacity", "parameters", "subscribers"); subs < 64 || subs >= 128 {
		t.Errorf("capacity at %v subscribers, want 64 to 127 with 128 worker_connections", subs)
	}
	wantDelayOnPassingSteps(t, o)
}

func TestNchanSSERampFindsWorkerConnections(t *testing.T) { testNchanRamp(t, "local-nchan-sse.yaml") }

func TestNchanWebSocketRampFindsWorkerConnections(t *testing.T) {
	testNchanRamp(t, "local-nchan-websocket.yaml")
}

// nats-server under an open-file limit of 96 holds a WebSocket per client:
// past about 90 connections it cannot accept, and its file descriptors at the
// limit name the cause.
func TestNATSWebSocketRampFindsOpenFiles(t *testing.T) {
	o := serverRun(t, "local-nats-websocket.yaml", []string{pubsubtest.NATSBin, "/usr/bin/prlimit"})
	f := wantFinding(t, o, "fd-process")
	if f["process"] != "nats-server" || !strings.Contains(f["observed"].(string), "of 96") {
		t.Errorf("finding %v: want nats-server at its 96 files", f)
	}
	if subs := num(t, o.report, "capacity", "parameters", "subscribers"); subs < 32 || subs >= 96 {
		t.Errorf("capacity at %v subscribers, want under the 96 files", subs)
	}
	wantDelayOnPassingSteps(t, o)
}

// The first sighting: the bundled bus's confirmation against a
// server that never sends it. The run stops at its first step with an error
// that names the confirmation mode and what nchan sent instead.
func TestNchanNeverConfirmsTheBundledBusComment(t *testing.T) {
	o := serverRun(t, "local-nchan-sse.yaml", []string{pubsubtest.NginxBin, pubsubtest.NchanModule},
		`workload.pubsub.confirm='comment ": subscribed"'`, "workload.pubsub.settle=null", "parameters.subscribers.max=16")
	if o.code == 0 || str(o.report, "status") != "error" {
		t.Fatalf("exit %d, status %q: want the run to stop with an error", o.code, str(o.report, "status"))
	}
	for _, want := range []string{`none of 16 subscribers could subscribe`, `confirmation comment ": subscribed": no comment or message starting with ": subscribed" within 5s`,
		`received instead 1 line after the response headers (status 200, Content-Type "text/event-stream; charset=utf-8"): ": hi"`} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("the error does not say %q", want)
		}
	}
}
