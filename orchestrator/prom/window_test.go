package prom

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/result"
)

var t0 = time.Date(2026, 11, 27, 6, 30, 0, 0, time.UTC)

// pageAt parses a text page taken at t0+sec.
func pageAt(t *testing.T, sec float64, text string) *Page {
	t.Helper()
	fams, err := Decode(strings.NewReader(text), "text/plain; version=0.0.4")
	if err != nil {
		t.Fatal(err)
	}
	return &Page{URL: "http://h:9100/metrics", Instance: "h:9100", Time: t0.Add(time.Duration(sec * float64(time.Second))), Families: fams}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestFiguresCountersAndGauges(t *testing.T) {
	sel, err := selectorsOf(map[string]string{
		"reqs":  `reqs_total{code="200"}`,
		"all":   `reqs_total`,
		"queue": `queue_depth`,
		"mixed": `{__name__=~"reqs_total|queue_depth"}`,
		"none":  `absent_metric`,
	})
	if err != nil {
		t.Fatal(err)
	}
	pages := []string{
		// warmup: the last one before the hold is the baseline
		"reqs_total{code=\"200\"} 0\nreqs_total{code=\"500\"} 0\nqueue_depth 99\n",
		"reqs_total{code=\"200\"} 100\nreqs_total{code=\"500\"} 10\nqueue_depth 1\n",
		"reqs_total{code=\"200\"} 300\nreqs_total{code=\"500\"} 10\nqueue_depth 5\n",
		// the process restarted: the counter counts from 0 again
		"reqs_total{code=\"200\"} 50\nreqs_total{code=\"500\"} 20\nqueue_depth 3\n",
	}
	var recs []scrapeRec
	for i, p := range pages {
		recs = append(recs, recordPage(pageAt(t, float64(i), p), sel, hoststat.SideTarget))
	}
	w := holdWindow(recs, t0.Add(1500*time.Millisecond))
	if len(w) != 3 || !w[0].t.Equal(t0.Add(time.Second)) {
		t.Fatalf("hold window %d records from %v", len(w), w[0].t)
	}
	windows := map[string][]scrapeRec{"http://h:9100/metrics": w}

	f, ok, why := figuresOf("reqs", windows)
	// 200 then 50 (after the reset) over 2 s.
	if !ok || !near(f.Mean, 125) || !near(f.Peak, 200) || !near(f.Min, 50) {
		t.Errorf("reqs = %+v %v %s", f, ok, why)
	}
	f, ok, _ = figuresOf("all", windows)
	if !ok || !near(f.Mean, (200+0+50+10)/2.0) || !near(f.Peak, 200) || !near(f.Min, 60) {
		t.Errorf("all = %+v", f)
	}
	f, ok, _ = figuresOf("queue", windows)
	if !ok || !near(f.Mean, 4) || f.Peak != 5 || f.Min != 3 {
		t.Errorf("queue = %+v (the warmup's 99, and the baseline's 1, must not count)", f)
	}
	if !w[0].baseline || w[1].baseline {
		t.Errorf("baseline marks %v %v: want the first record only", w[0].baseline, w[1].baseline)
	}
	if _, ok, why := figuresOf("mixed", windows); ok || !strings.Contains(why, "counters and gauges") {
		t.Errorf("mixed: %v %s", ok, why)
	}
	if _, ok, why := figuresOf("none", windows); ok || why != "no series matches the selector in the hold" {
		t.Errorf("none: %v %s", ok, why)
	}
	one := map[string][]scrapeRec{"u": w[:1]}
	if _, ok, why := figuresOf("reqs", one); ok || !strings.Contains(why, "fewer than two scrapes") {
		t.Errorf("one scrape of a counter: %v %s", ok, why)
	}
	// Two pages add up.
	two := map[string][]scrapeRec{"a": w, "b": w}
	if f, ok, _ := figuresOf("queue", two); !ok || !near(f.Mean, 8) || f.Peak != 10 {
		t.Errorf("two pages: %+v", f)
	}
}

func TestHostOfNodeExporterPages(t *testing.T) {
	page := func(ov, fds float64) string {
		return fmt.Sprintf("node_netstat_TcpExt_ListenOverflows %g\nnode_netstat_TcpExt_ListenDrops %g\nprocess_open_fds %g\nprocess_max_fds 64\n", ov, ov, fds)
	}
	recs := []scrapeRec{
		recordPage(pageAt(t, 0, page(5, 10)), nil, hoststat.SideTarget),
		recordPage(pageAt(t, 1, page(25, 63)), nil, hoststat.SideTarget),
	}
	h, ok := hostOf("http://h:9100/metrics", hoststat.SideTarget, recs)
	if !ok || h.Instance != "h:9100" || h.Source != "node_exporter at h:9100" {
		t.Fatalf("host = %+v, %v", h, ok)
	}
	if d := h.Summary.Deltas[hoststat.HostListenOverflows]; d != 20 {
		t.Errorf("ListenOverflows delta = %v", d)
	}
	res := Result{Hosts: []Host{h}}
	var rules []string
	for _, f := range res.Findings() {
		rules = append(rules, f.Rule+"@"+f.Host+"/"+f.Process)
	}
	want := []string{diagnose.RuleFDProcess + "@h:9100/h:9100", diagnose.RuleListenOverflow + "@h:9100/"}
	if strings.Join(rules, " ") != strings.Join(want, " ") {
		t.Errorf("findings %v, want %v", rules, want)
	}
	for _, f := range res.Findings() {
		if f.Side != hoststat.SideTarget {
			t.Errorf("%s on a target-side host is %q-side", f.Rule, f.Side)
		}
	}
	// The same page on the generators fleet: every finding is the
	// generator's, whatever the rule.
	g, _ := hostOf("http://h:9100/metrics", hoststat.SideGenerator, recs)
	for _, f := range (Result{Hosts: []Host{g}}).Findings() {
		if f.Side != hoststat.SideGenerator || f.Host != "h:9100" {
			t.Errorf("%s on a generator-side host: side %q host %q", f.Rule, f.Side, f.Host)
		}
	}
	// A page with neither node_* nor process series is no host.
	plain := []scrapeRec{recordPage(pageAt(t, 0, "queue_depth 1\n"), nil, hoststat.SideTarget)}
	if _, ok := hostOf("http://h:8080/metrics", hoststat.SideTarget, plain); ok {
		t.Error("a service page without process series made a host")
	}
}

// A process at its open-file limit cannot read its own limits: its page
// counts its files without process_max_fds (CI saw it on the live test's bus).
// The limit an earlier page gave stands in, and names the limit; without one,
// nothing does.
func TestRememberedFDLimit(t *testing.T) {
	var l fdLimits
	at := func(sec float64, text string) scrapeRec {
		r := recordPage(pageAt(t, sec, text), nil, hoststat.SideTarget)
		l.fill("h:9100", r.host.Procs)
		return r
	}
	if r := at(0, "process_open_fds 70\n"); r.host.Procs[0].FDLimit != 0 {
		t.Errorf("a limit before any was read: %+v", r.host.Procs[0])
	}
	recs := []scrapeRec{at(1, "process_open_fds 10\nprocess_max_fds 64\n"), at(2, "process_open_fds 70\n"), at(3, "process_open_fds 71\n")}
	if p := recs[2].host.Procs[0]; p.FDLimit != 64 {
		t.Fatalf("the page without a limit: %+v, want the limit read before, 64", p)
	}
	h, ok := hostOf("http://h:9100/metrics", hoststat.SideTarget, recs[1:])
	if !ok {
		t.Fatal("no host")
	}
	var found []string
	for _, f := range (Result{Hosts: []Host{h}}).Findings() {
		if f.Rule == diagnose.RuleFDProcess {
			found = append(found, f.Observed)
		}
	}
	if strings.Join(found, ",") != "71 of 64" {
		t.Errorf("fd-process findings %q, want 71 of 64", found)
	}
}

// TestStepScrapesAPage runs a Source's step against a page served on
// loopback whose counter grows by 50 a second of wall time (so the rate is
// 50/s however late a busy machine runs the scrapes), and one URL that is
// down.
func TestStepScrapesAPage(t *testing.T) {
	start := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		v := int(50 * time.Since(start).Seconds())
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE jobs_total counter\njobs_total %d\n# TYPE depth gauge\ndepth 7\n", v)
	}))
	defer srv.Close()
	down := textServer(t, "text/html", 200, []byte("<html></html>"))
	src, err := New(Config{Scrape: []string{srv.URL + "/metrics", down + "/metrics"}, Metrics: map[string]string{"jobs": "jobs_total", "depth": "depth", "gone": "nope"},
		Interval: 200 * time.Millisecond, Side: hoststat.SideTarget})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "answered text/html") {
		t.Errorf("Check: %v", err)
	}
	var samples []Sample
	var smu sync.Mutex
	st := src.Start(context.Background(), StepSpec{Warmup: 300 * time.Millisecond, Sink: func(v any) {
		smu.Lock()
		samples = append(samples, v.(Sample))
		smu.Unlock()
	}})
	time.Sleep(1200 * time.Millisecond)
	res := st.Stop(context.Background())
	if v := res.Metrics["prom.depth"]; v != 7 {
		t.Errorf("prom.depth = %v (metrics %v)", v, res.Metrics)
	}
	// 50 a second of wall time, read at the scrapes' own times: about 50/s.
	if v := res.Metrics["prom.jobs"]; v < 25 || v > 100 {
		t.Errorf("prom.jobs = %v, want about 50/s", v)
	}
	if _, ok := res.Metrics["prom.gone"]; ok {
		t.Error("a selector without series was measured")
	}
	all := strings.Join(res.Problems, "\n")
	for _, want := range []string{"prom.gone not measured: no series matches the selector in the hold (nope)", down + "/metrics was not read during the hold: scrape " + down + "/metrics: answered text/html"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems:\n%s\nwant %q", all, want)
		}
	}
	smu.Lock()
	defer smu.Unlock()
	var good, bad int
	for _, s := range samples {
		if s.Err != "" {
			bad++
		} else if s.Metrics["depth"] == 7 {
			good++
		}
	}
	if good < 4 || bad < 4 {
		t.Errorf("samples: %d good, %d with an error", good, bad)
	}
}

