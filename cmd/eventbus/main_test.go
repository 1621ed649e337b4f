package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the eventbus built once for the tests that run it as a process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eventbus-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "eventbus")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building eventbus: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running eventbus process.
type proc struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	log  bytes.Buffer  // stderr so far
	more chan struct{} // signalled on every stderr line
	exit chan error    // the result of Wait
}

var listenRE = regexp.MustCompile(`eventbus: listening on (127\.0\.0\.1:\d+)`)

// startProc runs the binary on a free loopback port and waits for its start line.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{more: make(chan struct{}, 1), exit: make(chan error, 1)}
	p.cmd = exec.Command(binary, append([]string{"--listen", "127.0.0.1:0"}, args...)...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
		p.exit <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exit
		}
		if t.Failed() {
			t.Logf("eventbus stderr:\n%s", p.stderr())
		}
	})
	m := p.waitLog(t, listenRE, 10*time.Second)
	p.addr = m[1]
	return p
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// waitLog waits until stderr matches re and returns the submatches.
func (p *proc) waitLog(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if m := re.FindStringSubmatch(p.stderr()); m != nil {
			return m
		}
		select {
		case <-p.more:
		case <-deadline:
			t.Fatalf("stderr did not match %q within %v", re, timeout)
		}
	}
}

// stop signals the process and returns its exit code.
func (p *proc) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exit:
	case <-time.After(10 * time.Second):
		t.Fatalf("eventbus did not exit within 10s of %v", sig)
	}
	return p.cmd.ProcessState.ExitCode()
}

func TestNofileLimitShowsAcceptErrors(t *testing.T) {
	p := startProc(t, "--nofile", "64")
	if !strings.Contains(p.stderr(), "open-file limit set to 64") {
		t.Errorf("no line about the open-file limit:\n%s", p.stderr())
	}
	// The standard process collector exports the limit on /metrics.
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^process_max_fds 64$`).Match(page) {
		t.Errorf("/metrics does not say process_max_fds 64:\n%.2000s", page)
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 100 {
		c, err := net.DialTimeout("tcp", p.addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	// The exact line net/http logs, which the fd-process finding quotes.
	re := regexp.MustCompile(`(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d http: Accept error: accept tcp 127\.0\.0\.1:\d+: accept4: too many open files; retrying in \d+m?s$`)
	p.waitLog(t, re, 10*time.Second)

	// Once connections are released it serves again.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving 5s after the connections closed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

func TestGracefulShutdownOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := startProc(t)
			base := "http://" + p.addr
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/subscribe?topic=t", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, ": subscribed") {
				t.Fatalf("first line %q, %v", line, err)
			}
			pub, err := http.Post(base+"/publish?topic=t", "text/plain", strings.NewReader("before shutdown"))
			if err != nil {
				t.Fatal(err)
			}
			pub.Body.Close()
			if code := p.stop(t, sig); code != 0 {
				t.Errorf("exit code %d after %v, want 0", code, sig)
			}
			// The stream delivered the message and then ended cleanly.
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Errorf("reading the stream to its end: %v", err)
			}
			if !strings.Contains(string(rest), "data: before shutdown\n\n") {
				t.Errorf("stream %q lacks the message", rest)
			}
			for _, want := range []string{"eventbus: shutting down", "eventbus: stopped"} {
				if !strings.Contains(p.stderr(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, p.stderr())
				}
			}
		})
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown flag", []string{"--bogus"}, 2, "flag provided but not defined"},
		{"positional argument", []string{"extra"}, 2, "unexpected arguments"},
		{"zero max-body", []string{"--max-body", "0"}, 2, "--max-body must be > 0"},
		{"negative capacity", []string{"--capacity", "-1"}, 2, "capacity: must be >= 0"},
		{"bad duration", []string{"--work", "fast"}, 2, "invalid value"},
		{"help", []string{"--help"}, 0, "-max-inflight N"},
		{"unusable address", []string{"--listen", "127.0.0.1:notaport"}, 1, "listen tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stderr); code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.msg) {
				t.Errorf("stderr lacks %q:\n%s", tt.msg, stderr.String())
			}
		})
	}
}
