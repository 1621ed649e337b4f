package diagnose

import (
	"fmt"
	"sort"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// RuleENAAllowance: an AWS instance's network allowance, not its kernel,
// dropped or queued packets (the ENA driver's *_allowance_exceeded counters).
const RuleENAAllowance = "ena-allowance"

// ENA allowance counters (ethtool -S on an ENA device), each the packets
// queued or dropped because the instance exceeded one of its allowances.
const (
	ENABwIn      = "bw_in_allowance_exceeded"
	ENABwOut     = "bw_out_allowance_exceeded"
	ENAPPS       = "pps_allowance_exceeded"
	ENAConntrack = "conntrack_allowance_exceeded"
	ENALinkLocal = "linklocal_allowance_exceeded"
	// ENAConntrackAvailable is a gauge: tracked connections the instance can
	// still open before conntrack_allowance_exceeded climbs.
	ENAConntrackAvailable = "conntrack_allowance_available"
)

// enaAllowances are the counters in the order findings list them, with what
// each means.
var enaAllowances = []struct{ counter, what string }{
	{ENABwIn, "inbound bandwidth"},
	{ENABwOut, "outbound bandwidth"},
	{ENAPPS, "packets per second"},
	{ENAConntrack, "tracked connections"},
	{ENALinkLocal, "packets to link-local services (DNS, instance metadata, NTP)"},
}

// ENAAllowance returns the ena-allowance findings of a window's network
// device deltas on host: one finding for the host, with a line of evidence
// for every device and allowance counter that grew. The setting is the
// instance type or size (its network allowances scale with it), except for
// link-local traffic, whose allowance is per network interface whatever the
// size. where says where a device's counter was read, for the evidence.
func ENAAllowance(host, side string, devs []hoststat.NetDevDelta, where func(dev hoststat.NetDevDelta, counter string) string) []result.Finding {
	if where == nil {
		where = func(dev hoststat.NetDevDelta, _ string) string { return "(ethtool -S " + dev.Device + ")" }
	}
	var ev, exceeded []string
	linkLocalOnly, conntrackOnly := true, true
	seen := map[string]bool{}
	for _, d := range devs {
		if d.Err != "" {
			continue
		}
		for _, a := range enaAllowances {
			n := d.Deltas[a.counter]
			if n == 0 {
				continue
			}
			line := fmt.Sprintf("%s %s +%d in the window %s", d.Device, a.counter, n, where(d, a.counter))
			if a.counter == ENAConntrack {
				if avail, ok := d.Last[ENAConntrackAvailable]; ok {
					line += fmt.Sprintf("; %s %d", ENAConntrackAvailable, avail)
				}
			}
			ev = append(ev, line)
			if !seen[a.what] {
				seen[a.what] = true
				exceeded = append(exceeded, a.what)
			}
			linkLocalOnly = linkLocalOnly && a.counter == ENALinkLocal
			conntrackOnly = conntrackOnly && a.counter == ENAConntrack
		}
	}
	if len(ev) == 0 {
		return nil
	}
	sort.Strings(ev)
	f := result.Finding{Rule: RuleENAAllowance, Side: side, Host: host,
		Resource: "EC2 network allowance: " + strings.Join(exceeded, ", "),
		Setting:  "EC2 instance type or size (network allowances grow with it)",
		Observed: "allowance exceeded: " + strings.Join(exceeded, ", "),
		Evidence: ev,
		Fix: "move this host to a larger instance size or a network-optimized type, or spread the load over more instances; " +
			"the instance's allowance, not the kernel, dropped or queued these packets"}
	switch {
	case linkLocalOnly:
		f.Setting = "link-local service traffic (1024 packets/s per network interface, whatever the instance size)"
		f.Fix = "cache DNS answers on the host (a local resolver) and avoid polling instance metadata under load"
	case conntrackOnly:
		f.Fix = "use a larger instance size, or track fewer connections: security group rules that allow all traffic " +
			"in both directions are not tracked"
	}
	return []result.Finding{f}
}

// enaAllowance adds the ena-allowance finding of the window: from the
// network devices' ethtool deltas when the host was read directly, else from
// the allowance counters summed over the host's devices (node_exporter's
// ethtool collector, node_ethtool_*).
func (d *diag) enaAllowance() {
	devs, where := d.in.NetDev, (func(hoststat.NetDevDelta, string) string)(nil)
	if len(devs) == 0 {
		sum := hoststat.NetDevDelta{Device: "all devices", Deltas: map[string]uint64{}}
		for _, a := range enaAllowances {
			if n := d.in.Summary.Deltas[hoststat.ENAKey(a.counter)]; n > 0 {
				sum.Deltas[a.counter] = uint64(n)
			}
		}
		devs = []hoststat.NetDevDelta{sum}
		where = func(_ hoststat.NetDevDelta, counter string) string {
			return d.where("ethtool -S", hoststat.ENAKey(counter))
		}
	}
	for _, f := range ENAAllowance(d.in.Host, d.in.Side, devs, where) {
		d.add(f)
	}
}
