package diagnose

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func TestScannerReadsOnlyNewCompleteLines(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "server.log")
	src := []Source{{Name: "server", Path: path, Process: "eventbus", Side: "target"}}
	emfile := "http: Accept error: accept tcp 127.0.0.1:1: accept4: too many open files; retrying in 5ms\n"
	appendTo(t, path, emfile) // before the step: must be skipped

	s := NewScanner()
	s.Mark(ctx, src)
	steps := []struct {
		name      string
		write     string
		wantRule  string
		wantCount int
	}{
		{"nothing new", "", "", 0},
		{"two new lines", emfile + "listening\n" + emfile, RuleFDProcess, 2},
		{"partial line waits", "dial tcp: connect: cannot assign requ", "", 0},
		{"partial line completed", "ested address\n", RuleEphemeralPorts, 1},
	}
	for _, st := range steps {
		appendTo(t, path, st.write)
		m, skipped := s.Scan(ctx, src)
		if len(skipped) != 0 {
			t.Fatalf("%s: skipped %v", st.name, skipped)
		}
		if st.wantRule == "" {
			if len(m) != 0 {
				t.Errorf("%s: matches %+v, want none", st.name, m)
			}
			continue
		}
		if len(m) != 1 || m[0].Rule != st.wantRule || m[0].Count != st.wantCount || m[0].Source != "server" ||
			m[0].Process != "eventbus" || m[0].Side != "target" {
			t.Errorf("%s: matches %+v, want %d of %s", st.name, m, st.wantCount, st.wantRule)
		}
	}
	if m, _ := s.Scan(ctx, src); len(m) != 0 {
		t.Errorf("rescan returned %+v, want nothing", m)
	}

	// Truncated (rotated with copytruncate): start from the top again.
	if err := os.WriteFile(path, []byte(emfile), 0o644); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Scan(ctx, src); len(m) != 1 || m[0].Count != 1 {
		t.Errorf("after truncation: %+v", m)
	}
}

func TestScannerKeepsFewLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "error.log")
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, "2026/11/27 06:32:40 [alert] 812#812: *%d 512 worker_connections are not enough\n", i)
	}
	appendTo(t, path, b.String())
	m, _ := NewScanner().Scan(context.Background(), []Source{{Name: "nginx", Path: path}})
	if len(m) != 1 || m[0].Count != 1000 || len(m[0].Lines) != MaxLinesKept {
		t.Fatalf("matches: %d, count %d, lines %d", len(m), m[0].Count, len(m[0].Lines))
	}
}

func TestScanUnreadableIsSkipped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	m, skipped := NewScanner().Scan(ctx, []Source{{Name: "gone", Path: "/nonexistent/x.log"}})
	if len(m) != 0 || len(skipped) != 1 || !strings.Contains(skipped[0], "no such file") {
		t.Errorf("missing file: %v %v", m, skipped)
	}
	cancel()
	if _, skipped := NewScanner().Scan(ctx, []Source{{Name: "a", Path: "/dev/null"}}); len(skipped) != 1 {
		t.Errorf("cancelled scan: skipped %v", skipped)
	}
}

func TestParseKmsg(t *testing.T) {
	tests := []struct {
		in   string
		seq  uint64
		msg  string
		okay bool
	}{
		{"6,1234,5678901,-;nf_conntrack: table full, dropping packet\n", 1234, "nf_conntrack: table full, dropping packet", true},
		{"4,77,1,c,more;TCP: Possible SYN flooding on port 80.\n SUBSYSTEM=net\n DEVICE=n2\n", 77, "TCP: Possible SYN flooding on port 80.", true},
		{"garbage", 0, "", false},
		{"6,x,1,-;m\n", 0, "", false},
	}
	for _, tt := range tests {
		r, ok := parseKmsg([]byte(tt.in))
		if ok != tt.okay || r.seq != tt.seq || r.msg != tt.msg {
			t.Errorf("parseKmsg(%q) = %+v, %v", tt.in, r, ok)
		}
	}
}

// TestKernelLogLive writes a marker (not a signature, so no other run mistakes it
// for a finding) into the real kernel log and reads it back after a Mark.
func TestKernelLogLive(t *testing.T) {
	w, err := os.OpenFile(KernelLog, os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("cannot write %s: %v", KernelLog, err)
	}
	defer w.Close()
	if _, err := readKmsg(KernelLog, 0); err != nil {
		t.Skipf("cannot read %s: %v", KernelLog, err)
	}
	s := NewScanner()
	src := []Source{{Name: "kernel", Path: KernelLog}}
	s.Mark(context.Background(), src)
	marker := fmt.Sprintf("loadramp diagnose test marker %d", time.Now().UnixNano())
	if _, err := w.WriteString(marker + "\n"); err != nil {
		t.Skipf("write %s: %v", KernelLog, err)
	}
	s.mu.Lock()
	since := s.kmsg[KernelLog]
	s.mu.Unlock()
	lines, err := s.kernelLines(KernelLog)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, l := range lines {
		if strings.Contains(l, marker) {
			found++
		}
	}
	if found != 1 {
		t.Fatalf("marker seen %d times in %d new kernel lines (since seq %d)", found, len(lines), since)
	}
	// Read again: nothing older than the last scan comes back.
	again, _ := s.kernelLines(KernelLog)
	for _, l := range again {
		if strings.Contains(l, marker) {
			t.Fatal("marker returned twice")
		}
	}
}
