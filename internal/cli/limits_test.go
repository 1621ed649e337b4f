package cli

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

const nginxBin = "/usr/sbin/nginx"

// startNginx runs nginx in the foreground with conf (a template taking the
// listen port as %d) in a directory of its own and returns the master's pid
// and the configuration's path. It is stopped when the test ends.
func startNginx(t *testing.T, conf string) (pid int, confPath string) {
	t.Helper()
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skipf("nginx not installed (%v): scripts/test-deps.sh installs it", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	confPath = filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(fmt.Sprintf(conf, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginxBin, "-p", dir+"/", "-c", "nginx.conf", "-e", "error.log", "-g", "daemon off;")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	out, err := os.Create(filepath.Join(dir, "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(dir, "output.log"))
			e, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %s%s", b, e)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not accept on port %d after 10 s", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The worker is forked after the listener opens: wait for it too.
	for len(hoststat.Children(procRoot, cmd.Process.Pid)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nginx started no worker")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cmd.Process.Pid, confPath
}

// nginxConf is a minimal configuration; %d is the port, %s the events and
// main-context directives under test.
func nginxConf(main, events string) string {
	return `user root root;
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
` + main + `
events { ` + events + ` }
http {
    access_log off;
    client_body_temp_path tmp-body;
    proxy_temp_path tmp-proxy;
    fastcgi_temp_path tmp-fastcgi;
    uwsgi_temp_path tmp-uwsgi;
    scgi_temp_path tmp-scgi;
    server {
        listen 127.0.0.1:%d;
        location / { return 200 "ok\n"; }
    }
}
`
}

func TestLimitsNamesInvertedNginx(t *testing.T) {
	pid, conf := startNginx(t, nginxConf("worker_rlimit_nofile 1024;", "worker_connections 4096;"))
	workers := hoststat.Children(procRoot, pid)
	inversion := "nginx open files (worker_rlimit_nofile = 1024) are under twice worker_connections (4096)"

	code, out, errOut := runArgs(t, nil, "limits", "--process", "nginx", "--nginx-conf", conf)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("limits output:\n%s", out)
	for _, want := range []string{
		"worker_processes x worker_connections  1 x 4096 = 4096",
		fmt.Sprintf("nginx (pid %d)", pid),
		// The worker really runs with worker_rlimit_nofile: read from its /proc.
		fmt.Sprintf("nginx (pid %d)  open files (soft)  1024", workers[0]),
		"warnings:",
		inversion,
	} {
		if !containsSpaced(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// By pid, with the configuration found from the master's command line.
	code, out, errOut = runArgs(t, nil, "limits", "--pid", strconv.Itoa(pid))
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, conf) || !strings.Contains(out, inversion) {
		t.Errorf("--pid %d: configuration not found from the command line or inversion not named\nstdout:\n%s\nstderr:\n%s", pid, out, errOut)
	}
}

func TestLimitsHealthyNginx(t *testing.T) {
	pid, _ := startNginx(t, nginxConf("worker_rlimit_nofile 2048;", "worker_connections 512;"))
	code, out, errOut := runArgs(t, nil, "limits", "--pid", strconv.Itoa(pid))
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "worker_connections (") {
		t.Errorf("a funnel with worker_rlimit_nofile 2048 >= 2 x 512 was warned about:\n%s", out)
	}
	if !containsSpaced(out, "1 x 512 = 512") {
		t.Errorf("output lacks the worker connections:\n%s", out)
	}
}

func TestLimitsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--pid", "0"},
		{"--pid", "abc"},
		{"--pid", "999999999"},
		{"--process", "no-such-process-lr"},
		{"--process", "a/b"},
		{"--nginx-conf", filepath.Join(t.TempDir(), "missing.conf")},
		{"extra-arg"},
	} {
		code, out, errOut := runArgs(t, nil, append([]string{"limits"}, args...)...)
		if code != ExitUsage {
			t.Errorf("limits %v: exit %d, want %d\n%s%s", args, code, ExitUsage, out, errOut)
		}
		if !strings.Contains(errOut, "Error:") {
			t.Errorf("limits %v: no error message: %q", args, errOut)
		}
	}
	// No flags: the host's own funnel.
	code, out, errOut := runArgs(t, nil, "limits")
	if code != 0 || !strings.Contains(out, "net.core.somaxconn") {
		t.Errorf("limits: exit %d\n%s%s", code, out, errOut)
	}
}

// containsSpaced reports whether s contains want with runs of blanks
// collapsed in both (tabwriter pads columns).
func containsSpaced(s, want string) bool {
	return strings.Contains(strings.Join(strings.Fields(s), " "), strings.Join(strings.Fields(want), " "))
}
