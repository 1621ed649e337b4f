package loadgen

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Window is what a Run measured. Counters and histograms cover the requests whose
// intended send time falls in the hold; Series covers warmup and hold.
type Window struct {
	Start    time.Time     // when the hold started
	Duration time.Duration // the hold window actually measured
	Offered  float64       // offered rate, requests/s (closed loop: the achieved rate)

	// Requests is every request due in the hold with an outcome: Completed (the
	// target answered, any status) plus failures without an answer.
	Requests int64
	// Sent counts requests written to a connection.
	Sent      int64
	Completed int64
	// Errors are the target's failures: 4xx/5xx answers, timeouts, refused and reset
	// connections, requests never sent because every connection stayed busy.
	Errors int64
	// GeneratorErrors are the generator's own failures (gen_* classes).
	GeneratorErrors int64
	ErrorClasses    map[string]int64

	Latency    *hdrhistogram.Histogram // from the intended send time, µs
	Service    *hdrhistogram.Histogram // from the actual send time, µs (answered requests)
	Lag        *hdrhistogram.Histogram // dispatcher lateness, µs (open model only)
	OutOfRange int64                   // latencies above 60 s (recorded as 60 s)
	Series     []result.Second         // warmup + hold

	// Released and Blocked count requests the dispatcher released in the hold, and
	// those of them that found no idle connection.
	Released, Blocked int64
	Reopened          int64 // connections reopened in the hold after the target closed them (or a request on them failed)
	Open              int   // connections open at the end
	Connections       int   // connections asked for
	// Held is the mean number of connections held open (established) over the
	// hold, HeldPeak the most at once; HeldKnown is false when the hold was
	// too short to look.
	Held       float64
	HeldPeak   int
	HeldKnown  bool
	CPU        float64 // generator process CPU share, 0..1
	GCPauseP99 float64 // seconds
	GCPauseMax float64 // seconds
	// Starved is the time the generator's threads waited for a CPU per second of
	// hold and per CPU it may use (hoststat.StarvedRatio); StarvedKnown is false
	// where it cannot be read.
	Starved      float64
	StarvedKnown bool
	// StarvedPeak is Starved in the hold's worst second: a thread that takes
	// the generator's CPU for 15 ms once a second is 1.5 % of the hold, and
	// every request due in those 15 ms is late.
	StarvedPeak float64
	// Steal is the time the hypervisor took the CPUs the generator may run on,
	// per second of hold and per CPU (hoststat.StealRatio), StealPeak the same
	// in the hold's worst second; StealKnown is false where it cannot be read.
	Steal, StealPeak float64
	StealKnown       bool
	// PerRequest are the window's figures per request of a named mix, in
	// the Target's order (empty for a lone unnamed request).
	PerRequest []RequestWindow

	looped bool // the dispatcher's loop sent and read the step (for tests)
	// tooLarge counts the responses the loop handed over as too large for its
	// buffers (for tests).
	tooLarge int
}

// RequestWindow is one request of a mix, measured over the hold.
type RequestWindow struct {
	Name   string
	Weight int
	// Requests, Sent, Completed, Errors and ErrorClasses count as the
	// Window's do, for this request only.
	Requests, Sent, Completed, Errors int64
	ErrorClasses                      map[string]int64
	Latency                           *hdrhistogram.Histogram // from the intended send time, µs
}

// Result is the window as the orchestrator records it.
func (w *Window) Result() *result.EngineResult {
	res := &result.EngineResult{Metrics: w.Metrics(), Series: w.Series, ErrorClasses: w.ErrorClasses,
		Histograms: map[string]*hdrhistogram.Histogram{metrics.HistLatency: w.Latency, metrics.HistService: w.Service, metrics.HistLag: w.Lag}}
	for _, rw := range w.PerRequest {
		res.Requests = append(res.Requests, result.Request{Name: rw.Name, Weight: rw.Weight, ErrorClasses: rw.ErrorClasses})
		if rw.Latency != nil {
			res.Histograms[metrics.RequestMetric(rw.Name, metrics.HistLatency)] = rw.Latency
		}
	}
	return res
}

