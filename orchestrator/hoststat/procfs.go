package hoststat

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
	"github.com/rs/zerolog"
)

// DefaultRoot is where procfs is mounted.
const DefaultRoot = "/proc"

// Sampler reads host and process figures from a procfs tree.
type Sampler struct {
	root string
	log  zerolog.Logger
	now  func() time.Time
}

// Option configures a Sampler.
type Option func(*Sampler)

// WithLogger sets the logger (default: zerolog.Nop()).
func WithLogger(l zerolog.Logger) Option { return func(s *Sampler) { s.log = l } }

// WithClock sets the clock stamped on samples (default: time.Now).
func WithClock(now func() time.Time) Option { return func(s *Sampler) { s.now = now } }

// New returns a Sampler reading the procfs mounted at root ("/proc" on a live host,
// a fixture tree in tests).
func New(root string, opts ...Option) *Sampler {
	if root == "" {
		root = DefaultRoot
	}
	s := &Sampler{root: root, log: zerolog.Nop(), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Sample takes one reading of the host and of the target and generator processes.
// A process that cannot be read is recorded with its Err; a host figure the kernel
// lacks is listed in Unavailable. The error is non-nil only when procfs itself
// cannot be opened or ctx is done.
func (s *Sampler) Sample(ctx context.Context, targets, generator []Proc) (Sample, error) {
	if err := ctx.Err(); err != nil {
		return Sample{}, err
	}
	fs, err := procfs.NewFS(s.root)
	if err != nil {
		return Sample{}, fmt.Errorf("hoststat: open procfs at %s: %w", s.root, err)
	}
	out := Sample{Time: s.now(), Host: map[string]float64{}}
	unavailable := func(what string, err error) {
		out.Unavailable = append(out.Unavailable, what+": "+shortErr(err))
	}
	st, statOK := s.readHost(fs, out.Host, unavailable)
	hostCPUs := int(out.Host[HostCPUs])
	genCPUs := map[uint64]bool{}
	for _, side := range []struct {
		name  string
		procs []Proc
	}{{SideTarget, targets}, {SideGenerator, generator}} {
		for _, p := range side.procs {
			ps, allowed := readProc(fs, p, side.name, hostCPUs)
			out.Procs = append(out.Procs, ps)
			if side.name == SideGenerator {
				for _, c := range allowed {
					genCPUs[c] = true
				}
			}
		}
	}
	if statOK && len(genCPUs) > 0 && len(genCPUs) < len(st.CPU) {
		// The generator may use some CPUs only (taskset, a cpuset): how busy
		// those were says whether it had to wait for them, which the host's
		// whole-machine figure dilutes.
		var busy, total float64
		n := 0
		for id, c := range st.CPU {
			if id < 0 || !genCPUs[uint64(id)] {
				continue
			}
			// One CPU's iowait can go backwards (tickless kernels: a CPU's
			// idle time in progress is its idle or its iowait by whether a
			// task waits for I/O when read), so it counts with idle, whose
			// sum with it does not.
			b := c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
			busy += b
			total += b + c.Idle + c.Iowait
			n++
		}
		if n > 0 {
			out.Host[HostGenCPUBusy], out.Host[HostGenCPUTotal], out.Host[HostGenCPUs] = busy, total, float64(n)
		}
	}
	return out, nil
}

// cpuBusyTotal is a CPU's busy and total time, in seconds.
func cpuBusyTotal(c procfs.CPUStat) (busy, total float64) {
	idle := c.Idle + c.Iowait
	total = c.User + c.Nice + c.System + c.Idle + c.Iowait + c.IRQ + c.SoftIRQ + c.Steal
	return total - idle, total
}

// Run samples every interval until ctx is done, passing each sample to out. A
// failed sample is logged and skipped. Run returns when ctx is done.
func (s *Sampler) Run(ctx context.Context, every time.Duration, targets, generator []Proc, out func(Sample)) {
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		smp, err := s.Sample(ctx, targets, generator)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn().Err(err).Msg("host sample failed")
		} else {
			out(smp)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readHost reads the host's figures into h; it returns /proc/stat for the
// per-CPU figures, and whether it could be read.
func (s *Sampler) readHost(fs procfs.FS, h map[string]float64, unavailable func(string, error)) (procfs.Stat, bool) {
	st, err := fs.Stat()
	if err != nil {
		unavailable("stat", err)
	} else {
		h[HostCPUBusy], h[HostCPUTotal] = cpuBusyTotal(st.CPUTotal)
		h[HostCPUSteal] = st.CPUTotal.Steal
		if len(st.CPU) > 0 {
			h[HostCPUs] = float64(len(st.CPU))
		}
	}
	if mi, err := fs.Meminfo(); err != nil {
		unavailable("meminfo", err)
	} else {
		if mi.MemTotalBytes != nil {
			h[HostMemTotal] = float64(*mi.MemTotalBytes)
		}
		if mi.MemAvailableBytes != nil {
			h[HostMemAvailable] = float64(*mi.MemAvailableBytes)
		}
	}
	if psi, err := fs.PSIStatsForResource("cpu"); err != nil {
		unavailable("psi cpu", err)
	} else if psi.Some != nil {
		h[HostPSICPUSome] = float64(psi.Some.Total)
	}
	if psi, err := fs.PSIStatsForResource("memory"); err != nil {
		unavailable("psi memory", err)
	} else {
		if psi.Some != nil {
			h[HostPSIMemorySome] = float64(psi.Some.Total)
		}
		if psi.Full != nil {
			h[HostPSIMemoryFull] = float64(psi.Full.Total)
		}
	}
	if v, err := fs.SysctlInts("fs.file-nr"); err != nil || len(v) < 1 {
		unavailable("fs.file-nr", err)
	} else {
		h[HostFileNr] = float64(v[0])
	}
	if v, err := fs.SysctlInts("fs.file-max"); err != nil || len(v) < 1 {
		unavailable("fs.file-max", err)
	} else {
		h[HostFileMax] = float64(v[0])
	}
	if ss, err := fs.NetSockstat(); err != nil {
		unavailable("sockstat", err)
	} else {
		for _, p := range ss.Protocols {
			if p.Protocol != "TCP" {
				continue
			}
			h[HostTCPInUse] = float64(p.InUse)
			if p.TW != nil {
				h[HostTCPTW] = float64(*p.TW)
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(s.root, "net", "netstat")); err != nil {
		unavailable("netstat", err)
	} else if ns, err := ParseNetstat(b); err != nil {
		unavailable("netstat", err)
	} else {
		for _, k := range []string{"ListenOverflows", "ListenDrops", "TCPReqQFullDrop",
			"TCPReqQFullDoCookies", "SyncookiesSent", "TCPTimeWaitOverflow"} {
			if v, ok := ns["TcpExt."+k]; ok {
				h["tcpext."+k] = v
			}
		}
	}
	if v, err := fs.SysctlInts("net.netfilter.nf_conntrack_count"); err == nil && len(v) == 1 {
		h[HostConntrackCount] = float64(v[0])
		if m, err := fs.SysctlInts("net.netfilter.nf_conntrack_max"); err == nil && len(m) == 1 {
			h[HostConntrackMax] = float64(m[0])
		}
		if cs, err := fs.ConntrackStat(); err == nil {
			var drop, fail float64
			for _, c := range cs {
				drop += float64(c.Drop + c.EarlyDrop)
				fail += float64(c.InsertFailed)
			}
			h[HostConntrackDrop] = drop
			h[HostConntrackInsertFail] = fail
		}
	} else {
		unavailable("conntrack", errOr(err, "not loaded"))
	}
	if v, err := fs.SysctlInts("net.ipv4.ip_local_port_range"); err == nil && len(v) == 2 {
		h[HostPortRangeWidth] = float64(v[1] - v[0] + 1)
	}
	if v, err := fs.SysctlInts("net.ipv4.tcp_max_tw_buckets"); err == nil && len(v) == 1 {
		h[HostMaxTWBuckets] = float64(v[0])
	}
	return st, err == nil
}

// readProc reads one watched process, and the CPUs it may run on (nil when
// unknown).
func readProc(fs procfs.FS, w Proc, side string, hostCPUs int) (ps ProcSample, allowed []uint64) {
	ps = ProcSample{Name: w.Name, Pid: w.Pid, Side: side, CPUs: hostCPUs}
	p, err := fs.Proc(w.Pid)
	if err != nil {
		ps.Err = shortErr(err)
		return ps, nil
	}
	st, err := p.Stat()
	if err != nil {
		ps.Err = shortErr(err)
		return ps, nil
	}
	ps.CPUSeconds = st.CPUTime()
	ps.RSS = int64(st.ResidentMemory())
	if status, err := p.NewStatus(); err == nil && len(status.CpusAllowedList) > 0 {
		allowed = status.CpusAllowedList
		n := len(status.CpusAllowedList)
		if hostCPUs == 0 || n < hostCPUs {
			ps.CPUs = n
		}
	}
	if n, err := p.FileDescriptorsLen(); err == nil {
		ps.FDs = n
	} else {
		ps.Err = "fds: " + shortErr(err)
	}
	if l, err := p.Limits(); err == nil && l.OpenFiles > 0 && l.OpenFiles < math.MaxInt64 {
		ps.FDLimit = int64(l.OpenFiles)
	}
	return ps, allowed
}

// ParseNetstat parses the paired header/value lines of /proc/net/netstat or
// /proc/net/snmp into "Proto.Name" -> value. Lines it cannot pair are skipped.
func ParseNetstat(b []byte) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var header []string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasSuffix(f[0], ":") {
			header = nil
			continue
		}
		if header == nil || header[0] != f[0] {
			header = f
			continue
		}
		proto := strings.TrimSuffix(f[0], ":")
		if len(f) != len(header) {
			return out, fmt.Errorf("netstat: %s: %d names but %d values", proto, len(header)-1, len(f)-1)
		}
		for i := 1; i < len(f); i++ {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			out[proto+"."+header[i]] = v
		}
		header = nil
	}
	return out, sc.Err()
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

func shortErr(err error) string {
	if err == nil {
		return "unknown"
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "not found"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	}
	return err.Error()
}
