package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// fullFixture is the fixture run with everything report.html can show: more
// latency percentiles, probe delays, host resource peaks, a limits audit and
// per-second series on every attempt.
func fullFixture() (*record.Run, []result.Step) {
	run, steps := fixtureRun()
	run.Limits = map[string]any{"eventbus": map[string]any{"nofile": 1024.0, "max_inflight": 512.0}, "net.core.somaxconn": 4096.0}
	for i := range steps {
		s := &steps[i]
		m := s.Metrics
		p99 := m[metrics.LatencyP99]
		rate := s.Parameters["rate"]
		m[metrics.LatencyP90] = p99 * 0.6
		m[metrics.LatencyMax] = p99 * 1.8
		m[metrics.ProbeDelayP50] = p99 * 0.3
		m[metrics.ProbeDelayP99] = p99 * 1.1
		m[metrics.ProbeDelayMax] = p99 * 1.5
		m[metrics.TargetCPU] = math.Min(0.98, rate/2100)
		m[metrics.TargetFDRatio] = math.Min(1, s.Parameters["connections"]*rate/62500)
		rps := m[metrics.ThroughputRPS]
		for t := 0; t < 25; t++ {
			sec := result.Second{T: t, Offered: int64(rate), Requests: int64(rps), P50: p99 / 4, P99: p99}
			if s.Verdict == result.VerdictTargetFail {
				// The failing step holds for a few seconds, then the target
				// runs out of file descriptors.
				sec.Requests, sec.P50, sec.P99 = int64(rate), 0.001, 0.004
				if t >= 8 {
					sec.Requests = int64(rps * (0.75 + 0.05*float64(t%5)))
					sec.P50 = p99 / 4
					sec.P99 = p99 * (0.5 + 0.05*float64(t-8))
					sec.Errors = int64(float64(t-8) * 3)
				}
			}
			if t < 2 {
				sec.Requests = int64(rps / float64(2-t+1))
			}
			s.Series = append(s.Series, sec)
		}
	}
	return run, steps
}

func renderHTML(t *testing.T, r *Report) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestHTMLGoldenFull checks the page with every plot against its golden file
// (the plain fixture's page is checked by TestGolden with the other formats).
func TestHTMLGoldenFull(t *testing.T) {
	got := renderHTML(t, Build(fullFixture()))
	golden := filepath.Join("testdata", "report-full.html.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("report.html differs from %s (run with -update if the change is intended)", golden)
	}
	// Byte-identical across renderings of fresh builds (maps are iterated in
	// a different order each time, so ten tries catch an order leak).
	for i := 0; i < 10; i++ {
		if again := renderHTML(t, Build(fullFixture())); again != got {
			t.Fatalf("rendering %d differs: report.html is not deterministic", i)
		}
	}
}

var (
	svgIDs    = regexp.MustCompile(`<svg id="([a-z0-9-]+)"`)
	svgOpenRE = regexp.MustCompile(`<svg [^>]*>`)
)

