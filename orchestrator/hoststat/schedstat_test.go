package hoststat

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"time"
)

// writeFiles makes a fixture tree: path → content.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseSchedstat(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"76504848 149429077 145\n", 149429077, true},
		{"0 0 0", 0, true},
		{"12", 0, false},
		{"", 0, false},
		{"1 x 3", 0, false},
		{"1 -5 3", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseSchedstat([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseSchedstat(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParsePressureSome(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"some avg10=72.09 avg60=49.81 avg300=18.08 total=65409849\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", 65409849 * time.Microsecond, true},
		{"full avg10=0.00 total=5\n", 0, false},
		{"some avg10=1.00 total=abc\n", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := parsePressureSome([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parsePressureSome(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestStarveProbeFixtures(t *testing.T) {
	t.Run("schedstat: threads summed, a new thread counts whole, an exited one is lost", func(t *testing.T) {
		root := t.TempDir()
		writeFiles(t, root, map[string]string{
			"proc/42/task/42/schedstat": "100 1000000 5\n",
			"proc/42/task/43/schedstat": "100 2000000 5\n",
			"proc/42/task/44/schedstat": "100 9000000 5\n",
			"proc/42/cgroup":            "0::/\n",
		})
		p := StarveProbe{Root: filepath.Join(root, "proc"), PID: 42}
		// A resolved probe reuses its buffers and remembers the threads'
		// paths: it reads the same.
		r := p.Resolved()
		a, ra := p.Read(), r.Read()
		if len(a.delay) != 3 || a.psiOK || !reflect.DeepEqual(a.delay, ra.delay) {
			t.Fatalf("first read: %+v, resolved %+v", a, ra)
		}
		writeFiles(t, root, map[string]string{
			"proc/42/task/42/schedstat": "100 51000000 9\n", // +50 ms
			"proc/42/task/43/schedstat": "100 2000000 5\n",  // +0
			"proc/42/task/45/schedstat": "100 30000000 2\n", // new: +30 ms
		})
		if err := os.RemoveAll(filepath.Join(root, "proc/42/task/44")); err != nil {
			t.Fatal(err)
		}
		b, rb := p.Read(), r.Read()
		b.At, ra.At, rb.At = a.At.Add(time.Second), a.At, a.At.Add(time.Second)
		got, ok := StarvedRatio(a, b, 1)
		if !ok || got < 0.0799 || got > 0.0801 {
			t.Errorf("StarvedRatio = %v, %v; want 0.08 (80 ms waited in 1 s)", got, ok)
		}
		if rgot, rok := StarvedRatio(ra, rb, 1); rgot != got || rok != ok {
			t.Errorf("resolved probe: StarvedRatio = %v, %v; want %v, %v", rgot, rok, got, ok)
		}
		// Per CPU it may use, like a CPU share.
		if got, _ := StarvedRatio(a, b, 4); got < 0.0199 || got > 0.0201 {
			t.Errorf("StarvedRatio on 4 CPUs = %v, want 0.02", got)
		}
	})
	t.Run("no schedstat: the cgroup's cpu pressure", func(t *testing.T) {
		root := t.TempDir()
		writeFiles(t, root, map[string]string{
			"proc/7/task/7/stat":                       "not schedstat",
			"proc/7/cgroup":                            "0::/system.slice/gen.service\n",
			"proc/7/mountinfo":                         "30 1 0:26 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw\n",
			"cg/system.slice/gen.service/cpu.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
		})
		p := StarveProbe{Root: filepath.Join(root, "proc"), PID: 7, Cgroup: filepath.Join(root, "cg")}
		a := p.Read()
		if a.delay != nil || !a.psiOK || a.psi != time.Second {
			t.Fatalf("first read: %+v", a)
		}
		writeFiles(t, root, map[string]string{
			"cg/system.slice/gen.service/cpu.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=1500000\n",
		})
		b := p.Read()
		b.At = a.At.Add(2 * time.Second)
		if got, ok := StarvedRatio(a, b, 4); !ok || got != 0.25 {
			t.Errorf("StarvedRatio = %v, %v; want 0.25 (500 ms of pressure in 2 s, a share already)", got, ok)
		}
		// The mount point comes from mountinfo when not given.
		if got := cgroup2Mount(filepath.Join(root, "proc/7/mountinfo")); got != "/sys/fs/cgroup/unified" {
			t.Errorf("cgroup2Mount = %q", got)
		}
		// Resolved finds the cgroup once: its readings need the cgroup file no more.
		r := p.Resolved()
		if err := os.Remove(filepath.Join(root, "proc/7/cgroup")); err != nil {
			t.Fatal(err)
		}
		if c := r.Read(); !c.psiOK || c.psi != 1500*time.Millisecond {
			t.Errorf("resolved probe read %+v, want the cgroup's pressure (1.5 s)", c)
		}
		if c := p.Read(); c.psiOK {
			t.Errorf("unresolved probe without its cgroup file read %+v", c)
		}
	})
	t.Run("the root cgroup is the host's pressure, not ours; nothing readable: unknown", func(t *testing.T) {
		root := t.TempDir()
		writeFiles(t, root, map[string]string{
			"proc/9/cgroup":   "12:cpu:/\n0::/\n",
			"cg/cpu.pressure": "some avg10=0.00 total=1000\n",
		})
		p := StarveProbe{Root: filepath.Join(root, "proc"), PID: 9, Cgroup: filepath.Join(root, "cg")}
		a := p.Read()
		b := p.Read()
		b.At = a.At.Add(time.Second)
		if got, ok := StarvedRatio(a, b, 1); ok {
			t.Errorf("StarvedRatio = %v, true; want unknown", got)
		}
	})
}

// Two threads of this process pinned to one CPU, both spinning, cannot both run:
// together they wait for it at least as long as the spin lasts, whatever else the
// machine runs (more load only lengthens the wait). The measure must see that.
func TestStarvedRatioSeesSharedCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("schedstat is Linux's")
	}
	if _, err := os.Stat("/proc/self/schedstat"); err != nil {
		t.Skip("kernel without schedstat")
	}
	cpu, ok := firstAllowedCPU()
	if !ok {
		t.Skip("no CPU affinity")
	}
	const spin = 200 * time.Millisecond
	a := SelfStarvation()
	ready := make(chan error, 2)
	start, release := make(chan struct{}), make(chan struct{})
	var end time.Time
	for range 2 {
		go func() {
			runtime.LockOSThread() // the thread ends with the goroutine
			if err := pin(cpu); err != nil {
				ready <- err
				return
			}
			ready <- nil
			<-start
			for time.Now().Before(end) {
			}
			ready <- nil
			<-release // an exited thread's counters are gone: read them first
		}()
	}
	for range 2 {
		if err := <-ready; err != nil {
			t.Skip(err)
		}
	}
	end = time.Now().Add(spin)
	close(start)
	<-ready
	<-ready
	b := SelfStarvation()
	close(release)
	got, ok := StarvedRatio(a, b, 1)
	wall := b.At.Sub(a.At)
	waited := time.Duration(got * float64(wall))
	t.Logf("starved ratio %.3f over %v: waited %v", got, wall, waited)
	if !ok || waited < spin*9/10 {
		t.Errorf("StarvedRatio = %v, %v (%v waited); two threads sharing one CPU for %v must wait about %v",
			got, ok, waited, spin, spin)
	}
}
