package hoststat

import (
	"math"
	"sort"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// ProcSummary is one watched process over a window.
type ProcSummary struct {
	Name string `json:"name"`
	Pid  int    `json:"pid"`
	Side string `json:"side"`
	// CPUMean and CPUPeak are the share (0..1) of the process's CPUs it used, over
	// the window and in its busiest interval between two samples (at least
	// minPeakSpan long).
	CPUMean float64 `json:"cpu_mean"`
	CPUPeak float64 `json:"cpu_peak"`
	CPUs    int     `json:"cpus"`
	RSSPeak int64   `json:"rss_peak"`
	FDPeak  int     `json:"fd_peak"`
	FDLimit int64   `json:"fd_limit"` // 0: unlimited or unknown
	// Errors counts samples in which the process could not be read; LastErr is the
	// latest reason (it exited, permission denied).
	Errors  int    `json:"errors,omitempty"`
	LastErr string `json:"last_err,omitempty"`
}

// FDRatio is the peak share of the open-file limit in use (0 when unlimited).
func (p ProcSummary) FDRatio() float64 {
	if p.FDLimit <= 0 {
		return 0
	}
	return float64(p.FDPeak) / float64(p.FDLimit)
}

// SideSummary is the sum of one side's processes over a window.
type SideSummary struct {
	// CPUMean and CPUPeak are the share (0..1) of the CPUs available to the side
	// (the union of its processes' allowed CPUs, as a count) the side used.
	CPUMean float64 `json:"cpu_mean"`
	CPUPeak float64 `json:"cpu_peak"`
	RSSPeak int64   `json:"rss_peak"` // peak of the summed RSS
	FDRatio float64 `json:"fd_ratio"` // peak fds/limit over the side's processes
	Procs   int     `json:"procs"`
}

// Summary is a step window of samples: counter deltas, gauge peaks, last limits.
type Summary struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Samples int       `json:"samples"`
	// Deltas are the increase of each counter between the first and last sample
	// that had it (a counter that went backwards, e.g. after a reset, counts from 0).
	Deltas map[string]float64 `json:"deltas"`
	// Peaks are the largest value of each gauge; Mins the smallest.
	Peaks map[string]float64 `json:"peaks"`
	Mins  map[string]float64 `json:"mins"`
	// Limits are the last value of each limit.
	Limits map[string]float64 `json:"limits"`
	// HostCPUMean and HostCPUPeak are the host's busy share (0..1), over the
	// window and in its busiest interval (at least minPeakSpan long); -1 when
	// unavailable.
	HostCPUMean float64 `json:"host_cpu_mean"`
	HostCPUPeak float64 `json:"host_cpu_peak"`
	// HostStealMean and HostStealPeak are the share (0..1) of the host's CPU
	// time its hypervisor took (steal), over the window and in its worst
	// interval; -1 when unavailable. It is part of HostCPUMean's busy time.
	HostStealMean float64 `json:"host_steal_mean"`
	HostStealPeak float64 `json:"host_steal_peak"`
	// GenCPUsMean and GenCPUsPeak are the busy share (0..1, by any process)
	// of the CPUs the generator may run on, when that is some of the host's
	// only; -1 otherwise. GenCPUs is how many they are.
	GenCPUsMean float64       `json:"gen_cpus_mean"`
	GenCPUsPeak float64       `json:"gen_cpus_peak"`
	GenCPUs     int           `json:"gen_cpus,omitempty"`
	Procs       []ProcSummary `json:"procs"`
	Target      SideSummary   `json:"target"`
	Generator   SideSummary   `json:"generator"`
}

// Window summarises samples taken during one step window (in time order).
func Window(samples []Sample) Summary { return WindowFrom(samples, time.Time{}) }