// TestHTMLContent checks what a reader relies on, one situation at a time.
func TestHTMLContent(t *testing.T) {
	allPlots := []string{PlotLatency, PlotThroughput, PlotErrors, PlotProbe, PlotResources, PlotSeriesRPS, PlotSeriesP99}
	tests := []struct {
		name      string
		build     func() *Report
		plots     []string // exact ids, in order
		contains  []string
		excludes  []string
		rowsByCls map[string]int
	}{
		{
			name:  "full fixture",
			build: func() *Report { return Build(fullFixture()) },
			plots: allPlots,
			contains: []string{
				`<p class="summary" id="summary">Capacity 1,499 req/s (rate=1500 connections=32, p99 8.9 ms). First bottleneck at step 6, rate 1,000 <span class="nw">-&gt;</span> 2,000: eventbus open files exhausted (1024 of 1024).`,
				`<span class="status st-bottleneck">bottleneck</span>`,
				`<dt>Change</dt><dd class="fix">RLIMIT_NOFILE (systemd LimitNOFILE): raise the process open-file limit above 2x peak connections</dd>`,
				`<td class="mono">latency.p99 &lt; 100ms</td><td class="n obs">903 ms</td><td class="n">100 ms</td>`,
				`accept4: too many open files`,
				`<dt>seen on steps</dt><dd class="seen"><span class="chip v-target-fail" title="step 6 attempt 1">6.1</span><span class="chip v-target-fail" title="step 6 attempt 2, confirm">6.2</span> <span class="count">(2 attempts)</span></dd>`,
				`<h3>host CPU: 97% of the host&#39;s CPUs</h3>`, `<dt>strongest on</dt><dd>step 5.1</dd>`,
				`<td class="n changed">2,000<span class="from">from 1,000</span></td>`,
				`<span class="kind">confirm</span>`, `<span class="kind">refine</span>`, `<span class="kind">rerun</span>`,
				`<span class="mark capacity">capacity</span>`, `<span class="mark bottleneck">bottleneck</span>`,
				`<th class="mono">eventbus.nofile</th>`, `<th class="mono">kernel.somaxconn</th>`,
				`<h2>Limits</h2>`, `offered load (req/s)`, `Requests per second during the failing step (step 6 attempt 2, confirm)`,
			},
			excludes:  []string{`id="partial"`, "Plot unavailable"},
			rowsByCls: map[string]int{"v-pass": 6, "v-target-fail": 3, "v-generator-fail": 1},
		},
		{
			name:     "plain fixture: no probe, no target resources, no series",
			build:    func() *Report { return Build(fixtureRun()) },
			plots:    []string{PlotLatency, PlotThroughput, PlotErrors, PlotResources},
			excludes: []string{PlotProbe, PlotSeriesRPS, "<h2>Limits</h2>", "target cpu"},
		},
		{
			name: "Prometheus metrics: a plot each",
			build: func() *Report {
				run, steps := fixtureRun()
				for i := range steps {
					q := float64(i * i)
					steps[i].Metrics["prom.queue_depth"], steps[i].Metrics["prom.queue_depth.peak"], steps[i].Metrics["prom.queue_depth.min"] = q, 2*q, 0
					steps[i].Metrics["prom.db_cpu"] = 0.1 * float64(i)
				}
				return Build(run, steps)
			},
			plots:    []string{PlotLatency, PlotThroughput, PlotErrors, PlotResources, PlotProm("db_cpu"), PlotProm("queue_depth")},
			contains: []string{`Prometheus: prom.queue_depth vs offered load`, `id="plot-prom-db-cpu"`},
		},
		{
			name: "partial run",
			build: func() *Report {
				run, steps := fixtureRun()
				run.Status = result.StatusRunning
				return Build(run, steps[:5])
			},
			plots:    []string{PlotLatency, PlotThroughput, PlotErrors, PlotResources},
			contains: []string{`<p class="partial" id="partial">PARTIAL REPORT: the run was interrupted.`, `st-aborted`, "interrupted after 5 step attempts"},
		},
		{
			name: "generator limited, without offered rate: x is the step index",
			build: func() *Report {
				run, steps := fixtureRun()
				run.Status = result.StatusGeneratorLimited
				steps = steps[:5]
				for i := range steps {
					delete(steps[i].Metrics, metrics.ThroughputOffered)
				}
				return Build(run, steps)
			},
			plots:    []string{PlotLatency, PlotThroughput, PlotErrors, PlotResources},
			contains: []string{`st-generator-limited`, `<dt>Outcome</dt><dd class="warn">the load generators saturated before the target failed (step 5: generator saturated: generator.cpu 93% &gt; 85%)</dd>`, "Latency percentiles vs step"},
			excludes: []string{"offered load", `id="bottleneck"`},
		},
		{
			name: "error with a non-finite metric",
			build: func() *Report {
				run, steps := fixtureRun()
				run.Status, run.Error = result.StatusError, "engine: connection refused <127.0.0.1:8080>"
				steps = steps[:2]
				steps[1].Verdict, steps[1].Reason = result.VerdictError, "engine failed"
				steps[1].Metrics[metrics.LatencyP99] = math.NaN()
				return Build(run, steps)
			},
			plots:     []string{PlotLatency, PlotThroughput, PlotErrors, PlotResources},
			contains:  []string{`st-error`, `<dt>Error</dt><dd class="err">engine: connection refused &lt;127.0.0.1:8080&gt;</dd>`, `<span class="verdict error">error</span>`},
			rowsByCls: map[string]int{"v-pass": 1, "v-error": 1},
		},
		{
			name: "no step ran",
			build: func() *Report {
				return Build(&record.Run{ID: "x", Plan: "p", Status: result.StatusError, Error: "preflight failed"}, nil)
			},
			contains: []string{"No step ran.", "Nothing to plot", `<dt>Capacity</dt><dd class="bad">none: no step passed</dd>`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := renderHTML(t, tt.build())
			var ids []string
			for _, m := range svgIDs.FindAllStringSubmatch(page, -1) {
				ids = append(ids, m[1])
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.plots) {
				t.Errorf("plots = %v, want %v", ids, tt.plots)
			}
			for _, s := range tt.contains {
				if !strings.Contains(page, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tt.excludes {
				if strings.Contains(page, s) {
					t.Errorf("page has %q", s)
				}
			}
			for cls, n := range tt.rowsByCls {
				if got := strings.Count(page, `<tr class="`+cls+`"`); got != n {
					t.Errorf("%d rows of class %s, want %d", got, cls, n)
				}
			}
			checkSelfContained(t, page)
		})
	}
}

// checkSelfContained fails when the page could fetch anything or run script,
// or when an inline SVG could not scale or is not well-formed XML.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	lower := strings.ToLower(page)
	for _, bad := range []string{"<script", "<link", "@import", "url(", "src=", "<?xml", "<iframe", "<object", "<embed", "javascript:"} {
		if strings.Contains(lower, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	// The only URLs are the SVG namespace names, which are never fetched.
	urls := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+[^"' <>]*`).FindAllString(page, -1)
	for _, u := range urls {
		if u != "http://www.w3.org/2000/svg" && u != "http://www.w3.org/1999/xlink" {
			t.Errorf("page references %q", u)
		}
	}
	for _, open := range svgOpenRE.FindAllString(page, -1) {
		if !strings.Contains(open, `viewBox="0 0 `) {
			t.Errorf("svg without viewBox: %s", open)
		}
	}
	for i, start := range regexp.MustCompile(`<svg `).FindAllStringIndex(page, -1) {
		end := strings.Index(page[start[0]:], "</svg>")
		if end < 0 {
			t.Fatalf("svg %d is not closed", i)
		}
		svg := page[start[0] : start[0]+end+len("</svg>")]
		d := xml.NewDecoder(strings.NewReader(svg))
		for {
			if _, err := d.Token(); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Errorf("svg %d is not well-formed: %v", i, err)
				}
				break
			}
		}
	}
}

// TestWriteHTMLKeepsReport checks that rendering does not change the report.
func TestWriteHTMLKeepsReport(t *testing.T) {
	r := Build(fullFixture())
	var before, after bytes.Buffer
	if err := WriteJSON(&before, r); err != nil {
		t.Fatal(err)
	}
	renderHTML(t, r)
	if err := WriteJSON(&after, r); err != nil {
		t.Fatal(err)
	}
	if before.String() != after.String() {
		t.Error("WriteHTML changed the report")
	}
}

// failingWriter fails every write, as a full disk would.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestWriteHTMLWriteError(t *testing.T) {
	if err := WriteHTML(failingWriter{}, Build(fixtureRun())); err == nil {
		t.Error("WriteHTML to a failing writer returned nil")
	}
}
