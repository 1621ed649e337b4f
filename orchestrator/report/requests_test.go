package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// mixRun is a run of a three-request mix: a passing step, then a step whose
// gate on one request (checkout's p99) fails, confirmed.
func mixRun() (*record.Run, []result.Step) {
	run := &record.Run{ID: "20261127T063000Z-local-mix", Plan: "local-mix", Status: result.StatusBottleneck,
		Start: t0, End: t0.Add(time.Minute), Params: []string{"rate"},
		Gates: []string{"latency.p99 < 100ms", "request.checkout.latency.p99 < 50ms"}}
	mk := func(index, attempt int, kind string, rate, checkoutP99 float64) result.Step {
		m := metrics.Metrics{metrics.LatencyP99: 0.02, metrics.ThroughputRPS: rate, metrics.ErrorsRatio: 0.001}
		put := func(name string, share, p99 float64, n, errs float64) {
			for k, v := range map[string]float64{metrics.LatencyP50: p99 / 3, metrics.LatencyP99: p99, metrics.LatencyMax: 2 * p99,
				metrics.RequestShare: share, metrics.RequestsCount: n, metrics.ThroughputRPS: n / 5,
				metrics.ErrorsCount: errs, metrics.ErrorsRatio: errs / n} {
				m[metrics.RequestMetric(name, k)] = v
			}
		}
		put("checkout", 0.6, checkoutP99, rate*3, rate*0.003)
		put("browse", 0.3, 0.004, rate*1.5, 0)
		put("health", 0.1, 0.001, rate*0.5, 0)
		s := result.Step{Index: index, Attempt: attempt, Kind: kind, Parameters: map[string]float64{"rate": rate},
			Changed: "rate", From: rate / 2, To: rate, Metrics: m, Findings: []result.Finding{},
			Requests: []result.Request{{Name: "checkout", Weight: 6, ErrorClasses: map[string]int64{metrics.ClassCheck: int64(rate * 0.003)}},
				{Name: "browse", Weight: 3}, {Name: "health", Weight: 1}},
			Start: t0, End: t0.Add(7 * time.Second)}
		for _, g := range run.Gates {
			s.Gates = append(s.Gates, gateResult(g, m))
		}
		s.Verdict = result.VerdictPass
		for _, g := range s.Gates {
			if !g.Pass {
				s.FailedGates = append(s.FailedGates, g)
				s.Verdict, s.Reason = result.VerdictTargetFail, g.Explain
			}
		}
		return s
	}
	return run, []result.Step{mk(1, 1, result.KindRamp, 500, 0.012), mk(2, 1, result.KindRamp, 1000, 0.081), mk(2, 2, result.KindConfirm, 1000, 0.079)}
}

func TestRequestTables(t *testing.T) {
	rep := Build(mixRun())
	b := rep.Bottleneck
	if b == nil || len(b.Requests) != 3 {
		t.Fatalf("bottleneck %+v", b)
	}
	co := b.Requests[0]
	if co.Name != "checkout" || co.Weight != 6 || co.WeightShare != 0.6 || co.Share != 0.6 || co.LatencyP99 != 0.079 ||
		!co.Measured || len(co.FailedGates) != 1 || co.FailedGates[0] != "request.checkout.latency.p99 < 50ms" ||
		co.ErrorClasses[metrics.ClassCheck] != 3 {
		t.Errorf("checkout row %+v", co)
	}
	if len(b.Requests[1].FailedGates) != 0 {
		t.Errorf("browse names a gate it did not fail: %+v", b.Requests[1])
	}
	if len(rep.Capacity.Requests) != 3 || rep.Capacity.Requests[0].LatencyP99 != 0.012 {
		t.Errorf("capacity requests %+v", rep.Capacity.Requests)
	}

	var md bytes.Buffer
	if err := WriteMarkdown(&md, rep); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	for _, want := range []string{
		"| `request.checkout.latency.p99 < 50ms` | 79 ms | 50 ms |", // the failed gate names the request
		"### Requests\n\n| request | weight | share | req/s | p50 | p99 | max | errors | error classes | failed gates |",
		"| `checkout` | 6 (60%) | 60% | 600 | 26.3 ms | 79 ms | 158 ms | 0.1% | check 3 | `request.checkout.latency.p99 < 50ms` |",
		"| `browse` | 3 (30%) | 30% | 300 | 1.33 ms | 4 ms | 8 ms | 0% |  |  |",
		"## Requests per step",
		"### step 1 attempt 1: rate=500 (pass)",
		"### step 2 attempt 2 (confirm): rate=1000 (target-fail)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if strings.Contains(out, "| request.browse.latency.p99 |") {
		t.Error("report.md lists per-request metrics among the capacity's metrics")
	}

	var html bytes.Buffer
	if err := WriteHTML(&html, rep); err != nil {
		t.Fatal(err)
	}
	page := html.String()
	for _, want := range []string{
		`<table class="requests" id="bottleneck-requests">`,
		`<tr class="v-target-fail"><td class="mono">checkout</td><td class="n">6 (60%)</td>`,
		`<tr><td class="mono">browse</td>`,
		`<section id="requests">`,
		"request.checkout.latency.p99 &lt; 50ms</td></tr>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Bottleneck struct {
			Requests []RequestRow `json:"requests"`
		} `json:"bottleneck"`
		Steps []struct {
			Requests []result.Request   `json:"requests"`
			Metrics  map[string]float64 `json:"metrics"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Bottleneck.Requests) != 3 || doc.Bottleneck.Requests[0].FailedGates[0] != "request.checkout.latency.p99 < 50ms" ||
		len(doc.Steps) != 3 || doc.Steps[0].Requests[2].Name != "health" || doc.Steps[1].Metrics["request.checkout.latency.p99"] != 0.081 {
		t.Errorf("report.json: %s", js.Bytes())
	}

	var c bytes.Buffer
	if err := WriteCSV(&c, rep); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&c).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := -1
	for i, h := range rows[0] {
		if h == "request.checkout.latency.p99_ms" {
			col = i
		}
	}
	if col < 0 || rows[2][col] != "81" {
		t.Errorf("steps.csv has no per-request column with checkout's p99 of step 2: %v", rows[0])
	}
}
