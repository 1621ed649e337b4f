package hoststat

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseProcStatStartTime(t *testing.T) {
	line := "4242 (sleep) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 2449408 200\n"
	st, err := ParseProcStat([]byte(line))
	if err != nil || st.Start != 98765 {
		t.Errorf("ParseProcStat start = %d, %v; want 98765", st.Start, err)
	}
	if _, err := ParseProcStat([]byte(strings.Replace(line, "98765", "x", 1))); err == nil {
		t.Error("a start time that is not a number parsed")
	}
}

func TestIdentityOfALiveProcess(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	id, err := ReadIdentity("", cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if !id.Known() || id.Boot == "" || !strings.HasSuffix(id.Exe, "sleep") {
		t.Errorf("identity %+v: want a start time, a boot id and the sleep executable", id)
	}
	if m, why := CheckIdentity("", id); m != Same {
		t.Errorf("CheckIdentity of the live process = %v (%s), want Same", m, why)
	}
	// The same pid with another start time: a process that reused it.
	reused := id
	reused.Start++
	if m, why := CheckIdentity("", reused); m != Other || !strings.Contains(why, "another process") {
		t.Errorf("CheckIdentity with another start time = %v (%s), want Other", m, why)
	}
	// Another boot: whatever has the pid now is not it.
	rebooted := id
	rebooted.Boot = "00000000-0000-0000-0000-000000000000"
	if m, _ := CheckIdentity("", rebooted); m != Gone {
		t.Errorf("CheckIdentity from another boot = %v, want Gone", m)
	}
	// No start time recorded: never trusted.
	if m, _ := CheckIdentity("", Identity{Pid: id.Pid}); m != Other {
		t.Errorf("CheckIdentity without a start time = %v, want Other", m)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if m, why := CheckIdentity("", id); m != Gone {
		t.Errorf("CheckIdentity after the process exited = %v (%s), want Gone", m, why)
	}
}

func TestIdentityUnderAFixtureRoot(t *testing.T) {
	root := t.TempDir()
	write := func(rel, s string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sys/kernel/random/boot_id", "b00t\n")
	write("77/stat", "77 (nginx) S 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0\n")
	write("78/stat", "78 (nginx) S 77 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 510 0 0\n")
	write("79/stat", "79 (cat) Z 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 520 0 0\n")
	id, err := ReadIdentity(root, 77)
	if err != nil || id != (Identity{Pid: 77, Start: 500, Boot: "b00t"}) {
		t.Fatalf("ReadIdentity = %+v, %v", id, err)
	}
	if m, _ := CheckIdentity(root, Identity{Pid: 77, Start: 499, Boot: "b00t"}); m != Other {
		t.Errorf("another start time: %v, want Other", m)
	}
	if m, _ := CheckIdentity(root, Identity{Pid: 80, Start: 499, Boot: "b00t"}); m != Gone {
		t.Errorf("no such pid: %v, want Gone", m)
	}
	ms, err := GroupMembers(root, 77)
	if err != nil || len(ms) != 2 || ms[0].Pid != 77 || ms[1].Pid != 78 {
		t.Errorf("GroupMembers = %+v, %v; want 77 and 78 (not the zombie)", ms, err)
	}
}

func TestMemoryFor(t *testing.T) {
	root, cg := t.TempDir(), t.TempDir()
	write := func(dir, rel, s string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(root, "meminfo", "MemTotal:       16384 kB\nMemFree:  100 kB\n")
	if got := MemoryFor(root, cg, 7); got != 16384<<10 {
		t.Errorf("no cgroup: %d, want MemTotal", got)
	}
	write(root, "7/cgroup", "0::/user.slice/run.scope\n")
	write(cg, "user.slice/run.scope/memory.max", "max\n")
	if got := MemoryFor(root, cg, 7); got != 16384<<10 {
		t.Errorf("unlimited cgroup: %d, want MemTotal", got)
	}
	write(cg, "user.slice/run.scope/memory.max", "1048576\n")
	if got := MemoryFor(root, cg, 7); got != 1<<20 {
		t.Errorf("cgroup limit: %d, want 1 MiB", got)
	}
	if got := MemoryFor("", "/sys/fs/cgroup", os.Getpid()); got <= 0 {
		t.Errorf("this machine: %d", got)
	}
}
