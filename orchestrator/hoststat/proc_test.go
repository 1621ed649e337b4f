package hoststat

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// procFixture writes a fake /proc entry: pid/cmdline (args joined by NUL),
// pid/stat with ppid and pgrp, and pid/cwd as a link to cwd when given.
func procFixture(t *testing.T, root string, pid, ppid int, state, cmdline, cwd string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stat := strconv.Itoa(pid) + " (nginx: a (b)) " + state + " " + strconv.Itoa(ppid) + " " + strconv.Itoa(max(ppid, pid)) + " 1 0 -1\n"
	if ppid == 1 {
		stat = strconv.Itoa(pid) + " (nginx) " + state + " 1 " + strconv.Itoa(pid) + " 1 0 -1\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(cmdline), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "comm"), []byte("nginx\n"), 0o644); err != nil {
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
	procFixture(t, root, 100, 1, "S", "nginx: master process /usr/sbin/nginx -p runs/x/ -c nginx.conf -e nginx-error.log -g daemon off;\x00\x00\x00", "/work")
	procFixture(t, root, 101, 100, "S", "nginx: worker process\x00", "/work")
	// Before the title is set (or a build that keeps argv): NUL-separated.
	procFixture(t, root, 102, 1, "S", "/usr/sbin/nginx\x00-c\x00/etc/nginx/alt.conf\x00", "/")
	procFixture(t, root, 103, 1, "S", "nginx\x00-g\x00daemon off;\x00", "/")
	procFixture(t, root, 104, 1, "S", "/usr/sbin/nginx\x00-p/srv/n\x00-cconf/n.conf\x00", "/")
	procFixture(t, root, 105, 1, "S", "bin/eventbus\x00--listen\x00127.0.0.1:1\x00-c\x00x\x00", "/")
	procFixture(t, root, 106, 1, "S", "/usr/sbin/nginx\x00-c\x00rel.conf\x00", "/")
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
		conf, ok, err := NginxConf(root, tt.pid)
		if err != nil || conf != tt.conf || ok != tt.ok {
			t.Errorf("pid %d: NginxConf = %q, %v, %v; want %q, %v", tt.pid, conf, ok, err, tt.conf, tt.ok)
		}
	}
	if _, _, err := NginxConf(root, 999); err == nil {
		t.Errorf("a missing pid gave no error")
	}
	if got := Children(root, 100); !slices.Equal(got, []int{101}) {
		t.Errorf("Children(100) = %v, want [101]", got)
	}
	if got, err := PidsByComm(root, "nginx"); err != nil || len(got) != 7 {
		t.Errorf("PidsByComm(nginx) = %v, %v", got, err)
	}
}

func TestProcessGroups(t *testing.T) {
	root := t.TempDir()
	procFixture(t, root, 200, 1, "S", "a\x00", "")   // leads group 200
	procFixture(t, root, 201, 200, "Z", "b\x00", "") // group 201: a zombie only
	procFixture(t, root, 300, 200, "S", "c\x00", "") // group 300, not led by 300's parent
	if !LeadsGroup(root, 200) || LeadsGroup(root, 999) {
		t.Error("LeadsGroup")
	}
	if !GroupLive(root, 200) || GroupLive(root, 201) || GroupLive(root, 404) {
		t.Error("GroupLive: a live member counts, a zombie does not")
	}
	if got := KernelRelease(root); got != "" {
		t.Errorf("KernelRelease of a tree without it = %q", got)
	}
}

func TestParseProcStat(t *testing.T) {
	st, err := ParseProcStat([]byte("4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100\n"))
	if err != nil || st != (ProcStat{Pid: 4242, Comm: "my (odd) name", State: "S", PPid: 1, PGrp: 4242}) {
		t.Errorf("ParseProcStat = %+v, %v", st, err)
	}
	for _, bad := range []string{"", "12 comm S 1 1", "x (c) S 1 1", "1 (c) S 1", "1 (c) S a 1"} {
		if _, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("ParseProcStat(%q): no error", bad)
		}
	}
}

func FuzzParseProcStat(f *testing.F) {
	for _, s := range []string{"1 (init) S 0 1 1 0 -1", "7 (a) b) Z 1 7", "(", ")", "9 () R 1 2"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseProcStat(b)
		if err == nil && st.State == "" {
			t.Fatalf("%q parsed without a state: %+v", b, st)
		}
	})
}
