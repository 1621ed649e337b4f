package diagnose

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

var (
	t0        = time.Date(2026, 11, 27, 6, 30, 0, 0, time.UTC)
	targets   = []hoststat.Proc{{Name: "eventbus", Pid: 4242}}
	generator = []hoststat.Proc{{Name: "loadramp", Pid: 4343}}
)

// window samples testdata/base then testdata/<name>, one second apart.
func window(t *testing.T, name string) (hoststat.Summary, map[string]any) {
	t.Helper()
	var samples []hoststat.Sample
	for i, dir := range []string{"base", name} {
		root := filepath.Join("testdata", dir, "proc")
		at := t0.Add(time.Duration(i) * time.Second)
		s, err := hoststat.New(root, hoststat.WithClock(func() time.Time { return at })).Sample(context.Background(), targets, generator)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Unavailable) > 0 {
			t.Fatalf("%s: unavailable %v", root, s.Unavailable)
		}
		samples = append(samples, s)
	}
	return hoststat.Window(samples), hoststat.Settings(filepath.Join("testdata", name, "proc"))
}

func rulesOf(fs []result.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule+"/"+f.Side)
	}
	return out
}

// TestRulesOnFixtures runs every rule on a fixture tree captured from this
// machine's /proc and edited to show that case.
func TestRulesOnFixtures(t *testing.T) {
	tests := []struct {
		fixture   string
		genErrors map[string]int64
		want      []string // rule/side of every finding
		observed  string   // of the first finding
		evidence  string   // in the first finding's evidence
		setting   string   // in the first finding's setting
		genSide   bool
	}{
		{fixture: "healthy"},
		{fixture: "fd-process", want: []string{"fd-process/target"}, observed: "63 of 64",
			evidence: "fds 63 of limit 64 (/proc/4242/limits)", setting: "RLIMIT_NOFILE (systemd LimitNOFILE)"},
		{fixture: "fd-system", want: []string{"fd-system/"}, observed: "2465900 of 2466160",
			evidence: "file handles 2465900 of fs.file-max 2466160", setting: "fs.file-max (now 2466160)"},
		{fixture: "listen-overflow", want: []string{"listen-overflow/target"}, observed: "57 overflows",
			evidence: "ListenOverflows +57", setting: "net.core.somaxconn (now 4096)"},
		{fixture: "syn-backlog", want: []string{"syn-backlog/target"}, observed: "3 SYNs dropped, 12 answered with cookies",
			evidence: "TCPReqQFullDrop +3", setting: "net.ipv4.tcp_max_syn_backlog"},
		{fixture: "time-wait", want: []string{"time-wait/"}, observed: "5 TIME_WAIT sockets dropped",
			evidence: "TIME_WAIT sockets 20000 vs 28232 local ports", setting: "net.ipv4.tcp_tw_reuse"},
		{fixture: "ephemeral-ports", want: []string{"ephemeral-ports/", "time-wait/"}, observed: "26900 sockets for 28232 ports",
			evidence: "TCP sockets in use 900 + TIME_WAIT 26000 vs 28232 local ports", setting: "net.ipv4.ip_local_port_range (now 32768 60999)"},
		{fixture: "conntrack-full", want: []string{"conntrack-full/"}, observed: "262100 of 262144",
			evidence: "nf_conntrack_max 262144", setting: "net.netfilter.nf_conntrack_max (now 262144)"},
		{fixture: "cpu-saturation", want: []string{"cpu-saturation/target", "cpu-saturation/"}, observed: "95% of 2 CPUs",
			evidence: "eventbus (pid 4242) used 0.95 of its 2 CPUs", setting: "instance size"},
		// The busy host comes last: the generator's own CPU share names the cause.
		{fixture: "generator-saturated", want: []string{"generator-saturated/generator", "cpu-saturation/"},
			observed: "94% of its CPUs", evidence: "generator processes used 0.94", genSide: true},
		{fixture: "memory-pressure", want: []string{"memory-pressure/"}, observed: "391 MiB of 24105 MiB available",
			evidence: "MemAvailable fell to 1.6% of MemTotal"},
		{fixture: "healthy", genErrors: map[string]int64{metrics.ClassEADDRNOTAVAIL: 120, "http_5xx": 4},
			want: []string{"ephemeral-ports/generator"}, observed: "120 EADDRNOTAVAIL errors",
			evidence: "120 connects failed", setting: "net.ipv4.ip_local_port_range (now 32768 60999)", genSide: true},
		{fixture: "healthy", genErrors: map[string]int64{metrics.ClassEMFILE: 7},
			want: []string{"fd-process/generator"}, observed: "7 EMFILE errors", evidence: "7 requests failed with EMFILE", genSide: true},
	}
	for _, tt := range tests {
		name := tt.fixture
		if tt.genErrors != nil {
			name += "+generator-errors"
		}
		t.Run(name, func(t *testing.T) {
			sum, settings := window(t, tt.fixture)
			fs := Diagnose(Input{Host: "local", Summary: sum, Settings: settings, GeneratorErrors: tt.genErrors})
			if got := rulesOf(fs); !slices.Equal(got, tt.want) {
				t.Fatalf("findings %v, want %v\n%+v", got, tt.want, fs)
			}
			if GeneratorSide(fs) != tt.genSide {
				t.Errorf("GeneratorSide = %v, want %v", !tt.genSide, tt.genSide)
			}
			for _, f := range fs {
				if f.Host != "local" || len(f.Evidence) == 0 || f.Setting == "" || f.Fix == "" || f.Observed == "" || f.Resource == "" {
					t.Errorf("incomplete finding %+v", f)
				}
			}
			if len(fs) == 0 {
				return
			}
			f := fs[0]
			if f.Observed != tt.observed {
				t.Errorf("observed %q, want %q", f.Observed, tt.observed)
			}
			if !strings.Contains(strings.Join(f.Evidence, "\n"), tt.evidence) {
				t.Errorf("evidence %q, want it to contain %q", f.Evidence, tt.evidence)
			}
			if !strings.Contains(f.Setting, tt.setting) {
				t.Errorf("setting %q, want it to contain %q", f.Setting, tt.setting)
			}
		})
	}
}

