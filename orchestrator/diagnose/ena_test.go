package diagnose

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	fs := ENAAllowance("h", "", hoststat.NetDevWindow(before, after))
	if len(fs) != 0 {
		t.Fatalf("findings %+v: a reset to 0 and an unreadable start are no evidence", fs)
	}
}
