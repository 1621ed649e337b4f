package diagnose

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

func TestMatchLine(t *testing.T) {
	tests := []struct {
		line string
		want string // "" = no match
	}{
		{"http: Accept error: accept tcp 127.0.0.1:41234: accept4: too many open files; retrying in 5ms", RuleFDProcess},
		{"2026/11/27 06:32:41 [crit] 813#813: accept4() failed (24: Too many open files)", RuleFDProcess},
		{"[alert] 813#813: *10300 socket() failed (24: Too many open files) while connecting to upstream", RuleFDProcess},
		{"open /var/log/x: EMFILE", RuleFDProcess},
		{"java.net.SocketException: Too many open files", RuleFDProcess},
		{"dial tcp 127.0.0.1:8080: socket: too many open files in system", RuleFDSystem},
		{"[ 1023.410000] VFS: file-max limit 65536 reached", RuleFDSystem},
		{"accept4() failed (23: Too many open files in system)", RuleFDSystem},
		{"[alert] 812#812: 512 worker_connections are not enough", RuleNginxWorkerConns},
		{"[alert] 812#812: *1 1024 worker_connections are not enough while connecting to upstream", RuleNginxWorkerConns},
		{"dial tcp 127.0.0.1:8080: connect: cannot assign requested address", RuleEphemeralPorts},
		{"connect() to 127.0.0.1:41234 failed (99: Cannot assign requested address) while connecting to upstream", RuleEphemeralPorts},
		{"errno EADDRNOTAVAIL", RuleEphemeralPorts},
		{"TCP: request_sock_TCP: Possible SYN flooding on port 127.0.0.1:8080. Sending cookies.  Check SNMP counters.", RuleSynBacklog},
		{"TCP: Possible SYN flooding on port 80. Dropping request.  Check SNMP counters.", RuleSynBacklog},
		{"nf_conntrack: nf_conntrack: table full, dropping packet", RuleConntrackFull},
		{"nf_conntrack: table full, dropping packet", RuleConntrackFull},
		{"ip_conntrack: table full, dropping packet.", RuleConntrackFull},
		{"Out of memory: Killed process 4242 (eventbus) total-vm:1843212kB", RuleMemoryPressure},
		{"eventbus invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0", RuleMemoryPressure},
		{"upstream timed out (110: Connection timed out) while reading response header from upstream", ""},
		{"listening on 127.0.0.1:41234", ""},
		{"opened 1024 files", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, ok := MatchLine(tt.line)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("MatchLine(%q) = %q, %v; want %q", tt.line, got, ok, tt.want)
		}
	}
}

var knownRules = map[string]bool{
	RuleFDProcess: true, RuleFDSystem: true, RuleNginxWorkerConns: true, RuleListenOverflow: true,
	RuleSynBacklog: true, RuleEphemeralPorts: true, RuleTimeWait: true, RuleConntrackFull: true,
	RuleCPUSaturation: true, RuleMemoryPressure: true, RuleGeneratorSaturated: true,
}

func FuzzMatchLine(f *testing.F) {
	for _, name := range []string{"eventbus.log", "nginx-error.log", "kern.log", "generator.log"} {
		fh, err := os.Open("testdata/logs/" + name)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			f.Add(sc.Text())
		}
		fh.Close()
	}
	f.Fuzz(func(t *testing.T, line string) {
		rule, ok := MatchLine(line)
		if ok != (rule != "") || (ok && !knownRules[rule]) {
			t.Fatalf("MatchLine(%q) = %q, %v", line, rule, ok)
		}
		// A dmesg or syslog prefix does not change what a line is evidence of.
		if len(line) < maxLine-64 && !strings.ContainsAny(line, "\n") {
			if r2, _ := MatchLine("[ 1022.000110] host kernel: " + line); ok && r2 != rule {
				t.Fatalf("prefixed %q: %q, unprefixed %q", line, r2, rule)
			}
		}
	})
}
