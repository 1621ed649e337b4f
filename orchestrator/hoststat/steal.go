package hoststat

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Steal: on a virtual machine, the hypervisor can run something else on the
// physical CPU while a virtual CPU has work (the steal column of /proc/stat).
// For that time nothing in the guest runs, the generator included, and the
// guest's scheduler does not see it: a thread stolen from is "running", so
// its run delay (StarvedRatio) stays low while the requests it should have
// sent fall behind their schedule.

// userHZ is the unit of /proc/stat's CPU times (USER_HZ, 100 on Linux).
const userHZ = 100

// StealProbe reads the steal time of the CPUs a process may run on, under a
// procfs root (injectable so tests run on fixture trees).
type StealProbe struct {
	Root string // procfs; "" = DefaultRoot
	PID  int    // 0 = this process

	cpus map[int]bool // the allowed CPUs, once Pinned has read them
	rd   *procReader  // once Pinned: the buffer its readings reuse
}

// Pinned returns the probe with the process's allowed CPUs read once: its
// readings then read /proc/stat only, as a probe read every second should.
// Where they cannot be read, each reading tries again.
func (p StealProbe) Pinned() StealProbe {
	p.cpus, _ = p.allowed()
	p.rd = &procReader{}
	return p
}

// allowed reads the process's allowed CPUs.
func (p StealProbe) allowed() (map[int]bool, bool) {
	pid := "self"
	if p.PID > 0 {
		pid = strconv.Itoa(p.PID)
	}
	status, err := os.ReadFile(filepath.Join(rootOr(p.Root), pid, "status"))
	if err != nil {
		return nil, false
	}
	return allowedCPUs(status)
}

// Steal is a StealProbe reading at one instant; StealRatio compares two.
type Steal struct {
	At time.Time
	// seconds is the steal time summed over the CPUs the process may run on
	// (cpus of them); ok is false when either could not be read.
	seconds float64
	cpus    int
	ok      bool
}

// SelfSteal reads the steal time of this process's CPUs on the live host.
func SelfSteal() Steal { return StealProbe{}.Read() }

// Read takes a reading: the steal times of the process's allowed CPUs
// (Cpus_allowed_list, read now unless the probe is Pinned).
func (p StealProbe) Read() Steal {
	s := Steal{At: time.Now()}
	allowed, ok := p.cpus, p.cpus != nil
	if !ok {
		if allowed, ok = p.allowed(); !ok {
			return s
		}
	}
	stat, err := p.rd.read(filepath.Join(rootOr(p.Root), "stat"))
	if err != nil {
		return s
	}
	s.seconds, s.cpus = cpuSteal(stat, allowed)
	s.ok = s.cpus > 0
	return s
}

// StealRatio returns how long the hypervisor took the process's CPUs between
// two readings, per second and per CPU (0..1), and whether it could tell. On
// bare metal, or a hypervisor that does not report steal, it is 0.
func StealRatio(a, b Steal) (float64, bool) {
	wall := b.At.Sub(a.At).Seconds()
	if !a.ok || !b.ok || wall <= 0 || b.seconds < a.seconds {
		return 0, false
	}
	return min(1, (b.seconds-a.seconds)/wall/float64(b.cpus)), true
}

// allowedCPUs parses Cpus_allowed_list ("0-3,6") from /proc/PID/status.
func allowedCPUs(status []byte) (map[int]bool, bool) {
	for line := range bytes.SplitSeq(status, []byte{'\n'}) {
		v, ok := bytes.CutPrefix(line, []byte("Cpus_allowed_list:"))
		if !ok {
			continue
		}
		out := map[int]bool{}
		for part := range strings.SplitSeq(strings.TrimSpace(string(v)), ",") {
			lo, hi, isRange := strings.Cut(part, "-")
			a, err := strconv.Atoi(lo)
			if err != nil || a < 0 {
				return nil, false
			}
			b := a
			if isRange {
				if b, err = strconv.Atoi(hi); err != nil || b < a {
					return nil, false
				}
			}
			for c := a; c <= b; c++ {
				out[c] = true
			}
		}
		return out, len(out) > 0
	}
	return nil, false
}

// cpuSteal sums the steal column (the eighth value) of the "cpuN" lines of
// /proc/stat for the CPUs in allowed, in seconds, and counts those CPUs.
func cpuSteal(stat []byte, allowed map[int]bool) (seconds float64, cpus int) {
	var ticks uint64
	for line := range bytes.SplitSeq(stat, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte("cpu"))
		if !ok || len(rest) == 0 || rest[0] < '0' || rest[0] > '9' {
			continue // "cpu " is the sum over all CPUs
		}
		idf, _ := field(rest, 0)
		stealf, ok := field(rest, 8)
		if !ok {
			continue
		}
		id, ok := atou(idf)
		if !ok || id > math.MaxInt32 || !allowed[int(id)] {
			continue
		}
		v, ok := atou(stealf)
		if !ok {
			continue
		}
		ticks += v
		cpus++
	}
	return float64(ticks) / userHZ, cpus
}
