package hoststat

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 6, 30, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

var (
	target    = []Proc{{Name: "eventbus", Pid: 4242}}
	generator = []Proc{{Name: "loadramp", Pid: 4343}}
)

func sampleTree(t *testing.T, root string, at time.Time) Sample {
	t.Helper()
	s, err := New(root, WithClock(fixedClock(at))).Sample(context.Background(), target, generator)
	if err != nil {
		t.Fatalf("Sample(%s): %v", root, err)
	}
	return s
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestSampleFixture(t *testing.T) {
	s := sampleTree(t, "testdata/base/proc", t0)
	wantHost := map[string]float64{
		HostCPUs: 2, HostFileNr: 723, HostFileMax: 2466160, HostTCPInUse: 1, HostTCPTW: 4,
		HostListenOverflows: 0, HostListenDrops: 0, HostReqQFullDrop: 0, HostTimeWaitOverflow: 0,
		HostConntrackCount: 0, HostConntrackMax: 262144, HostPortRangeWidth: 60999 - 32768 + 1,
		HostMemTotal: 24683620 * 1024, HostPSIMemoryFull: 0, HostCPUTotal: (20662 + 1860 + 14088 + 58925 + 734 + 324 + 57) / 100.0,
		HostCPUSteal: 0.57,
	}
	for k, want := range wantHost {
		got, ok := s.Host[k]
		if !ok || !near(got, want) {
			t.Errorf("Host[%q] = %v, %v; want %v", k, got, ok, want)
		}
	}
	if len(s.Unavailable) != 0 {
		t.Errorf("Unavailable = %v, want none", s.Unavailable)
	}
	if len(s.Procs) != 2 {
		t.Fatalf("Procs = %+v", s.Procs)
	}
	tp, gp := s.Procs[0], s.Procs[1]
	if tp.Side != SideTarget || tp.Pid != 4242 || tp.FDs != 3 || tp.FDLimit != 1024 || tp.CPUs != 2 ||
		!near(tp.CPUSeconds, 1.5) || tp.RSS <= 0 || tp.Err != "" {
		t.Errorf("target proc = %+v", tp)
	}
	if gp.Side != SideGenerator || gp.Pid != 4343 || !near(gp.CPUSeconds, 12) {
		t.Errorf("generator proc = %+v", gp)
	}
}

func TestWindowFixture(t *testing.T) {
	a := sampleTree(t, "testdata/base/proc", t0)
	b := sampleTree(t, "testdata/next/proc", t0.Add(time.Second))
	w := Window([]Sample{b, a}) // out of order on purpose
	if w.Deltas[HostListenOverflows] != 57 || w.Deltas[HostListenDrops] != 57 {
		t.Errorf("deltas = %v", w.Deltas)
	}
	m := w.Metrics()
	want := map[string]float64{
		"target.cpu": 0.05, "generator.cpu": 0.10, MetricHostCPU: 0.2, MetricHostSteal: 0,
		MetricHostListenOverflows: 57, "target.fd.ratio": 3.0 / 1024, MetricHostTCPTW: 4,
		MetricHostFileNrRatio: 723.0 / 2466160, MetricHostConntrackRatio: 0, MetricHostPSIMemFull: 0,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || !near(got, v) {
			t.Errorf("Metrics()[%q] = %v, %v; want %v", k, got, ok, v)
		}
	}
}

func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "proc")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestSampleUnavailable(t *testing.T) {
	root := copyTree(t, "testdata/base/proc")
	for _, p := range []string{"pressure", "sys/net/netfilter", "net/stat", "4343"} {
		if err := os.RemoveAll(filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	s := sampleTree(t, root, t0)
	for _, k := range []string{HostPSICPUSome, HostPSIMemoryFull, HostConntrackCount, HostConntrackMax} {
		if _, ok := s.Host[k]; ok {
			t.Errorf("Host[%q] present, want unavailable", k)
		}
	}
	joined := strings.Join(s.Unavailable, "; ")
	for _, w := range []string{"psi cpu: not found", "psi memory: not found", "conntrack: not found"} {
		if !strings.Contains(joined, w) {
			t.Errorf("Unavailable = %q, want it to mention %q", joined, w)
		}
	}
	if gp := s.Procs[1]; gp.Err != "not found" {
		t.Errorf("gone process: %+v, want Err not found", gp)
	}
	if _, err := New(filepath.Join(t.TempDir(), "nope")).Sample(context.Background(), nil, nil); err == nil {
		// procfs.NewFS only checks the mount point exists.
		t.Error("Sample on a missing root: want error")
	}
}

func TestWindowTable(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	proc := func(side string, pid int, cpu float64, fds int) ProcSample {
		return ProcSample{Name: "p", Pid: pid, Side: side, CPUSeconds: cpu, CPUs: 2, FDs: fds, FDLimit: 100, RSS: 1 << 20}
	}
	tests := []struct {
		name    string
		samples []Sample
		check   func(t *testing.T, w Summary)
	}{
		{"empty", nil, func(t *testing.T, w Summary) {
			if w.HostCPUMean != -1 || len(w.Metrics()) != 0 {
				t.Errorf("empty window: %+v metrics %v", w, w.Metrics())
			}
		}},
		{"counter reset counts from zero", []Sample{
			{Time: at(0), Host: map[string]float64{HostListenOverflows: 100}},
			{Time: at(1), Host: map[string]float64{HostListenOverflows: 110}},
			{Time: at(2), Host: map[string]float64{HostListenOverflows: 5}},
		}, func(t *testing.T, w Summary) {
			if got := w.Deltas[HostListenOverflows]; got != 15 {
				t.Errorf("delta = %v, want 15", got)
			}
		}},
		{"peaks, mins, limits", []Sample{
			{Time: at(0), Host: map[string]float64{HostTCPTW: 10, HostMemAvailable: 50, HostMemTotal: 100}},
			{Time: at(1), Host: map[string]float64{HostTCPTW: 30, HostMemAvailable: 20, HostMemTotal: 100}},
			{Time: at(2), Host: map[string]float64{HostTCPTW: 20, HostMemAvailable: 40, HostMemTotal: 100}},
		}, func(t *testing.T, w Summary) {
			m := w.Metrics()
			if m[MetricHostTCPTW] != 30 || !near(m[MetricHostMemUsedRatio], 0.8) {
				t.Errorf("metrics = %v", m)
			}
		}},
		{"cpu share mean and peak, process vanishing", []Sample{
			{Time: at(0), Procs: []ProcSample{proc(SideTarget, 1, 10, 5), proc(SideTarget, 2, 0, 5)}},
			{Time: at(1), Procs: []ProcSample{proc(SideTarget, 1, 10.5, 50), proc(SideTarget, 2, 1.5, 5)}},
			{Time: at(2), Procs: []ProcSample{proc(SideTarget, 1, 11, 98), {Name: "p", Pid: 2, Side: SideTarget, Err: "not found"}}},
		}, func(t *testing.T, w Summary) {
			// interval 1: (0.5+1.5)/2 CPUs = 1.0; interval 2 skipped (pid 2 gone).
			if !near(w.Target.CPUPeak, 1) || !near(w.Target.CPUMean, 1) {
				t.Errorf("target = %+v", w.Target)
			}
			if !near(w.Target.FDRatio, 0.98) {
				t.Errorf("fd ratio = %v, want 0.98", w.Target.FDRatio)
			}
			if w.Procs[1].Errors != 1 || w.Procs[1].LastErr != "not found" {
				t.Errorf("proc 2 = %+v", w.Procs[1])
			}
			if !near(w.Procs[0].CPUMean, 0.25) || !near(w.Procs[0].CPUPeak, 0.25) {
				t.Errorf("proc 1 = %+v", w.Procs[0])
			}
		}},
		// A hold's closing sample comes 13 ms after its last regular one, and
		// the kernel counts CPU time in 10 ms ticks: that interval alone read
		// 0.77 of a CPU for a process at 0.15, and the host 1.0 busy.
		{"cpu peak over a short closing interval", []Sample{
			{Time: at(0), Host: map[string]float64{HostCPUBusy: 10, HostCPUTotal: 100}, Procs: []ProcSample{proc(SideGenerator, 1, 0, 5)}},
			{Time: at(1), Host: map[string]float64{HostCPUBusy: 10.4, HostCPUTotal: 102}, Procs: []ProcSample{proc(SideGenerator, 1, 0.30, 5)}},
			{Time: at(2), Host: map[string]float64{HostCPUBusy: 10.8, HostCPUTotal: 104}, Procs: []ProcSample{proc(SideGenerator, 1, 0.60, 5)}},
			{Time: at(2).Add(13 * time.Millisecond), Host: map[string]float64{HostCPUBusy: 10.82, HostCPUTotal: 104.02}, Procs: []ProcSample{proc(SideGenerator, 1, 0.62, 5)}},
		}, func(t *testing.T, w Summary) {
			// proc: 2 CPUs; 0.30 s a second is 0.15; the last span is 1.013 s.
			if got, want := w.Generator.CPUPeak, (0.62-0.30)/(1.013*2); !near(got, want) {
				t.Errorf("generator cpu peak = %v, want %v (the closing 13 ms with the second before)", got, want)
			}
			if got, want := w.Procs[0].CPUPeak, (0.62-0.30)/(1.013*2); !near(got, want) {
				t.Errorf("process cpu peak = %v, want %v", got, want)
			}
			if got, want := w.HostCPUPeak, 0.42/2.02; !near(got, want) {
				t.Errorf("host cpu peak = %v, want %v", got, want)
			}
			if !near(w.Generator.CPUMean, 0.62/(2.013*2)) {
				t.Errorf("generator cpu mean = %v", w.Generator.CPUMean)
			}
		}},
		// Tick-sampled busy time, exact idle time: the 2 CPUs' counters sum to
		// 1.75 s a second, and the 0.25 s missing were busy (this machine's
		// figures at 5,000 req/s). With the counters whole, nothing is added.
		{"cpu busy time the ticks missed", []Sample{
			{Time: at(0), Host: map[string]float64{HostCPUBusy: 10, HostCPUTotal: 100, HostCPUs: 2, HostGenCPUBusy: 4, HostGenCPUTotal: 50, HostGenCPUs: 1}},
			{Time: at(1), Host: map[string]float64{HostCPUBusy: 10.05, HostCPUTotal: 101.75, HostCPUs: 2, HostGenCPUBusy: 4.02, HostGenCPUTotal: 50.85, HostGenCPUs: 1}},
			{Time: at(2), Host: map[string]float64{HostCPUBusy: 10.65, HostCPUTotal: 103.75, HostCPUs: 2, HostGenCPUBusy: 4.52, HostGenCPUTotal: 51.85, HostGenCPUs: 1}},
		}, func(t *testing.T, w Summary) {
			if !near(w.HostCPUPeak, 0.3) || !near(w.HostCPUMean, 0.225) {
				t.Errorf("host cpu mean %v peak %v, want 0.225 and 0.3 ((0.05+0.25)/2 and 0.6/2)", w.HostCPUMean, w.HostCPUPeak)
			}
			if !near(w.GenCPUsMean, 0.335) || !near(w.GenCPUsPeak, 0.5) {
				t.Errorf("generator's CPUs mean %v peak %v, want 0.335 and 0.5 ((0.02+0.15) and 0.5 of 1 CPU)", w.GenCPUsMean, w.GenCPUsPeak)
			}
		}},
		// The hypervisor's steal is part of the busy time, and its share is
		// of the time that went by: the 0.25 s a second the tick-sampled
		// counters missed count in the total, not in the steal.
		{"steal share of the host's CPU time", []Sample{
			{Time: at(0), Host: map[string]float64{HostCPUBusy: 10, HostCPUTotal: 100, HostCPUSteal: 3, HostCPUs: 2}},
			{Time: at(1), Host: map[string]float64{HostCPUBusy: 10.5, HostCPUTotal: 102, HostCPUSteal: 3.2, HostCPUs: 2}},
			{Time: at(2), Host: map[string]float64{HostCPUBusy: 11.3, HostCPUTotal: 103.75, HostCPUSteal: 3.8, HostCPUs: 2}},
		}, func(t *testing.T, w Summary) {
			if !near(w.HostStealMean, 0.2) || !near(w.HostStealPeak, 0.3) {
				t.Errorf("host steal mean %v peak %v, want 0.2 and 0.3 ((0.2+0.6)/4 and 0.6/2)", w.HostStealMean, w.HostStealPeak)
			}
			if m := w.Metrics(); !near(m[MetricHostSteal], 0.2) || !near(m[MetricHostStealPeak], 0.3) {
				t.Errorf("metrics %v: want host.cpu.steal 0.2, host.cpu.steal.peak 0.3", m)
			}
			if !near(w.HostCPUMean, (0.5+1.05)/4) {
				t.Errorf("host cpu mean %v, want %v (the steal in it, the missed 0.25 s busy)", w.HostCPUMean, (0.5+1.05)/4)
			}
		}},
		{"no steal counter, no steal figure", []Sample{
			{Time: at(0), Host: map[string]float64{HostCPUBusy: 10, HostCPUTotal: 100}},
			{Time: at(1), Host: map[string]float64{HostCPUBusy: 10.5, HostCPUTotal: 102}},
		}, func(t *testing.T, w Summary) {
			if _, ok := w.Metrics()[MetricHostSteal]; ok || w.HostStealMean != -1 {
				t.Errorf("steal %v, metrics %v: want none", w.HostStealMean, w.Metrics())
			}
		}},
		{"cpu peak of a window shorter than a peak's span is its mean", []Sample{
			{Time: at(0), Host: map[string]float64{HostCPUBusy: 10, HostCPUTotal: 100}, Procs: []ProcSample{proc(SideTarget, 1, 0, 5)}},
			{Time: at(0).Add(300 * time.Millisecond), Host: map[string]float64{HostCPUBusy: 10.3, HostCPUTotal: 100.6}, Procs: []ProcSample{proc(SideTarget, 1, 0.3, 5)}},
		}, func(t *testing.T, w Summary) {
			if !near(w.Target.CPUPeak, 0.5) || !near(w.Target.CPUMean, 0.5) || !near(w.HostCPUPeak, 0.5) || !near(w.Procs[0].CPUPeak, 0.5) {
				t.Errorf("target = %+v, host peak %v, proc %+v; want 0.5 each", w.Target, w.HostCPUPeak, w.Procs[0])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, Window(tt.samples)) })
	}
}

func TestSettingsFixture(t *testing.T) {
	s := Settings("testdata/base/proc")
	if v, ok := SettingInt(s, "net.core.somaxconn"); !ok || v != 4096 {
		t.Errorf("somaxconn = %v", s["net.core.somaxconn"])
	}
	if v, _ := s["net.ipv4.ip_local_port_range"].([]int64); !slices.Equal(v, []int64{32768, 60999}) {
		t.Errorf("port range = %v", s["net.ipv4.ip_local_port_range"])
	}
	for _, k := range []string{"net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_max_syn_backlog", "fs.file-max", "net.netfilter.nf_conntrack_max"} {
		if _, ok := SettingInt(s, k); !ok {
			t.Errorf("setting %s missing: %v", k, s)
		}
	}
	if got := Settings(t.TempDir()); len(got) != 0 {
		t.Errorf("Settings(empty) = %v", got)
	}
}

// TestLiveSelf samples this test process on the real /proc while it burns one CPU
// and opens files.
func TestLiveSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no procfs")
	}
	self := []Proc{{Name: "test", Pid: os.Getpid()}}
	s := New("/proc")
	ctx := context.Background()
	a, err := s.Sample(ctx, nil, self)
	if err != nil {
		t.Fatal(err)
	}
	var files []*os.File
	for range 50 {
		f, err := os.Open("/proc/self/stat")
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	// Spin until this process has used 400 ms of CPU (at most 10 s: a machine
	// shared with builds can starve it), and compare the sampler's figure with
	// the CPU time the kernel reports through getrusage over the same window.
	cpuTime := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	c0, w0 := cpuTime(), time.Now()
	deadline := w0.Add(10 * time.Second)
	x := 0
	for time.Now().Before(deadline) && cpuTime()-c0 < 400*time.Millisecond {
		x++
	}
	b, err := s.Sample(ctx, nil, self)
	if err != nil {
		t.Fatal(err)
	}
	w := Window([]Sample{a, b})
	gp := w.Procs[0]
	if gp.Errors != 0 {
		t.Fatalf("self: %+v", gp)
	}
	if d := b.Procs[0].FDs - a.Procs[0].FDs; d < 50 {
		t.Errorf("fds grew by %d, want >= 50", d)
	}
	// The share the kernel's own accounting gives (the samples bracket the
	// spin; procfs counts in clock ticks, so allow a tenth of a core).
	want := (cpuTime() - c0).Seconds() / time.Since(w0).Seconds() / float64(gp.CPUs)
	if d := w.Generator.CPUMean - want; d < -0.1/float64(gp.CPUs) || d > 0.1/float64(gp.CPUs) || w.Generator.CPUMean <= 0 {
		t.Errorf("generator cpu = %.3f of %d CPUs, getrusage says %.3f (spun %d times)", w.Generator.CPUMean, gp.CPUs, want, x)
	}
	if w.HostCPUMean <= 0 {
		t.Errorf("host cpu = %v", w.HostCPUMean)
	}
	t.Logf("self: cpu %.3f of %d CPUs, host cpu %.3f, fds %d of %d, rss %d", w.Generator.CPUMean, gp.CPUs, w.HostCPUMean, gp.FDPeak, gp.FDLimit, gp.RSSPeak)
}

func TestRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 350*time.Millisecond)
	defer cancel()
	var got []Sample
	start := time.Now()
	New("testdata/base/proc").Run(ctx, 100*time.Millisecond, target, generator, func(s Sample) { got = append(got, s) })
	if el := time.Since(start); el > time.Second {
		t.Errorf("Run returned after %v", el)
	}
	if len(got) < 3 || len(got) > 5 {
		t.Errorf("Run produced %d samples in 350ms every 100ms, want 3..5", len(got))
	}
}