// WindowFrom is Window over a hold that starts at from: samples taken before
// it (the warmup's last, kept as the counters' baseline) give counters and CPU
// their starting point but no gauge, so a peak (open files, tcp sockets, RSS)
// is one the hold reached, not one left over from the step before or the
// warmup's connection setup. A zero from, or a window with no sample at or
// after it, counts every sample's gauges.
func WindowFrom(samples []Sample, from time.Time) Summary {
	s := Summary{
		Deltas: map[string]float64{}, Peaks: map[string]float64{}, Mins: map[string]float64{},
		Limits: map[string]float64{}, HostCPUMean: -1, HostCPUPeak: -1, HostStealMean: -1, HostStealPeak: -1, GenCPUsMean: -1, GenCPUsPeak: -1,
		Samples: len(samples),
	}
	if len(samples) == 0 {
		return s
	}
	samples = append([]Sample(nil), samples...)
	sort.SliceStable(samples, func(i, j int) bool { return samples[i].Time.Before(samples[j].Time) })
	s.Start, s.End = samples[0].Time, samples[len(samples)-1].Time
	if samples[len(samples)-1].Time.Before(from) {
		from = time.Time{} // no sample in the hold: every sample's gauges count
	}
	gauge := func(smp Sample) bool { return !smp.Time.Before(from) }

	first, last := map[string]float64{}, map[string]float64{}
	for _, smp := range samples {
		for k, v := range smp.Host {
			switch {
			case counterKeys[k]:
				if prev, ok := last[k]; ok && v < prev { // reset: count from 0
					first[k] -= prev
				}
				if _, ok := first[k]; !ok {
					first[k] = v
				}
				last[k] = v
			case limitKeys[k]:
				s.Limits[k] = v
			case gauge(smp):
				if p, ok := s.Peaks[k]; !ok || v > p {
					s.Peaks[k] = v
				}
				if m, ok := s.Mins[k]; !ok || v < m {
					s.Mins[k] = v
				}
			}
		}
	}
	for k, v := range last {
		s.Deltas[k] = v - first[k]
	}

	// Host CPU (and the generator's CPUs): busy/total per interval.
	s.HostCPUMean, s.HostCPUPeak = busyShare(samples, HostCPUBusy, HostCPUTotal, HostCPUs)
	s.GenCPUsMean, s.GenCPUsPeak = busyShare(samples, HostGenCPUBusy, HostGenCPUTotal, HostGenCPUs)
	s.HostStealMean, s.HostStealPeak = stealShare(samples)
	if s.GenCPUsMean >= 0 {
		s.GenCPUs = int(s.Limits[HostGenCPUs])
	}

	s.Procs = procSummaries(samples, gauge)
	s.Target = sideSummary(samples, s.Procs, SideTarget, gauge)
	s.Generator = sideSummary(samples, s.Procs, SideGenerator, gauge)
	return s
}

// busyShare is the busy share of CPU time over the window and in its busiest
// interval, from a busy and a total counter and the count of the CPUs they
// sum (cpusKey); -1, -1 when unavailable.
//
// A kernel that counts busy time by sampling at its ticks (TICK_CPU_ACCOUNTING)
// but idle time exactly (NO_HZ_IDLE) misses work done between two ticks: a
// generator that wakes a thousand times a second for 30 µs is idle at almost
// every tick. Its CPUs' counters then sum to less than the time that went by
// (1.72-1.82 s a second on this project's 2-CPU machine, with 0.0-0.11 s of it
// busy while nginx and loadramp used about 0.45). What is missing was not idle:
// with the CPU count, an interval's busy time is its wall time less its idle.
func busyShare(samples []Sample, busyKey, totalKey, cpusKey string) (mean, peak float64) {
	return share(samples, busyKey, totalKey, cpusKey, true)
}

// stealShare is the share of the host's CPU time its hypervisor took (steal)
// over the window and in its worst interval; -1, -1 when unavailable. Time
// the counters miss (busyShare) counts in the total, not in the steal: the
// kernel takes steal whole from the hypervisor's clock of it (paravirtual
// steal time), not by sampling at its ticks.
func stealShare(samples []Sample) (mean, peak float64) {
	return share(samples, HostCPUSteal, HostCPUTotal, HostCPUs, false)
}