func TestMatrixFigures(t *testing.T) {
	pts := func(vs ...float64) []model.SamplePair {
		var out []model.SamplePair
		for i, v := range vs {
			out = append(out, model.SamplePair{Timestamp: model.TimeFromUnix(int64(i)), Value: model.SampleValue(v)})
		}
		return out
	}
	one := model.Matrix{{Metric: model.Metric{}, Values: pts(1, math.NaN(), 5, 3)}}
	f, why := matrixFigures(one)
	if why != "" || f.Mean != 3 || f.Peak != 5 || f.Min != 1 || len(f.Points) != 3 {
		t.Errorf("one series: %+v %q", f, why)
	}
	if _, why := matrixFigures(model.Matrix{}); why != "no data" {
		t.Errorf("empty: %q", why)
	}
	two := model.Matrix{{Metric: model.Metric{"instance": "a"}, Values: pts(1)}, {Metric: model.Metric{"instance": "b"}, Values: pts(2)}}
	if _, why := matrixFigures(two); !strings.Contains(why, `returns 2 series ({instance="a"}, {instance="b"}); a gate needs one: aggregate it`) {
		t.Errorf("two series: %q", why)
	}
	if _, why := matrixFigures(model.Matrix{{Values: pts(math.NaN())}}); !strings.Contains(why, "NaN") {
		t.Errorf("NaN only: %q", why)
	}
	if rangeStep(20*time.Second) != time.Second || rangeStep(10*time.Minute) != 6*time.Second {
		t.Errorf("rangeStep")
	}
}