// TestRulesFromLogs scans the log fixtures as the orchestrator does and checks
// each signature becomes a finding with its line as evidence.
func TestRulesFromLogs(t *testing.T) {
	sources := []Source{
		{Name: "eventbus output", Path: "testdata/logs/eventbus.log", Process: "eventbus", Side: hoststat.SideTarget},
		{Name: "nginx error.log", Path: "testdata/logs/nginx-error.log", Process: "nginx", Side: hoststat.SideTarget},
		{Name: "kernel", Path: "testdata/logs/kern.log"},
		{Name: "generator output", Path: "testdata/logs/generator.log", Process: "loadramp", Side: hoststat.SideGenerator},
		{Name: "missing", Path: "testdata/logs/nope.log"},
	}
	matches, skipped := NewScanner().Scan(context.Background(), sources)
	if len(skipped) != 1 || !strings.HasPrefix(skipped[0], "missing: open") {
		t.Errorf("skipped = %v", skipped)
	}
	sum, settings := window(t, "healthy")
	fs := Diagnose(Input{Host: "local", Summary: sum, Settings: settings, Logs: matches})
	want := []string{
		// the target's findings, then the generator's, then host-wide ones
		"ephemeral-ports/target", "fd-process/target", "fd-process/target", "nginx-worker-connections/target", "syn-backlog/target",
		"ephemeral-ports/generator", "conntrack-full/", "fd-system/", "memory-pressure/",
	}
	if got := rulesOf(fs); !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
	byKey := map[string]result.Finding{}
	for _, f := range fs {
		byKey[f.Rule+"/"+f.Process] = f
	}
	checks := []struct {
		key, observed, setting, evidence string
	}{
		// 3 of 1024 files is not near the limit: the count of errors is what was seen.
		{"fd-process/eventbus", "4 EMFILE errors", "RLIMIT_NOFILE", "accept4: too many open files; retrying in 5ms"},
		{"fd-process/nginx", "2 EMFILE errors", "worker_rlimit_nofile", "accept4() failed (24: Too many open files)"},
		{"nginx-worker-connections/nginx", "2 log lines: worker_connections are not enough", "worker_connections", "512 worker_connections are not enough"},
		{"ephemeral-ports/nginx", "1 EADDRNOTAVAIL errors", "ip_local_port_range", "(99: Cannot assign requested address)"},
		{"conntrack-full/", "2 kernel table-full messages", "nf_conntrack_max", "nf_conntrack: nf_conntrack: table full"},
		{"syn-backlog/", "1 kernel SYN flooding messages", "tcp_max_syn_backlog", "Possible SYN flooding on port 127.0.0.1:8080"},
		{"memory-pressure/", "1 OOM messages", "memory", "Killed process 4242 (eventbus)"},
	}
	for _, c := range checks {
		f, ok := byKey[c.key]
		if !ok {
			t.Errorf("no finding %s", c.key)
			continue
		}
		if f.Observed != c.observed || !strings.Contains(f.Setting, c.setting) || !strings.Contains(strings.Join(f.Evidence, "\n"), c.evidence) {
			t.Errorf("%s = observed %q setting %q evidence %q; want %q, %q, %q", c.key, f.Observed, f.Setting, f.Evidence, c.observed, c.setting, c.evidence)
		}
	}
	if ev := byKey["fd-process/eventbus"].Evidence; len(ev) != 4 || ev[3] != "4 matching lines in eventbus output" {
		t.Errorf("eventbus evidence: want 3 lines and a count, got %q", ev)
	}
	// fd-system: the kernel's file-max line and the generator's ENFILE.
	if ev := strings.Join(byKey["fd-system/"].Evidence, "\n"); !strings.Contains(ev, "VFS: file-max limit 65536 reached") {
		t.Errorf("fd-system evidence %q", ev)
	}
}

