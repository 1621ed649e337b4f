package locust

import (
	"math"
	"sort"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

var nan = math.NaN()

// Metric names of the locust engine, besides the shared ones.
const (
	// WorkersMissing counts workers lost during the step (gone from the
	// master or marked missing), plus the shortfall against the expected
	// worker count at its start. Above 0 the step is generator-fail.
	WorkersMissing = metrics.GeneratorWorkersMissing
	// WorkersSaturated counts workers whose CPU averaged at least
	// CPUWarning over the hold. Above 0 the step is generator-fail.
	WorkersSaturated = metrics.GeneratorWorkersSaturated
	// Workers is the number of live workers at the end of the step.
	Workers = "locust.workers"
	// WorkersCPU is the busiest worker's mean CPU over the hold, as a share
	// of the one core a worker process can use.
	WorkersCPU = "locust.workers.cpu"
	// Users is the number of users the master ran at the end of the step.
	Users = "locust.users"
)

// CPUWarning is Locust's CPU warning threshold, as a share of one core.
const CPUWarning = 0.90

// DefaultApart are the request types measured apart from the requests: the
// locustfile fires them to report a delay (a message's delivery), not a
// request, so they are not part of latency.*, errors.* or throughput.rps.
var DefaultApart = []string{"DELIVERY"}

// windowMetrics builds a step window's metrics from the CSV rows counted
// since the reset at the start of the hold, over secs seconds.
//
// latency.* merges the request rows' percentile tables (every row but the
// Aggregated one and those whose Type is in apart): each row's distribution
// is read as piecewise linear between its reported percentiles, weighted by
// its request count. With a single request type that is Locust's own table.
// Locust rounds response times before it counts them (to 1 ms below 100 ms,
// 10 ms below 1 s, 100 ms above), so latency.* has that resolution.
func windowMetrics(rows []Row, secs float64, apart []string) metrics.Metrics {
	m := metrics.Metrics{}
	var reqRows []Row
	var count, fails int64
	seen := map[string]int{}
	for _, r := range rows {
		if r.Name == Aggregated && r.Type == "" {
			continue
		}
		seen[metricSegment(r.Name)]++
	}
	for _, r := range rows {
		if r.Name == Aggregated && r.Type == "" {
			continue
		}
		key := metricSegment(r.Name)
		if seen[key] > 1 {
			key = metricSegment(r.Type + "_" + r.Name)
		}
		prefix := "locust." + key + "."
		m[prefix+"count"] = float64(r.Requests)
		m[prefix+"errors"] = float64(r.Failures)
		if secs > 0 {
			m[prefix+"rps"] = float64(r.Requests) / secs
		}
		if r.Requests > 0 {
			for name, q := range map[string]float64{"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p999": 0.999} {
				m[prefix+name] = ms(merged([]Row{r}, q))
			}
			m[prefix+"max"] = ms(r.Max)
			m[prefix+"mean"] = ms(r.Mean)
		}
		if isApart(r.Type, apart) {
			continue
		}
		reqRows = append(reqRows, r)
		count += r.Requests
		fails += r.Failures
	}
	m[metrics.RequestsCount] = float64(count)
	m[metrics.ErrorsCount] = float64(fails)
	if secs > 0 {
		m[metrics.ThroughputRPS] = float64(count) / secs
	}
	if count == 0 {
		return m
	}
	m[metrics.ErrorsRatio] = float64(fails) / float64(count)
	for name, q := range map[string]float64{
		metrics.LatencyP50: 0.5, metrics.LatencyP90: 0.9, metrics.LatencyP95: 0.95,
		metrics.LatencyP99: 0.99, metrics.LatencyP999: 0.999,
	} {
		m[name] = ms(merged(reqRows, q))
	}
	var max, sum float64
	for _, r := range reqRows {
		if r.Requests > 0 {
			max = math.Max(max, r.Max)
			sum += r.Mean * float64(r.Requests)
		}
	}
	m[metrics.LatencyMax] = ms(max)
	m[metrics.LatencyMean] = ms(sum / float64(count))
	return m
}

func isApart(typ string, apart []string) bool {
	for _, a := range apart {
		if strings.EqualFold(typ, a) {
			return true
		}
	}
	return false
}

func ms(v float64) float64 { return v / 1000 }

// merged returns the q-quantile (in ms) of the union of rows, each read as a
// piecewise linear CDF through (0, Min) and its CSVPercentiles.
func merged(rows []Row, q float64) float64 {
	type curve struct {
		n      float64
		qs, vs []float64
	}
	var curves []curve
	var total float64
	var cands []float64
	for _, r := range rows {
		if r.Requests <= 0 || len(r.Percentiles) != len(CSVPercentiles) {
			continue
		}
		c := curve{n: float64(r.Requests), qs: []float64{0}, vs: []float64{math.Max(0, nz(r.Min))}}
		for i, v := range r.Percentiles {
			if math.IsNaN(v) {
				continue
			}
			v = math.Max(v, c.vs[len(c.vs)-1]) // monotone, whatever the rounding did
			c.qs = append(c.qs, CSVPercentiles[i])
			c.vs = append(c.vs, v)
		}
		curves = append(curves, c)
		total += c.n
		cands = append(cands, c.vs...)
	}
	if total == 0 {
		return nan
	}
	if len(curves) == 1 {
		return invert(curves[0].qs, curves[0].vs, q)
	}
	// cdf is the merged CDF at x, or its limit from the left (a row whose
	// percentiles repeat a value holds a point mass there).
	cdf := func(x float64, left bool) float64 {
		var s float64
		for _, c := range curves {
			s += c.n * at(c.vs, c.qs, x, left)
		}
		return s / total
	}
	sort.Float64s(cands)
	lo := cands[0]
	if cdf(lo, false) >= q {
		return lo
	}
	for _, hi := range cands[1:] {
		if hi == lo {
			continue
		}
		// Between neighbouring candidates the merged CDF is linear.
		flo, fhi := cdf(lo, false), cdf(hi, true)
		if fhi >= q {
			if fhi == flo {
				return lo
			}
			return lo + (hi-lo)*(q-flo)/(fhi-flo)
		}
		if cdf(hi, false) >= q {
			return hi
		}
		lo = hi
	}
	return cands[len(cands)-1]
}

func nz(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// invert returns the value at quantile q of the curve through (qs, vs).
func invert(qs, vs []float64, q float64) float64 {
	for i := 1; i < len(qs); i++ {
		if q <= qs[i] {
			if qs[i] == qs[i-1] {
				return vs[i]
			}
			return vs[i-1] + (vs[i]-vs[i-1])*(q-qs[i-1])/(qs[i]-qs[i-1])
		}
	}
	return vs[len(vs)-1]
}

// at returns the quantile reached at value x on the curve through (vs, qs),
// or, with left, the limit from below x.
func at(vs, qs []float64, x float64, left bool) float64 {
	below := func(a, b float64) bool { return a < b || (left && a == b) }
	if below(x, vs[0]) {
		return 0
	}
	for i := 1; i < len(vs); i++ {
		if below(x, vs[i]) {
			if vs[i] == vs[i-1] {
				return qs[i-1]
			}
			return qs[i-1] + (qs[i]-qs[i-1])*(x-vs[i-1])/(vs[i]-vs[i-1])
		}
	}
	return 1
}

// metricSegment makes a request name usable as one segment of a metric
// name: lowercase, with every character other than a-z, 0-9 and _ as _.
func metricSegment(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.Trim(b.String(), "_")
	if s == "" {
		return "request"
	}
	return s
}
