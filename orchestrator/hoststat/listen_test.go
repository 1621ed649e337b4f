package hoststat

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A fixture procfs: nginx's master (100) and its worker (101) share the
// listening socket of 127.0.0.1:8080 (inode 5001); another server (200)
// listens on [::]:9090 (inode 5002); 300 holds a connected socket only.
func listenFixture(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	procFixture(t, root, 100, 1, "S", "nginx: master process /usr/sbin/nginx -c /etc/nginx/nginx.conf\x00", "/")
	procFixture(t, root, 101, 100, "S", "nginx: worker process\x00", "/")
	procFixture(t, root, 200, 1, "S", "/srv/app\x00", "/")
	procFixture(t, root, 300, 1, "S", "/usr/bin/client\x00", "/")
	if err := os.MkdirAll(filepath.Join(root, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Addresses as a little-endian host prints them.
	tcp := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0000000000000000 100 0 0 10 0\n" +
		"   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 5003 1 0000000000000000 20 4 30 10 -1\n" +
		"   2: 0100007F:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5004 1 0000000000000000 100 0 0 10 0\n"
	tcp6 := "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 00000000000000000000000000000000:2382 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5002 1 0000000000000000 100 0 0 10 0\n"
	if !littleEndian() {
		t.Skip("the fixture's addresses are written as a little-endian host prints them")
	}
	for name, body := range map[string]string{"tcp": tcp, "tcp6": tcp6} {
		if err := os.WriteFile(filepath.Join(root, "net", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fds := map[int][]string{
		100: {"socket:[5001]", "/var/log/nginx/error.log", "anon_inode:[eventpoll]"},
		101: {"socket:[5001]", "socket:[9999]"},
		200: {"socket:[5002]"},
		300: {"socket:[5003]"},
	}
	for pid, links := range fds {
		dir := filepath.Join(root, strconv.Itoa(pid), "fd")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, l := range links {
			if err := os.Symlink(l, filepath.Join(dir, strconv.Itoa(i+3))); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func littleEndian() bool {
	ip, _, _ := parseHexAddr("0100007F:0001")
	return ip.Equal(net.IPv4(127, 0, 0, 1))
}

func TestListenersFromProcNet(t *testing.T) {
	root := listenFixture(t)
	ls, err := Listeners(root, net.ParseIP("127.0.0.1"), 8080)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Addr != "127.0.0.1:8080" || ls[0].Inode != 5001 || !slices.Equal(ls[0].Pids, []int{100, 101}) {
		t.Fatalf("listeners %+v, want 127.0.0.1:8080 held by 100 and 101", ls)
	}
	// The server, not its worker.
	if got := ListenerOwners(root, ls); !slices.Equal(got, []int{100}) {
		t.Errorf("owners %v, want [100]", got)
	}
	// Port 9090: a v4 socket bound to 127.0.0.1 and a dual-stack wildcard
	// one; an address of another interface matches the wildcard only.
	ls, _ = Listeners(root, net.ParseIP("10.0.0.5"), 9090)
	if len(ls) != 1 || ls[0].Addr != "[::]:9090" || !slices.Equal(ls[0].Pids, []int{200}) {
		t.Errorf("listeners on 10.0.0.5:9090 %+v, want the wildcard socket of 200", ls)
	}
	ls, _ = Listeners(root, nil, 9090)
	if len(ls) != 2 {
		t.Errorf("listeners on any address :9090 %+v, want both", ls)
	}
	// A connected socket on the port is not a listener; nothing on 8081.
	if ls, err := Listeners(root, nil, 50000); err != nil || len(ls) != 0 {
		t.Errorf("port 50000 (a client's): %+v, %v", ls, err)
	}
	if _, err := Listeners(t.TempDir(), nil, 80); err == nil {
		t.Error("a root without /net/tcp gave no error")
	}
}

func TestParseHexAddr(t *testing.T) {
	if !littleEndian() {
		t.Skip("little-endian fixtures")
	}
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000:0050":                         "0.0.0.0:80",
		"00000000000000000000000001000000:01BB": "[::1]:443",
		"0000000000000000FFFF00000100007F:1F90": "[::ffff:127.0.0.1]:8080",
	} {
		ip, port, ok := parseHexAddr(in)
		got := ""
		if ok {
			got = net.JoinHostPort(ip.String(), strconv.Itoa(port))
		}
		if got != want && !(want == "[::ffff:127.0.0.1]:8080" && got == "127.0.0.1:8080") {
			t.Errorf("parseHexAddr(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "0100007F", "zz:1F90", "0100007F:zz", "01007F:0050"} {
		if _, _, ok := parseHexAddr(bad); ok {
			t.Errorf("parseHexAddr(%q) accepted", bad)
		}
	}
}

// On this host: a listener this test opens is found, held by this process.
func TestListenersLive(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	ls, err := Listeners("", net.ParseIP("127.0.0.1"), port)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || !slices.Contains(ls[0].Pids, os.Getpid()) {
		t.Errorf("listeners on port %d: %+v, want one held by this process (%d)", port, ls, os.Getpid())
	}
}

func FuzzParseTCPTable(f *testing.F) {
	f.Add([]byte("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0000000000000000 100 0 0 10 0\n"))
	f.Add([]byte("h\n 0: 00000000000000000000000001000000:01BB 0:0 0A x y z 0 0 7\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range parseTCPTable(b) {
			if s.port < 0 || s.port > 65535 || (len(s.ip) != 4 && len(s.ip) != 16) {
				t.Fatalf("socket %+v out of range", s)
			}
		}
	})
}

// A generator pinned to some of the host's CPUs: the sample reads how busy
// those CPUs were, and the window says so.
func TestGeneratorCPUSet(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: a generator cannot be pinned to some of them")
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("taskset not installed")
	}
	cmd := exec.Command(taskset, "-c", "0", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// taskset pins itself, then becomes sleep: wait for the pin (bounded).
	status := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "status")
	for i := 0; ; i++ {
		b, _ := os.ReadFile(status)
		if strings.Contains(string(b), "Cpus_allowed_list:\t0\n") {
			break
		}
		if i == 200 {
			t.Fatalf("pid %d not pinned to CPU 0 after 2s", cmd.Process.Pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	gen := []Proc{{Name: "pinned", Pid: cmd.Process.Pid}}
	s := New("")
	var samples []Sample
	for i := 0; i < 3; i++ {
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		smp, err := s.Sample(context.Background(), nil, gen)
		if err != nil {
			t.Fatal(err)
		}
		if smp.Host[HostGenCPUs] != 1 || smp.Host[HostGenCPUTotal] <= 0 {
			t.Fatalf("sample of a generator pinned to CPU 0: %s=%v %s=%v", HostGenCPUs, smp.Host[HostGenCPUs], HostGenCPUTotal, smp.Host[HostGenCPUTotal])
		}
		samples = append(samples, smp)
	}
	sum := Window(samples)
	if sum.GenCPUs != 1 || sum.GenCPUsMean < 0 || sum.GenCPUsMean > 1 {
		t.Errorf("window: gen CPUs %d mean %v", sum.GenCPUs, sum.GenCPUsMean)
	}
	if _, ok := sum.Metrics()[MetricGenCPUsBusy]; !ok {
		t.Errorf("no %s metric", MetricGenCPUsBusy)
	}
	// Unpinned (this test process, on every CPU): no such figure.
	smp, _ := s.Sample(context.Background(), nil, []Proc{{Name: "self", Pid: os.Getpid()}})
	if _, ok := smp.Host[HostGenCPUs]; ok && runtimeAffinityAll() {
		t.Errorf("a generator allowed every CPU has a cpuset figure: %v", smp.Host[HostGenCPUs])
	}
}

// runtimeAffinityAll reports whether this process may run on every CPU.
func runtimeAffinityAll() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v) == "0-"+strconv.Itoa(runtime.NumCPU()-1)
		}
	}
	return false
}
