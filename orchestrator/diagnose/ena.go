package diagnose

import (
	"fmt"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// RuleENAAllowance names an AWS instance over one of its network allowances:
// the ENA driver counts the packets it queued or dropped because of it
// (ethtool -S: bw_in_allowance_exceeded, pps_allowance_exceeded, ...). The
// kernel's own counters stay clean; the instance type is the limit.
const RuleENAAllowance = "ena-allowance"

func (d *diag) enaAllowance() {
	s := d.in.Summary
	var ev, over []string
	for _, stat := range hoststat.ENAAllowances {
		key := hoststat.ENAKey(stat)
		if n := s.Deltas[key]; n > 0 {
			ev = append(ev, fmt.Sprintf("ethtool %s +%.0f in the window %s", stat, n, d.where("ethtool -S", key)))
			over = append(over, strings.TrimSuffix(stat, "_allowance_exceeded"))
		}
	}
	if len(ev) == 0 {
		return
	}
	fix := "use a larger instance type, or one with higher network performance, or spread the load over more instances"
	if len(over) == 1 && over[0] == "conntrack" {
		fix = "use a larger instance type, or track fewer connections (security group rules that allow all traffic are not tracked)"
	}
	d.add(result.Finding{Rule: RuleENAAllowance, Resource: "network allowance of the instance (AWS ENA)",
		Setting:  "instance type / size",
		Observed: fmt.Sprintf("over its %s allowance", strings.Join(over, ", ")), Evidence: ev, Fix: fix})
}
