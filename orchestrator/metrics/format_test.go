package metrics

import (
	"math"
	"testing"
)

func TestFormatValue(t *testing.T) {
	tests := []struct {
		metric string
		v      float64
		want   string
	}{
		{"latency.p99", 0.0123, "12.3 ms"},
		{"latency.p99", 0.8123, "812 ms"},
		{"latency.p99", 0.1, "100 ms"},
		{"latency.p99", 1.5, "1.5 s"},
		{"latency.p99", 2, "2 s"},
		{"latency.p99", 1234.5, "1,235 s"},
		{"latency.p99", 0.00025, "250 us"},
		{"latency.p99", 8e-7, "800 ns"},
		{"latency.p99", 0, "0 s"},
		{"latency.p99", 0.0009996, "1 ms"},
		{"probe.delay.max", 0.25, "250 ms"},
		{"generator.lag.p99", 0.005, "5 ms"},
		{"generator.gc.pause.p99", 0.0004, "400 us"},
		{"service.p50", 0.002, "2 ms"},
		{"latency.out_of_range", 3, "3"},
		{"errors.ratio", 0.0012, "0.12%"},
		{"errors.ratio", 0, "0%"},
		{"throughput.ratio", 0.98, "98%"},
		{"throughput.ratio", 1, "100%"},
		{"generator.cpu", 0.855, "85.5%"},
		{"probe.lost.ratio", 0.000012, "0.0012%"},
		{"throughput.rps", 7990.5, "7,991"},
		{"throughput.rps", 64000, "64,000"},
		{"throughput.rps", 1234567, "1,234,567"},
		{"errors.count", 12, "12"},
		{"rate", 250, "250"},
		{"rate", 12.5, "12.5"},
		{"rate", -2500, "-2,500"},
		{"rate", math.NaN(), "NaN"},
		{"rate", math.Inf(1), "+Inf"},
	}
	for _, tt := range tests {
		if got := FormatValue(tt.metric, tt.v); got != tt.want {
			t.Errorf("FormatValue(%q, %v) = %q, want %q", tt.metric, tt.v, got, tt.want)
		}
	}
}

func TestKinds(t *testing.T) {
	tests := []struct {
		metric                 string
		duration, ratio, count bool
	}{
		{"latency.p99", true, false, false},
		{"latency.out_of_range", false, false, true},
		{"errors.ratio", false, true, false},
		{"errors.count", false, false, true},
		{"generator.blocked.ratio", false, true, false},
		{"target.cpu", false, true, false},
		{"generator.lag.p99", true, false, false},
		{"throughput.rps", false, false, false},
		// A request's metrics are judged without their prefix: a request
		// named after a duration word does not make its counts durations.
		{"request.checkout.latency.p99", true, false, false},
		{"request.service_status.throughput.rps", false, false, false},
		{"request.lag.errors.count", false, false, true},
		{"request.delay.errors.ratio", false, true, false},
		{"request.checkout.share", false, true, false},
		{"share", false, false, false},
	}
	for _, tt := range tests {
		if IsDuration(tt.metric) != tt.duration || IsRatio(tt.metric) != tt.ratio || IsCount(tt.metric) != tt.count {
			t.Errorf("%s: duration=%v ratio=%v count=%v", tt.metric, IsDuration(tt.metric), IsRatio(tt.metric), IsCount(tt.metric))
		}
	}
}

func TestSplitRequestMetric(t *testing.T) {
	for _, tt := range []struct {
		in, name, metric string
		ok               bool
	}{
		{"request.checkout.latency.p99", "checkout", "latency.p99", true},
		{RequestMetric("a_1", RequestShare), "a_1", "share", true},
		{"request.checkout", "", "", false},
		{"request..latency.p99", "", "", false},
		{"latency.p99", "", "", false},
		{"requests.count", "", "", false},
	} {
		name, metric, ok := SplitRequestMetric(tt.in)
		if name != tt.name || metric != tt.metric || ok != tt.ok {
			t.Errorf("SplitRequestMetric(%q) = %q, %q, %v; want %q, %q, %v", tt.in, name, metric, ok, tt.name, tt.metric, tt.ok)
		}
	}
	if !IsRequestMetric("latency.p99") || IsRequestMetric("generator.cpu") {
		t.Error("IsRequestMetric")
	}
}
