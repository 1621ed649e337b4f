package loadgen

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// Starvation: time the generator was runnable but not running. A generator that
// shares its CPU with another busy process is not at 100 % CPU: it waits for the
// CPU, its CPU share stays low and its measured latencies climb. CPU share cannot
// tell that from a slow target; the kernel's scheduler statistics can.

// selfSnap is the generator's self-measurement at one instant: CPU time, GC
// pauses and starvation counters.
type selfSnap struct {
	cpu    time.Duration
	gc     *rtmetrics.Float64Histogram
	starve starveSnap
}

func readSelf() selfSnap {
	return selfSnap{cpu: metrics.ProcessCPUTime(), gc: gcSnapshot(), starve: starveProbe{proc: "/proc", pid: "self"}.read()}
}

// starveProbe reads a process's starvation counters under a /proc and a cgroup v2
// root, injectable so tests run on fixture trees.
type starveProbe struct {
	proc   string // e.g. /proc
	pid    string // "self" or a number
	cgroup string // cgroup v2 mount, e.g. /sys/fs/cgroup; "" to find it in mountinfo
}

// starveSnap is one reading.
type starveSnap struct {
	at time.Time
	// delay is each thread's run delay: time spent runnable on a run queue,
	// waiting for a CPU (the second field of /proc/PID/task/TID/schedstat). nil
	// when the kernel does not expose schedstat.
	delay map[string]time.Duration
	// psi is the process's cgroup's cpu.pressure "some" total (time at least one
	// of its tasks waited for a CPU); psiOK false when the process is in the root
	// cgroup (whose pressure is the whole host's) or it cannot be read.
	psi   time.Duration
	psiOK bool
}

func (p starveProbe) read() starveSnap {
	s := starveSnap{at: time.Now()}
	task := filepath.Join(p.proc, p.pid, "task")
	if ents, err := os.ReadDir(task); err == nil {
		s.delay = make(map[string]time.Duration, len(ents))
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(task, e.Name(), "schedstat"))
			if err != nil {
				continue // the thread exited
			}
			if d, ok := parseSchedstat(b); ok {
				s.delay[e.Name()] = d
			}
		}
		if len(s.delay) == 0 {
			s.delay = nil
		}
	}
	if dir := p.cgroupDir(); dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, "cpu.pressure")); err == nil {
			s.psi, s.psiOK = parsePressureSome(b)
		}
	}
	return s
}

// cgroupDir returns the process's own cgroup v2 directory, or "" when it is the
// root cgroup or cannot be found.
func (p starveProbe) cgroupDir() string {
	b, err := os.ReadFile(filepath.Join(p.proc, p.pid, "cgroup"))
	if err != nil {
		return ""
	}
	var path string
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "0::"); ok {
			path = rest
		}
	}
	if path == "" || path == "/" {
		return ""
	}
	mount := p.cgroup
	if mount == "" {
		mount = cgroup2Mount(filepath.Join(p.proc, p.pid, "mountinfo"))
	}
	if mount == "" {
		return ""
	}
	return filepath.Join(mount, path)
}

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted, from a mountinfo
// file: /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Mount(mountinfo string) string {
	f, err := os.Open(mountinfo)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 36 35 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		if fs := strings.Fields(post); len(fs) > 0 && fs[0] == "cgroup2" {
			if f := strings.Fields(pre); len(f) >= 5 {
				return f[4]
			}
		}
	}
	return ""
}

// parseSchedstat returns the run delay (second field, ns) of a schedstat line:
// "on-CPU-ns run-delay-ns timeslices".
func parseSchedstat(b []byte) (time.Duration, bool) {
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(f[1]), 10, 63)
	if err != nil {
		return 0, false
	}
	return time.Duration(v), true
}

// parsePressureSome returns the "some" total (µs) of a PSI file.
func parsePressureSome(b []byte) (time.Duration, bool) {
	for _, l := range bytes.Split(b, []byte("\n")) {
		f := bytes.Fields(l)
		if len(f) == 0 || string(f[0]) != "some" {
			continue
		}
		for _, kv := range f[1:] {
			if v, ok := bytes.CutPrefix(kv, []byte("total=")); ok {
				us, err := strconv.ParseUint(string(v), 10, 63)
				if err != nil {
					return 0, false
				}
				return time.Duration(us) * time.Microsecond, true
			}
		}
	}
	return 0, false
}

// starvedRatio returns how long the process waited for a CPU per second between
// two readings, and whether it could tell. From schedstat, it is the run delay of
// its threads summed (threads born between the readings count whole, those that
// exited are lost): 0.1 means its threads together waited a tenth of the time.
// Without schedstat, it is the share of the time its cgroup's pressure says some
// task waited.
func starvedRatio(a, b starveSnap) (float64, bool) {
	wall := b.at.Sub(a.at)
	if wall <= 0 {
		return 0, false
	}
	if a.delay != nil && b.delay != nil {
		var sum time.Duration
		for tid, d := range b.delay {
			if d0, ok := a.delay[tid]; ok && d0 <= d {
				sum += d - d0
			} else if !ok {
				sum += d
			}
		}
		return sum.Seconds() / wall.Seconds(), true
	}
	if a.psiOK && b.psiOK && b.psi >= a.psi {
		return min(1, (b.psi-a.psi).Seconds()/wall.Seconds()), true
	}
	return 0, false
}
