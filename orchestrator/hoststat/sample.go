// Package hoststat samples the resources a load step uses on the target and the
// generator side: per-process CPU, memory and open files, and host counters
// (CPU, memory, pressure, file handles, sockets, TCP listen queues, connection
// tracking) read from procfs, or mapped from node_exporter's and
// process-exporter's series (package orchestrator/prom scrapes them).
//
// Every read of /proc is rooted at a mount point given to New, so tests run on
// fixture trees. A counter the kernel does not have is left out of the sample
// ("unavailable"), never an error.
package hoststat

import (
	"time"
)

// Proc names a watched process.
type Proc struct {
	Name string `json:"name"`
	Pid  int    `json:"pid"`
}

// Sides of a watched process.
const (
	SideTarget    = "target"
	SideGenerator = "generator"
)

// Keys of Sample.Host. Counters (cumulative since boot) are judged by their
// delta over a window; gauges by their peak; limits by their last value.
const (
	// CPU time of the whole host, in seconds summed over CPUs (counters).
	HostCPUBusy  = "cpu.busy.seconds"
	HostCPUTotal = "cpu.total.seconds"
	// HostCPUSteal is the part of the host's CPU time its hypervisor ran
	// something else while its virtual CPUs had work (the steal column of
	// /proc/stat, node_cpu_seconds_total{mode="steal"}); it is in busy too.
	HostCPUSteal = "cpu.steal.seconds"
	// HostCPUs is the number of CPUs of the host.
	HostCPUs = "cpus"
	// The CPUs the generator processes may run on, when that is some of the
	// host's only (taskset, a cpuset): their busy and total time (counters)
	// and how many they are (limit).
	HostGenCPUBusy  = "cpu.generator.busy.seconds"
	HostGenCPUTotal = "cpu.generator.total.seconds"
	HostGenCPUs     = "cpus.generator"

	HostMemTotal     = "mem.total.bytes"     // limit
	HostMemAvailable = "mem.available.bytes" // gauge (judged by its minimum)

	// Pressure stall time in microseconds (counters; absent without PSI).
	HostPSICPUSome    = "psi.cpu.some.us"
	HostPSIMemorySome = "psi.memory.some.us"
	HostPSIMemoryFull = "psi.memory.full.us"

	HostFileNr  = "file.nr"  // allocated file handles (gauge)
	HostFileMax = "file.max" // fs.file-max (limit)

	HostTCPInUse = "tcp.inuse" // gauge
	HostTCPTW    = "tcp.tw"    // sockets in TIME_WAIT (gauge)

	// TcpExt counters of /proc/net/netstat.
	HostListenOverflows     = "tcpext.ListenOverflows"
	HostListenDrops         = "tcpext.ListenDrops"
	HostReqQFullDrop        = "tcpext.TCPReqQFullDrop"
	HostReqQFullDoCookies   = "tcpext.TCPReqQFullDoCookies"
	HostSyncookiesSent      = "tcpext.SyncookiesSent"
	HostTimeWaitOverflow    = "tcpext.TCPTimeWaitOverflow"
	HostConntrackCount      = "conntrack.count" // gauge
	HostConntrackMax        = "conntrack.max"   // limit
	HostConntrackDrop       = "conntrack.drop"  // counter: /proc/net/stat/nf_conntrack drop + early_drop
	HostConntrackInsertFail = "conntrack.insert_failed"
	HostPortRangeWidth      = "port_range.width" // limit: ports in net.ipv4.ip_local_port_range
	HostMaxTWBuckets        = "tcp.max_tw_buckets"
)

// ENAAllowances are the AWS ENA driver's ethtool counters of packets queued
// or dropped because the instance exceeded a network allowance of its type.
var ENAAllowances = []string{
	"bw_in_allowance_exceeded", "bw_out_allowance_exceeded", "pps_allowance_exceeded",
	"conntrack_allowance_exceeded", "linklocal_allowance_exceeded",
}

// ENAKey is the Host key of an ENA allowance counter (ena.<stat>, a counter
// summed over the host's devices).
func ENAKey(stat string) string { return "ena." + stat }

// counterKeys are the Host keys judged by their delta over a window.
var counterKeys = func() map[string]bool {
	m := map[string]bool{
		HostCPUBusy: true, HostCPUTotal: true, HostCPUSteal: true, HostGenCPUBusy: true, HostGenCPUTotal: true,
		HostPSICPUSome: true, HostPSIMemorySome: true, HostPSIMemoryFull: true,
		HostListenOverflows: true, HostListenDrops: true, HostReqQFullDrop: true,
		HostReqQFullDoCookies: true, HostSyncookiesSent: true, HostTimeWaitOverflow: true,
		HostConntrackDrop: true, HostConntrackInsertFail: true,
	}
	for _, stat := range ENAAllowances {
		m[ENAKey(stat)] = true
	}
	return m
}()

// limitKeys are the Host keys that are limits: a window keeps their last value.
var limitKeys = map[string]bool{
	HostCPUs: true, HostGenCPUs: true, HostMemTotal: true, HostFileMax: true, HostConntrackMax: true,
	HostPortRangeWidth: true, HostMaxTWBuckets: true,
}

// IsCounter reports whether a Host key is a cumulative counter.
func IsCounter(key string) bool { return counterKeys[key] }

// ProcSample is one reading of a watched process.
type ProcSample struct {
	Name string `json:"name"`
	Pid  int    `json:"pid"`
	Side string `json:"side"`
	// CPUSeconds is the user+system time the process used since it started.
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUs is the number of CPUs the process may run on (Cpus_allowed_list).
	CPUs int   `json:"cpus"`
	RSS  int64 `json:"rss"` // bytes
	FDs  int   `json:"fds"`
	// FDLimit is the soft "Max open files" limit; 0 when unlimited or unknown.
	FDLimit int64 `json:"fd_limit"`
	// Err says why the process could not be read (it exited, permission denied).
	Err string `json:"err,omitempty"`
}

// Sample is one reading of the host and the watched processes.
type Sample struct {
	Time  time.Time          `json:"time"`
	Host  map[string]float64 `json:"host"`
	Procs []ProcSample       `json:"procs,omitempty"`
	// Unavailable lists what could not be read and why ("psi: not found").
	Unavailable []string `json:"unavailable,omitempty"`
}
