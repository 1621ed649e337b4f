package locust

import (
	"math"
	"testing"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// A /stats/requests/csv body as Locust 2.12 writes it.
const sampleCSV = `Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
DELIVERY,delivery,1343,0,3,4.09,0.39,72.89,36.6,155.4,0.0,3,4,4,5,6,8,12,44,73,73,73
POST,publish,600,6,3,3.72,0,73,16.0,77.7,0.0,3,4,4,4,5,8,12,46,73,73,73
SSE,subscribe,0,0,0,0.0,0,0,0,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A
,Aggregated,1943,6,3,3.99,0,73,29.8,233.4,0.0,3,4,4,4,6,8,12,44,73,73,73
`

func TestWindowMetricsFromCSV(t *testing.T) {
	rows, err := ParseRequestsCSV([]byte(sampleCSV))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || !math.IsNaN(rows[2].Percentiles[0]) {
		t.Fatalf("rows %+v", rows)
	}
	m := windowMetrics(rows, 10, DefaultApart)
	want := metrics.Metrics{
		metrics.RequestsCount: 600, metrics.ErrorsCount: 6, metrics.ErrorsRatio: 0.01, metrics.ThroughputRPS: 60,
		metrics.LatencyP50: 0.003, metrics.LatencyP99: 0.046, metrics.LatencyMax: 0.073,
		"locust.delivery.count": 1343, "locust.delivery.p99": 0.044, "locust.delivery.rps": 134.3,
		"locust.publish.errors": 6, "locust.subscribe.count": 0,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || math.Abs(got-v) > 1e-9 {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	// Delivery is measured apart: not a request, not in latency.* or errors.
	if _, ok := m["locust.subscribe.p99"]; ok {
		t.Errorf("a request type without requests has percentiles")
	}
	if _, ok := m[metrics.ThroughputRatio]; ok {
		t.Errorf("throughput.ratio set for a closed-loop engine")
	}
}

func TestMergedPercentiles(t *testing.T) {
	row := func(n int64, min float64, ps ...float64) Row { return Row{Requests: n, Min: min, Percentiles: ps} }
	fast := row(900, 1, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10)
	slow := row(100, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000)
	// One row: its own table.
	if got := merged([]Row{fast}, 0.5); got != 10 {
		t.Errorf("single row p50 = %v, want 10", got)
	}
	// 90% at 10 ms, 10% at 1 s: the merged p50 is fast, the p99 slow.
	if got := merged([]Row{fast, slow}, 0.5); got > 10 {
		t.Errorf("merged p50 = %v, want <= 10", got)
	}
	if got := merged([]Row{fast, slow}, 0.99); got != 1000 {
		t.Errorf("merged p99 = %v, want 1000", got)
	}
	// Monotone in q.
	prev := 0.0
	for q := 0.01; q <= 1; q += 0.01 {
		v := merged([]Row{fast, slow}, q)
		if v < prev {
			t.Fatalf("merged(%v) = %v < merged of a lower quantile %v", q, v, prev)
		}
		prev = v
	}
	if !math.IsNaN(merged(nil, 0.5)) {
		t.Errorf("no rows: want NaN")
	}
}

func TestMetricSegment(t *testing.T) {
	for in, want := range map[string]string{"delivery": "delivery", "/publish?topic=x": "publish_topic_x", "GET_Home": "get_home", "": "request"} {
		if got := metricSegment(in); got != want {
			t.Errorf("metricSegment(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseRequestsCSVErrors(t *testing.T) {
	for _, body := range []string{"", "Type,Name\n,Aggregated\n", "not,a\n\"csv"} {
		if _, err := ParseRequestsCSV([]byte(body)); err == nil {
			t.Errorf("ParseRequestsCSV(%q) = nil error", body)
		}
	}
}