func TestNoEvidenceNoFinding(t *testing.T) {
	// Zero-value inputs, empty maps and matches with no lines must not invent findings.
	inputs := []Input{
		{},
		{Summary: hoststat.Window(nil)},
		{Logs: []LogMatch{{Rule: RuleFDProcess, Count: 0}}, GeneratorErrors: map[string]int64{metrics.ClassEMFILE: 0}},
	}
	for i, in := range inputs {
		if fs := Diagnose(in); len(fs) != 0 {
			t.Errorf("input %d: findings %+v", i, fs)
		}
	}
}

// TestFleetLogOfNginx: nginx's error.log listed in a fleet's logs belongs to no
// process; its findings are still nginx's, with nginx's settings, and a busy
// host does not hide them.
func TestFleetLogOfNginx(t *testing.T) {
	sum, settings := window(t, "cpu-saturation")
	logs := []LogMatch{
		{Rule: RuleFDProcess, Source: "/runs/x/nginx-error.log", Side: hoststat.SideTarget, Count: 3,
			Lines: []string{"2026/11/27 07:50:58 [crit] 27971#27971: accept4() failed (24: Too many open files)"}},
		{Rule: RuleNginxWorkerConns, Source: "/runs/x/nginx-error.log", Side: hoststat.SideTarget, Count: 1,
			Lines: []string{"2026/11/27 07:49:37 [warn] 24627#24627: 256 worker_connections are not enough, reusing connections"}},
	}
	fs := Diagnose(Input{Host: "local", Summary: sum, Settings: settings, Logs: logs})
	want := []string{"cpu-saturation/target", "fd-process/target", "nginx-worker-connections/target", "cpu-saturation/"}
	if got := rulesOf(fs); !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
	for _, f := range fs[1:3] {
		if f.Process != "nginx" {
			t.Errorf("%s: process %q, want nginx", f.Rule, f.Process)
		}
	}
	if fs[1].Setting != "worker_rlimit_nofile" || fs[1].Observed != "3 EMFILE errors" {
		t.Errorf("fd-process setting %q observed %q, want worker_rlimit_nofile and 3 EMFILE errors", fs[1].Setting, fs[1].Observed)
	}
}