// share is part's share of total over the window and in its largest
// interval (at least minPeakSpan long). Where the counters sum to less than
// the wall time of cpusKey CPUs, the wall time is the total, and what is
// missing counts in part when missingIsPart.
func share(samples []Sample, partKey, totalKey, cpusKey string, missingIsPart bool) (mean, peak float64) {
	mean, peak = -1, -1
	interval := func(a, b Sample) (part, total float64, ok bool) {
		db, okb := delta(a.Host, b.Host, partKey)
		dt, okt := delta(a.Host, b.Host, totalKey)
		if !okb || !okt || dt <= 0 {
			return 0, 0, false
		}
		if cpus := b.Host[cpusKey]; cpus > 0 && a.Host[cpusKey] == cpus {
			if wall := b.Time.Sub(a.Time).Seconds() * cpus; wall > dt {
				if missingIsPart {
					db += wall - dt
				}
				return db, wall, true
			}
		}
		return db, dt, true
	}
	var busySum, totalSum float64
	for i := 1; i < len(samples); i++ {
		if db, dt, ok := interval(samples[i-1], samples[i]); ok {
			busySum += db
			totalSum += dt
		}
	}
	if totalSum <= 0 {
		return mean, peak
	}
	mean = clamp01(busySum / totalSum)
	peakSpans(len(samples), func(i int) time.Time { return samples[i].Time }, func(j, i int) {
		if db, dt, ok := interval(samples[j], samples[i]); ok {
			peak = math.Max(peak, clamp01(db/dt))
		}
	})
	return mean, max(peak, mean)
}

// minPeakSpan is the shortest span a CPU peak (target.cpu.peak,
// generator.cpu.peak, host.cpu.peak) is measured over. The kernel counts CPU
// time in clock ticks (10 ms at USER_HZ 100), and a hold's closing sample
// comes a few milliseconds after its last regular one: over 13 ms, a process
// that was charged one tick read 0.77 of a CPU, an idle one 0. An interval
// shorter than this is measured together with those before it.
const minPeakSpan = 500 * time.Millisecond

// peakSpans calls f(j, i) for each of n points in time order (at) that ends
// a span of at least minPeakSpan: j is the latest point that far before i.
// Spaced a second apart, that is each interval (j = i-1).
func peakSpans(n int, at func(int) time.Time, f func(j, i int)) {
	j := 0
	for i := 1; i < n; i++ {
		for j+1 < i && at(i).Sub(at(j+1)) >= minPeakSpan {
			j++
		}
		if at(i).Sub(at(j)) >= minPeakSpan {
			f(j, i)
		}
	}
}

func delta(a, b map[string]float64, k string) (float64, bool) {
	x, ok1 := a[k]
	y, ok2 := b[k]
	if !ok1 || !ok2 || y < x {
		return 0, false
	}
	return y - x, true
}

type procKey struct {
	side string
	pid  int
	name string
}

func procSummaries(samples []Sample, gauge func(Sample) bool) []ProcSummary {
	idx := map[procKey]int{}
	var out []ProcSummary
	type point struct {
		t   time.Time
		cpu float64
	}
	pts := map[procKey][]point{} // the samples that read the process's CPU time
	for _, smp := range samples {
		for _, p := range smp.Procs {
			k := procKey{p.Side, p.Pid, p.Name}
			i, ok := idx[k]
			if !ok {
				i = len(out)
				idx[k] = i
				out = append(out, ProcSummary{Name: p.Name, Pid: p.Pid, Side: p.Side})
			}
			ps := &out[i]
			if p.Err != "" && p.CPUSeconds == 0 && p.RSS == 0 {
				ps.Errors++
				ps.LastErr = p.Err
				continue
			}
			if p.CPUs > 0 {
				ps.CPUs = p.CPUs
			}
			if p.RSS > ps.RSSPeak && gauge(smp) {
				ps.RSSPeak = p.RSS
			}
			if p.FDs > ps.FDPeak && gauge(smp) {
				ps.FDPeak = p.FDs
			}
			if p.FDLimit > 0 {
				ps.FDLimit = p.FDLimit
			}
			pts[k] = append(pts[k], point{smp.Time, p.CPUSeconds})
		}
	}
	for k, i := range idx {
		ps, pp := &out[i], pts[k]
		if ps.CPUs == 0 || len(pp) < 2 {
			continue
		}
		share := func(a, b point) (float64, bool) {
			dt := b.t.Sub(a.t).Seconds()
			if dt <= 0 || b.cpu < a.cpu {
				return 0, false
			}
			return clamp01((b.cpu - a.cpu) / (dt * float64(ps.CPUs))), true
		}
		if v, ok := share(pp[0], pp[len(pp)-1]); ok {
			ps.CPUMean = v
		}
		peakSpans(len(pp), func(i int) time.Time { return pp[i].t }, func(j, i int) {
			if v, ok := share(pp[j], pp[i]); ok {
				ps.CPUPeak = math.Max(ps.CPUPeak, v)
			}
		})
		ps.CPUPeak = math.Max(ps.CPUPeak, ps.CPUMean)
	}
	return out
}