func TestBeside(t *testing.T) {
	direct := []result.Finding{
		{Rule: "listen-overflow", Host: "10.0.0.5:7070", Side: "target", Evidence: []string{"TcpExt ListenOverflows +60 (/proc/net/netstat)"}},
		{Rule: "fd-process", Host: "local", Process: "eventbus", Evidence: []string{"fds 64 of limit 64 (/proc/42/limits)"}},
	}
	exporter := []result.Finding{
		{Rule: "listen-overflow", Host: "10.0.0.5:9100", Evidence: []string{"TcpExt ListenOverflows +58 (node_netstat_TcpExt_ListenOverflows from node_exporter at 10.0.0.5:9100)"}},
		{Rule: "conntrack-full", Host: "10.0.0.5:9100", Evidence: []string{"conntrack entries ..."}},
		{Rule: "fd-process", Host: "127.0.0.1:9256", Process: "eventbus", Evidence: []string{"fds 64 of limit 64 (process-exporter at 127.0.0.1:9256)"}},
		{Rule: "listen-overflow", Host: "10.0.0.6:9100", Evidence: []string{"other host"}},
	}
	got := Beside(direct, exporter)
	if len(got) != 4 {
		t.Fatalf("Beside = %+v", got)
	}
	if ev := got[0].Evidence; len(ev) != 2 || ev[1] != "exporter agrees: "+exporter[0].Evidence[0] || got[0].Host != "10.0.0.5:7070" {
		t.Errorf("agreeing listen-overflow: %+v", got[0])
	}
	if ev := got[1].Evidence; len(ev) != 2 || !strings.HasPrefix(ev[1], "exporter agrees: fds 64") {
		t.Errorf("local and loopback are one host: %+v", got[1])
	}
	if got[2].Rule != "conntrack-full" || got[3].Host != "10.0.0.6:9100" {
		t.Errorf("kept exporter findings: %+v", got[2:])
	}
	if len(direct[0].Evidence) != 1 {
		t.Error("Beside changed its input")
	}
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"10.0.0.5:7070", "10.0.0.5:9100", true},
		{"local", "127.0.0.1:9100", true},
		{"localhost:1", "[::1]:2", true},
		{"i-0abc", "i-0abc", true},
		{"10.0.0.5:1", "10.0.0.6:1", false},
	} {
		if SameHost(tt.a, tt.b) != tt.same {
			t.Errorf("SameHost(%q, %q) != %v", tt.a, tt.b, tt.same)
		}
	}
}

