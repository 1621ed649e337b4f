package metrics

import (
	"math"
	"strconv"
	"strings"
)

// durationWords mark a metric as a duration in seconds when one of them appears
// in its name (latency.p99, probe.delay.max, generator.lag.p99,
// generator.gc.pause.p99, service.p50).
var durationWords = []string{"latency", "delay", "lag", "pause", "service"}

// lastSegment returns the part of a dotted metric name after the last dot.
func lastSegment(metric string) string {
	if i := strings.LastIndexByte(metric, '.'); i >= 0 {
		return metric[i+1:]
	}
	return metric
}

// IsRatio reports whether metric is a ratio 0..1 by its name: the last segment
// is "ratio" (or ends in "_ratio"), or "cpu" (a share of the CPUs available),
// or it is a request's share (request.<name>.share). A request's metrics are
// judged without their request.<name>. prefix, here and in IsCount and
// IsDuration.
func IsRatio(metric string) bool {
	if _, m, ok := SplitRequestMetric(metric); ok {
		if m == RequestShare {
			return true
		}
		metric = m
	}
	last := lastSegment(metric)
	return last == "ratio" || strings.HasSuffix(last, "_ratio") || last == "cpu"
}

// IsCount reports whether metric is a count by its name: the last segment is
// "count" (or ends in "_count"), or "out_of_range" (latency.out_of_range counts
// values a histogram could not hold).
func IsCount(metric string) bool {
	last := lastSegment(unprefixed(metric))
	return last == "count" || strings.HasSuffix(last, "_count") || last == "out_of_range"
}

// IsDuration reports whether metric is a duration in seconds by its name: it is
// neither a ratio nor a count, and it mentions latency, delay, lag, pause or
// service.
func IsDuration(metric string) bool {
	if IsRatio(metric) || IsCount(metric) {
		return false
	}
	metric = unprefixed(metric)
	for _, w := range durationWords {
		if strings.Contains(metric, w) {
			return true
		}
	}
	return false
}

// FormatValue formats v for people, by what metric measures: durations (seconds)
// with a unit and three significant digits ("12.3 ms", "812 ms", "1.5 s",
// "250 us"), ratios as percentages ("0.12%", "98%") and everything else as a
// number with thousands separators ("7,990", "12.5"). Duration units are the
// ones gates accept, so an explanation can be pasted back as a gate.
func FormatValue(metric string, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	switch {
	case IsDuration(metric):
		return formatSeconds(v)
	case IsRatio(metric):
		return sig3(v*100) + "%"
	default:
		return FormatNumber(v)
	}
}

// formatSeconds picks the largest unit in which v is at least 1.
func formatSeconds(v float64) string {
	// Round to three significant digits first, so 0.9996 ms reads "1 ms",
	// not "1,000 us".
	if a := math.Abs(v); a > 0 && a < 1000 {
		scale := math.Pow(10, math.Floor(math.Log10(a))-2)
		v = math.Round(v/scale) * scale
	}
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0 s"
	case a < 1e-6:
		return sig3(v*1e9) + " ns"
	case a < 1e-3:
		return sig3(v*1e6) + " us"
	case a < 1:
		return sig3(v*1e3) + " ms"
	default:
		return sig3(v) + " s"
	}
}

// sig3 formats v with three significant digits, no exponent, no trailing zeros,
// and thousands separators in the integer part (so 1234.5 s is "1,235").
func sig3(v float64) string {
	if v == 0 {
		return "0"
	}
	a := math.Abs(v)
	if a >= 1000 {
		return FormatNumber(math.Round(v))
	}
	decimals := 2 - int(math.Floor(math.Log10(a)))
	if decimals < 0 {
		decimals = 0
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	// Rounding can carry into a new digit (999.5 -> "1000"); that is still fine.
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return groupThousands(s)
}

// FormatNumber formats a plain number: integers at and above 1000 with
// thousands separators ("7,990"; fractions are rounded away there), smaller
// numbers with up to three significant digits ("12.5", "0.333").
func FormatNumber(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	if math.Abs(v) >= 1000 {
		return groupThousands(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
	}
	return sig3(v)
}

// groupThousands inserts commas into the integer part of a decimal string.
func groupThousands(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac := s, ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		intPart, frac = s[:i], s[i:]
	}
	if len(intPart) <= 3 {
		return sign + s
	}
	var b strings.Builder
	lead := len(intPart) % 3
	if lead > 0 {
		b.WriteString(intPart[:lead])
	}
	for i := lead; i < len(intPart); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(intPart[i : i+3])
	}
	return sign + b.String() + frac
}
