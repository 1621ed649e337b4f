package orchestrator

import (
	"strings"
	"testing"

	"github.com/loadramp/loadramp/orchestrator/plan"
)

const checkPlan = `version: 1
name: check
fleets:
  target:
    provider: static
    outputs: { endpoint: "http://127.0.0.1:1" }
workload:
  engine: builtin
  http: { url: "{{ .fleets.target.endpoint }}/" }
parameters:
  - { name: rate, start: 100, max: 100000 }
ramp: { hold: 1s }
`

func TestCheckGates(t *testing.T) {
	for _, tt := range []struct {
		name  string
		extra string
		want  string // "" = no problem
	}{
		{"ok", "gates: [latency.p99 < 100ms, errors.ratio < 1%, errors.count < 5]\nabort: [errors.ratio > 0.5]", ""},
		{"bare duration", "gates: [latency.p99 < 100]", "latency.p99 is a duration: give the threshold a unit"},
		{"time unit on a ratio", "gates: [errors.ratio < 100ms]", "errors.ratio is not a duration"},
		{"abort on a window metric", "abort: [target.cpu > 0.9]", "abort gates are checked every second"},
		{"probe gate without probe", "gates: [probe.delay.p99 < 1s]", "needs a probe block"},
		{"bad syntax", "gates: [latency.p99 <]", "gates[0]"},
		{"prom gate", "gates: [prom.db_cpu < 0.8, prom.db_cpu.peak < 0.9]\nprometheus: {query: 'http://127.0.0.1:9090', metrics: {db_cpu: 'avg(rate(process_cpu_seconds_total[15s]))'}}", ""},
		{"prom gate without a source", "gates: [prom.db_cpu < 0.8]", "prom.db_cpu needs a prometheus block that defines db_cpu"},
		{"prom gate on an undefined name", "gates: [prom.db_cpux < 0.8]\nprometheus: {query: 'http://127.0.0.1:9090', metrics: {db_cpu: up, queue: up}}", `no prometheus metric is named "db_cpux"; the plan defines db_cpu, queue`},
		{"prom gate on an unknown figure", "gates: [prom.db_cpu.p99 < 0.8]\nprometheus: {query: 'http://127.0.0.1:9090', metrics: {db_cpu: up}}", "a prometheus metric is prom.db_cpu (its mean over the hold), prom.db_cpu.peak or prom.db_cpu.min"},
		{"request gate without a mix", "gates: [request.checkout.latency.p99 < 200ms]", "per-request metrics need a mix of named requests"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := plan.Parse([]byte(checkPlan+tt.extra+"\n"), "check.yaml", nil)
			if err != nil {
				t.Fatal(err)
			}
			errs := Check(p, nil)
			var all []string
			for _, e := range errs {
				all = append(all, e.Error())
			}
			got := strings.Join(all, "\n")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("problems:\n%s\nwant %q", got, tt.want)
			}
		})
	}
	p, _ := plan.Parse([]byte(checkPlan+"gates: [latency.p99 < 1s]\n"), "check.yaml", nil)
	if errs := Check(p, plan.Ceilings{plan.CeilingMaxRate: 50000}); len(errs) != 1 || !strings.Contains(errs[0].Error(), "max_rate=50000") {
		t.Errorf("ceiling: %v", errs)
	}
	if errs := Check(p, plan.Ceilings{plan.CeilingMaxRate: 100000}); len(errs) != 0 {
		t.Errorf("within the ceiling: %v", errs)
	}
}

const mixCheckPlan = `version: 1
name: check
fleets:
  target:
    provider: static
    outputs: { endpoint: "http://127.0.0.1:1" }
workload:
  engine: builtin
  http:
    requests:
      - { name: checkout, weight: 2, url: "{{ .fleets.target.endpoint }}/checkout" }
      - { name: browse, url: "{{ .fleets.target.endpoint }}/" }
parameters:
  - { name: rate, start: 100, max: 1000 }
ramp: { hold: 1s }
`

// Per-request gates name a request of the mix and a figure measured per
// request, with the unit its figure takes.
func TestCheckRequestGates(t *testing.T) {
	for _, tt := range []struct {
		gate string
		want string // "" = no problem
	}{
		{"request.checkout.latency.p99 < 200ms", ""},
		{"request.browse.errors.ratio < 1%", ""},
		{"request.browse.share > 0.3", ""},
		{"request.checkout.throughput.rps > 100", ""},
		{"request.checkout.errors.count < 1", ""},
		{"request.checkuot.latency.p99 < 200ms", `no request is named "checkuot"; the plan's requests are checkout, browse; did you mean "checkout"?`},
		{"request.checkout.latency.p42 < 200ms", `latency.p42 is not measured per request; request.checkout. takes latency.p50`},
		{"request.checkout.generator.cpu < 0.9", `generator.cpu is not measured per request`},
		{"request.checkout < 1", `request.checkout: a per-request metric is request.<name>.<metric>`},
		{"request.checkout.latency.p99 < 200", "request.checkout.latency.p99 is a duration: give the threshold a unit"},
		{"request.checkout.errors.ratio < 5ms", "request.checkout.errors.ratio is not a duration"},
	} {
		p, err := plan.Parse([]byte(mixCheckPlan+"gates: ['"+tt.gate+"']\n"), "check.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		for _, e := range Check(p, nil) {
			all = append(all, e.Error())
		}
		got := strings.Join(all, "\n")
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("%s: problems:\n%s\nwant %q", tt.gate, got, tt.want)
		}
	}
}

// The diagnosis calls the generator starved from the plan's threshold of
// generator.starved.ratio: the default's, the plan's own, or none when the
// plan turned the default generator health off.
func TestStarvedAtFromThePlan(t *testing.T) {
	for _, tt := range []struct {
		extra string
		want  float64
	}{
		{"gates: [latency.p99 < 1s]", 0.2},
		{"gates: [latency.p99 < 1s]\ngenerator_health: [generator.starved.ratio < 0.5]", 0.5},
		{"gates: [latency.p99 < 1s]\ndefault_checks: { generator_health: false }", -1},
		{"gates: [latency.p99 < 1s]\ndefault_checks: { generator_health: false }\ngenerator_health: [generator.starved.ratio <= 0.3]", 0.3},
	} {
		p, err := plan.Parse([]byte(checkPlan+tt.extra+"\n"), "check.yaml", nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.extra, err)
		}
		gs, errs := compileGates(p)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", tt.extra, errs)
		}
		if got := starvedAt(gs.health); got != tt.want {
			t.Errorf("%q: starved at %g, want %g", tt.extra, got, tt.want)
		}
	}
}