// Metrics returns the window's measurements by metric name (durations in seconds).
func (w *Window) Metrics() metrics.Metrics {
	m := metrics.Metrics{}
	m.PutQuantiles(w.Latency, metrics.Latency)
	m.PutQuantiles(w.Service, metrics.Service)
	ratio := func(n int64) float64 {
		if w.Requests == 0 {
			return 0
		}
		return float64(n) / float64(w.Requests)
	}
	m[metrics.ErrorsCount] = float64(w.Errors)
	m[metrics.ErrorsRatio] = ratio(w.Errors)
	m[metrics.GeneratorErrorsCount] = float64(w.GeneratorErrors)
	m[metrics.GeneratorErrorsRatio] = ratio(w.GeneratorErrors)
	m[metrics.RequestsCount] = float64(w.Requests)
	rps := 0.0
	if w.Duration > 0 {
		rps = float64(w.Completed) / w.Duration.Seconds()
	}
	m[metrics.ThroughputRPS] = rps
	m[metrics.ThroughputOffered] = w.Offered
	if w.Offered > 0 {
		m[metrics.ThroughputRatio] = rps / w.Offered
	} else {
		m[metrics.ThroughputRatio] = 0
	}
	m[metrics.GeneratorCPU] = w.CPU
	m.PutQuantiles(w.Lag, metrics.Lag)
	blocked := 0.0
	if w.Released > 0 {
		blocked = float64(w.Blocked) / float64(w.Released)
	}
	m[metrics.GeneratorBlockedRatio] = blocked
	m[metrics.GeneratorGCPauseP99] = w.GCPauseP99
	m[metrics.GeneratorGCPauseMax] = w.GCPauseMax
	if w.StarvedKnown {
		m[metrics.GeneratorStarvedRatio] = w.Starved
		m[metrics.GeneratorStarvedPeak] = max(w.StarvedPeak, w.Starved)
	}
	if w.StealKnown {
		m[metrics.GeneratorStealRatio] = w.Steal
		m[metrics.GeneratorStealPeak] = max(w.StealPeak, w.Steal)
	}
	m[metrics.ConnectionsReopened] = float64(w.Reopened)
	if w.Requests > 0 {
		m[metrics.ConnectionsReopenedRatio] = float64(w.Reopened) / float64(w.Requests)
	}
	m[metrics.ConnectionsOpen] = float64(w.Open)
	if w.HeldKnown && w.Connections > 0 {
		m[metrics.ConnectionsHeld] = w.Held
		m[metrics.ConnectionsHeldRatio] = w.Held / float64(w.Connections)
		m[metrics.ConnectionsHeldPeak] = float64(w.HeldPeak)
	}
	m[metrics.LatencyOutOfRange] = float64(w.OutOfRange)
	for _, rw := range w.PerRequest {
		rw.putMetrics(m, w)
	}
	return m
}

// putMetrics sets the request's metrics (request.<name>.*) in m.
func (rw RequestWindow) putMetrics(m metrics.Metrics, w *Window) {
	own := metrics.Metrics{}
	if rw.Requests > 0 {
		own.PutQuantiles(rw.Latency, metrics.Latency)
	}
	own[metrics.ErrorsCount] = float64(rw.Errors)
	own[metrics.ErrorsRatio] = 0
	if rw.Requests > 0 {
		own[metrics.ErrorsRatio] = float64(rw.Errors) / float64(rw.Requests)
	}
	own[metrics.RequestsCount] = float64(rw.Requests)
	own[metrics.ThroughputRPS] = 0
	if w.Duration > 0 {
		own[metrics.ThroughputRPS] = float64(rw.Completed) / w.Duration.Seconds()
	}
	own[metrics.RequestShare] = 0
	if w.Requests > 0 {
		own[metrics.RequestShare] = float64(rw.Requests) / float64(w.Requests)
	}
	for k, v := range own {
		m[metrics.RequestMetric(rw.Name, k)] = v
	}
}
