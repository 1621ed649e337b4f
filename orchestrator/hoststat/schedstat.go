package hoststat

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Starvation: the time a process was runnable but not running. A generator that
// shares its CPU with another busy process is not at 100 % CPU: it waits for the
// CPU, its CPU share stays low and the latencies it measures climb. CPU share
// cannot tell that from a slow target; the kernel's scheduler statistics can.

// StarveProbe reads a process's starvation counters under a procfs root and a
// cgroup v2 mount, both injectable so tests run on fixture trees.
type StarveProbe struct {
	Root   string // procfs; "" = DefaultRoot
	PID    int    // 0 = this process
	Cgroup string // the cgroup v2 mount; "" = found in the process's mountinfo

	// cgDir is the process's cgroup directory ("" for none) once Resolved
	// has found it.
	cgDir    string
	resolved bool
	// Once Resolved: its task directory, the buffers its readings reuse,
	// and each thread's schedstat path by its id (a thread seen once is not
	// named again).
	task    string
	rd      *procReader
	threads map[string]thread
}

// thread is a thread's id and the path of its schedstat.
type thread struct{ id, schedstat string }

// maxThreads bounds a resolved probe's memory of threads: past it, a new
// thread's path is made at each reading.
const maxThreads = 4096

// Resolved returns the probe with the process's cgroup directory found once
// (its cgroup file and mountinfo read now): its readings then read the
// threads' schedstat and the cgroup's pressure only, as a probe read every
// second should.
func (p StarveProbe) Resolved() StarveProbe {
	p.cgDir, p.resolved = p.cgroupDir(), true
	p.task, p.rd, p.threads = filepath.Join(p.dir(), "task"), &procReader{}, map[string]thread{}
	return p
}

// Starvation is a StarveProbe reading at one instant; StarvedRatio compares two.
type Starvation struct {
	At time.Time
	// delay is each thread's run delay: time spent runnable on a run queue,
	// waiting for a CPU (the second field of /proc/PID/task/TID/schedstat). nil
	// when the kernel does not expose schedstat.
	delay map[string]time.Duration
	// psi is the process's own cgroup's cpu.pressure "some" total (time at least
	// one of its tasks waited for a CPU); psiOK is false when the process is in
	// the root cgroup (whose pressure is the whole host's) or it cannot be read.
	psi   time.Duration
	psiOK bool
}

// SelfStarvation reads this process's starvation counters on the live host.
func SelfStarvation() Starvation { return StarveProbe{}.Read() }

// Read takes a reading. What cannot be read is left out: StarvedRatio then says
// it cannot tell.
//
// A Resolved probe reuses its buffers: its readings are not safe for
// concurrent use.
func (p StarveProbe) Read() Starvation {
	s := Starvation{At: time.Now()}
	task := p.task
	if task == "" {
		task = filepath.Join(p.dir(), "task")
	}
	delay := make(map[string]time.Duration, 16)
	err := p.rd.names(task, func(name []byte) {
		t, ok := p.threads[string(name)]
		if !ok {
			id := string(name)
			t = thread{id: id, schedstat: filepath.Join(task, id, "schedstat")}
			if p.threads != nil && len(p.threads) < maxThreads {
				p.threads[id] = t
			}
		}
		b, err := p.rd.read(t.schedstat)
		if err != nil {
			return // the thread exited
		}
		if d, ok := parseSchedstat(b); ok {
			delay[t.id] = d
		}
	})
	if err == nil && len(delay) > 0 {
		s.delay = delay
	}
	cg := p.cgDir
	if !p.resolved {
		cg = p.cgroupDir()
	}
	if cg != "" {
		if b, err := p.rd.read(filepath.Join(cg, "cpu.pressure")); err == nil {
			s.psi, s.psiOK = parsePressureSome(b)
		}
	}
	return s
}

func (p StarveProbe) dir() string {
	root := p.Root
	if root == "" {
		root = DefaultRoot
	}
	if p.PID > 0 {
		return filepath.Join(root, strconv.Itoa(p.PID))
	}
	return filepath.Join(root, "self")
}

// cgroupDir returns the process's own cgroup v2 directory, or "" when it is the
// root cgroup or cannot be found.
func (p StarveProbe) cgroupDir() string {
	b, err := os.ReadFile(filepath.Join(p.dir(), "cgroup"))
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
	mount := p.Cgroup
	if mount == "" {
		mount = cgroup2Mount(filepath.Join(p.dir(), "mountinfo"))
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
	f, ok := field(b, 1)
	if !ok {
		return 0, false
	}
	v, ok := atou(bytes.TrimRight(f, "\n"))
	if !ok || v > math.MaxInt64 {
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

// StarvedRatio returns how long the process waited for a CPU between two
// readings, per second and per CPU it may use (cpus, at least 1; GOMAXPROCS for a
// Go process), like a CPU share; and whether it could tell. From schedstat it is
// the run delay of its threads summed (threads born between the readings count
// whole, those that exited are lost): on one CPU, 0.2 means its threads together
// waited a fifth of the time. Without schedstat it is the share of the time its
// own cgroup's pressure says some task waited.
func StarvedRatio(a, b Starvation, cpus int) (float64, bool) {
	wall := b.At.Sub(a.At)
	if wall <= 0 {
		return 0, false
	}
	if a.delay != nil && b.delay != nil {
		var sum time.Duration
		for tid, d := range b.delay {
			if d0, ok := a.delay[tid]; !ok {
				sum += d
			} else if d0 <= d {
				sum += d - d0
			}
		}
		return sum.Seconds() / wall.Seconds() / float64(max(cpus, 1)), true
	}
	if a.psiOK && b.psiOK && b.psi >= a.psi {
		return min(1, (b.psi-a.psi).Seconds()/wall.Seconds()), true
	}
	return 0, false
}
