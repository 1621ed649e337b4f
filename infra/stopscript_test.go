package infra

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// TestLocalModuleStopSignalsOnlyWhatStartStarted: the Terraform local
// module's stop.sh, pointed by a pid file at an unrelated process group
// leader, leaves it alone; the process start.sh started it stops.
func TestLocalModuleStopSignalsOnlyWhatStartStarted(t *testing.T) {
	scripts, err := filepath.Abs("modules/local/scripts")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	// An unrelated session leader, named by a pid file as a stale one would.
	other := exec.Command("setsid", "sleep", "300")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	otherDone := make(chan struct{})
	go func() { _ = other.Wait(); close(otherDone) }()
	t.Cleanup(func() { _ = other.Process.Kill(); <-otherDone })
	if !waitFor(5*time.Second, func() bool { return hoststat.LeadsGroup("", other.Process.Pid) }) {
		t.Fatal("the unrelated sleep never led its group")
	}
	id, err := hoststat.ReadIdentity("", other.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	stop := func(name string) string {
		out, err := exec.Command(filepath.Join(scripts, "stop.sh"), filepath.Join(dir, name+".pid"), "2").CombinedOutput()
		if err != nil {
			t.Fatalf("stop.sh %s: %v\n%s", name, err, out)
		}
		return string(out)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ name, start string }{
		{"reused", fmt.Sprintf("%d %s\n", id.Start-1, id.Boot)},
		{"rebooted", fmt.Sprintf("%d 00000000-0000-0000-0000-000000000000\n", id.Start)},
		{"unrecorded", ""},
	} {
		write(tc.name+".pid", strconv.Itoa(other.Process.Pid)+"\n")
		if tc.start != "" {
			write(tc.name+".start", tc.start)
		}
		if out := stop(tc.name); !strings.Contains(out, "not signalled") {
			t.Errorf("%s: stop.sh says %q, want it not signalled", tc.name, out)
		}
		select {
		case <-otherDone:
			t.Fatalf("%s: stop.sh killed an unrelated process", tc.name)
		case <-time.After(100 * time.Millisecond):
		}
	}

	// What start.sh started is its own, and stopped.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	py := fmt.Sprintf("import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', %d)); s.listen(); time.sleep(300)", port)
	if out, err := exec.Command(filepath.Join(scripts, "start.sh"), "srv", dir, strconv.Itoa(port), "10", "python3", "-c", py).CombinedOutput(); err != nil {
		t.Fatalf("start.sh: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "srv.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	t.Cleanup(func() { _ = exec.Command("kill", "-9", "--", fmt.Sprint(-pid)).Run() })
	if s, _ := os.ReadFile(filepath.Join(dir, "srv.start")); len(strings.Fields(string(s))) != 2 {
		t.Errorf("srv.start = %q, want a start time and a boot id", s)
	}
	if out := stop("srv"); !strings.Contains(out, "stopped process group") {
		t.Errorf("stop.sh of start.sh's own process: %q", out)
	}
	if groupAlive(pid) {
		t.Errorf("start.sh's process group %d is still running", pid)
	}
}