// TestQuerierErrors: a URL that answers something other than the Prometheus
// API, and a server that is down, in words that say what to fix.
func TestQuerierErrors(t *testing.T) {
	ctx := context.Background()
	garbage := textServer(t, "text/plain", 200, []byte("hello, not an API\n"))
	q, err := NewQuerier(garbage, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Check(ctx, map[string]string{"a": "up", "b": "up"}); err == nil ||
		!strings.Contains(err.Error(), garbage+" does not answer as a Prometheus server's API") ||
		strings.Count(err.Error(), "does not answer") != 1 {
		t.Errorf("garbage: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	src, err := New(Config{Query: down, Metrics: map[string]string{"a": "up"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Check(ctx); err == nil || !strings.Contains(err.Error(), "the Prometheus server at "+down+" is not reachable") {
		t.Errorf("down: %v", err)
	}
	res := src.Start(ctx, StepSpec{}).Stop(ctx)
	if len(res.Metrics) != 0 || len(res.Problems) != 1 || !strings.HasPrefix(res.Problems[0], "prom.a not measured: the Prometheus server at "+down+" is not reachable") {
		t.Errorf("down, step: %v %q", res.Metrics, res.Problems)
	}
	// Bad PromQL rendered from a template is refused before any request.
	if _, err := New(Config{Query: down, Metrics: map[string]string{"a": "rate(up"}}); err == nil || !strings.Contains(err.Error(), `prom.a: bad PromQL "rate(up"`) {
		t.Errorf("bad PromQL: %v", err)
	}
}
