package diagnose

import (
	"fmt"
	"slices"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Thresholds of the rules: a limit counts as reached at this share of it.
const (
	NearLimit = 0.95 // fds, file handles, conntrack entries
	AtLimit   = 0.99 // ... reached (LimitReached), at a sample a second
	// GeneratorStarved is the generator's run delay per second of hold at
	// which it is starved of CPU: the default generator health threshold of
	// generator.starved.ratio (plan.DefaultGeneratorHealth).
	GeneratorStarved = 0.2
	CPUSaturated     = 0.9  // share of the CPUs available
	MemAvailableLow  = 0.05 // share of memory still available
	PSIMemoryFull    = 0.10 // share of the window all tasks stalled on memory
	TimeWaitShare    = 0.5  // TIME_WAIT sockets vs the ephemeral port range
	PortRangeUsed    = 0.9  // TIME_WAIT + in use vs the ephemeral port range
	maxEvidence      = 3
	// HostStolen is the share of a host's CPU time its hypervisor took
	// (steal, host.cpu.steal) from which the host's CPU finding names it.
	HostStolen = 0.10
)

// Input is what Diagnose judges: one step window on one host.
type Input struct {
	// Host names the machine in findings ("local", an instance id).
	Host string
	// Summary is the window of host samples (hoststat.Window).
	Summary hoststat.Summary
	// Settings are the host's kernel settings (hoststat.Settings); optional,
	// they make findings say the current value.
	Settings map[string]any
	// Logs are the signature matches of the window's new log lines.
	Logs []LogMatch
	// GeneratorErrors counts the generator's own errors by class (gen_emfile,
	// gen_enfile, gen_eaddrnotavail).
	GeneratorErrors map[string]int64
	// Source says how the host was observed when not through its own /proc,
	// e.g. "node_exporter at 10.0.0.5:9100": evidence then names the
	// exporter's series (hoststat.NodeSeries) instead of /proc files.
	Source string
	// NetDev are the host's network devices' counter deltas over the window
	// (ethtool statistics).
	NetDev []hoststat.NetDevDelta
	// Side is the side the host serves when it serves one only (its role):
	// "generator" for a host that runs load generators and no target process
	// (loadramp's own host when the target is elsewhere, a generator agent's
	// host), "target" for a host that runs only the target. A host-wide
	// finding there (busy CPUs, memory, file handles, conntrack, ports) is
	// that side's: on a generator's host it makes the step generator-fail,
	// never a target bottleneck. "" for a host that runs both, or unknown:
	// host-wide findings then blame neither side.
	Side string
	// Nginx is the configuration of an nginx the host runs for the target
	// (read from its master's command line, pid NginxPid), nil for none.
	Nginx    *NginxConf
	NginxPid int
	// Engine are the step's metrics as the engine measured them (the
	// connections it held, its own starvation), and Params the step's load
	// parameters: what the client saw, beside the host's own evidence.
	Engine map[string]float64
	Params map[string]float64
	// StarvedAt is the generator.starved.ratio from which the generator
	// counts as starved: the threshold of the plan's generator health check
	// on it. 0 is the default (GeneratorStarved); negative means the plan
	// judges no starvation (its generator health defaults off and no check of
	// its own), and the diagnosis names none.
	StarvedAt float64
}

// Diagnose returns the findings the window's evidence supports, in a stable
// order (by rule, side, process). A finding is made only from a counter, a limit
// reached, or a log line; every finding carries that evidence.
func Diagnose(in Input) []result.Finding {
	d := &diag{in: in, byKey: map[string]int{}}
	d.fdProcess()
	d.fdSystem()
	d.nginxWorkerConnections()
	d.listenOverflow()
	d.synBacklog()
	d.ephemeralPorts()
	d.timeWait()
	d.conntrack()
	d.nginxConfConnections()
	d.cpu()
	d.generatorHeldConnections()
	d.memory()
	d.enaAllowance()
	d.out = AssignSide(d.out, in.Side, in.Host)
	result.SortFindings(d.out)
	return d.out
}

// where names where a host figure was read, in parentheses: the /proc file,
// or for a host seen through an exporter the series of keys and the exporter.
func (d *diag) where(proc string, keys ...string) string {
	if d.in.Source == "" {
		return "(" + proc + ")"
	}
	var series []string
	for _, k := range keys {
		if s := hoststat.NodeSeries[k]; s != "" && !slices.Contains(series, s) {
			series = append(series, s)
		}
	}
	if len(series) == 0 {
		return "(" + d.in.Source + ")"
	}
	return "(" + strings.Join(series, ", ") + " from " + d.in.Source + ")"
}

// whereProc names where a process's figure was read: /proc/PID/file, or the
// exporter's series and the exporter that reported the process.
func (d *diag) whereProc(pid int, file string) string {
	if d.in.Source == "" {
		return fmt.Sprintf("(/proc/%d/%s)", pid, file)
	}
	series := procSeries[file]
	if strings.HasPrefix(d.in.Source, "process-exporter") {
		series = groupSeries[file]
	}
	if series == "" {
		return "(" + d.in.Source + ")"
	}
	return "(" + series + " from " + d.in.Source + ")"
}

// procSeries and groupSeries name the series an exporter gives a process's
// figures in, by the /proc file they stand for: the standard process_*
// series of the client libraries, and process-exporter's per group.
var (
	procSeries = map[string]string{
		"limits": "process_open_fds, process_max_fds",
		"stat":   "process_cpu_seconds_total",
	}
	groupSeries = map[string]string{
		"limits": "namedprocess_namegroup_open_filedesc, namedprocess_namegroup_worst_fd_ratio",
		"stat":   "namedprocess_namegroup_cpu_seconds_total",
	}
)

// AssignSide gives the host-wide findings (no side) of host the side the host
// serves, when it serves one only (Input.Side): on a host that runs only load
// generators, a busy CPU or a full table is the generator's, whatever its
// rule; on a host that runs only the target, the target's. A side of "" (the
// host runs both, or its role is unknown) changes nothing. Other observers
// (agents, Prometheus) use it on the findings of the hosts they add.
func AssignSide(fs []result.Finding, side, host string) []result.Finding {
	if side == "" {
		return fs
	}
	for i := range fs {
		if fs[i].Side != "" {
			continue
		}
		fs[i].Side = side
		who := "load generators"
		if side == hoststat.SideTarget {
			who = "target processes"
		}
		if host == "" {
			host = fs[i].Host
		}
		fs[i].Evidence = append(fs[i].Evidence, fmt.Sprintf("host %s runs only %s: a host-wide limit there is the %s's", host, who, side))
	}
	return fs
}

// hostCPU reports whether f is the host-wide CPU finding.
func hostCPU(f result.Finding) bool { return f.Rule == RuleCPUSaturation && f.Side == "" }

// GeneratorSide reports whether the findings put the fault on the load
// generator: then the step is generator-fail, never a target bottleneck.
func GeneratorSide(fs []result.Finding) bool {
	for _, f := range fs {
		if f.Side == hoststat.SideGenerator {
			return true
		}
	}
	return false
}

type diag struct {
	in    Input
	out   []result.Finding
	byKey map[string]int
}

// add merges findings of one rule, side and process: evidence is appended.
func (d *diag) add(f result.Finding) {
	if f.Host == "" {
		f.Host = d.in.Host
	}
	key := f.Rule + "\x00" + f.Side + "\x00" + f.Process
	if i, ok := d.byKey[key]; ok {
		g := &d.out[i]
		if g.Observed == "" {
			g.Observed = f.Observed
		}
		g.LimitReached = g.LimitReached || f.LimitReached
		g.Evidence = appendEvidence(g.Evidence, f.Evidence...)
		return
	}
	f.Evidence = appendEvidence(nil, f.Evidence...)
	d.byKey[key] = len(d.out)
	d.out = append(d.out, f)
}

func appendEvidence(ev []string, more ...string) []string {
	for _, e := range more {
		if e == "" || len(ev) >= maxEvidence+1 {
			continue
		}
		dup := false
		for _, x := range ev {
			dup = dup || x == e
		}
		if !dup {
			ev = append(ev, e)
		}
	}
	return ev
}

// logs returns the log matches of a rule.
func (d *diag) logs(rule string) []LogMatch {
	var out []LogMatch
	for _, m := range d.in.Logs {
		if m.Rule == rule && m.Count > 0 {
			out = append(out, m)
		}
	}
	return out
}

// logSays reports whether a kept line of a rule's hold matches contains word
// (case-insensitive).
func (d *diag) logSays(rule, word string) bool {
	for _, m := range d.logs(rule) {
		for _, l := range m.Lines {
			if !m.Warmup && strings.Contains(strings.ToLower(l), word) {
				return true
			}
		}
	}
	return false
}

// listenerSide is the side of a finding about this host's listening sockets
// (accept and SYN queues): the target's, which is what listens, unless the
// host serves the generator only (a Locust master listens for its workers).
func (d *diag) listenerSide() string {
	if d.in.Side != "" {
		return d.in.Side
	}
	return hoststat.SideTarget
}

// logEvidence is at most maxEvidence lines of a match, with a count if more.
func logEvidence(m LogMatch) []string {
	var ev []string
	for i, l := range m.Lines {
		if i == maxEvidence {
			break
		}
		ev = append(ev, l)
	}
	if m.Count > len(ev) {
		ev = append(ev, fmt.Sprintf("%d matching lines in %s", m.Count, m.Source))
	}
	return ev
}

func (d *diag) setting(name string) string {
	v, ok := d.in.Settings[name]
	if !ok {
		return name
	}
	switch x := v.(type) {
	case []int64:
		parts := make([]string, len(x))
		for i, n := range x {
			parts[i] = fmt.Sprint(n)
		}
		return fmt.Sprintf("%s (now %s)", name, strings.Join(parts, " "))
	}
	return fmt.Sprintf("%s (now %v)", name, v)
}

func isNginx(process, source string) bool {
	return strings.Contains(strings.ToLower(process+" "+source), "nginx")
}

// logProcess is the process a log match belongs to: its source's process, or
// "nginx" for a fleet log named after nginx (plans list nginx's error.log in
// fleets.*.logs, which belongs to no one process).
func logProcess(m LogMatch) string {
	if m.Process == "" && isNginx("", m.Source) {
		return "nginx"
	}
	return m.Process
}

func (d *diag) fdProcess() {
	for _, p := range d.in.Summary.Procs {
		if p.FDLimit <= 0 || float64(p.FDPeak) < NearLimit*float64(p.FDLimit) {
			continue
		}
		f := fdProcessFinding(p.Side, p.Name, fmt.Sprintf("%d of %d", p.FDPeak, p.FDLimit),
			fmt.Sprintf("fds %d of limit %d %s", p.FDPeak, p.FDLimit, d.whereProc(p.Pid, "limits")))
		f.LimitReached = float64(p.FDPeak) >= AtLimit*float64(p.FDLimit)
		d.add(f)
	}
	for _, m := range d.logs(RuleFDProcess) {
		observed := ""
		proc := logProcess(m)
		for _, p := range d.in.Summary.Procs {
			// The watched process's count says how full it was only if it was
			// near its limit: an nginx master at 9 of 20000 files did not log
			// its worker's EMFILE (worker_rlimit_nofile is the worker's).
			if p.Name == proc && p.Side == m.Side && p.FDLimit > 0 && float64(p.FDPeak) >= NearLimit*float64(p.FDLimit) {
				observed = fmt.Sprintf("%d of %d", p.FDPeak, p.FDLimit)
			}
		}
		if observed == "" {
			observed = fmt.Sprintf("%d EMFILE errors", m.Count)
		}
		f := fdProcessFinding(m.Side, proc, observed, logEvidence(m)...)
		f.LimitReached = !m.Warmup // the process was refused a file
		d.add(f)
	}
	if n := d.in.GeneratorErrors[metrics.ClassEMFILE]; n > 0 {
		d.add(fdProcessFinding(hoststat.SideGenerator, "loadramp", fmt.Sprintf("%d EMFILE errors", n),
			fmt.Sprintf("generator: %d requests failed with EMFILE (too many open files)", n)))
	}
}

func fdProcessFinding(side, process, observed string, evidence ...string) result.Finding {
	f := result.Finding{
		Rule: RuleFDProcess, Side: side, Process: process, Resource: "open files",
		Setting: "RLIMIT_NOFILE (systemd LimitNOFILE)", Observed: observed, Evidence: evidence,
		Fix: "raise the process open-file limit above 2x peak connections",
	}
	if isNginx(process, "") {
		f.Setting = "worker_rlimit_nofile"
		f.Fix = "raise nginx worker_rlimit_nofile to at least 2x worker_connections (a proxied connection holds two fds)"
	}
	if side == hoststat.SideGenerator {
		f.Fix = "raise the generator's open-file limit (ulimit -n) above its connections; this is not the target's limit"
	}
	return f
}

func (d *diag) fdSystem() {
	s := d.in.Summary
	f := result.Finding{Rule: RuleFDSystem, Resource: "file handles (system)", Setting: d.setting("fs.file-max"),
		Fix: "raise fs.file-max (sysctl -w fs.file-max=...)"}
	found := false
	if r, ok := s.Ratio(hoststat.HostFileNr, hoststat.HostFileMax); ok && r >= NearLimit {
		nr, max := s.Peaks[hoststat.HostFileNr], s.Limits[hoststat.HostFileMax]
		f.LimitReached = r >= AtLimit
		f.Observed = fmt.Sprintf("%.0f of %.0f", nr, max)
		f.Evidence = append(f.Evidence, fmt.Sprintf("file handles %.0f of fs.file-max %.0f %s", nr, max, d.where("/proc/sys/fs/file-nr", hoststat.HostFileNr, hoststat.HostFileMax)))
		found = true
	}
	for _, m := range d.logs(RuleFDSystem) {
		if f.Observed == "" {
			f.Observed = fmt.Sprintf("%d ENFILE errors", m.Count)
		}
		f.Evidence = append(f.Evidence, logEvidence(m)...)
		f.LimitReached = f.LimitReached || !m.Warmup
		found = true
	}
	if n := d.in.GeneratorErrors[metrics.ClassENFILE]; n > 0 {
		if f.Observed == "" {
			f.Observed = fmt.Sprintf("%d ENFILE errors", n)
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("generator: %d requests failed with ENFILE (too many open files in system)", n))
		found = true
	}
	if found {
		d.add(f)
	}
}

func (d *diag) nginxWorkerConnections() {
	for _, m := range d.logs(RuleNginxWorkerConns) {
		side := m.Side
		if side == "" {
			side = hoststat.SideTarget
		}
		proc := m.Process
		if proc == "" {
			proc = "nginx"
		}
		d.add(result.Finding{Rule: RuleNginxWorkerConns, Side: side, Process: proc,
			Resource: "nginx worker connections", Setting: "worker_connections",
			Observed: fmt.Sprintf("%d log lines: worker_connections are not enough", m.Count), Evidence: logEvidence(m),
			Fix: "raise worker_connections (and worker_rlimit_nofile to about twice it)", LimitReached: !m.Warmup})
	}
}

func (d *diag) listenOverflow() {
	s := d.in.Summary
	ov, okOv := s.Deltas[hoststat.HostListenOverflows]
	dr := s.Deltas[hoststat.HostListenDrops]
	if !okOv || (ov <= 0 && dr <= 0) {
		return
	}
	ev := []string{fmt.Sprintf("TcpExt ListenOverflows +%.0f, ListenDrops +%.0f in the window %s", ov, dr, d.where("/proc/net/netstat", hoststat.HostListenOverflows, hoststat.HostListenDrops))}
	if v, ok := d.in.Settings["net.core.somaxconn"]; ok {
		ev = append(ev, fmt.Sprintf("net.core.somaxconn = %v caps every listen backlog", v))
	}
	d.add(result.Finding{Rule: RuleListenOverflow, Side: d.listenerSide(), Resource: "listen queue (accept backlog)",
		Setting:  d.setting("net.core.somaxconn") + " and the listen backlog",
		Observed: fmt.Sprintf("%.0f overflows", max(ov, dr)), Evidence: ev, LimitReached: true,
		Fix: "raise net.core.somaxconn and the server's listen backlog (nginx listen ... backlog=), or accept faster"})
}

func (d *diag) synBacklog() {
	s := d.in.Summary
	drop := s.Deltas[hoststat.HostReqQFullDrop]
	cookies := s.Deltas[hoststat.HostReqQFullDoCookies]
	var ev []string
	if drop > 0 || cookies > 0 {
		ev = append(ev, fmt.Sprintf("TcpExt TCPReqQFullDrop +%.0f, TCPReqQFullDoCookies +%.0f in the window %s", drop, cookies, d.where("/proc/net/netstat", hoststat.HostReqQFullDrop, hoststat.HostReqQFullDoCookies)))
	}
	observed := ""
	if len(ev) > 0 {
		observed = fmt.Sprintf("%.0f SYNs dropped, %.0f answered with cookies", drop, cookies)
	}
	for _, m := range d.logs(RuleSynBacklog) {
		ev = append(ev, logEvidence(m)...)
		if observed == "" {
			observed = fmt.Sprintf("%d kernel SYN flooding messages", m.Count)
		}
	}
	if len(ev) == 0 {
		return
	}
	// SYNs answered with cookies were still served; dropped ones were not.
	d.add(result.Finding{Rule: RuleSynBacklog, Side: d.listenerSide(), Resource: "SYN queue",
		Setting: d.setting("net.ipv4.tcp_max_syn_backlog") + " and the listen backlog", Observed: observed, Evidence: ev,
		LimitReached: drop > 0 || d.logSays(RuleSynBacklog, "dropping"),
		Fix:          "raise net.ipv4.tcp_max_syn_backlog and the listen backlog"})
}

func (d *diag) ephemeralPorts() {
	f := result.Finding{Rule: RuleEphemeralPorts, Side: hoststat.SideGenerator, Process: "loadramp",
		Resource: "ephemeral ports", Setting: d.setting("net.ipv4.ip_local_port_range"),
		Fix: "widen net.ipv4.ip_local_port_range, keep connections alive, or enable net.ipv4.tcp_tw_reuse"}
	found := false
	s := d.in.Summary
	if n := d.in.GeneratorErrors[metrics.ClassEADDRNOTAVAIL]; n > 0 {
		f.Observed = fmt.Sprintf("%d EADDRNOTAVAIL errors", n)
		f.Evidence = append(f.Evidence, fmt.Sprintf("generator: %d connects failed with EADDRNOTAVAIL (cannot assign requested address)", n))
		found = true
	}
	if found {
		d.add(f)
	}
	if width, ok := s.Limits[hoststat.HostPortRangeWidth]; ok && width > 0 {
		// Host-wide sockets say the ports are nearly used, not whose they are.
		tw, inuse := s.Peaks[hoststat.HostTCPTW], s.Peaks[hoststat.HostTCPInUse]
		if tw+inuse >= PortRangeUsed*width {
			d.add(result.Finding{Rule: RuleEphemeralPorts, Resource: "ephemeral ports",
				Setting: f.Setting, Observed: fmt.Sprintf("%.0f sockets for %.0f ports", tw+inuse, width),
				Evidence: []string{fmt.Sprintf("TCP sockets in use %.0f + TIME_WAIT %.0f vs %.0f local ports %s", inuse, tw, width, d.where("/proc/net/sockstat", hoststat.HostTCPInUse, hoststat.HostTCPTW))},
				Fix:      f.Fix})
		}
	}
	for _, m := range d.logs(RuleEphemeralPorts) {
		side := m.Side
		if side == "" {
			side = hoststat.SideTarget
		}
		g := result.Finding{Rule: RuleEphemeralPorts, Side: side, Process: logProcess(m), Resource: "ephemeral ports",
			Setting: d.setting("net.ipv4.ip_local_port_range"), Observed: fmt.Sprintf("%d EADDRNOTAVAIL errors", m.Count),
			Evidence: logEvidence(m), Fix: f.Fix}
		if side == hoststat.SideTarget {
			// A proxy running out of ports towards its upstream.
			g.Fix = "keep upstream connections alive (nginx keepalive in upstream), widen net.ipv4.ip_local_port_range, enable net.ipv4.tcp_tw_reuse"
			g.LimitReached = !m.Warmup
		}
		d.add(g)
	}
}

func (d *diag) timeWait() {
	s := d.in.Summary
	tw, okTW := s.Peaks[hoststat.HostTCPTW]
	var ev []string
	observed := ""
	if ovf := s.Deltas[hoststat.HostTimeWaitOverflow]; ovf > 0 {
		ev = append(ev, fmt.Sprintf("TcpExt TCPTimeWaitOverflow +%.0f in the window %s", ovf, d.where("/proc/net/netstat", hoststat.HostTimeWaitOverflow)))
		observed = fmt.Sprintf("%.0f TIME_WAIT sockets dropped", ovf)
	}
	if width, ok := s.Limits[hoststat.HostPortRangeWidth]; ok && okTW && width > 0 && tw >= TimeWaitShare*width {
		ev = append(ev, fmt.Sprintf("TIME_WAIT sockets %.0f vs %.0f local ports %s", tw, width, d.where("/proc/net/sockstat", hoststat.HostTCPTW)))
		if observed == "" {
			observed = fmt.Sprintf("%.0f in TIME_WAIT", tw)
		}
	}
	if b, ok := s.Limits[hoststat.HostMaxTWBuckets]; ok && okTW && b > 0 && tw >= NearLimit*b {
		ev = append(ev, fmt.Sprintf("TIME_WAIT sockets %.0f of net.ipv4.tcp_max_tw_buckets %.0f", tw, b))
		if observed == "" {
			observed = fmt.Sprintf("%.0f of %.0f", tw, b)
		}
	}
	if len(ev) == 0 {
		return
	}
	d.add(result.Finding{Rule: RuleTimeWait, Resource: "TIME_WAIT sockets",
		Setting: d.setting("net.ipv4.tcp_tw_reuse") + ", net.ipv4.tcp_max_tw_buckets", Observed: observed, Evidence: ev,
		Fix: "keep connections alive so they are reused; enable net.ipv4.tcp_tw_reuse on the connecting side"})
}

func (d *diag) conntrack() {
	s := d.in.Summary
	var ev []string
	observed := ""
	reached := false
	if r, ok := s.Ratio(hoststat.HostConntrackCount, hoststat.HostConntrackMax); ok && r >= NearLimit {
		reached = r >= AtLimit
		c, m := s.Peaks[hoststat.HostConntrackCount], s.Limits[hoststat.HostConntrackMax]
		observed = fmt.Sprintf("%.0f of %.0f", c, m)
		ev = append(ev, fmt.Sprintf("conntrack entries %.0f of nf_conntrack_max %.0f %s", c, m, d.where("/proc/sys/net/netfilter", hoststat.HostConntrackCount, hoststat.HostConntrackMax)))
	}
	if dr := s.Deltas[hoststat.HostConntrackDrop]; dr > 0 {
		reached = true
		ev = append(ev, fmt.Sprintf("conntrack drops +%.0f in the window %s", dr, d.where("/proc/net/stat/nf_conntrack", hoststat.HostConntrackDrop)))
		if observed == "" {
			observed = fmt.Sprintf("%.0f packets dropped", dr)
		}
	}
	for _, m := range d.logs(RuleConntrackFull) {
		reached = reached || !m.Warmup
		ev = append(ev, logEvidence(m)...)
		if observed == "" {
			observed = fmt.Sprintf("%d kernel table-full messages", m.Count)
		}
	}
	if len(ev) == 0 {
		return
	}
	d.add(result.Finding{Rule: RuleConntrackFull, Resource: "connection tracking table", LimitReached: reached,
		Setting: d.setting("net.netfilter.nf_conntrack_max"), Observed: observed, Evidence: ev,
		Fix: "raise net.netfilter.nf_conntrack_max, or skip tracking for this traffic (firewalld --notrack / raw table NOTRACK)"})
}

func (d *diag) cpu() {
	s := d.in.Summary
	gen := s.Generator
	if gen.Procs > 0 && gen.CPUMean >= CPUSaturated {
		d.add(result.Finding{Rule: RuleGeneratorSaturated, Side: hoststat.SideGenerator, Process: "loadramp",
			Resource: "generator CPU", Setting: "generator fleet size (more or larger generators)",
			Observed: fmt.Sprintf("%.0f%% of its CPUs", 100*gen.CPUMean),
			Evidence: []string{fmt.Sprintf("generator processes used %.2f of their CPUs on average (peak %.2f) (/proc/PID/stat)", gen.CPUMean, gen.CPUPeak)},
			Fix:      "add generators or give them more CPUs; the step measured the generator, not the target"})
	}
	d.generatorStarved()
	for _, p := range s.Procs {
		if p.Side != hoststat.SideTarget || p.CPUMean < CPUSaturated {
			continue
		}
		d.add(result.Finding{Rule: RuleCPUSaturation, Side: hoststat.SideTarget, Process: p.Name, Resource: "CPU",
			Setting: "instance size / count", Observed: fmt.Sprintf("%.0f%% of %d CPUs", 100*p.CPUMean, p.CPUs),
			Evidence: []string{fmt.Sprintf("%s (pid %d) used %.2f of its %d CPUs on average (peak %.2f) %s", p.Name, p.Pid, p.CPUMean, p.CPUs, p.CPUPeak, d.whereProc(p.Pid, "stat"))},
			Fix:      "add instances or CPUs, or make each request cheaper"})
	}
	if s.HostCPUMean >= CPUSaturated {
		ev := []string{fmt.Sprintf("host CPUs %.2f busy on average (peak %.2f) %s", s.HostCPUMean, s.HostCPUPeak, d.where("/proc/stat", hoststat.HostCPUBusy))}
		if s.HostStealMean > 0 {
			ev = append(ev, fmt.Sprintf("of which the hypervisor took %.2f (steal)", s.HostStealMean))
		}
		if gen.Procs > 0 {
			ev = append(ev, fmt.Sprintf("of which the generator used %.2f and the target %.2f of their CPUs", gen.CPUMean, s.Target.CPUMean))
		}
		ev = append(ev, d.cpuPressure()...)
		// A busy host is a host-wide finding: other processes may have taken
		// the CPUs. It puts the fault on neither side by itself (unless the
		// host serves one side only: AssignSide); a generator starved of CPU
		// shows in its own run delay (generatorStarved) and in its schedule
		// lag (the generator_health checks).
		d.add(result.Finding{Rule: RuleCPUSaturation, Resource: "host CPU", Setting: "instance size / count",
			Observed: fmt.Sprintf("%.0f%% of the host's CPUs", 100*s.HostCPUMean), Evidence: ev,
			Fix: "add instances or CPUs; run the generator on other machines than the target"})
	} else if s.GenCPUs > 0 && s.GenCPUsMean >= CPUSaturated {
		// The generator may use some CPUs only, and those were busy: the
		// host's figure dilutes it over CPUs the generator cannot use.
		ev := []string{fmt.Sprintf("the %d CPUs the generator may run on were %.2f busy on average (peak %.2f), the host's %.2f %s",
			s.GenCPUs, s.GenCPUsMean, s.GenCPUsPeak, max(s.HostCPUMean, 0), d.where("/proc/stat, /proc/PID/status Cpus_allowed_list", hoststat.HostCPUBusy))}
		if gen.Procs > 0 {
			ev = append(ev, fmt.Sprintf("of which the generator itself used %.2f", gen.CPUMean))
		}
		ev = append(ev, d.cpuPressure()...)
		d.add(result.Finding{Rule: RuleCPUSaturation, Resource: "the generator's CPUs", Setting: "the generator's CPUs (taskset, cpuset) / instance size",
			Observed: fmt.Sprintf("its %d CPUs %.0f%% busy", s.GenCPUs, 100*s.GenCPUsMean), Evidence: ev,
			Fix: "give the generator CPUs no other busy process runs on, or run it on another machine"})
	}
	d.hostStolen()
}

// hostStolen: the hypervisor ran something else on the host's virtual CPUs
// for HostStolen of its CPU time or more (steal). Nothing on the host ran
// then, whatever its processes' CPU shares say: the target answered late and
// the generator sent and read late, and every latency measured there counts
// the pauses. It is host-wide: with a busy CPU finding of the host's (one
// rule, no side, no process), it joins that one's evidence. On a
// host that runs only generators it is not named: there it is the
// generator's own steal (generator.steal.*), which the generator's health
// checks judge, and a steady steal is the ordinary state of a shared
// virtual machine, not a reason to grow the fleet.
func (d *diag) hostStolen() {
	s := d.in.Summary
	if s.HostStealMean < HostStolen || d.in.Side == hoststat.SideGenerator {
		return
	}
	peak := max(s.HostStealPeak, s.HostStealMean)
	ev := []string{fmt.Sprintf("the hypervisor ran something else on the host's CPUs %.1f%% of the hold, %.1f%% in its worst interval %s; for that time nothing on the host runs",
		100*s.HostStealMean, 100*peak, d.where("/proc/stat", hoststat.HostCPUSteal))}
	if s.Target.Procs > 0 {
		ev = append(ev, fmt.Sprintf("the target processes used %.2f of their CPUs: the time taken is not theirs, and no CPU share of theirs shows it", s.Target.CPUMean))
	}
	d.add(result.Finding{Rule: RuleCPUSaturation, Resource: "host CPU (taken by the hypervisor)",
		Setting:  "the host's instance type: its share of the physical CPUs (a burstable instance's CPU credits)",
		Observed: fmt.Sprintf("the hypervisor took %.0f%% of the host's CPU time (steal; %.0f%% in its worst interval)", 100*s.HostStealMean, 100*peak),
		Evidence: ev,
		Fix:      "run on instances whose CPUs are not shared (dedicated, or not burstable: a burstable one out of CPU credits is throttled this way), or measure again when the physical host is quieter; this step's latencies count the pauses"})
}

// cpuPressure is the host's CPU pressure over the window, as evidence.
func (d *diag) cpuPressure() []string {
	s := d.in.Summary
	if wall := s.End.Sub(s.Start).Seconds(); wall > 0 {
		if psi, ok := s.Deltas[hoststat.HostPSICPUSome]; ok {
			return []string{fmt.Sprintf("cpu pressure: some task waited %.0f%% of the window %s", 100*psi/1e6/wall, d.where("/proc/pressure/cpu", hoststat.HostPSICPUSome))}
		}
	}
	return nil
}

// generatorStarved: the generator was runnable but waiting for a CPU for a
// large share of the hold (its threads' run delay, generator.starved.ratio as
// the engine measured it). Its CPU share stays low, so no CPU-share threshold
// sees it, but the wait is in every latency it measured: the CPU finding is
// the generator's, whichever host it runs on and whatever else runs there.
func (d *diag) generatorStarved() {
	at := d.in.StarvedAt
	if at == 0 {
		at = GeneratorStarved
	}
	r, ok := d.in.Engine[metrics.GeneratorStarvedRatio]
	if !ok || at < 0 || r < at {
		return
	}
	s := d.in.Summary
	ev := []string{fmt.Sprintf("loadramp's threads waited %.2f s for a CPU per second of hold and per CPU it may use (generator.starved.ratio, the run delay of /proc/self/task/*/schedstat)", r)}
	if cpu, ok := d.in.Engine[metrics.GeneratorCPU]; ok {
		ev = append(ev, fmt.Sprintf("while it used %.2f of its CPUs: it was not busy, it was waiting", cpu))
	}
	if s.GenCPUs > 0 && s.GenCPUsMean >= 0 {
		ev = append(ev, fmt.Sprintf("the %d CPUs it may run on were %.2f busy on average", s.GenCPUs, s.GenCPUsMean))
	} else if s.HostCPUMean >= 0 {
		ev = append(ev, fmt.Sprintf("host CPUs %.2f busy on average", s.HostCPUMean))
	}
	ev = append(ev, d.cpuPressure()...)
	d.add(result.Finding{Rule: RuleCPUSaturation, Side: hoststat.SideGenerator, Process: "loadramp",
		Resource: "CPU (the generator waited for it)", Setting: "the generator's CPUs (other busy processes share them)",
		Observed: fmt.Sprintf("waited for a CPU %.0f%% of the hold", 100*min(r, 1)), Evidence: ev,
		Fix: "give the generator CPUs of its own (no other busy process on them), or run it on another machine; the step measured the generator's wait, not the target"})
}

// nginxConfConnections names worker_connections from nginx's configuration
// when the client could not hold the connections it asked for and they were
// as many as nginx can hold: at that limit nginx closes idle keep-alive
// connections to make room and says so at warn level only ("N
// worker_connections are not enough, reusing connections"), which a default
// error_log does not record. The client's view is the engine's
// connections.held.ratio and connections.reopened.ratio.
func (d *diag) nginxConfConnections() {
	n := d.in.Nginx
	asked := d.in.Params["connections"]
	if n == nil || asked <= 0 || n.MaxConnections() <= 0 {
		return
	}
	held, okH := d.in.Engine[metrics.ConnectionsHeldRatio]
	reopened, okR := d.in.Engine[metrics.ConnectionsReopenedRatio]
	if !(okH && held < HeldShare) && !(okR && reopened >= ReopenedPerRequest) {
		return
	}
	// Each proxied client connection may need an upstream one too.
	needed, why := asked, ""
	if n.Proxies {
		needed, why = 2*asked, ", each proxied one possibly with an upstream connection"
	}
	limit := float64(n.MaxConnections())
	if needed < NearLimit*limit {
		return
	}
	where := n.Path
	if d.in.NginxPid > 0 {
		where += fmt.Sprintf(", nginx master pid %d", d.in.NginxPid)
	}
	ev := []string{
		fmt.Sprintf("worker_processes %d x worker_connections %d = %.0f connections per nginx, listening and upstream sockets included (%s)",
			max(n.WorkerProcesses, 1), n.WorkerConnections, limit, where),
		fmt.Sprintf("the client asked for %.0f connections%s", asked, why),
	}
	if okH {
		line := fmt.Sprintf("it held %.0f%% of them on average", 100*held)
		if peak, ok := d.in.Engine[metrics.ConnectionsHeldPeak]; ok {
			line += fmt.Sprintf(", at most %.0f at once", peak)
		}
		ev = append(ev, line)
	}
	if okR {
		ev = append(ev, fmt.Sprintf("%.2f connections reopened per request: nginx closed idle keep-alive connections to make room", reopened))
	}
	d.add(result.Finding{Rule: RuleNginxWorkerConns, Side: hoststat.SideTarget, Process: "nginx",
		Resource: "nginx worker connections", Setting: "worker_connections",
		Observed: fmt.Sprintf("%.0f connections asked, nginx holds %.0f (worker_connections %d)", asked, limit, n.WorkerConnections), Evidence: ev, LimitReached: true,
		Fix: "raise worker_connections (and worker_rlimit_nofile to about twice it); nginx logs this at warn level only, so a default error_log stays silent"})
}

func (d *diag) memory() {
	s := d.in.Summary
	var ev []string
	observed := ""
	if total, ok := s.Limits[hoststat.HostMemTotal]; ok && total > 0 {
		if avail, ok := s.Mins[hoststat.HostMemAvailable]; ok && avail < MemAvailableLow*total {
			observed = fmt.Sprintf("%.0f MiB of %.0f MiB available", avail/(1<<20), total/(1<<20))
			ev = append(ev, fmt.Sprintf("MemAvailable fell to %.1f%% of MemTotal %s", 100*avail/total, d.where("/proc/meminfo", hoststat.HostMemAvailable, hoststat.HostMemTotal)))
		}
	}
	if wall := s.End.Sub(s.Start).Seconds(); wall > 0 {
		if full, ok := s.Deltas[hoststat.HostPSIMemoryFull]; ok && full/1e6/wall >= PSIMemoryFull {
			ev = append(ev, fmt.Sprintf("memory pressure: all tasks stalled %.0f%% of the window %s", 100*full/1e6/wall, d.where("/proc/pressure/memory", hoststat.HostPSIMemoryFull)))
			if observed == "" {
				observed = fmt.Sprintf("stalled %.0f%% of the time", 100*full/1e6/wall)
			}
		}
	}
	for _, m := range d.logs(RuleMemoryPressure) {
		ev = append(ev, logEvidence(m)...)
		if observed == "" {
			observed = fmt.Sprintf("%d OOM messages", m.Count)
		}
	}
	if len(ev) == 0 {
		return
	}
	d.add(result.Finding{Rule: RuleMemoryPressure, Resource: "memory", Setting: "instance memory / process memory limit",
		Observed: observed, Evidence: ev, Fix: "give the processes more memory, or lower their memory use per connection"})
}

// A generator whose requests mostly find every connection busy
// (generator.blocked.ratio at least PoolBlocked) has them busy for one of two
// reasons: the target answers slowly, or the generator is slow to write its
// requests and to read the answers. Little's law tells them apart: the target's
// answers occupy throughput × mean service time connections on average
// (service time runs from the request's write to the kernel's receive time of
// its response, so the generator's own delays are not in it). When that is at
// most PoolTargetShare of the connections held, the rest of the time they
// were busy was the generator's. The rule also asks that the generator was
// working hard (generator.cpu at least PoolBusyCPU): a generator whose
// connections are busy dialing a target that drops its SYNs is idle, and
// that is the target's doing.
//
// Seen on a 2-CPU machine, nginx on one CPU and loadramp on the other, 64
// connections, 160,000 req/s offered: every request blocked, latency p99 2 s,
// service p99 0.7 ms, generator.cpu 0.886 (under generator-saturated's 0.9),
// and the step was judged target-fail (its confirmation, at 0.997, was
// generator-fail). In five such steps, the generator at 0.94–0.99, the target's
// answers occupied 0.07 to 0.51 of the connections; at 80,000 req/s, where the
// steps passed with 1 % of requests blocked at most, 0.04–0.07. A target too slow
// for the connections keeps them busy itself: near 1.
const (
	PoolBlocked     = 0.5
	PoolTargetShare = 0.5
	PoolBusyCPU     = 0.75
)

func (d *diag) generatorHeldConnections() {
	// A metric the engine did not report reads 0, and 0 fails the thresholds.
	m := d.in.Engine
	blocked, cpu, held := m[metrics.GeneratorBlockedRatio], m[metrics.GeneratorCPU], m[metrics.ConnectionsHeld]
	rps, svc := m[metrics.ThroughputRPS], m[metrics.ServiceMean]
	target := rps * svc
	if blocked < PoolBlocked || cpu < PoolBusyCPU || held <= 0 || target <= 0 || target > PoolTargetShare*held {
		return
	}
	d.add(result.Finding{Rule: RuleGeneratorHeldConnections, Side: hoststat.SideGenerator, Process: "loadramp",
		Resource: "the generator's connections", Setting: "generator fleet size (more or larger generators)",
		Observed: fmt.Sprintf("%.0f%% of requests waited for a connection; the target's answers occupied %.1f of %.0f", 100*blocked, target, held),
		Evidence: []string{
			fmt.Sprintf("%.0f%% of the requests released found every connection busy (generator.blocked.ratio %.3f)", 100*blocked, blocked),
			fmt.Sprintf("the target's answers occupied %.1f connections on average (throughput %.0f req/s × mean service time %.3f ms, Little's law) of the %.0f held: the rest of the time they waited for the generator to write and read", target, rps, 1e3*svc, held),
			fmt.Sprintf("the generator used %.2f of its CPUs (generator.cpu)", cpu),
		},
		Fix: "add generators or give them more CPUs; the requests waited in the generator's own queue, so the step measured the generator, not the target"})
}

// GeneratorBehind explains a generator that fell behind its schedule (a
// failed check on lag, the generator.lag.* metric) while it was not busy
// (generator.cpu under CPUSaturated): for a while its CPUs were not its own.
// The hypervisor can take a virtual CPU (steal: nothing in the guest runs,
// and no run delay counts it), or other threads can (run delay): every
// request due meanwhile goes out late. It is named when the worst second of
// either (generator.steal.peak, generator.starved.peak, in seconds per
// second) holds at least the lag the check failed on: a wait that long could
// make it. Otherwise the lag is not explained by them, and ok is false. The
// step is generator-fail by the failed check already; this says why.
func GeneratorBehind(m map[string]float64, lag string) (f result.Finding, ok bool) {
	late, okLag := m[lag]
	if !okLag || late <= 0 {
		return f, false
	}
	cpu, okCPU := m[metrics.GeneratorCPU]
	if okCPU && cpu >= CPUSaturated {
		return f, false // busy: its CPU share and the generator-saturated checks say so
	}
	steal, okSteal := m[metrics.GeneratorStealRatio]
	stealPeak := max(m[metrics.GeneratorStealPeak], steal)
	starved, okStarved := m[metrics.GeneratorStarvedRatio]
	starvedPeak := max(m[metrics.GeneratorStarvedPeak], starved)
	if !(okSteal && stealPeak >= late) && !(okStarved && starvedPeak >= late) {
		return f, false
	}
	var taken, ev []string
	if okSteal && stealPeak > 0 {
		taken = append(taken, fmt.Sprintf("the hypervisor took %s of its CPUs' time in its worst second (steal)", millis(stealPeak)))
		ev = append(ev, stealEvidence(steal, stealPeak))
	}
	if okStarved && starvedPeak > 0 {
		taken = append(taken, fmt.Sprintf("its threads waited %s for a CPU in its worst second", millis(starvedPeak)))
		ev = append(ev, fmt.Sprintf("loadramp's threads waited for a CPU %.1f%% of the hold, %.1f%% in its worst second (generator.starved.ratio, generator.starved.peak: the run delay of /proc/self/task/*/schedstat)", 100*starved, 100*starvedPeak))
	}
	busy := ""
	if okCPU {
		busy = fmt.Sprintf(" while it used %.2f of its CPUs", cpu)
		ev = append(ev, fmt.Sprintf("it used %.2f of its CPUs: it was not busy, its CPU was taken", cpu))
	}
	ev = append(ev, fmt.Sprintf("%s was %s: each request due while the generator could not run was sent late, and its latency counts the wait", lag, millis(late)))
	return result.Finding{Rule: RuleCPUSaturation, Side: hoststat.SideGenerator, Process: "loadramp",
		Resource: "CPU (taken from the generator)", Setting: "the generator's CPUs: the hypervisor's share of them, other busy processes on them",
		Observed: fmt.Sprintf("fell behind its schedule (%s %s)%s: %s", lag, millis(late), busy, strings.Join(taken, ", ")),
		Evidence: ev,
		Fix:      ownCPUs + ", and no other busy process on its CPUs; the step measured the generator's wait, not the target"}, true
}

// stealEvidence says how much of the generator's CPUs the hypervisor took,
// over the hold and in its worst second.
func stealEvidence(ratio, peak float64) string {
	return fmt.Sprintf("the hypervisor ran something else on the generator's CPUs %.1f%% of the hold, %.1f%% in its worst second (generator.steal.ratio, generator.steal.peak: the steal column of /proc/stat for the CPUs it may run on); for that time nothing in its machine runs", 100*ratio, 100*peak)
}

// ownCPUs is where a generator whose CPUs others took should run.
const ownCPUs = "run the generator where its CPUs are its own: on a virtual machine, one whose CPUs are not shared (a dedicated or non-burstable instance, a quieter host)"

// GeneratorStolen explains a failed check on the hypervisor's steal of the
// generator's CPUs (generator.steal.ratio or .peak, the metric named by
// steal): for that share of the hold nothing in the generator's machine
// ran, so a response that arrived then waited to be read, and a request due
// then went out late, each counting the wait as the target's latency. ok is
// false when the step has no such figure. The step is generator-fail by the
// failed check already; this says why, and names the fix.
func GeneratorStolen(m map[string]float64, steal string) (f result.Finding, ok bool) {
	v, ok := m[steal]
	if !ok || v <= 0 {
		return f, false
	}
	ratio, okRatio := m[metrics.GeneratorStealRatio]
	peak := max(m[metrics.GeneratorStealPeak], ratio)
	ev := []string{stealEvidence(ratio, peak)}
	if cpu, okCPU := m[metrics.GeneratorCPU]; okCPU {
		ev = append(ev, fmt.Sprintf("it used %.2f of its CPUs", cpu))
	}
	if lag, okLag := m[metrics.GeneratorLagP99]; okLag {
		ev = append(ev, fmt.Sprintf("%s was %s", metrics.GeneratorLagP99, millis(lag)))
	}
	ev = append(ev, "a response that arrived while the generator could not run waited to be read, and its latency counts the wait")
	observed := fmt.Sprintf("the hypervisor took %s of its CPUs' time in its worst second (steal)", millis(peak))
	if okRatio {
		observed = fmt.Sprintf("the hypervisor took %.0f%% of its CPUs' time (steal; %s in its worst second)", 100*ratio, millis(peak))
	}
	return result.Finding{Rule: RuleCPUSaturation, Side: hoststat.SideGenerator, Process: "loadramp",
		Resource: "CPU (taken from the generator)", Setting: "the generator's CPUs: the hypervisor's share of them",
		Observed: observed, Evidence: ev,
		Fix: ownCPUs + "; the step measured the generator's wait, not the target"}, true
}

// millis formats seconds as milliseconds.
func millis(s float64) string { return fmt.Sprintf("%.1f ms", 1e3*s) }
