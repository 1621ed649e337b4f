package hoststat

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// stealTree writes a procfs root whose /proc/stat gives each CPU the steal
// ticks in steal, and whose process 77 may run on the CPUs in list.
func stealTree(t *testing.T, root, list string, steal []int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "77"), 0o755); err != nil {
		t.Fatal(err)
	}
	stat := "cpu  100 0 100 1000 0 0 0 999 0 0\n"
	for i, s := range steal {
		stat += fmt.Sprintf("cpu%d 50 0 50 500 0 0 0 %d 0 0\n", i, s)
	}
	stat += "intr 1 2 3\nctxt 99\n"
	for name, b := range map[string]string{
		"stat":      stat,
		"77/status": "Name:\tloadramp\nCpus_allowed:\t0d\nCpus_allowed_list:\t" + list + "\nMems_allowed_list:\t0\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStealOfTheAllowedCPUs(t *testing.T) {
	root := t.TempDir()
	p := StealProbe{Root: root, PID: 77}
	stealTree(t, root, "0,2-3", []int{10, 5000, 20, 30})
	a := p.Read()
	// Two seconds later: CPU 1 (not allowed) stole much, CPUs 0, 2, 3 stole
	// 0.3 s between them.
	stealTree(t, root, "0,2-3", []int{20, 9000, 30, 40})
	b := p.Read()
	b.At = a.At.Add(2 * time.Second)
	if a.cpus != 3 || !a.ok || a.seconds != 0.6 {
		t.Fatalf("first reading = %+v, want 3 CPUs and 0.6 s", a)
	}
	r, ok := StealRatio(a, b)
	if !ok || r < 0.049999 || r > 0.050001 {
		t.Errorf("StealRatio = %v %v, want 0.05 (0.3 s over 2 s and 3 CPUs)", r, ok)
	}

	// Pinned reads the allowed CPUs once: its readings need the status no more.
	pinned := p.Pinned()
	if err := os.Remove(filepath.Join(root, "77", "status")); err != nil {
		t.Fatal(err)
	}
	if c := pinned.Read(); !c.ok || c.cpus != 3 || c.seconds != 0.9 {
		t.Errorf("pinned probe read %+v, want CPUs 0, 2 and 3: 0.9 s", c)
	}
	if c := p.Read(); c.ok {
		t.Errorf("unpinned probe without a status told: %+v", c)
	}

	// What cannot be read cannot tell.
	none := StealProbe{Root: root, PID: 78}.Read()
	if _, ok := StealRatio(none, b); ok || none.ok {
		t.Errorf("a process without a status told: %+v", none)
	}
	stealTree(t, root, "0-x", []int{1})
	if bad := p.Read(); bad.ok {
		t.Errorf("a broken Cpus_allowed_list told: %+v", bad)
	}
	if _, ok := StealRatio(b, a); ok {
		t.Error("readings out of order told")
	}
}

func TestSelfStealLive(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/stat")
	}
	a := SelfSteal()
	time.Sleep(20 * time.Millisecond)
	r, ok := StealRatio(a, SelfSteal())
	if !ok || r < 0 || r > 1 {
		t.Fatalf("StealRatio on this host = %v %v, want a share 0..1", r, ok)
	}
	t.Logf("steal of this process's %d CPUs over 20 ms: %.3f", a.cpus, r)
}
