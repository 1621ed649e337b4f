package hoststat

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Exporters observe a host from outside /proc: node_exporter's series carry
// the same kernel counters the procfs sampler reads, process-exporter's and
// the client libraries' process_* series the per-process figures. The
// functions here map parsed metric families (package orchestrator/prom
// scrapes and decodes them) onto a Sample, so a host seen only through its
// exporters is summarised (Window) and diagnosed exactly like one read from
// /proc.

// nodeGauges maps node_exporter metric names to Host keys, value as is.
var nodeGauges = map[string]string{
	"node_memory_MemTotal_bytes":               HostMemTotal,
	"node_memory_MemAvailable_bytes":           HostMemAvailable,
	"node_filefd_allocated":                    HostFileNr,
	"node_filefd_maximum":                      HostFileMax,
	"node_sockstat_TCP_inuse":                  HostTCPInUse,
	"node_sockstat_TCP_tw":                     HostTCPTW,
	"node_nf_conntrack_entries":                HostConntrackCount,
	"node_nf_conntrack_entries_limit":          HostConntrackMax,
	"node_nf_conntrack_stat_insert_failed":     HostConntrackInsertFail,
	"node_netstat_TcpExt_ListenOverflows":      HostListenOverflows,
	"node_netstat_TcpExt_ListenDrops":          HostListenDrops,
	"node_netstat_TcpExt_TCPReqQFullDrop":      HostReqQFullDrop,
	"node_netstat_TcpExt_TCPReqQFullDoCookies": HostReqQFullDoCookies,
	"node_netstat_TcpExt_SyncookiesSent":       HostSyncookiesSent,
	"node_netstat_TcpExt_TCPTimeWaitOverflow":  HostTimeWaitOverflow,
}

// nodeMicros maps node_exporter seconds counters to Host keys in microseconds.
var nodeMicros = map[string]string{
	"node_pressure_cpu_waiting_seconds_total":    HostPSICPUSome,
	"node_pressure_memory_waiting_seconds_total": HostPSIMemorySome,
	"node_pressure_memory_stalled_seconds_total": HostPSIMemoryFull,
}

// NodeSeries maps a Host key to the node_exporter series it is read from,
// so evidence can name the series a figure came from.
var NodeSeries = func() map[string]string {
	m := map[string]string{
		HostCPUBusy: "node_cpu_seconds_total", HostCPUTotal: "node_cpu_seconds_total", HostCPUs: "node_cpu_seconds_total",
		HostCPUSteal:      `node_cpu_seconds_total{mode="steal"}`,
		HostConntrackDrop: "node_nf_conntrack_stat_drop",
	}
	for name, key := range nodeGauges {
		m[key] = name
	}
	for name, key := range nodeMicros {
		m[key] = name
	}
	for _, stat := range ENAAllowances {
		m[ENAKey(stat)] = "node_ethtool_" + stat
	}
	m[HostPortRangeWidth] = sysctlSeries("net.ipv4.ip_local_port_range")
	m[HostMaxTWBuckets] = sysctlSeries("net.ipv4.tcp_max_tw_buckets")
	return m
}()

// sysctlSeries is the series node_exporter's sysctl collector
// (--collector.sysctl --collector.sysctl.include=NAME) exports a setting as.
func sysctlSeries(name string) string {
	return "node_sysctl_" + strings.NewReplacer(".", "_", "-", "_").Replace(name)
}

// NodeExporterSettings returns the kernel settings (Settings' names) that
// node_exporter's sysctl collector exports among fams: a single number as
// int64, several (the port range, by their index label) as []int64.
func NodeExporterSettings(fams map[string]*dto.MetricFamily) map[string]any {
	out := map[string]any{}
	for _, name := range settingNames {
		fam := fams[sysctlSeries(name)]
		if fam == nil || len(fam.GetMetric()) == 0 {
			continue
		}
		ms := fam.GetMetric()
		if len(ms) == 1 && labelValue(ms[0], "index") == "" {
			if v, ok := metricValue(ms[0]); ok {
				out[name] = int64(v)
			}
			continue
		}
		vals := make([]int64, len(ms))
		ok := true
		for _, m := range ms {
			i, err := strconv.Atoi(labelValue(m, "index"))
			v, got := metricValue(m)
			if err != nil || i < 0 || i >= len(ms) || !got {
				ok = false
				break
			}
			vals[i] = int64(v)
		}
		if ok {
			out[name] = vals
		}
	}
	return out
}

// ParseNodeExporter maps a node_exporter metrics page (Prometheus text format)
// to a Sample's Host figures; see NodeExporterSample.
func ParseNodeExporter(r io.Reader) (Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Sample{}, fmt.Errorf("parse metrics: %w", err)
	}
	return NodeExporterSample(fams), nil
}