// sideSummary sums one side's processes. Its CPU share is over the largest CPU
// count any of its processes may use, so two single-threaded generators pinned to
// different CPUs of a 2-CPU host count against 2 CPUs.
func sideSummary(samples []Sample, procs []ProcSummary, side string, gauge func(Sample) bool) SideSummary {
	var ss SideSummary
	cpus := 0
	for _, p := range procs {
		if p.Side != side {
			continue
		}
		ss.Procs++
		ss.FDRatio = math.Max(ss.FDRatio, p.FDRatio())
		cpus = max(cpus, p.CPUs)
	}
	if ss.Procs == 0 {
		return ss
	}
	type point struct {
		t   time.Time
		cpu float64
		rss int64
		n   int
	}
	var pts []point
	for _, smp := range samples {
		pt := point{t: smp.Time}
		for _, p := range smp.Procs {
			if p.Side != side || (p.Err != "" && p.CPUSeconds == 0) {
				continue
			}
			pt.cpu += p.CPUSeconds
			pt.rss += p.RSS
			pt.n++
		}
		if pt.n > 0 {
			pts = append(pts, pt)
			if pt.rss > ss.RSSPeak && gauge(smp) {
				ss.RSSPeak = pt.rss
			}
		}
	}
	if cpus == 0 {
		return ss
	}
	// A process that appeared or vanished between samples makes the sum jump:
	// such an interval, or span, is skipped.
	steady := func(j, i int) bool {
		for k := j + 1; k <= i; k++ {
			if pts[k].n != pts[j].n || pts[k].cpu < pts[k-1].cpu {
				return false
			}
		}
		return pts[i].t.After(pts[j].t)
	}
	var used, wall float64
	for i := 1; i < len(pts); i++ {
		if a, b := pts[i-1], pts[i]; steady(i-1, i) {
			used += b.cpu - a.cpu
			wall += b.t.Sub(a.t).Seconds()
		}
	}
	if wall > 0 {
		ss.CPUMean = clamp01(used / (wall * float64(cpus)))
	}
	peakSpans(len(pts), func(i int) time.Time { return pts[i].t }, func(j, i int) {
		if steady(j, i) {
			dt := pts[i].t.Sub(pts[j].t).Seconds()
			ss.CPUPeak = math.Max(ss.CPUPeak, clamp01((pts[i].cpu-pts[j].cpu)/(dt*float64(cpus))))
		}
	})
	ss.CPUPeak = math.Max(ss.CPUPeak, ss.CPUMean)
	return ss
}

func clamp01(v float64) float64 {
	switch {
	case v < 0 || math.IsNaN(v):
		return 0
	case v > 1:
		return 1
	}
	return v
}

// Names of the host metrics Summary.Metrics adds besides the shared target.* and
// generator.* ones.
const (
	MetricTargetCPUPeak    = "target.cpu.peak"
	MetricGeneratorCPUPeak = "generator.cpu.peak"
	MetricGeneratorMem     = "generator.mem"
	MetricHostCPU          = "host.cpu"
	MetricHostCPUPeak      = "host.cpu.peak"
	// MetricHostSteal and MetricHostStealPeak are the share of the host's CPU
	// time its hypervisor took (steal), mean over the hold and in its worst
	// interval.
	MetricHostSteal     = "host.cpu.steal"
	MetricHostStealPeak = "host.cpu.steal.peak"
	// MetricGenCPUsBusy is how busy (with any process) the CPUs the generator
	// may run on were, when it may use some of the host's CPUs only.
	MetricGenCPUsBusy         = "generator.cpuset.busy_ratio"
	MetricHostMemUsedRatio    = "host.mem.used.ratio"
	MetricHostPSICPUSome      = "host.psi.cpu.some"
	MetricHostPSIMemFull      = "host.psi.memory.full"
	MetricHostListenOverflows = "host.listen_overflows"
	MetricHostListenDrops     = "host.listen_drops"
	MetricHostSynDrops        = "host.syn.reqq_full_drops"
	MetricHostSynCookies      = "host.syn.cookies"
	MetricHostTCPInUse        = "host.tcp.inuse"
	MetricHostTCPTW           = "host.tcp.tw"
	MetricHostTWOverflow      = "host.tcp.tw_overflow"
	MetricHostFileNrRatio     = "host.file_nr.ratio"
	MetricHostConntrackRatio  = "host.conntrack.ratio"
	MetricHostConntrackDrops  = "host.conntrack.drops"
)

