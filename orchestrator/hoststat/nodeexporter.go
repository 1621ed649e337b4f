package hoststat

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// NodeExporter samples a host through a node_exporter's /metrics (text format).
// It fills the same Host keys as the procfs Sampler; per-process figures are not
// available from node_exporter.
type NodeExporter struct {
	// URL is the full address of the metrics page, e.g. http://10.0.0.5:9100/metrics.
	URL    string
	Client *http.Client
	// Now stamps samples (default: time.Now).
	Now func() time.Time
}

// maxScrape bounds the size of a metrics page read into memory.
const maxScrape = 32 << 20

// Sample scrapes the node_exporter once.
func (n *NodeExporter) Sample(ctx context.Context) (Sample, error) {
	client := n.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL, nil)
	if err != nil {
		return Sample{}, fmt.Errorf("node_exporter: build request for %s: %w", n.URL, err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return Sample{}, fmt.Errorf("node_exporter: scrape %s: %w", n.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return Sample{}, fmt.Errorf("node_exporter: scrape %s: status %s", n.URL, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/html") {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
		return Sample{}, fmt.Errorf("node_exporter: %s is an HTML page, not metrics (wrong path?)", n.URL)
	}
	now := time.Now
	if n.Now != nil {
		now = n.Now
	}
	s, err := ParseNodeExporter(io.LimitReader(resp.Body, maxScrape))
	if err != nil {
		return Sample{}, fmt.Errorf("node_exporter: %s: %w", n.URL, err)
	}
	s.Time = now()
	return s, nil
}

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

// ParseNodeExporter maps a node_exporter metrics page (Prometheus text format) to
// a Sample's Host figures. Figures the page lacks are listed in Unavailable.
func ParseNodeExporter(r io.Reader) (Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Sample{}, fmt.Errorf("parse metrics: %w", err)
	}
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
	if fam := fams["node_cpu_seconds_total"]; fam != nil {
		cpus := map[string]bool{}
		var busy, total float64
		for _, m := range fam.GetMetric() {
			v, ok := metricValue(m)
			if !ok {
				continue
			}
			mode := ""
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "mode":
					mode = l.GetValue()
				case "cpu":
					cpus[l.GetValue()] = true
				}
			}
			// guest time is already counted in user time.
			if strings.HasPrefix(mode, "guest") {
				continue
			}
			total += v
			if mode != "idle" && mode != "iowait" {
				busy += v
			}
		}
		if len(cpus) > 0 {
			s.Host[HostCPUBusy] = busy
			s.Host[HostCPUTotal] = total
			s.Host[HostCPUs] = float64(len(cpus))
		}
	}
	for _, k := range []string{HostCPUBusy, HostMemTotal, HostFileNr, HostTCPTW, HostListenOverflows, HostConntrackCount, HostPSICPUSome} {
		if _, ok := s.Host[k]; !ok {
			s.Unavailable = append(s.Unavailable, k+": not exported")
		}
	}
	return s, nil
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
