package observe

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
)

const nginxBin = "/usr/sbin/nginx"

// startNginx runs a real nginx with worker_connections 128 and Debian's
// default error-log level, on a free loopback port, until the test ends. It
// returns the port and the master's pid once a worker is up.
func startNginx(t *testing.T) (port, pid int, conf string) {
	t.Helper()
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skipf("nginx not installed (%v): scripts/test-deps.sh installs it", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	conf = filepath.Join(dir, "nginx.conf")
	body := fmt.Sprintf(`worker_processes 1;
pid nginx.pid;
error_log error.log;
events { worker_connections 128; }
http {
    access_log off;
    client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp; uwsgi_temp_path tmp; scgi_temp_path tmp;
    server { listen 127.0.0.1:%d; location / { return 200 "ok\n"; } }
}
`, port)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginxBin, "-p", dir+"/", "-c", "nginx.conf", "-e", "error.log", "-g", "daemon off;")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			if len(hoststat.Children("", cmd.Process.Pid)) > 0 {
				break
			}
		}
		select {
		case <-done:
			e, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %s", e)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not up on port %d with a worker after 10 s", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return port, cmd.Process.Pid, conf
}

// A static target names no process: its nginx is found from the port it
// listens on, its limits and configuration audited, and a window judges the
// connections the client could not hold against its worker_connections.
func TestLocateAuditAndWorkerConnectionsOfAStaticNginx(t *testing.T) {
	port, pid, conf := startNginx(t)
	h := New("local", WithInterval(100*time.Millisecond))
	ctx := context.Background()

	found, local, err := h.Locate(ctx, []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("localhost:%d", port)})
	if err != nil {
		t.Fatal(err)
	}
	if !local || len(found) != 1 || found[0].Pid != pid || found[0].Name != "nginx" {
		t.Fatalf("Locate = %+v, local %v; want the nginx master %d", found, local, pid)
	}
	// Nothing here listens on an address of another host.
	if found, local, _ := h.Locate(ctx, []string{"192.0.2.1:80"}); local || len(found) != 0 {
		t.Errorf("Locate(192.0.2.1:80) = %+v, local %v: want nothing, elsewhere", found, local)
	}

	limits, _, err := h.Audit(ctx, found)
	if err != nil {
		t.Fatal(err)
	}
	if limits["nginx.worker_connections"] != 128 {
		t.Errorf("audit %v: want nginx.worker_connections 128 from %s", limits, conf)
	}

	w, err := h.Start(ctx, Spec{Target: found})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// What the engine saw: 256 asked, about half held, nearly every request
	// on a reopened connection. The error log (level error) says nothing.
	_, findings := w.StopWith(Facts{
		Params:  map[string]float64{"connections": 256},
		Metrics: map[string]float64{metrics.ConnectionsHeldRatio: 0.49, metrics.ConnectionsHeldPeak: 125, metrics.ConnectionsReopenedRatio: 0.97},
	})
	var ev string
	for _, f := range findings {
		if f.Rule == "nginx-worker-connections" && f.Side == "target" && f.LimitReached {
			ev = strings.Join(f.Evidence, "\n")
		}
	}
	if !strings.Contains(ev, "worker_connections 128") || !strings.Contains(ev, conf) {
		t.Errorf("findings %+v: want nginx-worker-connections naming worker_connections 128 from %s", findings, conf)
	}
}
