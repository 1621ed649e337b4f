package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// procFixture writes a fake /proc entry: pid/cmdline (args joined by NUL),
// pid/stat with ppid, and pid/cwd as a link to cwd when given.
func procFixture(t *testing.T, root string, pid, ppid int, cmdline, cwd string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stat := strconv.Itoa(pid) + " (nginx) S " + strconv.Itoa(ppid) + " 1 1 0 -1\n"
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(cmdline), 0o644); err != nil {
		t.Fatal(err)
	}
	if cwd != "" {
		if err := os.Symlink(cwd, filepath.Join(dir, "cwd")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNginxConfFromCommandLine(t *testing.T) {
	root := t.TempDir()
	// nginx rewrites its title into one string with spaces and a NUL tail.
	procFixture(t, root, 100, 1, "nginx: master process /usr/sbin/nginx -p runs/x/ -c nginx.conf -e nginx-error.log -g daemon off;\x00\x00\x00", "/work")
	procFixture(t, root, 101, 100, "nginx: worker process\x00", "/work")
	// Before the title is set (or a build that keeps argv): NUL-separated.
	procFixture(t, root, 102, 1, "/usr/sbin/nginx\x00-c\x00/etc/nginx/alt.conf\x00", "/")
	procFixture(t, root, 103, 1, "nginx\x00-g\x00daemon off;\x00", "/")
	procFixture(t, root, 104, 1, "/usr/sbin/nginx\x00-p/srv/n\x00-cconf/n.conf\x00", "/")
	procFixture(t, root, 105, 1, "bin/eventbus\x00--listen\x00127.0.0.1:1\x00-c\x00x\x00", "/")
	procFixture(t, root, 106, 1, "/usr/sbin/nginx\x00-c\x00rel.conf\x00", "/")
	tests := []struct {
		pid  int
		conf string
		ok   bool
	}{
		{100, "/work/runs/x/nginx.conf", true},
		{101, "", true},
		{102, "/etc/nginx/alt.conf", true},
		{103, "/etc/nginx/nginx.conf", true},
		{104, "/srv/n/conf/n.conf", true},
		{105, "", false},
		{106, "/etc/nginx/rel.conf", true},
	}
	for _, tt := range tests {
		conf, ok, err := nginxConfOf(root, tt.pid)
		if err != nil || conf != tt.conf || ok != tt.ok {
			t.Errorf("pid %d: nginxConfOf = %q, %v, %v; want %q, %v", tt.pid, conf, ok, err, tt.conf, tt.ok)
		}
	}
	if _, _, err := nginxConfOf(root, 999); err == nil {
		t.Errorf("a missing pid gave no error")
	}
	if got := childrenOf(root, 100); !slices.Equal(got, []int{101}) {
		t.Errorf("childrenOf(100) = %v, want [101]", got)
	}
}

// TestPreflightRecordsLimits: a short real run records the limits funnel of
// the host and of the target process in run.json and report.json.
func TestPreflightRecordsLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	plan := busPlan(t, "preflight", "--nofile 300",
		"  - { name: rate, start: 100, max: 100 }\n  - { name: connections, start: 2, max: 2 }",
		"ramp:\n  warmup: 0s\n  hold: 1s\n  cooldown: 0s\ngates:\n  - errors.ratio < 0.5\n")
	o := runCLI(t, plan)
	if o.code != 0 {
		t.Fatalf("exit %d", o.code)
	}
	b, err := os.ReadFile(filepath.Join(o.dir, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var run struct {
		Limits map[string]any `json:"limits"`
	}
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	somaxconn, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		t.Fatal(err)
	}
	wantSomaxconn, _ := strconv.Atoi(strings.TrimSpace(string(somaxconn)))
	for name, limits := range map[string]map[string]any{"run.json": run.Limits, "report.json": asMap(o.report["limits"])} {
		if got := limits["nofile.eventbus"]; got != float64(300) {
			t.Errorf("%s limits nofile.eventbus = %v, want 300 (the event bus's --nofile): %v", name, got, limits)
		}
		if got := limits["net.core.somaxconn"]; got != float64(wantSomaxconn) {
			t.Errorf("%s limits net.core.somaxconn = %v, want %d", name, got, wantSomaxconn)
		}
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
