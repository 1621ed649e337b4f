package plan

import (
	"strings"
	"testing"
)

// basePlan is a small valid plan the tests mutate. Keep its line numbers in
// mind: tests assert some of them.
const basePlan = `version: 1
name: base
fleets:
  target:
    provider: local
    processes:
      - name: bus
        command: [bin/eventbus, --listen, '127.0.0.1:{{ port "bus" }}', --nofile, "{{ .static.nofile }}"]
        ready: 'http://127.0.0.1:{{ port "bus" }}/healthz'
    outputs:
      endpoint: 'http://127.0.0.1:{{ port "bus" }}'
static:
  nofile: 1024
workload:
  engine: builtin
  http:
    url: "{{ .fleets.target.endpoint }}/publish?topic=load"
    body: '{"msg":"hello"}'
parameters:
  - { name: rate, start: 250, max: 64000 }
  - { name: connections, start: 8, max: 4096 }
ramp:
  hold: 5s
gates:
  - latency.p99 < 100ms
`

// mustParse parses src or fails the test.
func mustParse(t *testing.T, src string, sets ...string) *Plan {
	t.Helper()
	p, err := Parse([]byte(src), "test.yaml", sets)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// errStrings returns the Error() of each problem.
func errStrings(errs []error) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// replace edits basePlan, failing if old is not in it.
func replace(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(basePlan, old) {
		t.Fatalf("basePlan has no %q", old)
	}
	return strings.Replace(basePlan, old, new, 1)
}
