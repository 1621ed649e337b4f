package diagnose

import (
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// exporterWindow is a window of two samples one second apart, as a host seen
// through node_exporter gives them.
func exporterWindow(a, b map[string]float64) hoststat.Summary {
	return hoststat.Window([]hoststat.Sample{{Time: t0, Host: a}, {Time: t0.Add(time.Second), Host: b}})
}

func TestENAAllowance(t *testing.T) {
	bwIn, pps, ct := hoststat.ENAKey("bw_in_allowance_exceeded"), hoststat.ENAKey("pps_allowance_exceeded"), hoststat.ENAKey("conntrack_allowance_exceeded")
	sum := exporterWindow(map[string]float64{bwIn: 10, pps: 5, ct: 0}, map[string]float64{bwIn: 10, pps: 905, ct: 0})
	fs := Diagnose(Input{Host: "10.0.0.5:9100", Summary: sum, Source: "node_exporter at 10.0.0.5:9100"})
	if len(fs) != 1 {
		t.Fatalf("findings = %+v", fs)
	}
	f := fs[0]
	if f.Rule != RuleENAAllowance || f.Host != "10.0.0.5:9100" || f.Side != "" || f.Setting != "instance type / size" || f.Observed != "over its pps allowance" {
		t.Errorf("finding = %+v", f)
	}
	want := "ethtool pps_allowance_exceeded +900 in the window (node_ethtool_pps_allowance_exceeded from node_exporter at 10.0.0.5:9100)"
	if len(f.Evidence) != 1 || f.Evidence[0] != want {
		t.Errorf("evidence = %q, want %q", f.Evidence, want)
	}

	only := exporterWindow(map[string]float64{ct: 1}, map[string]float64{ct: 3})
	if fs := Diagnose(Input{Host: "i-0abc", Summary: only}); len(fs) != 1 || !strings.Contains(fs[0].Fix, "track fewer connections") ||
		!strings.HasSuffix(fs[0].Evidence[0], "(ethtool -S)") {
		t.Errorf("conntrack allowance: %+v", fs)
	}
	if fs := Diagnose(Input{Host: "h", Summary: exporterWindow(map[string]float64{bwIn: 3}, map[string]float64{bwIn: 3})}); len(fs) != 0 {
		t.Errorf("no increase, findings %+v", fs)
	}
}

// TestExporterEvidence checks that a host seen through node_exporter is judged
// by the same rules and that its evidence names the series, not /proc.
func TestExporterEvidence(t *testing.T) {
	a := map[string]float64{hoststat.HostListenOverflows: 100, hoststat.HostListenDrops: 100, hoststat.HostFileNr: 10, hoststat.HostFileMax: 1000}
	b := map[string]float64{hoststat.HostListenOverflows: 160, hoststat.HostListenDrops: 160, hoststat.HostFileNr: 990, hoststat.HostFileMax: 1000}
	procs := []hoststat.ProcSample{{Name: "eventbus", Side: hoststat.SideTarget, FDs: 64, FDLimit: 64}}
	sum := hoststat.Window([]hoststat.Sample{{Time: t0, Host: a, Procs: procs}, {Time: t0.Add(time.Second), Host: b, Procs: procs}})
	fs := Diagnose(Input{Host: "10.9.0.2:9100", Summary: sum, Source: "node_exporter at 10.9.0.2:9100"})
	got := map[string]string{}
	for _, f := range fs {
		got[f.Rule] = strings.Join(f.Evidence, " | ")
		if f.Host != "10.9.0.2:9100" {
			t.Errorf("%s: host %q", f.Rule, f.Host)
		}
		if strings.Contains(got[f.Rule], "/proc") {
			t.Errorf("%s evidence names /proc: %s", f.Rule, got[f.Rule])
		}
	}
	for rule, want := range map[string]string{
		RuleListenOverflow: "TcpExt ListenOverflows +60, ListenDrops +60 in the window (node_netstat_TcpExt_ListenOverflows, node_netstat_TcpExt_ListenDrops from node_exporter at 10.9.0.2:9100)",
		RuleFDSystem:       "file handles 990 of fs.file-max 1000 (node_filefd_allocated, node_filefd_maximum from node_exporter at 10.9.0.2:9100)",
		RuleFDProcess:      "fds 64 of limit 64 (node_exporter at 10.9.0.2:9100)",
	} {
		if got[rule] != want {
			t.Errorf("%s evidence = %q, want %q", rule, got[rule], want)
		}
	}
}
