package report

import (
	"fmt"
	"sort"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// RequestRow is one request of a mix (workload.http.requests) in one step
// attempt: a line of the per-request tables. Durations are seconds.
type RequestRow struct {
	Name   string `json:"name"`
	Weight int    `json:"weight"`
	// WeightShare is the request's weight over the mix's; Share is its
	// share of the step's requests, which the mix keeps equal to it.
	WeightShare float64 `json:"weight_share"`
	Share       float64 `json:"share"`
	Requests    int64   `json:"requests"`
	RPS         float64 `json:"rps"`
	Errors      int64   `json:"errors"`
	ErrorsRatio float64 `json:"errors_ratio"`
	LatencyP50  float64 `json:"latency_p50"`
	LatencyP99  float64 `json:"latency_p99"`
	LatencyMax  float64 `json:"latency_max"`
	// Measured is false when the request had no request in the hold: its
	// latency is then unknown, not 0.
	Measured     bool             `json:"measured"`
	ErrorClasses map[string]int64 `json:"error_classes,omitempty"`
	// FailedGates are the step's gates on this request that did not hold.
	FailedGates []string `json:"failed_gates,omitempty"`
}

// RequestRows are the per-request lines of step s, in the plan's order of
// the requests (none for a step without a mix). The figures come from the
// step's request.<name>.* metrics.
func RequestRows(s result.Step) []RequestRow {
	if len(s.Requests) == 0 {
		return nil
	}
	total := 0
	for _, r := range s.Requests {
		total += r.Weight
	}
	rows := make([]RequestRow, 0, len(s.Requests))
	for _, r := range s.Requests {
		get := func(m string) float64 { return s.Metrics[metrics.RequestMetric(r.Name, m)] }
		_, measured := s.Metrics[metrics.RequestMetric(r.Name, metrics.LatencyP99)]
		row := RequestRow{
			Name: r.Name, Weight: r.Weight, Share: get(metrics.RequestShare),
			Requests: int64(get(metrics.RequestsCount)), RPS: get(metrics.ThroughputRPS),
			Errors: int64(get(metrics.ErrorsCount)), ErrorsRatio: get(metrics.ErrorsRatio),
			LatencyP50: get(metrics.LatencyP50), LatencyP99: get(metrics.LatencyP99), LatencyMax: get(metrics.LatencyMax),
			Measured: measured, ErrorClasses: r.ErrorClasses,
		}
		if total > 0 {
			row.WeightShare = float64(r.Weight) / float64(total)
		}
		for _, g := range s.Gates {
			if name, _, ok := metrics.SplitRequestMetric(g.Metric); ok && name == r.Name && !g.Pass {
				row.FailedGates = append(row.FailedGates, g.Gate)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// requestCells are a RequestRow formatted for people, in the columns of
// requestHeader.
func requestCells(r RequestRow) []string {
	lat := func(v float64) string {
		if !r.Measured {
			return "-"
		}
		return metrics.FormatValue(metrics.LatencyP99, v)
	}
	return []string{
		r.Name,
		fmt.Sprintf("%d (%s)", r.Weight, metrics.FormatValue(metrics.ErrorsRatio, r.WeightShare)),
		metrics.FormatValue(metrics.ErrorsRatio, r.Share),
		metrics.FormatNumber(r.RPS),
		lat(r.LatencyP50), lat(r.LatencyP99), lat(r.LatencyMax),
		metrics.FormatValue(metrics.ErrorsRatio, r.ErrorsRatio),
		classesString(r.ErrorClasses),
		strings.Join(r.FailedGates, "; "),
	}
}

// requestHeader are the columns of a per-request table.
var requestHeader = []string{"request", "weight", "share", "req/s", "p50", "p99", "max", "errors", "error classes", "failed gates"}

// classesString is "check 12, http_5xx 3", sorted by class.
func classesString(c map[string]int64) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", k, metrics.FormatNumber(float64(c[k]))))
	}
	return strings.Join(parts, ", ")
}

// withoutRequestMetrics is m without the request.<name>.* metrics, which
// the per-request tables show.
func withoutRequestMetrics(m metrics.Metrics) metrics.Metrics {
	out := metrics.Metrics{}
	for k, v := range m {
		if _, _, ok := metrics.SplitRequestMetric(k); !ok {
			out[k] = v
		}
	}
	return out
}
