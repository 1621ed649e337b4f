// Package pubsubtest starts real publish/subscribe servers from Debian's
// packages on loopback, for tests: nginx with the nchan module (publish by
// POST; subscribe over Server-Sent Events or WebSocket) and nats-server
// (its WebSocket listener speaks the NATS text protocol). Each server runs
// in a directory of the test's own and is stopped when the test ends; a test
// is skipped when the server is not installed (scripts/test-deps.sh
// installs them).
package pubsubtest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Where Debian installs the servers.
const (
	NginxBin    = "/usr/sbin/nginx"
	NchanModule = "/usr/lib/nginx/modules/ngx_nchan_module.so"
	NATSBin     = "/usr/sbin/nats-server"
)

// readyTimeout bounds a server's start.
const readyTimeout = 15 * time.Second

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// NchanConf is the nginx.conf of an nchan server on port, its files under
// the directory nginx runs in (-p): publish with a POST to /pub/TOPIC,
// subscribe to /sub/TOPIC with an EventSource or a WebSocket. A subscriber
// gets only the messages published after it subscribed (first message
// newest). workerConnections and nofile (worker_rlimit_nofile, 0: inherited)
// are the limits a test ramps into.
func NchanConf(port, workerConnections, nofile int) string {
	rlimit := ""
	if nofile > 0 {
		rlimit = fmt.Sprintf("worker_rlimit_nofile %d;\n", nofile)
	}
	return fmt.Sprintf(`load_module %s;
user root root;
worker_processes 1;
%spid nginx.pid;
error_log nginx-error.log warn;
events { worker_connections %d; }
http {
    access_log off;
    client_body_temp_path tmp;
    proxy_temp_path tmp;
    fastcgi_temp_path tmp;
    uwsgi_temp_path tmp;
    scgi_temp_path tmp;
    server {
        listen 127.0.0.1:%d;
        location = /healthz { return 200 "ok\n"; }
        location ~ ^/pub/([A-Za-z0-9_-]+)$ {
            nchan_publisher;
            nchan_channel_id $1;
        }
        location ~ ^/sub/([A-Za-z0-9_-]+)$ {
            nchan_subscriber;
            nchan_channel_id $1;
            nchan_subscriber_first_message newest;
        }
    }
}
`, NchanModule, rlimit, workerConnections, port)
}

// Nchan is a running nchan server.
type Nchan struct {
	// URL is http://127.0.0.1:port.
	URL string
	// Dir is where it runs; ErrorLog its error log.
	Dir, ErrorLog string
}

// StartNchan starts nginx with the nchan module (NchanConf) and waits until
// it answers.
func StartNchan(t testing.TB, workerConnections, nofile int) *Nchan {
	t.Helper()
	for _, f := range []string{NginxBin, NchanModule} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("nginx with nchan is not installed (%v): scripts/test-deps.sh installs libnginx-mod-nchan", err)
		}
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(NchanConf(port, workerConnections, nofile)), 0o644); err != nil {
		t.Fatal(err)
	}
	n := &Nchan{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Dir: dir, ErrorLog: filepath.Join(dir, "nginx-error.log")}
	start(t, dir, []string{NginxBin, "-p", dir + "/", "-c", "nginx.conf", "-e", "nginx-error.log", "-g", "daemon off;"}, func() bool {
		resp, err := http.Get(n.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return n
}

// NATSConf is a nats-server configuration: its client port and a WebSocket
// listener without TLS on wsPort, both on loopback.
func NATSConf(port, wsPort int) string {
	return fmt.Sprintf("listen: \"127.0.0.1:%d\"\nwebsocket {\n  listen: \"127.0.0.1:%d\"\n  no_tls: true\n}\n", port, wsPort)
}

// NATS is a running nats-server.
type NATS struct {
	// WS is its WebSocket URL, ws://127.0.0.1:port.
	WS string
	// Dir is where it runs; Log its output.
	Dir, Log string
}

// StartNATS starts nats-server (NATSConf), under an open-file limit when
// nofile > 0, and waits until its WebSocket listener accepts.
func StartNATS(t testing.TB, nofile int) *NATS {
	t.Helper()
	if _, err := os.Stat(NATSBin); err != nil {
		t.Skipf("nats-server is not installed (%v): scripts/test-deps.sh installs it", err)
	}
	dir := t.TempDir()
	port, wsPort := FreePort(t), FreePort(t)
	if err := os.WriteFile(filepath.Join(dir, "nats.conf"), []byte(NATSConf(port, wsPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := []string{NATSBin, "-c", "nats.conf"}
	if nofile > 0 {
		argv = append([]string{"prlimit", "--nofile=" + strconv.Itoa(nofile)}, argv...)
	}
	n := &NATS{WS: fmt.Sprintf("ws://127.0.0.1:%d", wsPort), Dir: dir, Log: filepath.Join(dir, "output.log")}
	start(t, dir, argv, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", wsPort), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return n
}

// start runs argv in dir (output to dir/output.log), waits for ready and
// stops the process group when the test ends.
func start(t testing.TB, dir string, argv []string, ready func() bool) {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start %s: %v", argv[0], err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		out.Close()
	})
	for deadline := time.Now().Add(readyTimeout); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			b, _ := os.ReadFile(out.Name())
			t.Fatalf("%s exited at start:\n%s", argv[0], bytes.TrimSpace(b))
		default:
		}
		if ready() {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(out.Name())
			t.Fatalf("%s not ready within %v:\n%s", argv[0], readyTimeout, bytes.TrimSpace(b))
		}
	}
}
