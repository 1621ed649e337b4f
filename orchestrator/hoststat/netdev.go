package hoststat

import (
	"bufio"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// NetDevReader reads a network device's driver statistics by name, as
// `ethtool -S DEV` prints them (the ETHTOOL_GSTATS ioctl).
type NetDevReader interface {
	// Stats returns every statistic the device's driver exposes.
	Stats(dev string) (map[string]uint64, error)
	// Driver names the device's driver ("ena", "veth").
	Driver(dev string) (string, error)
}

// NetDevStats is one device's statistics at one instant.
type NetDevStats struct {
	Device   string            `json:"device"`
	Driver   string            `json:"driver,omitempty"`
	Counters map[string]uint64 `json:"counters,omitempty"`
	// Err says why the device could not be read (no such device, a driver
	// without statistics); the device is then "unavailable", not a failure.
	Err string `json:"err,omitempty"`
}

// NetDevDelta is one device's statistics' increase over a window.
type NetDevDelta struct {
	Device string `json:"device"`
	Driver string `json:"driver,omitempty"`
	// Deltas are the increase of every statistic read at both ends; one that
	// went backwards (the driver was reset) counts from 0.
	Deltas map[string]uint64 `json:"deltas,omitempty"`
	// Last are the values at the end of the window (for the gauges some
	// drivers mix in, such as ENA's conntrack_allowance_available).
	Last map[string]uint64 `json:"last,omitempty"`
	Err  string            `json:"err,omitempty"`
}

// NetDevices returns the names of the host's network devices but loopback,
// sorted.
func NetDevices() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("hoststat: list network devices: %w", err)
	}
	var out []string
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			continue
		}
		out = append(out, i.Name)
	}
	sort.Strings(out)
	return out, nil
}

// ReadNetDevs reads devs' statistics with r; a device that cannot be read is
// kept with its error.
func ReadNetDevs(r NetDevReader, devs []string) []NetDevStats {
	out := make([]NetDevStats, 0, len(devs))
	for _, d := range devs {
		s := NetDevStats{Device: d}
		if drv, err := r.Driver(d); err == nil {
			s.Driver = drv
		}
		c, err := r.Stats(d)
		if err != nil {
			s.Err = err.Error()
		} else {
			s.Counters = c
		}
		out = append(out, s)
	}
	return out
}

// NetDevWindow returns each device's increase between two readings, in the
// order of after. A device missing from before counts from 0; one that could
// not be read at either end keeps the error.
func NetDevWindow(before, after []NetDevStats) []NetDevDelta {
	prev := map[string]NetDevStats{}
	for _, s := range before {
		prev[s.Device] = s
	}
	out := make([]NetDevDelta, 0, len(after))
	for _, a := range after {
		d := NetDevDelta{Device: a.Device, Driver: a.Driver, Err: a.Err}
		b, ok := prev[a.Device]
		if d.Err == "" && ok && b.Err != "" {
			d.Err = b.Err
		}
		if d.Err == "" {
			d.Deltas = make(map[string]uint64, len(a.Counters))
			d.Last = a.Counters
			for k, v := range a.Counters {
				if old, ok := b.Counters[k]; ok && v >= old {
					d.Deltas[k] = v - old
				} else {
					d.Deltas[k] = v
				}
			}
		}
		out = append(out, d)
	}
	return out
}

// ParseEthtoolStats parses the text `ethtool -S DEV` prints ("NIC
// statistics:" then one "name: value" a line), for fixtures and for hosts
// where only the command's output is at hand. A line that is not a statistic
// is an error naming its number.
func ParseEthtoolStats(text string) (map[string]uint64, error) {
	out := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || (n == 1 && strings.HasSuffix(line, "statistics:")) {
			continue
		}
		i := strings.LastIndexByte(line, ':')
		if i <= 0 {
			return nil, fmt.Errorf("ethtool statistics line %d %q: want \"name: value\"", n, line)
		}
		name := strings.TrimSpace(line[:i])
		v, err := strconv.ParseUint(strings.TrimSpace(line[i+1:]), 10, 64)
		if err != nil || name == "" {
			return nil, fmt.Errorf("ethtool statistics line %d %q: want \"name: value\" with a whole value", n, line)
		}
		out[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ethtool statistics: %w", err)
	}
	return out, nil
}