// Metrics flattens the summary into step metrics: target.cpu and generator.cpu
// (mean share 0..1 of the side's CPUs over the window; *.peak for the busiest
// interval), target.mem (peak summed RSS, bytes), target.fd.ratio (peak fds over
// limit, the worst target process), and host.* figures (counter deltas over the
// window, gauge peaks, ratios to their limits). Unavailable figures are left out.
func (s Summary) Metrics() metrics.Metrics {
	m := metrics.Metrics{}
	if s.Target.Procs > 0 {
		m[metrics.TargetCPU] = s.Target.CPUMean
		m[MetricTargetCPUPeak] = s.Target.CPUPeak
		m[metrics.TargetMem] = float64(s.Target.RSSPeak)
		m[metrics.TargetFDRatio] = s.Target.FDRatio
	}
	if s.Generator.Procs > 0 {
		m[metrics.GeneratorCPU] = s.Generator.CPUMean
		m[MetricGeneratorCPUPeak] = s.Generator.CPUPeak
		m[MetricGeneratorMem] = float64(s.Generator.RSSPeak)
	}
	if s.HostCPUMean >= 0 {
		m[MetricHostCPU] = s.HostCPUMean
		m[MetricHostCPUPeak] = s.HostCPUPeak
	}
	if s.HostStealMean >= 0 {
		m[MetricHostSteal] = s.HostStealMean
		m[MetricHostStealPeak] = s.HostStealPeak
	}
	if s.GenCPUsMean >= 0 {
		m[MetricGenCPUsBusy] = s.GenCPUsMean
	}
	if total, ok := s.Limits[HostMemTotal]; ok && total > 0 {
		if avail, ok := s.Mins[HostMemAvailable]; ok {
			m[MetricHostMemUsedRatio] = clamp01(1 - avail/total)
		}
	}
	if wall := s.End.Sub(s.Start).Seconds(); wall > 0 {
		if d, ok := s.Deltas[HostPSICPUSome]; ok {
			m[MetricHostPSICPUSome] = clamp01(d / 1e6 / wall)
		}
		if d, ok := s.Deltas[HostPSIMemoryFull]; ok {
			m[MetricHostPSIMemFull] = clamp01(d / 1e6 / wall)
		}
	}
	for key, name := range map[string]string{
		HostListenOverflows: MetricHostListenOverflows, HostListenDrops: MetricHostListenDrops,
		HostReqQFullDrop: MetricHostSynDrops, HostTimeWaitOverflow: MetricHostTWOverflow,
		HostConntrackDrop: MetricHostConntrackDrops,
	} {
		if d, ok := s.Deltas[key]; ok {
			m[name] = d
		}
	}
	if d, ok := s.Deltas[HostReqQFullDoCookies]; ok {
		m[MetricHostSynCookies] = d
	} else if d, ok := s.Deltas[HostSyncookiesSent]; ok {
		m[MetricHostSynCookies] = d
	}
	if v, ok := s.Peaks[HostTCPTW]; ok {
		m[MetricHostTCPTW] = v
	}
	if v, ok := s.Peaks[HostTCPInUse]; ok {
		m[MetricHostTCPInUse] = v
	}
	if r, ok := s.Ratio(HostFileNr, HostFileMax); ok {
		m[MetricHostFileNrRatio] = r
	}
	if r, ok := s.Ratio(HostConntrackCount, HostConntrackMax); ok {
		m[MetricHostConntrackRatio] = r
	}
	return m
}

// Ratio is the peak of gauge over the last value of limit, when both are known
// and the limit is positive.
func (s Summary) Ratio(gauge, limit string) (float64, bool) {
	g, ok1 := s.Peaks[gauge]
	l, ok2 := s.Limits[limit]
	if !ok1 || !ok2 || l <= 0 {
		return 0, false
	}
	return g / l, true
}
