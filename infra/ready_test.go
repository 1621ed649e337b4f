package infra

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseReady(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in       string
		kind     string
		addr     string
		errorHas string
	}{
		{in: "", kind: ""},
		{in: "http://127.0.0.1:8080/healthz", kind: "http"},
		{in: "https://localhost/ready", kind: "http"},
		{in: "tcp://127.0.0.1:5672", kind: "tcp", addr: "127.0.0.1:5672"},
		{in: "tcp://[::1]:80", kind: "tcp", addr: "[::1]:80"},
		{in: "tcp://127.0.0.1", errorHas: "want tcp://host:port"},
		{in: "tcp://127.0.0.1:80/x", errorHas: "takes no path"},
		{in: "udp://127.0.0.1:53", errorHas: "scheme must be"},
		{in: "127.0.0.1:8080", errorHas: "want http://, https:// or tcp://host:port"},
		{in: "http://", errorHas: "has no host"},
		{in: "http://%zz", errorHas: "invalid"},
	} {
		rc, err := parseReady(tc.in)
		if tc.errorHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errorHas) {
				t.Errorf("parseReady(%q) err = %v, want %q", tc.in, err, tc.errorHas)
			}
			continue
		}
		if err != nil || rc.kind != tc.kind || rc.addr != tc.addr {
			t.Errorf("parseReady(%q) = %+v, %v; want kind %q addr %q", tc.in, rc, err, tc.kind, tc.addr)
		}
	}
}

func TestReadLogTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	long := strings.Repeat("x", 100)
	var big []string
	for i := range 400 { // about 40 KiB: more than the tail window
		big = append(big, long+string(rune('a'+i%26)))
	}
	for _, tc := range []struct {
		name    string
		content string
		n       int
		want    []string
	}{
		{"empty", "", 10, nil},
		{"fewer lines", "a\nb\n", 10, []string{"a", "b"}},
		{"no final newline", "a\nb", 10, []string{"a", "b"}},
		{"last n", "1\n2\n3\n4\n", 2, []string{"3", "4"}},
		{"bigger than the window", strings.Join(big, "\n") + "\n", 3, big[len(big)-3:]},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := readLogTail(path, tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("%s: readLogTail = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := readLogTail(filepath.Join(dir, "missing"), 3); got != nil {
		t.Errorf("missing file: %q", got)
	}
}
