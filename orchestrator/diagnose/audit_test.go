package diagnose

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

func TestParseNginxConf(t *testing.T) {
	tests := []struct {
		name, text string
		want       NginxConf
	}{
		{"defaults", "events {}\nhttp { server { listen 80; } }", NginxConf{WorkerProcesses: 1, WorkerConnections: 512, Backlogs: []int{511}}},
		{"one line", "worker_processes 4;events{worker_connections 2048;}worker_rlimit_nofile 10000;",
			NginxConf{WorkerProcesses: 4, WorkerConnections: 2048, WorkerRlimitNofile: 10000}},
		{"comments and quotes", "# worker_connections 9;\nevents { worker_connections 100; } # trailing\nhttp { log_format x 'worker_connections 7;'; server { listen 1.2.3.4:80 backlog=64 default_server; location / { proxy_pass http://u; } } }",
			NginxConf{WorkerProcesses: 1, WorkerConnections: 100, Backlogs: []int{64}, Proxies: true}},
		{"auto and junk", "worker_processes auto; worker_connections x; worker_rlimit_nofile -1; {{;;}}",
			NginxConf{WorkerProcesses: 1, WorkerProcessesAuto: true, WorkerConnections: 512}},
		{"unterminated", "worker_processes 3", NginxConf{WorkerProcesses: 3, WorkerConnections: 512}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseNginxConf(tt.text); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseNginxConf(f *testing.F) {
	for _, p := range []string{"testdata/nginx/good.conf", "testdata/nginx/inverted.conf"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, text string) {
		c := ParseNginxConf(text)
		if c.WorkerProcesses < 1 || c.WorkerConnections < 1 || c.MaxConnections() < 1 {
			t.Fatalf("ParseNginxConf(%q) = %+v", text, c)
		}
	})
}

func TestAuditLimits(t *testing.T) {
	eventbus := []hoststat.Proc{{Name: "eventbus", Pid: 4242}}
	tests := []struct {
		name, root, conf string
		procs            []hoststat.Proc
		fileMax          string // rewrite fs.file-max in a copy of root
		warnings         []string
	}{
		{name: "no nginx", root: "testdata/base/proc", procs: eventbus},
		{name: "good funnel", root: "testdata/base/proc", conf: "testdata/nginx/good.conf", procs: eventbus},
		{name: "inverted funnel", root: "testdata/base/proc", conf: "testdata/nginx/inverted.conf", procs: eventbus, warnings: []string{
			"nginx asks for a listen backlog of 8192 but net.core.somaxconn is 4096",
			"nginx open files (worker_rlimit_nofile = 4096) are under twice worker_connections (4096)",
			"nginx may open 4096 upstream connections (2 workers x 4096 worker_connections / 2) but eventbus accepts only 1024 open files",
		}},
		{name: "file-max under the processes' limits", root: "testdata/base/proc", fileMax: "2000\n",
			procs: []hoststat.Proc{{Name: "eventbus", Pid: 4242}, {Name: "loadramp", Pid: 4343}}, warnings: []string{
				"the watched processes may open 21024 files together but fs.file-max is 2000",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.root
			if tt.fileMax != "" {
				root = filepath.Join(t.TempDir(), "proc")
				if err := os.CopyFS(root, os.DirFS(tt.root)); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, "sys/fs/file-max"), []byte(tt.fileMax), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			a, err := AuditLimits(context.Background(), root, tt.procs, tt.conf)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %d", a.Warnings, len(tt.warnings))
			}
			for i, w := range tt.warnings {
				if !strings.HasPrefix(a.Warnings[i], w) {
					t.Errorf("warning %d = %q, want prefix %q", i, a.Warnings[i], w)
				}
			}
			if a.Somaxconn != 4096 || a.ConntrackMax != 262144 || len(a.PortRange) != 2 || a.Procs[0].NoFile != 1024 {
				t.Errorf("audit = %+v", a)
			}
			st := a.Static()
			if st["net.ipv4.ip_local_port_range"] != "32768-60999" || st["nofile.eventbus"] != int64(1024) {
				t.Errorf("Static() = %v", st)
			}
			if tt.conf != "" && st["nginx.worker_connections"] == nil {
				t.Errorf("Static() lacks nginx: %v", st)
			}
			var out strings.Builder
			if err := a.Print(&out); err != nil {
				t.Fatal(err)
			}
			for _, want := range append([]string{"net.core.somaxconn", "eventbus (pid 4242)", "fs.file-max"}, tt.warnings...) {
				if !strings.Contains(out.String(), want) {
					t.Errorf("Print output lacks %q:\n%s", want, out.String())
				}
			}
			if len(tt.warnings) == 0 && !strings.Contains(out.String(), "no inversion found") {
				t.Errorf("Print output:\n%s", out.String())
			}
		})
	}
	if _, err := AuditLimits(context.Background(), "testdata/base/proc", nil, "testdata/nginx/missing.conf"); err == nil {
		t.Error("missing nginx.conf: want error")
	}
}

// TestAuditLive audits this machine for this test process.
func TestAuditLive(t *testing.T) {
	if _, err := os.Stat("/proc/self/limits"); err != nil {
		t.Skip("no procfs")
	}
	a, err := AuditLimits(context.Background(), "/proc", []hoststat.Proc{{Name: "self", Pid: os.Getpid()}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if a.Somaxconn <= 0 || a.FileMax <= 0 || len(a.Procs) != 1 || a.Procs[0].Err != "" || a.Procs[0].OpenFDs < 3 {
		t.Errorf("live audit = %+v", a)
	}
	var out strings.Builder
	_ = a.Print(&out)
	t.Logf("\n%s", out.String())
}
