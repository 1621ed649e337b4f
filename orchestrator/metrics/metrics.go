// Package metrics names the measurements a step produces and holds what the
// engines, gates and reports share about them: metric names, how a value is
// formatted for people (by its metric's unit), how an HDR histogram of
// microseconds becomes latency.* and service.* figures, the error classes of
// a step (http_4xx, timeout, gen_emfile...) and the process CPU time.
//
// A step's measurements are a flat map from metric name to value. Durations are in
// seconds (float64), ratios are 0..1, counts are plain numbers. Names follow
// DESIGN.md; engines may add their own under their own prefix. It imports
// nothing of loadramp's.
package metrics

// Metric names shared across the project (DESIGN.md, "Metric names").
const (
	LatencyP50  = "latency.p50"
	LatencyP90  = "latency.p90"
	LatencyP95  = "latency.p95"
	LatencyP99  = "latency.p99"
	LatencyP999 = "latency.p999"
	LatencyMax  = "latency.max"
	LatencyMean = "latency.mean"

	// Service time: measured from the actual send, not the intended one. Reported
	// for comparison with the corrected latency; gates should judge latency.*.
	ServiceP50  = "service.p50"
	ServiceP99  = "service.p99"
	ServiceMax  = "service.max"
	ServiceMean = "service.mean"

	ErrorsRatio = "errors.ratio"
	ErrorsCount = "errors.count"

	ThroughputRPS     = "throughput.rps"
	ThroughputOffered = "throughput.offered"
	ThroughputRatio   = "throughput.ratio"

	RequestsCount = "requests.count"

	ProbeDelayP50  = "probe.delay.p50"
	ProbeDelayP95  = "probe.delay.p95"
	ProbeDelayP99  = "probe.delay.p99"
	ProbeDelayMax  = "probe.delay.max"
	ProbeDelayMean = "probe.delay.mean"
	ProbeLostRatio = "probe.lost.ratio"

	TargetCPU     = "target.cpu"
	TargetMem     = "target.mem"
	TargetFDRatio = "target.fd.ratio"

	GeneratorCPU          = "generator.cpu"
	GeneratorLagP50       = "generator.lag.p50"
	GeneratorLagP99       = "generator.lag.p99"
	GeneratorBlockedRatio = "generator.blocked.ratio"
	GeneratorGCPauseP99   = "generator.gc.pause.p99"
	GeneratorGCPauseMax   = "generator.gc.pause.max"
	// GeneratorStarvedRatio is the time the generator's threads were runnable
	// but waiting for a CPU, per second of hold and per CPU it may use.
	GeneratorStarvedRatio = "generator.starved.ratio"
	// GeneratorStarvedPeak is the same in the hold's worst second.
	GeneratorStarvedPeak = "generator.starved.peak"
	// GeneratorStealRatio is the time the hypervisor took the CPUs the
	// generator may run on (their steal time, which the guest's run delay
	// does not count), per second of hold and per CPU; GeneratorStealPeak the
	// same in the hold's worst second.
	GeneratorStealRatio = "generator.steal.ratio"
	GeneratorStealPeak  = "generator.steal.peak"
	// GeneratorErrorsCount counts errors raised by the generator itself (EMFILE,
	// ENFILE, EADDRNOTAVAIL): they are never the target's fault.
	GeneratorErrorsCount = "generator.errors.count"
	GeneratorErrorsRatio = "generator.errors.ratio"
	// GeneratorWorkersMissing and GeneratorWorkersSaturated count the units
	// of a distributed engine (Locust workers) lost or at their CPU limit
	// during a step; above 0 the step is generator-fail.
	GeneratorWorkersMissing   = "generator.workers.missing"
	GeneratorWorkersSaturated = "generator.workers.saturated"
	ConnectionsReopened       = "connections.reopened"
	ConnectionsOpen           = "connections.open"
	// ConnectionsHeld is the mean number of the step's connections that were
	// established (not closed by either side) over the hold; Ratio is its
	// share of the connections asked for, Peak the most held at once.
	ConnectionsHeld      = "connections.held"
	ConnectionsHeldRatio = "connections.held.ratio"
	ConnectionsHeldPeak  = "connections.held.peak"
	// ConnectionsReopenedRatio is connections reopened per request of the hold.
	ConnectionsReopenedRatio = "connections.reopened.ratio"
	// SubscribersHeldRatio is the share of the subscribers asked for whose
	// streams were open, on average over the hold (pubsub workload).
	SubscribersHeldRatio = "pubsub.subscribers.held.ratio"
	// LocustUsersRatio is the users Locust ran at the end of the step over
	// the users asked for.
	LocustUsersRatio  = "locust.users.ratio"
	LatencyOutOfRange = "latency.out_of_range"
)

// Metrics is one step window's measurements, by metric name.
type Metrics map[string]float64

// Get returns the value of name and whether it was measured.
func (m Metrics) Get(name string) (float64, bool) {
	v, ok := m[name]
	return v, ok
}

// Merge copies every value of other into m, overwriting m's.
func (m Metrics) Merge(other Metrics) {
	for k, v := range other {
		m[k] = v
	}
}
