package hoststat

import (
	"bytes"
	"os"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestParseNodeExporterFixture(t *testing.T) {
	f, err := os.Open("testdata/node_exporter.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := ParseNodeExporter(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		HostCPUs: 2, HostFileNr: 811, HostFileMax: 2466160, HostTCPInUse: 4, HostTCPTW: 4,
		HostListenOverflows: 12, HostListenDrops: 0, HostReqQFullDrop: 0, HostReqQFullDoCookies: 0,
		HostConntrackCount: 0, HostConntrackMax: 262144, HostConntrackDrop: 0,
		HostMemTotal: 2.527602688e+10, HostMemAvailable: 2.4806940672e+10,
		HostPSICPUSome: 62.495358e6, HostPSIMemoryFull: 0,
		HostCPUBusy:  75.87 + 9.26 + 50.82 + 0.88 + 89.5 + 9.34 + 65.55 + 2.29 + 1.5,
		HostCPUTotal: 75.87 + 9.26 + 50.82 + 0.88 + 89.5 + 9.34 + 65.55 + 2.29 + 1.5 + 296.15 + 0.9 + 260.88 + 6.35,
		HostCPUSteal: 1.5,
	}
	for k, v := range want {
		if got, ok := s.Host[k]; !ok || !nearRel(got, v) {
			t.Errorf("Host[%q] = %v, %v; want %v", k, got, ok, v)
		}
	}
	if len(s.Unavailable) != 0 {
		t.Errorf("Unavailable = %v", s.Unavailable)
	}
}

func nearRel(a, b float64) bool {
	if b == 0 {
		return a == 0
	}
	d := (a - b) / b
	return d < 1e-9 && d > -1e-9
}

func TestParseNodeExporterErrors(t *testing.T) {
	tests := []struct {
		name, in string
		wantErr  bool
		missing  string
	}{
		{"empty page", "", false, HostCPUBusy},
		{"bad line", "node_filefd_allocated{ 1\n", true, ""},
		{"only fds", "node_filefd_allocated 3\nnode_filefd_maximum 10\n", false, HostTCPTW},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseNodeExporter(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want err %v", err, tt.wantErr)
			}
			if tt.missing != "" && !strings.Contains(strings.Join(s.Unavailable, ";"), tt.missing) {
				t.Errorf("Unavailable = %v, want %s listed", s.Unavailable, tt.missing)
			}
		})
	}
}

func FuzzParseNodeExporter(f *testing.F) {
	b, err := os.ReadFile("testdata/node_exporter.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := ParseNodeExporter(bytes.NewReader(in))
		if err == nil && s.Host == nil {
			t.Fatal("nil Host without error")
		}
	})
}

