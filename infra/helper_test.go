package infra

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/rs/zerolog"
)

// helperEnv selects a helper mode when the test binary is re-executed as a
// child process (the standard os/exec test pattern).
const helperEnv = "LOADRAMP_INFRA_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "http":
		os.Exit(helperHTTP())
	case "fleet":
		os.Exit(helperFleet())
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode")
		os.Exit(2)
	}
}

// helperHTTP is a tiny HTTP server on HELPER_ADDR (loopback) that waits
// HELPER_DELAY before listening and answers /healthz with HELPER_STATUS.
// It lives at most 60 s.
func helperHTTP() int {
	addr := os.Getenv("HELPER_ADDR")
	delay, _ := time.ParseDuration(os.Getenv("HELPER_DELAY"))
	status, _ := strconv.Atoi(os.Getenv("HELPER_STATUS"))
	if status == 0 {
		status = http.StatusOK
	}
	fmt.Printf("helper-http booting pid=%d\n", os.Getpid())
	time.Sleep(delay)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	fmt.Println("helper-http listening on", ln.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello") })
	go func() { _ = http.Serve(ln, mux) }()
	time.Sleep(60 * time.Second)
	return 0
}

// helperFleet brings up a local fleet running `sleep 60`, prints the child's
// pid and waits to be killed (at most 60 s).
func helperFleet() int {
	l := NewLocal(LocalConfig{
		Fleet:     "orphan",
		Processes: []LocalProcess{{Name: "sleeper", Command: []string{"sleep", "60"}}},
		LogDir:    os.Getenv("HELPER_LOGDIR"),
		Log:       zerolog.Nop(),
	})
	f, err := l.Up(context.Background())
	if err != nil {
		fmt.Println("up:", err)
		return 1
	}
	fmt.Printf("child-pid %d\n", f.Processes[0].Pid)
	time.Sleep(60 * time.Second)
	_ = l.Down(context.Background())
	return 0
}

// helperCommand returns argv and env to run the test binary in a helper mode.
func helperCommand(mode string, env map[string]string) ([]string, map[string]string) {
	e := map[string]string{helperEnv: mode}
	for k, v := range env {
		e[k] = v
	}
	return []string{os.Args[0]}, e
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// alive reports whether pid is a live process (a zombie counts as dead).
func alive(pid int) bool {
	st, err := hoststat.ReadProcStat(hoststat.DefaultRoot, pid)
	return err == nil && !st.Gone()
}

// groupAlive reports whether any process of the process group pgid is alive
// (zombies waiting for init to reap them count as dead).
func groupAlive(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) && hoststat.GroupLive(hoststat.DefaultRoot, pgid)
}

// waitFor polls cond every 10 ms for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// fileContains reports whether the file at path contains s.
func fileContains(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), s)
}

// readFile returns the content of the file at path, or "".
func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// hasLine reports whether the file at path has a line equal to line. (The
// loadramp marker lines quote the argv, so a plain substring search for a
// word the script echoes would match the script itself.)
func hasLine(path, line string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// readLine reads one line from sc within d.
func readLine(sc *bufio.Scanner, d time.Duration) (string, error) {
	ch := make(chan string, 1)
	go func() {
		if sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	select {
	case l, ok := <-ch:
		if !ok {
			return "", fmt.Errorf("no line: %v", sc.Err())
		}
		return l, nil
	case <-time.After(d):
		return "", errors.New("timed out reading a line")
	}
}
