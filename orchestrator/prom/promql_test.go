package prom

import (
	"strings"
	"testing"

	"github.com/loadramp/loadramp/orchestrator/plan"
)

// promPlan is a valid plan whose prometheus blocks come from --set.
const promPlan = `version: 1
name: prom
fleets:
  target:
    provider: local
    processes:
      - name: bus
        command: [bin/eventbus, --listen, '127.0.0.1:{{ port "bus" }}']
        ready: 'http://127.0.0.1:{{ port "bus" }}/healthz'
    outputs:
      endpoint: 'http://127.0.0.1:{{ port "bus" }}'
workload:
  engine: builtin
  http:
    url: "{{ .fleets.target.endpoint }}/publish?topic=load"
parameters:
  - { name: rate, start: 250, max: 64000 }
ramp:
  hold: 5s
gates:
  - latency.p99 < 100ms
`

func TestCheckPlanPromQL(t *testing.T) {
	tests := []struct {
		name string
		set  string
		want string // the one problem, by prefix; "" for none
	}{
		{"good query", `prometheus={query: 'http://h:9090', metrics: {a: 'avg(rate(process_cpu_seconds_total{job="db"}[15s]))'}}`, ""},
		{"good selector", `fleets.target.prometheus={scrape: ['http://h:9100/metrics'], metrics: {a: 'eventbus_requests_total{handler="publish"}'}}`, ""},
		{"templated", `prometheus={query: 'http://h:9090', metrics: {a: 'up{instance="{{ .fleets.target.endpoint }}"'}}`, ""},
		{"bad PromQL", `prometheus={query: 'http://h:9090', metrics: {a: 'avg(rate(x[5m])'}}`,
			`prometheus.metrics.a: bad PromQL "avg(rate(x[5m])": 1:16: parse error: unclosed left parenthesis`},
		{"range vector", `prometheus={query: 'http://h:9090', metrics: {a: 'x[5m]'}}`,
			`prometheus.metrics.a: PromQL "x[5m]" is a range vector; a range query needs an instant vector or a scalar: wrap it in a function, e.g. rate(x[5m])`},
		{"string", `prometheus={query: 'http://h:9090', metrics: {a: '"text"'}}`,
			`prometheus.metrics.a: PromQL "\"text\"" is a string`},
		{"function in scrape mode", `fleets.target.prometheus={scrape: ['http://h:9100/metrics'], metrics: {a: 'rate(x[1m])'}}`,
			`fleets.target.prometheus.metrics.a: "rate(x[1m])": scrape mode takes a series selector`},
		{"offset in scrape mode", `fleets.target.prometheus={scrape: ['http://h:9100/metrics'], metrics: {a: 'x offset 5m'}}`,
			`fleets.target.prometheus.metrics.a: "x offset 5m": offset and @ need query mode`},
		{"bad selector", `fleets.target.prometheus={scrape: ['http://h:9100/metrics'], metrics: {a: 'x{job=}'}}`,
			`fleets.target.prometheus.metrics.a: "x{job=}" is not a series selector`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := plan.Parse([]byte(promPlan), "test.yaml", []string{tt.set})
			if err != nil {
				t.Fatal(err)
			}
			if errs := p.Validate(); len(errs) != 0 {
				t.Fatalf("Validate: %v", errs)
			}
			var got []string
			for _, e := range CheckPlan(p) {
				got = append(got, e.Error())
			}
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("problems %q, want none", got)
			case tt.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tt.want)):
				t.Errorf("got:\n%s\nwant one problem starting %q", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

// A problem written in the file carries its line.
func TestCheckPlanLine(t *testing.T) {
	src := promPlan + "prometheus:\n  query: http://h:9090\n  metrics:\n    ok: up\n    bad: 'sum(up'\n"
	p, err := plan.Parse([]byte(src), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	errs := CheckPlan(p)
	line := strings.Count(promPlan, "\n") + 5
	if len(errs) != 1 {
		t.Fatalf("CheckPlan = %v", errs)
	}
	if pr, ok := errs[0].(*plan.Problem); !ok || pr.Path != "prometheus.metrics.bad" || pr.Line != line {
		t.Errorf("problem %#v, want prometheus.metrics.bad at line %d", errs[0], line)
	}
}

// FuzzCheckPromQL checks the PromQL check never panics and that an
// expression it accepts in scrape mode is one it accepts in query mode.
func FuzzCheckPromQL(f *testing.F) {
	for _, s := range []string{
		`up`, `avg(rate(process_cpu_seconds_total{job="db"}[15s]))`, `x[5m]`, `eventbus_requests_total{handler="publish"}`,
		`sum by (le) (rate(h_bucket[1m]))`, `{__name__=~"a.+"}`, `1 + `, `histogram_quantile(0.99, x)`, "\x00", `a{b="\xff"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		scrapeErr := CheckPromQL(plan.PromScrape, expr)
		queryErr := CheckPromQL(plan.PromQuery, expr)
		if scrapeErr == nil && queryErr != nil {
			t.Errorf("selector %q accepted in scrape mode but not in query mode: %v", expr, queryErr)
		}
	})
}
