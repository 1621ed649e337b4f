package plan

import (
	"strings"
	"testing"
)

func TestPrometheusBlocks(t *testing.T) {
	p := mustParse(t, basePlan,
		`prometheus={query: 'http://127.0.0.1:9090', settle: 2s, metrics: {db_cpu: 'avg(rate(process_cpu_seconds_total{job="db"}[15s]))'}}`,
		`fleets.target.prometheus={scrape: ['http://127.0.0.1:{{ port "bus" }}/metrics', 'http://10.0.0.5:9100/metrics'], metrics: {queue: 'eventbus_queue_depth', publishes: 'eventbus_requests_total{handler="publish"}'}}`,
	)
	if errs := p.Validate(); len(errs) != 0 {
		t.Fatalf("Validate: %v", errs)
	}
	srcs := p.PromSources()
	if len(srcs) != 2 {
		t.Fatalf("PromSources = %+v", srcs)
	}
	if s := srcs[0]; s.Path != "prometheus" || s.Fleet != "" || s.Mode() != PromQuery || s.Settle.D().Seconds() != 2 || s.Side() != "target" {
		t.Errorf("plan block: %+v mode %s side %s", s, s.Mode(), s.Side())
	}
	if s := srcs[1]; s.Path != "fleets.target.prometheus" || s.Fleet != "target" || s.Mode() != PromScrape || len(s.Scrape) != 2 {
		t.Errorf("fleet block: %+v", s)
	}
	want := map[string]string{
		"db_cpu":    "prometheus.metrics.db_cpu",
		"queue":     "fleets.target.prometheus.metrics.queue",
		"publishes": "fleets.target.prometheus.metrics.publishes",
	}
	got := p.PromMetrics()
	if len(got) != len(want) {
		t.Errorf("PromMetrics = %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("PromMetrics[%s] = %q, want %q", k, got[k], v)
		}
	}
	// The scrape URL is a template like any other: it is listed and checked.
	found := false
	for _, tm := range p.templated() {
		found = found || tm.path == "fleets.target.prometheus.scrape[0]"
	}
	if !found {
		t.Error("scrape URLs are not among the plan's templates")
	}
	if gen := (PromSource{Fleet: "generators"}); gen.Side() != "generator" {
		t.Errorf("generators fleet side = %s", gen.Side())
	}
}

func TestPrometheusValidation(t *testing.T) {
	tests := []struct {
		name string
		set  string
		want string // the one problem, by prefix
	}{
		{"neither mode", `prometheus={metrics: {a: up}}`,
			"prometheus: give scrape (a list of /metrics URLs) or query (a Prometheus server's URL)"},
		{"both modes", `prometheus={scrape: ['http://h:9100/metrics'], query: 'http://h:9090'}`,
			"prometheus: scrape and query exclude each other"},
		{"bad query URL", `prometheus={query: 'prom:9090', metrics: {a: up}}`,
			`prometheus.query: "prom:9090": use an http:// or https:// URL with a host`},
		{"bad scrape URL", `fleets.target.prometheus={scrape: ['ftp://h/metrics']}`,
			`fleets.target.prometheus.scrape[0]: "ftp://h/metrics": use an http:// or https:// URL with a host`},
		{"duplicate scrape URL", `fleets.target.prometheus={scrape: ['http://h:9100/metrics', 'http://h:9100/metrics']}`,
			`fleets.target.prometheus.scrape[1]: "http://h:9100/metrics" is also scrape[0]`},
		{"query needs metrics", `prometheus={query: 'http://h:9090'}`,
			"prometheus.metrics: missing; query mode reads only the named queries"},
		{"settle in scrape mode", `prometheus={scrape: ['http://h:9100/metrics'], settle: 1s}`,
			"prometheus.settle: only query mode waits"},
		{"negative settle", `prometheus={query: 'http://h:9090', settle: -1s, metrics: {a: up}}`,
			"prometheus.settle: must be >= 0"},
		{"name with a dot", `prometheus={query: 'http://h:9090', metrics: {db.cpu: up}}`,
			`prometheus.metrics.db.cpu: metric name "db.cpu": use 1-64 lowercase letters, digits and _`},
		{"name uppercase", `prometheus={query: 'http://h:9090', metrics: {DbCPU: up}}`,
			`prometheus.metrics.DbCPU: metric name "DbCPU": use 1-64 lowercase letters, digits and _, starting with a letter (gates read it as prom.dbcpu)`},
		{"empty query", `prometheus={query: 'http://h:9090', metrics: {a: ' '}}`,
			"prometheus.metrics.a: empty; give a PromQL expression"},
		{"name shared by two blocks", `prometheus={query: 'http://h:9090', metrics: {q: up}}`,
			"fleets.target.prometheus.metrics.q: prom.q is also defined at prometheus.metrics.q"},
		{"unknown template ref", `prometheus={query: '{{ .fleets.target.prom }}', metrics: {a: up}}`,
			`prometheus.query: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sets := []string{tt.set}
			if tt.name == "name shared by two blocks" {
				sets = append(sets, `fleets.target.prometheus={scrape: ['http://h:9100/metrics'], metrics: {q: up}}`)
			}
			p := mustParse(t, basePlan, sets...)
			got := errStrings(p.Validate())
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Errorf("got:\n%s\nwant one problem starting %q", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

func TestPrometheusTemplatedQueryIsCheckedLater(t *testing.T) {
	// A templated expression cannot be parsed before it is rendered: the plan
	// is valid and package prom judges the rendered text at run time.
	p := mustParse(t, basePlan, `prometheus={query: 'http://h:9090', metrics: {a: 'up{instance="{{ .fleets.target.endpoint }}"}'}}`)
	if errs := p.Validate(); len(errs) != 0 {
		t.Fatalf("Validate: %v", errs)
	}
}

func TestPrometheusPromQLIsNotParsedHere(t *testing.T) {
	// Bad PromQL passes Validate: prom.CheckPlan parses it (package plan does
	// not import Prometheus's parser), and the CLI runs both.
	p := mustParse(t, basePlan, `prometheus={query: 'http://h:9090', metrics: {a: 'avg(rate(x[5m])'}}`)
	if errs := p.Validate(); len(errs) != 0 {
		t.Fatalf("Validate: %v", errs)
	}
}

func TestPrometheusUnknownKey(t *testing.T) {
	_, err := Parse([]byte(basePlan+"prometheus:\n  querry: http://h:9090\n"), "test.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), `prometheus.querry`) || !strings.Contains(err.Error(), `did you mean "query"`) {
		t.Errorf("err = %v", err)
	}
}

func TestPromMetricName(t *testing.T) {
	for _, tt := range []struct {
		metric, name string
		ok           bool
	}{
		{"prom.db_cpu", "db_cpu", true},
		{"prom.db_cpu.peak", "db_cpu", true},
		{"prom.db_cpu.min", "db_cpu", true},
		{"prom.db_cpu.p99", "db_cpu", false},
		{"latency.p99", "", false},
	} {
		name, ok := PromMetricName(tt.metric)
		if name != tt.name || ok != tt.ok {
			t.Errorf("PromMetricName(%q) = %q, %v; want %q, %v", tt.metric, name, ok, tt.name, tt.ok)
		}
	}
}