func TestParseNetstat(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]float64
		err  bool
	}{
		{"TcpExt: A B\nTcpExt: 1 2\nIpExt: C\nIpExt: 3\n", map[string]float64{"TcpExt.A": 1, "TcpExt.B": 2, "IpExt.C": 3}, false},
		{"TcpExt: A B\nTcpExt: 1\n", map[string]float64{}, true},
		{"garbage\n\nTcpExt: A\nTcpExt: x\n", map[string]float64{}, false},
		{"", map[string]float64{}, false},
	}
	for _, tt := range tests {
		got, err := ParseNetstat([]byte(tt.in))
		if (err != nil) != tt.err {
			t.Errorf("ParseNetstat(%q) err = %v, want err %v", tt.in, err, tt.err)
		}
		if !tt.err && len(got) != len(tt.want) {
			t.Errorf("ParseNetstat(%q) = %v, want %v", tt.in, got, tt.want)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("ParseNetstat(%q)[%s] = %v, want %v", tt.in, k, got[k], v)
			}
		}
	}
}

func FuzzParseNetstat(f *testing.F) {
	b, err := os.ReadFile("testdata/base/proc/net/netstat")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("TcpExt: A\nTcpExt: 1 2\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, _ := ParseNetstat(in)
		for k := range m {
			if !strings.Contains(k, ".") {
				t.Fatalf("key %q without protocol", k)
			}
		}
	})
}

