package metrics

import "strings"

// Per-request metrics. An engine that sends a mix of named requests (the
// builtin engine's workload.http.requests) reports each request's figures
// under request.<name>.<metric>, beside the step's figures over every request:
// request.checkout.latency.p99 is the p99 latency of the requests named
// checkout. Gates judge them like any metric.
const (
	// RequestPrefix starts every per-request metric name.
	RequestPrefix = "request."
	// RequestShare is a request's share of the step's requests (0..1), to
	// compare with its weight's share of the mix.
	RequestShare = "share"
)

// RequestMetrics are the metrics each request of a mix reports, without
// their request.<name>. prefix.
var RequestMetrics = []string{
	LatencyP50, LatencyP90, LatencyP95, LatencyP99, LatencyP999, LatencyMax, LatencyMean,
	ErrorsCount, ErrorsRatio, RequestsCount, ThroughputRPS, RequestShare,
}

// IsRequestMetric reports whether metric (without its request prefix) is one
// of RequestMetrics.
func IsRequestMetric(metric string) bool {
	for _, m := range RequestMetrics {
		if m == metric {
			return true
		}
	}
	return false
}

// RequestMetric names request name's figure metric: request.<name>.<metric>.
func RequestMetric(name, metric string) string {
	return RequestPrefix + name + "." + metric
}

// SplitRequestMetric splits request.<name>.<metric> into name and metric. A
// request name holds no dot, so the split is unambiguous. ok is false for a
// metric that is not a per-request one.
func SplitRequestMetric(full string) (name, metric string, ok bool) {
	rest, found := strings.CutPrefix(full, RequestPrefix)
	if !found {
		return "", "", false
	}
	name, metric, ok = strings.Cut(rest, ".")
	if !ok || name == "" || metric == "" {
		return "", "", false
	}
	return name, metric, true
}

// unprefixed is metric without a request.<name>. prefix, so a request's name
// (say "service_status") never decides its metrics' units.
func unprefixed(metric string) string {
	if _, m, ok := SplitRequestMetric(metric); ok {
		return m
	}
	return metric
}
