package metrics

import (
	"math"
	"runtime"
	"syscall"
	"time"
)

// ProcessCPUTime returns this process's user+system CPU time (0 when the
// kernel does not say).
func ProcessCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// CPUShare is a process's CPU use over wall as a share of the CPUs it may use
// (GOMAXPROCS, which follows the affinity mask and cgroup quota), 0..1.
func CPUShare(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return math.Min(1, cpu.Seconds()/wall.Seconds()/float64(runtime.GOMAXPROCS(0)))
}
