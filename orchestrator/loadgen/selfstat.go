package loadgen

import (
	"runtime"
	rtmetrics "runtime/metrics"
	"time"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// selfSnap is the generator's self-measurement at one instant: CPU time, GC
// pauses, the counters of its starvation (time runnable but waiting for a CPU)
// and its CPUs' steal time (the hypervisor's).
type selfSnap struct {
	cpu    time.Duration
	gc     *rtmetrics.Float64Histogram
	starve hoststat.Starvation
	steal  hoststat.Steal
}

// selfProbe takes the generator's self-measurements of a step. What does not
// change during it (the CPUs it may run on, its cgroup) is read once, when the
// step makes the probe, not at every second of the hold.
type selfProbe struct {
	starve hoststat.StarveProbe
	steal  hoststat.StealProbe
}

func newSelfProbe() selfProbe {
	return selfProbe{starve: hoststat.StarveProbe{}.Resolved(), steal: hoststat.StealProbe{}.Pinned()}
}

// read is a whole snapshot, for the hold's ends.
func (p selfProbe) read() selfSnap {
	return selfSnap{cpu: metrics.ProcessCPUTime(), gc: gcSnapshot(), starve: p.starve.Read(), steal: p.steal.Read()}
}

// waits reads the time taken from the generator's CPUs only (starvation and
// steal), for each second of the hold.
func (p selfProbe) waits() selfSnap {
	return selfSnap{starve: p.starve.Read(), steal: p.steal.Read()}
}

// starved is the generator's starvation between two snapshots, per second and per
// CPU it may use, and whether the kernel told.
func starved(a, b selfSnap) (float64, bool) {
	return hoststat.StarvedRatio(a.starve, b.starve, runtime.GOMAXPROCS(0))
}

// secondPeaks are the worst second's steal and starvation in a hold, measured
// from last, the reading a second before.
type secondPeaks struct {
	steal, starved float64
	last           selfSnap
}

// due reports whether a second's figures can be taken now: half a second at
// least since the last reading (the kernel counts steal in 10 ms ticks, and
// a hold's closing instant is not a second).
func (s *secondPeaks) due() bool { return time.Since(s.last.steal.At) >= time.Second/2 }

// add takes the second that ends at now.
func (s *secondPeaks) add(now selfSnap) {
	if v, ok := hoststat.StealRatio(s.last.steal, now.steal); ok {
		s.steal = max(s.steal, v)
	}
	if v, ok := starved(s.last, now); ok {
		s.starved = max(s.starved, v)
	}
	s.last = now
}