// TestWindowFromLeavesTheBaselineOutOfGauges: the warmup's last sample is
// where counters and CPU start, but a gauge it shows (a target at its
// open-file limit while it drains the step before's connections) is not the
// hold's.
func TestWindowFromLeavesTheBaselineOutOfGauges(t *testing.T) {
	at := func(sec float64, fds int, overflows, tw, cpu float64) Sample {
		return Sample{
			Time: t0.Add(time.Duration(sec * float64(time.Second))),
			Host: map[string]float64{HostListenOverflows: overflows, HostTCPTW: tw},
			Procs: []ProcSample{{Name: "bus", Pid: 7, Side: SideTarget, CPUSeconds: cpu, CPUs: 1,
				FDs: fds, FDLimit: 128, RSS: int64(fds) << 20}},
		}
	}
	samples := []Sample{at(0.9, 128, 10, 500, 1), at(1.9, 106, 12, 20, 1.5), at(2.9, 107, 15, 30, 2)}
	hold := t0.Add(time.Second)

	w := WindowFrom(samples, hold)
	if p := w.Procs[0]; p.FDPeak != 107 || p.RSSPeak != 107<<20 {
		t.Errorf("hold: fd peak %d, rss peak %d; want 107 and 107 MiB, the baseline's 128 left out", p.FDPeak, p.RSSPeak)
	}
	if w.Peaks[HostTCPTW] != 30 || w.Mins[HostTCPTW] != 20 {
		t.Errorf("hold: tcp.tw peak %v min %v; want 30 and 20", w.Peaks[HostTCPTW], w.Mins[HostTCPTW])
	}
	if w.Deltas[HostListenOverflows] != 5 {
		t.Errorf("hold: overflows delta %v; want 5, counted from the baseline", w.Deltas[HostListenOverflows])
	}
	if p := w.Procs[0]; !near(p.CPUMean, 0.5) {
		t.Errorf("hold: cpu mean %v; want 0.5, counted from the baseline", p.CPUMean)
	}
	if w.Target.RSSPeak != 107<<20 {
		t.Errorf("hold: target rss peak %d", w.Target.RSSPeak)
	}

	all := Window(samples)
	if all.Procs[0].FDPeak != 128 || all.Peaks[HostTCPTW] != 500 {
		t.Errorf("Window: fd peak %d, tw peak %v; want every sample's", all.Procs[0].FDPeak, all.Peaks[HostTCPTW])
	}
	// A window with no sample in the hold keeps every gauge.
	early := WindowFrom(samples, t0.Add(time.Hour))
	if early.Procs[0].FDPeak != 128 {
		t.Errorf("no sample in the hold: fd peak %d, want 128", early.Procs[0].FDPeak)
	}
}
