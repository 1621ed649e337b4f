package hoststat

import (
	"errors"
	"net"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

func TestParseEthtoolStats(t *testing.T) {
	got, err := ParseEthtoolStats("NIC statistics:\n     rx_packets: 12\n     tx_queue_0_xdp: 0\n  weird: name: 7\n\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"rx_packets": 12, "tx_queue_0_xdp": 0, "weird: name": 7}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"NIC statistics:\n rx: -1\n", "NIC statistics:\n no value here\n", "x: 1.5"} {
		if _, err := ParseEthtoolStats(bad); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("ParseEthtoolStats(%q) error %v, want one naming the line", bad, err)
		}
	}
}

func FuzzParseEthtoolStats(f *testing.F) {
	f.Add("NIC statistics:\n     pps_allowance_exceeded: 3\n")
	f.Add("a: 1\nb:2\n")
	f.Add(":\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseEthtoolStats(s)
		if err != nil {
			return
		}
		for k := range m {
			if k == "" || strings.ContainsAny(k, "\n") {
				t.Fatalf("statistic name %q from %q", k, s)
			}
		}
	})
}

type fakeNetDevReader map[string]map[string]uint64

func (f fakeNetDevReader) Stats(dev string) (map[string]uint64, error) {
	if s, ok := f[dev]; ok {
		return s, nil
	}
	return nil, errors.New("no such device")
}
func (f fakeNetDevReader) Driver(string) (string, error) { return "fake", nil }

func TestNetDevWindow(t *testing.T) {
	before := ReadNetDevs(fakeNetDevReader{"eth0": {"a": 10, "b": 5}}, []string{"eth0", "eth9"})
	after := ReadNetDevs(fakeNetDevReader{"eth0": {"a": 25, "b": 2, "c": 4}}, []string{"eth0", "eth9"})
	d := NetDevWindow(before, after)
	if len(d) != 2 {
		t.Fatalf("deltas %+v, want 2 devices", d)
	}
	if want := map[string]uint64{"a": 15, "b": 2, "c": 4}; !reflect.DeepEqual(d[0].Deltas, want) {
		t.Errorf("eth0 deltas %v, want %v (a reset counts from 0, a new counter from 0)", d[0].Deltas, want)
	}
	if d[1].Err == "" || d[1].Deltas != nil {
		t.Errorf("eth9 %+v, want its error and no deltas", d[1])
	}
}

// The real ioctl path: every device of this host that has driver statistics
// (veth, virtio_net...) is read through Ethtool and agrees with `ethtool -S`
// when that command is installed.
func TestEthtoolReadsThisHost(t *testing.T) {
	devs, err := NetDevices()
	if err != nil {
		t.Fatal(err)
	}
	var e Ethtool
	defer e.Close()
	read := 0
	for _, d := range devs {
		s, err := e.Stats(d)
		if err != nil {
			continue // a driver without statistics (ifb, dummy)
		}
		read++
		drv, _ := e.Driver(d)
		t.Logf("%s (%s): %d statistics", d, drv, len(s))
		path, lerr := exec.LookPath("ethtool")
		if lerr != nil {
			continue
		}
		out, err := exec.Command(path, "-S", d).Output()
		if err != nil {
			continue
		}
		text, err := ParseEthtoolStats(string(out))
		if err != nil {
			t.Fatalf("parse ethtool -S %s: %v", d, err)
		}
		for k := range s {
			if _, ok := text[k]; !ok {
				t.Errorf("%s: statistic %q read by ioctl, missing from ethtool -S", d, k)
			}
		}
	}
	if read == 0 {
		if _, err := net.InterfaceByName("eth0"); err == nil {
			t.Logf("no device of this host exposes driver statistics")
		}
		t.Skip("no network device with driver statistics here")
	}
	if _, err := e.Stats("loadramp-no-such-dev0"); err == nil {
		t.Error("Stats of a missing device: no error")
	}
}
