package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// pubsubPlan writes a plan that ramps the pubsub workload on the event bus
// started with busFlags, with the pubsub probe beside it.
func pubsubPlan(t *testing.T, name, busFlags, params, extra string) string {
	t.Helper()
	_, bus := binaries(t)
	var flags string
	for _, f := range splitFields(busFlags) {
		flags += fmt.Sprintf(", %q", f)
	}
	body := fmt.Sprintf(`version: 1
name: %s
fleets:
  target:
    provider: local
    processes:
      - name: eventbus
        command: [%q, --listen, '127.0.0.1:{{ port "bus" }}'%s]
        ready: 'http://127.0.0.1:{{ port "bus" }}/healthz'
    outputs:
      endpoint: 'http://127.0.0.1:{{ port "bus" }}'
workload:
  engine: builtin
  pubsub:
    publish: "{{ .fleets.target.endpoint }}/publish?topic=load"
    subscribe: "{{ .fleets.target.endpoint }}/subscribe?topic=load"
    confirm: 'comment ": subscribed"'
    body_bytes: 128
    timeout: 5s
probe:
  kind: pubsub
  publish: "{{ .fleets.target.endpoint }}/publish?topic=probe"
  subscribe: "{{ .fleets.target.endpoint }}/subscribe?topic=probe"
  confirm: 'comment ": subscribed"'
  rate: 20
# These tests share this machine's cores with other tests: a generator that
# lags or waits for a CPU is likely, and the verdicts under test are the
# target's. The default generator health checks have tests of their own.
default_checks:
  generator_health: false
parameters:
%s
%s
`, name, bus, flags, params, extra)
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func splitFields(s string) []string {
	var out []string
	cur := ""
	for _, r := range s {
		if r == ' ' {
			if cur != "" {
				out = append(out, cur)
			}
			cur = ""
			continue
		}
		cur += string(r)
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

// TestPubSubRampFindsCapacity ramps publishers on a bus with a hard capacity
// of 200 publishes/s at 50 messages/s per publisher: 4 publishers pass, 8 do
// not, and the probe's delay is in every step and in the report.
func TestPubSubRampFindsCapacity(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	plan := pubsubPlan(t, "pubsub-capacity", "--capacity 200",
		"  - { name: publishers, start: 1, max: 32 }\n  - { name: subscribers, start: 2, max: 2 }\n  - { name: rate, start: 50, max: 50 }",
		`ramp:
  warmup: 1s
  hold: 3s
  cooldown: 500ms
  confirm: 1
  refine: 1
gates:
  - pubsub.delay.p99 < 500ms
  - pubsub.lost.ratio < 0.01
  - latency.p99 < 500ms
`)
	o := runCLI(t, plan)
	wantTargetBottleneck(t, o, "publishers")
	pubs := num(t, o.report, "capacity", "parameters", "publishers")
	if pubs < 3 || pubs > 5 {
		t.Errorf("capacity at %v publishers, want 4 (200/s of capacity at 50/s each)", pubs)
	}
	if d := num(t, o.report, "capacity", "metrics", "probe.delay.p99"); d <= 0 || d > 0.5 {
		t.Errorf("capacity probe.delay.p99 = %v", d)
	}
	if r := num(t, o.report, "capacity", "metrics", "pubsub.delivered.rps"); r < 300 || r > 500 {
		t.Errorf("capacity pubsub.delivered.rps = %v, want about 400 (200/s x 2 subscribers)", r)
	}
	steps, _ := o.report["steps"].([]any)
	if len(steps) < 4 {
		t.Fatalf("%d steps in the report", len(steps))
	}
	for _, s := range steps {
		st := s.(map[string]any)
		for _, k := range []string{"probe.delay.p99", "probe.delay.max", "probe.lost.ratio", "pubsub.delay.p99"} {
			num(t, st, "metrics", k) // fails the test when missing
		}
	}
}
