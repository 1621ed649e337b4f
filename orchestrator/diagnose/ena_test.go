package diagnose

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// enaWindow reads the ENA fixtures before.txt and after as the window's
// device deltas of eth0.
func enaWindow(t *testing.T, after string) []hoststat.NetDevDelta {
	t.Helper()
	read := func(name string) hoststat.NetDevStats {
		b, err := os.ReadFile(filepath.Join("testdata", "ena", name))
		if err != nil {
			t.Fatal(err)
		}
		c, err := hoststat.ParseEthtoolStats(string(b))
		if err != nil {
			t.Fatal(err)
		}
		return hoststat.NetDevStats{Device: "eth0", Driver: "ena", Counters: c}
	}
	return hoststat.NetDevWindow([]hoststat.NetDevStats{read("before.txt")}, []hoststat.NetDevStats{read(after)})
}

func TestENAAllowanceFixtures(t *testing.T) {
	cases := []struct {
		after    string
		want     bool
		lines    int
		evidence []string // substrings of the evidence
		setting  string
	}{
		{"after-pps.txt", true, 2, []string{"eth0 bw_out_allowance_exceeded +4410", "eth0 pps_allowance_exceeded +182730"}, "instance type or size"},
		{"after-conntrack.txt", true, 1, []string{"eth0 conntrack_allowance_exceeded +5120", "conntrack_allowance_available 0"}, "instance type or size"},
		{"after-linklocal.txt", true, 1, []string{"eth0 linklocal_allowance_exceeded +2048"}, "link-local"},
		{"after-quiet.txt", false, 0, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.after, func(t *testing.T) {
			fs := Diagnose(Input{Host: "i-0abc", Side: hoststat.SideTarget, NetDev: enaWindow(t, c.after)})
			var got []string
			for _, f := range fs {
				got = append(got, f.Rule)
			}
			if !c.want {
				if len(fs) != 0 {
					t.Fatalf("findings %v on a window without an allowance exceeded", got)
				}
				return
			}
			if len(fs) != 1 || fs[0].Rule != RuleENAAllowance {
				t.Fatalf("findings %v, want one %s", got, RuleENAAllowance)
			}
			f := fs[0]
			if f.Host != "i-0abc" || f.Side != hoststat.SideTarget {
				t.Errorf("finding names host %q side %q, want i-0abc target", f.Host, f.Side)
			}
			if !strings.Contains(f.Setting, c.setting) {
				t.Errorf("setting %q, want it to name %q", f.Setting, c.setting)
			}
			if len(f.Evidence) != c.lines {
				t.Fatalf("evidence %q, want %d lines", f.Evidence, c.lines)
			}
			all := strings.Join(f.Evidence, "\n")
			for _, e := range c.evidence {
				if !strings.Contains(all, e) {
					t.Errorf("evidence %q, want it to contain %q", f.Evidence, e)
				}
			}
			if f.Fix == "" || f.Observed == "" || f.Resource == "" {
				t.Errorf("finding lacks fix, observed or resource: %+v", f)
			}
		})
	}
}

// A device that could not be read, or a counter reset between the two
// readings, never makes a finding of its own.
func TestENAAllowanceUnreadableAndReset(t *testing.T) {
	before := []hoststat.NetDevStats{{Device: "eth0", Counters: map[string]uint64{ENAPPS: 500}}, {Device: "eth1", Err: "no such device"}}
	after := []hoststat.NetDevStats{{Device: "eth0", Counters: map[string]uint64{ENAPPS: 0}}, {Device: "eth1", Counters: map[string]uint64{ENAPPS: 9}}}
	fs := ENAAllowance("h", "", hoststat.NetDevWindow(before, after), nil)
	if len(fs) != 0 {
		t.Fatalf("findings %+v: a reset to 0 and an unreadable start are no evidence", fs)
	}
}

// exporterWindow is a window of two samples one second apart, as a host seen
// through node_exporter gives them.
func exporterWindow(a, b map[string]float64) hoststat.Summary {
	return hoststat.Window([]hoststat.Sample{{Time: t0, Host: a}, {Time: t0.Add(time.Second), Host: b}})
}

func TestENAAllowanceFromExporter(t *testing.T) {
	bwIn, pps, ct := hoststat.ENAKey("bw_in_allowance_exceeded"), hoststat.ENAKey("pps_allowance_exceeded"), hoststat.ENAKey("conntrack_allowance_exceeded")
	sum := exporterWindow(map[string]float64{bwIn: 10, pps: 5, ct: 0}, map[string]float64{bwIn: 10, pps: 905, ct: 0})
	fs := Diagnose(Input{Host: "10.0.0.5:9100", Summary: sum, Source: "node_exporter at 10.0.0.5:9100"})
	if len(fs) != 1 {
		t.Fatalf("findings = %+v", fs)
	}
	f := fs[0]
	if f.Rule != RuleENAAllowance || f.Host != "10.0.0.5:9100" || f.Side != "" || !strings.Contains(f.Setting, "instance type or size") || f.Observed != "allowance exceeded: packets per second" {
		t.Errorf("finding = %+v", f)
	}
	want := "all devices pps_allowance_exceeded +900 in the window (node_ethtool_pps_allowance_exceeded from node_exporter at 10.0.0.5:9100)"
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
		RuleFDProcess:      "fds 64 of limit 64 (process_open_fds, process_max_fds from node_exporter at 10.9.0.2:9100)",
	} {
		if got[rule] != want {
			t.Errorf("%s evidence = %q, want %q", rule, got[rule], want)
		}
	}
	// A process-exporter group names process-exporter's series.
	fs = Diagnose(Input{Host: "10.9.0.2:9256", Summary: sum, Source: "process-exporter at 10.9.0.2:9256"})
	if len(fs) == 0 || fs[0].Rule != RuleFDProcess || fs[0].Evidence[0] != "fds 64 of limit 64 (namedprocess_namegroup_open_filedesc, namedprocess_namegroup_worst_fd_ratio from process-exporter at 10.9.0.2:9256)" {
		t.Errorf("process-exporter findings %+v", fs)
	}
}