// NodeExporterSample maps node_exporter's series among fams onto a Sample's
// Host figures (the same keys the procfs sampler fills). The main figures the
// page lacks are listed in Unavailable; a page with no node_* series at all
// gives an empty Host map. The Sample's Time is left for the caller to set.
func NodeExporterSample(fams map[string]*dto.MetricFamily) Sample {
	s := Sample{Host: map[string]float64{}}
	for name, key := range nodeGauges {
		if v, ok := familySum(fams[name]); ok {
			s.Host[key] = v
		}
	}
	for name, key := range nodeMicros {
		if v, ok := familySum(fams[name]); ok {
			s.Host[key] = v * 1e6
		}
	}
	if drop, ok := familySum(fams["node_nf_conntrack_stat_drop"]); ok {
		early, _ := familySum(fams["node_nf_conntrack_stat_early_drop"])
		s.Host[HostConntrackDrop] = drop + early
	}
	// Limits from the sysctl collector, when it exports them.
	set := NodeExporterSettings(fams)
	if r, ok := set["net.ipv4.ip_local_port_range"].([]int64); ok && len(r) == 2 && r[1] >= r[0] {
		s.Host[HostPortRangeWidth] = float64(r[1] - r[0] + 1)
	}
	if b, ok := set["net.ipv4.tcp_max_tw_buckets"].(int64); ok {
		s.Host[HostMaxTWBuckets] = float64(b)
	}
	// node_exporter's ethtool collector (--collector.ethtool), summed over
	// the host's devices.
	for _, stat := range ENAAllowances {
		if v, ok := familySum(fams["node_ethtool_"+stat]); ok {
			s.Host[ENAKey(stat)] = v
		}
	}
	if fam := fams["node_cpu_seconds_total"]; fam != nil {
		cpus := map[string]bool{}
		var busy, total, steal float64
		for _, m := range fam.GetMetric() {
			v, ok := metricValue(m)
			if !ok {
				continue
			}
			mode := labelValue(m, "mode")
			cpus[labelValue(m, "cpu")] = true
			// guest time is already counted in user time.
			if strings.HasPrefix(mode, "guest") {
				continue
			}
			total += v
			if mode != "idle" && mode != "iowait" {
				busy += v
			}
			if mode == "steal" {
				steal += v
			}
		}
		if len(cpus) > 0 {
			s.Host[HostCPUBusy] = busy
			s.Host[HostCPUTotal] = total
			s.Host[HostCPUSteal] = steal
			s.Host[HostCPUs] = float64(len(cpus))
		}
	}
	for _, k := range []string{HostCPUBusy, HostMemTotal, HostFileNr, HostTCPTW, HostListenOverflows, HostConntrackCount, HostPSICPUSome} {
		if _, ok := s.Host[k]; !ok {
			s.Unavailable = append(s.Unavailable, k+": not exported")
		}
	}
	return s
}

// Series of process-exporter (namedprocess_namegroup_*, one group per
// configured process name) and of the client libraries' standard process
// collector (the process serving the page).
const (
	peOpenFDs   = "namedprocess_namegroup_open_filedesc"
	peWorstFD   = "namedprocess_namegroup_worst_fd_ratio"
	peCPU       = "namedprocess_namegroup_cpu_seconds_total"
	peMemory    = "namedprocess_namegroup_memory_bytes"
	peNumProcs  = "namedprocess_namegroup_num_procs"
	procOpenFDs = "process_open_fds"
	procMaxFDs  = "process_max_fds"
	procCPU     = "process_cpu_seconds_total"
	procRSS     = "process_resident_memory_bytes"
)

// ExporterProcs returns the processes a metrics page describes, on side:
//
//   - each process-exporter group, named after its groupname. Its open files
//     are the group's sum and its limit is scaled so that FDs/FDLimit is the
//     group's worst_fd_ratio (exact for a group of one process): the ratio is
//     what fd-process judges. Its CPU time is user+system; its CPU count is
//     unknown (CPUs 0), so no CPU share is derived from it.
//   - the process serving the page, from the standard process_open_fds,
//     process_max_fds, process_cpu_seconds_total and
//     process_resident_memory_bytes, named self.
func ExporterProcs(fams map[string]*dto.MetricFamily, self, side string) []ProcSample {
	groups := map[string]*ProcSample{}
	var order []string
	group := func(name string) *ProcSample {
		if p, ok := groups[name]; ok {
			return p
		}
		p := &ProcSample{Name: name, Side: side}
		groups[name] = p
		order = append(order, name)
		return p
	}
	ratio := map[string]float64{}
	each := func(fam string, f func(m *dto.Metric, group string, v float64)) {
		for _, m := range fams[fam].GetMetric() {
			if v, ok := metricValue(m); ok && !math.IsNaN(v) {
				f(m, labelValue(m, "groupname"), v)
			}
		}
	}
	each(peOpenFDs, func(_ *dto.Metric, g string, v float64) { group(g).FDs = int(v) })
	each(peWorstFD, func(_ *dto.Metric, g string, v float64) { group(g); ratio[g] = v })
	each(peCPU, func(_ *dto.Metric, g string, v float64) { group(g).CPUSeconds += v })
	each(peMemory, func(m *dto.Metric, g string, v float64) {
		if labelValue(m, "memtype") == "resident" {
			group(g).RSS = int64(v)
		}
	})
	each(peNumProcs, func(_ *dto.Metric, g string, v float64) {
		if v == 0 {
			group(g).Err = "no process of the group is running"
		}
	})
	var out []ProcSample
	for _, g := range order {
		p := groups[g]
		if r := ratio[g]; r > 0 && p.FDs > 0 {
			p.FDLimit = int64(math.Round(float64(p.FDs) / r))
		}
		out = append(out, *p)
	}
	if fds, ok := familySum(fams[procOpenFDs]); ok {
		p := ProcSample{Name: self, Side: side, FDs: int(fds)}
		if max, ok := familySum(fams[procMaxFDs]); ok && max > 0 && max < math.MaxInt64 {
			p.FDLimit = int64(max)
		}
		if cpu, ok := familySum(fams[procCPU]); ok {
			p.CPUSeconds = cpu
		}
		if rss, ok := familySum(fams[procRSS]); ok {
			p.RSS = int64(rss)
		}
		out = append(out, p)
	}
	return out
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func familySum(fam *dto.MetricFamily) (float64, bool) {
	if fam == nil || len(fam.GetMetric()) == 0 {
		return 0, false
	}
	var sum float64
	found := false
	for _, m := range fam.GetMetric() {
		if v, ok := metricValue(m); ok {
			sum += v
			found = true
		}
	}
	return sum, found
}

func metricValue(m *dto.Metric) (float64, bool) {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue(), true
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue(), true
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}
