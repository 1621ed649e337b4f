package wiring

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/prom"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// fakeDirectSampler is a fake of the direct observation: it names
// listen-overflow on this host, as the local sampler would.
type fakeDirectSampler struct{}

func (fakeDirectSampler) Start(context.Context, orchestrator.SampleSpec) (func(orchestrator.StepFacts) (map[string]float64, []result.Finding), error) {
	return func(orchestrator.StepFacts) (map[string]float64, []result.Finding) {
		return map[string]float64{"host.cpu": 0.5}, []result.Finding{{Rule: diagnose.RuleListenOverflow, Side: "target", Host: "local", Evidence: []string{"TcpExt ListenOverflows +5 (/proc/net/netstat)"}}}
	}, nil
}

func promPlan(t *testing.T, block string, sets ...string) *plan.Plan {
	t.Helper()
	p, err := plan.Parse([]byte(`version: 1
name: w
fleets:
  target:
    provider: static
    outputs: { endpoint: 'http://127.0.0.1:1' }
workload:
  engine: builtin
  http: { url: '{{ .fleets.target.endpoint }}/' }
parameters:
  - { name: rate, start: 1, max: 1 }
gates: [latency.p99 < 1s]
`+block), "w.yaml", sets)
	if err != nil {
		t.Fatal(err)
	}
	if errs := Check(p, nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	return p
}

// TestPromSamplerJoinsTheDirectObservation: a plan's scrape source (a page
// on loopback whose ListenOverflows counter grows 10 a scrape) adds its
// prom.* metric, its samples, and its finding beside the direct one of the
// same host (loopback is this host).
func TestPromSamplerJoinsTheDirectObservation(t *testing.T) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		n++
		v := n * 10
		mu.Unlock()
		fmt.Fprintf(w, "# TYPE node_netstat_TcpExt_ListenOverflows untyped\nnode_netstat_TcpExt_ListenOverflows %d\nnode_netstat_TcpExt_ListenDrops %d\n", v, v)
	}))
	defer srv.Close()
	p := promPlan(t, "prometheus: {scrape: ['"+srv.URL+"/metrics'], metrics: {overflows: 'node_netstat_TcpExt_ListenOverflows'}}\n")
	var msgs []string
	obs := &msgObserver{msgs: &msgs}
	s, err := newSampler(fakeDirectSampler{}, obs)(context.Background(), p, noRender, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], "prometheus: scrapes "+srv.URL+"/metrics every 1s, 1 metric(s)") {
		t.Errorf("messages %q", msgs)
	}
	var samples []any
	var notes []string
	stop, err := s.Start(context.Background(), orchestrator.SampleSpec{
		Sink:        func(v any) { mu.Lock(); samples = append(samples, v); mu.Unlock() },
		NotMeasured: func(s string) { notes = append(notes, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the two scrapes need some time between them
	m, fs := stop(orchestrator.StepFacts{})
	if m["host.cpu"] != 0.5 || m["prom.overflows"] <= 0 || m["prom.overflows.peak"] <= 0 {
		t.Errorf("metrics %v", m)
	}
	if len(notes) != 0 {
		t.Errorf("notes %q", notes)
	}
	if len(fs) != 1 || fs[0].Host != "local" || fs[0].Rule != diagnose.RuleListenOverflow {
		t.Fatalf("findings %+v: want the direct one, with the exporter's beside it", fs)
	}
	ev := strings.Join(fs[0].Evidence, " | ")
	if !strings.Contains(ev, "exporter agrees: TcpExt ListenOverflows +") || !strings.Contains(ev, "from node_exporter at "+strings.TrimPrefix(srv.URL, "http://")) {
		t.Errorf("evidence %s", ev)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(samples) < 2 {
		t.Fatalf("%d samples", len(samples))
	}
	if smp, ok := samples[0].(prom.Sample); !ok || smp.Source != prom.SampleSource || smp.Metrics["overflows"] <= 0 {
		t.Errorf("sample %#v", samples[0])
	}
}

type msgObserver struct {
	orchestrator.NopObserver
	msgs *[]string
}

func (o *msgObserver) Message(format string, args ...any) {
	*o.msgs = append(*o.msgs, fmt.Sprintf(format, args...))
}

func TestPromSamplerRefusesAPageOfGarbage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html>login</html>")
	}))
	defer srv.Close()
	p := promPlan(t, "", "fleets.target.prometheus={scrape: ['"+srv.URL+"/']}")
	_, err := newSampler(fakeDirectSampler{}, orchestrator.NopObserver{})(context.Background(), p, noRender, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "fleets.target.prometheus: scrape "+srv.URL+"/: answered text/html, not Prometheus metrics") {
		t.Errorf("err = %v", err)
	}
}

func TestPlanWithoutPrometheusKeepsTheBaseSampler(t *testing.T) {
	base := fakeDirectSampler{}
	s, err := newSampler(base, orchestrator.NopObserver{})(context.Background(), promPlan(t, ""), noRender, zerolog.Nop())
	if err != nil || s != orchestrator.StepSampler(base) {
		t.Errorf("sampler %T, %v", s, err)
	}
}

func TestCheckParsesPromQL(t *testing.T) {
	p, err := plan.Parse([]byte(`version: 1
name: w
fleets:
  target: { provider: static, outputs: { endpoint: 'http://127.0.0.1:1' } }
workload:
  engine: builtin
  http: { url: '{{ .fleets.target.endpoint }}/' }
parameters:
  - { name: rate, start: 1, max: 1 }
prometheus: {query: 'http://h:9090', metrics: {q: 'sum(rate(x[1m])'}}
gates: [latency.p99 < 1s, prom.q < 1]
`), "w.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	errs := Check(p, nil)
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), `prometheus.metrics.q (line 10): bad PromQL "sum(rate(x[1m])"`) {
		t.Errorf("Check = %v", errs)
	}
}
