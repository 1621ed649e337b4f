package metrics

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds (FIELD_NOTES.md): durations are recorded in microseconds
// from 1 µs to 60 s at 3 significant digits, one histogram per worker, merged
// per step.
const (
	HistMinUS  = 1
	HistMaxUS  = 60_000_000
	HistDigits = 3
)

// Names of the standard histograms in an engine's result
// (result.EngineResult.Histograms): corrected latency, service time and
// dispatcher lag.
const (
	HistLatency = "latency"
	HistService = "service"
	HistLag     = "generator.lag"
)

// NewHistogram returns a histogram of microseconds from HistMinUS to HistMaxUS
// at digits significant digits (HistDigits for a step window; 2 is enough for
// the per-second series).
func NewHistogram(digits int) *hdrhistogram.Histogram {
	return hdrhistogram.New(HistMinUS, HistMaxUS, int(digits))
}

// RecordDuration records d in h, clamped to the histogram's bounds.
func RecordDuration(h *hdrhistogram.Histogram, d time.Duration) {
	_ = h.RecordValue(ClampUS(d.Microseconds()))
}

// ClampUS clamps a duration in microseconds to [HistMinUS, HistMaxUS].
func ClampUS(us int64) int64 {
	return min(max(us, HistMinUS), HistMaxUS)
}

// Special quantiles of a Quantile.
const (
	QuantileMax  = 100.0
	QuantileMean = -1.0
)

// Quantile names the metric that one quantile of a histogram becomes:
// Percent 50 is the median, QuantileMax the largest value, QuantileMean the
// mean.
type Quantile struct {
	Name    string
	Percent float64
}

// Latency, Service, Lag and ProbeDelay are the quantiles the standard
// histograms report.
var (
	Latency = []Quantile{
		{LatencyP50, 50}, {LatencyP90, 90}, {LatencyP95, 95}, {LatencyP99, 99},
		{LatencyP999, 99.9}, {LatencyMax, QuantileMax}, {LatencyMean, QuantileMean},
	}
	Service    = []Quantile{{ServiceP50, 50}, {ServiceP99, 99}, {ServiceMax, QuantileMax}, {ServiceMean, QuantileMean}}
	Lag        = []Quantile{{GeneratorLagP50, 50}, {GeneratorLagP99, 99}}
	ProbeDelay = []Quantile{
		{ProbeDelayP50, 50}, {ProbeDelayP95, 95}, {ProbeDelayP99, 99}, {ProbeDelayMax, QuantileMax},
		{ProbeDelayMean, QuantileMean},
	}
)

// PutQuantiles sets qs from h, a histogram of microseconds, as seconds. A nil
// h sets nothing; an empty one sets zeros (callers that mean "not measured"
// skip it).
func (m Metrics) PutQuantiles(h *hdrhistogram.Histogram, qs []Quantile) {
	if h == nil {
		return
	}
	for _, q := range qs {
		switch q.Percent {
		case QuantileMax:
			m[q.Name] = float64(h.Max()) / 1e6
		case QuantileMean:
			m[q.Name] = h.Mean() / 1e6
		default:
			m[q.Name] = float64(h.ValueAtQuantile(q.Percent)) / 1e6
		}
	}
}

// SecondQuantiles returns the p50 and p99 of a per-second histogram of
// microseconds, in seconds (0 when it is empty).
func SecondQuantiles(h *hdrhistogram.Histogram) (p50, p99 float64) {
	if h == nil || h.TotalCount() == 0 {
		return 0, 0
	}
	return float64(h.ValueAtQuantile(50)) / 1e6, float64(h.ValueAtQuantile(99)) / 1e6
}
