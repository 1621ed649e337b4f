package hoststat

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseNodeExporterFixture(t *testing.T) {
	f, err := os.Open("testdata/node_exporter.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := ParseNodeExporter(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		HostCPUs: 2, HostFileNr: 811, HostFileMax: 2466160, HostTCPInUse: 4, HostTCPTW: 4,
		HostListenOverflows: 12, HostListenDrops: 0, HostReqQFullDrop: 0, HostReqQFullDoCookies: 0,
		HostConntrackCount: 0, HostConntrackMax: 262144, HostConntrackDrop: 0,
		HostMemTotal: 2.527602688e+10, HostMemAvailable: 2.4806940672e+10,
		HostPSICPUSome: 62.495358e6, HostPSIMemoryFull: 0,
		HostCPUBusy:  75.87 + 9.26 + 50.82 + 0.88 + 89.5 + 9.34 + 65.55 + 2.29,
		HostCPUTotal: 75.87 + 9.26 + 50.82 + 0.88 + 89.5 + 9.34 + 65.55 + 2.29 + 296.15 + 0.9 + 260.88 + 6.35,
	}
	for k, v := range want {
		if got, ok := s.Host[k]; !ok || !nearRel(got, v) {
			t.Errorf("Host[%q] = %v, %v; want %v", k, got, ok, v)
		}
	}
	if len(s.Unavailable) != 0 {
		t.Errorf("Unavailable = %v", s.Unavailable)
	}
}

func nearRel(a, b float64) bool {
	if b == 0 {
		return a == 0
	}
	d := (a - b) / b
	return d < 1e-9 && d > -1e-9
}

func TestParseNodeExporterErrors(t *testing.T) {
	tests := []struct {
		name, in string
		wantErr  bool
		missing  string
	}{
		{"empty page", "", false, HostCPUBusy},
		{"bad line", "node_filefd_allocated{ 1\n", true, ""},
		{"only fds", "node_filefd_allocated 3\nnode_filefd_maximum 10\n", false, HostTCPTW},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseNodeExporter(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want err %v", err, tt.wantErr)
			}
			if tt.missing != "" && !strings.Contains(strings.Join(s.Unavailable, ";"), tt.missing) {
				t.Errorf("Unavailable = %v, want %s listed", s.Unavailable, tt.missing)
			}
		})
	}
}

func FuzzParseNodeExporter(f *testing.F) {
	b, err := os.ReadFile("testdata/node_exporter.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := ParseNodeExporter(bytes.NewReader(in))
		if err == nil && s.Host == nil {
			t.Fatal("nil Host without error")
		}
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestNodeExporterLive scrapes Debian's prometheus-node-exporter run on loopback
// and checks its figures agree with procfs read at the same time.
func TestNodeExporterLive(t *testing.T) {
	bin, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		if bin, err = exec.LookPath("node_exporter"); err != nil {
			t.Skip("prometheus-node-exporter not installed (apt-get install -y prometheus-node-exporter)")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.CommandContext(ctx, bin, "--web.listen-address="+addr,
		"--collector.netstat.fields=^(TcpExt_(Listen.*|Syncookies.*|TCPReqQFull.*|TCPTimeWaitOverflow))$")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	ne := &NodeExporter{URL: "http://" + addr + "/metrics"}
	var s Sample
	for i := 0; ; i++ {
		s, err = ne.Sample(ctx)
		if err == nil {
			break
		}
		if i >= 50 {
			t.Fatalf("scrape: %v\nstderr: %s", err, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	local, err := New("/proc").Sample(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// ListenOverflows only grows (other tests may overflow queues meanwhile), and
	// procfs was read after the scrape.
	if v, lv := s.Host[HostListenOverflows], local.Host[HostListenOverflows]; v > lv {
		t.Errorf("ListenOverflows: node_exporter %v > procfs %v read later", v, lv)
	}
	for _, k := range []string{HostCPUs, HostFileMax, HostMemTotal, HostPortRangeWidth} {
		v, ok := s.Host[k]
		lv, lok := local.Host[k]
		if !lok {
			continue // the kernel lacks it; node_exporter must too or we compare nothing
		}
		if k == HostPortRangeWidth {
			if ok {
				t.Errorf("node_exporter unexpectedly has %s", k)
			}
			continue
		}
		if !ok || v != lv {
			t.Errorf("%s: node_exporter %v (%v), procfs %v", k, v, ok, lv)
		}
	}
	if s.Host[HostCPUBusy] <= 0 || s.Host[HostCPUTotal] < s.Host[HostCPUBusy] {
		t.Errorf("cpu busy %v total %v", s.Host[HostCPUBusy], s.Host[HostCPUTotal])
	}
	t.Logf("node_exporter at %s: %d host figures, unavailable %v", addr, len(s.Host), s.Unavailable)

	bad := &NodeExporter{URL: "http://" + addr + "/nope"}
	if _, err := bad.Sample(ctx); err == nil || !strings.Contains(err.Error(), "HTML") {
		t.Errorf("scrape of a missing page: err = %v, want a not-metrics error", err)
	}
}
