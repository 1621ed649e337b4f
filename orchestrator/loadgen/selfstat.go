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

func readSelf() selfSnap {
	return selfSnap{cpu: metrics.ProcessCPUTime(), gc: gcSnapshot(), starve: hoststat.SelfStarvation(), steal: hoststat.SelfSteal()}
}

// starved is the generator's starvation between two snapshots, per second and per
// CPU it may use, and whether the kernel told.
func starved(a, b selfSnap) (float64, bool) {
	return hoststat.StarvedRatio(a.starve, b.starve, runtime.GOMAXPROCS(0))
}

// secondPeaks are the worst second's steal and starvation in a hold.
type secondPeaks struct{ steal, starved float64 }