func parseText(t *testing.T, page string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func TestNodeExporterENAAllowances(t *testing.T) {
	// node_exporter --collector.ethtool on an AWS instance: one series per
	// ENA device, untyped, as its ethtool collector names them.
	fams := parseText(t, `node_ethtool_bw_in_allowance_exceeded{device="ens5"} 3
node_ethtool_bw_in_allowance_exceeded{device="ens6"} 4
node_ethtool_pps_allowance_exceeded{device="ens5"} 120
node_ethtool_received_bytes_total{device="ens5"} 1e9
`)
	s := NodeExporterSample(fams)
	if got := s.Host[ENAKey("bw_in_allowance_exceeded")]; got != 7 {
		t.Errorf("bw_in = %v, want 7 (summed over devices)", got)
	}
	if got := s.Host[ENAKey("pps_allowance_exceeded")]; got != 120 {
		t.Errorf("pps = %v", got)
	}
	if _, ok := s.Host[ENAKey("conntrack_allowance_exceeded")]; ok {
		t.Error("a counter the page lacks is present")
	}
	if !IsCounter(ENAKey("pps_allowance_exceeded")) {
		t.Error("ENA allowances are not counters")
	}
	if NodeSeries[ENAKey("pps_allowance_exceeded")] != "node_ethtool_pps_allowance_exceeded" ||
		NodeSeries[HostListenOverflows] != "node_netstat_TcpExt_ListenOverflows" {
		t.Errorf("NodeSeries = %v", NodeSeries)
	}
}

func TestExporterProcs(t *testing.T) {
	// process-exporter 0.7 with -procnames eventbus,nginx, and the serving
	// process's own process_* series (the client libraries' collector).
	fams := parseText(t, `namedprocess_namegroup_num_procs{groupname="eventbus"} 1
namedprocess_namegroup_open_filedesc{groupname="eventbus"} 61
namedprocess_namegroup_worst_fd_ratio{groupname="eventbus"} 0.953125
namedprocess_namegroup_cpu_seconds_total{groupname="eventbus",mode="system"} 1.5
namedprocess_namegroup_cpu_seconds_total{groupname="eventbus",mode="user"} 2.25
namedprocess_namegroup_memory_bytes{groupname="eventbus",memtype="resident"} 1.2e+07
namedprocess_namegroup_memory_bytes{groupname="eventbus",memtype="virtual"} 9e+08
namedprocess_namegroup_num_procs{groupname="nginx"} 0
namedprocess_namegroup_open_filedesc{groupname="nginx"} 0
namedprocess_namegroup_worst_fd_ratio{groupname="nginx"} 0
process_open_fds 9
process_max_fds 1024
process_cpu_seconds_total 0.5
process_resident_memory_bytes 2e+07
`)
	got := ExporterProcs(fams, "127.0.0.1:9256", SideTarget)
	if len(got) != 3 {
		t.Fatalf("ExporterProcs = %+v", got)
	}
	bus := got[0]
	if bus.Name != "eventbus" || bus.Side != SideTarget || bus.FDs != 61 || bus.FDLimit != 64 || bus.CPUSeconds != 3.75 || bus.RSS != 12e6 || bus.Err != "" {
		t.Errorf("eventbus group = %+v", bus)
	}
	if ng := got[1]; ng.Name != "nginx" || ng.Err == "" || ng.FDLimit != 0 {
		t.Errorf("nginx group (not running) = %+v", ng)
	}
	if self := got[2]; self.Name != "127.0.0.1:9256" || self.FDs != 9 || self.FDLimit != 1024 || self.CPUSeconds != 0.5 || self.RSS != 2e7 {
		t.Errorf("serving process = %+v", self)
	}
	// The window and the fd ratio diagnosis reads, as for /proc.
	sum := Window([]Sample{{Procs: got}})
	if r := sum.Procs[0].FDRatio(); r < 0.95 || r > 0.96 {
		t.Errorf("eventbus FDRatio = %v", r)
	}
	// Unlimited (the collector exports the largest int64) is no limit.
	inf := ExporterProcs(parseText(t, "process_open_fds 9\nprocess_max_fds 9.223372036854776e+18\n"), "x", SideTarget)
	if len(inf) != 1 || inf[0].FDLimit != 0 {
		t.Errorf("unlimited: %+v", inf)
	}
}

func TestNodeExporterSysctls(t *testing.T) {
	// node_exporter --collector.sysctl --collector.sysctl.include=... (1.5).
	fams := parseText(t, `node_sysctl_fs_file_max 2.466174e+06
node_sysctl_net_core_somaxconn 4
node_sysctl_net_ipv4_ip_local_port_range{index="0"} 32768
node_sysctl_net_ipv4_ip_local_port_range{index="1"} 60999
node_sysctl_net_ipv4_tcp_max_tw_buckets 4096
`)
	set := NodeExporterSettings(fams)
	if set["net.core.somaxconn"] != int64(4) || set["fs.file-max"] != int64(2466174) {
		t.Errorf("settings = %v", set)
	}
	if r, ok := set["net.ipv4.ip_local_port_range"].([]int64); !ok || len(r) != 2 || r[0] != 32768 || r[1] != 60999 {
		t.Errorf("port range = %v", set["net.ipv4.ip_local_port_range"])
	}
	s := NodeExporterSample(fams)
	if s.Host[HostPortRangeWidth] != 28232 || s.Host[HostMaxTWBuckets] != 4096 {
		t.Errorf("limits = %v", s.Host)
	}
}
