package diagnose

import (
	"fmt"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// RuleGeneratorHeldConnections names a generator that kept its own connections
// busy: its requests waited for a free connection while the target's answers
// occupied few of them.
const RuleGeneratorHeldConnections = "generator-held-connections"

// A generator whose requests mostly find every connection busy
// (generator.blocked.ratio at least PoolBlocked) has them busy for one of two
// reasons: the target answers slowly, or the generator is slow to write its
// requests and to read the answers. Little's law tells them apart: the target's
// answers occupy throughput × mean service time connections on average
// (service time runs from the request's write to the kernel's receive time of
// its response, so the generator's own delays are not in it). When that is at
// most PoolTargetShare of the connections held, the rest of the time they
// were busy was the generator's. The rule also asks that the generator was
// working hard (generator.cpu at least PoolBusyCPU): a generator whose
// connections are busy dialing a target that drops its SYNs is idle, and
// that is the target's doing.
//
// Seen on a 2-CPU machine, nginx on one CPU and loadramp on the other, 64
// connections, 160,000 req/s offered: every request blocked, latency p99 2 s,
// service p99 0.7 ms, generator.cpu 0.886 (under generator-saturated's 0.9),
// and the step was judged target-fail (its confirmation, at 0.997, was
// generator-fail). In five such steps, the generator at 0.94–0.99, the target's
// answers occupied 0.07 to 0.51 of the connections; at 80,000 req/s, where the
// steps passed with 1 % of requests blocked at most, 0.04–0.07. A target too slow
// for the connections keeps them busy itself: near 1.
const (
	PoolBlocked     = 0.5
	PoolTargetShare = 0.5
	PoolBusyCPU     = 0.75
)

func (d *diag) generatorHeldConnections() {
	m := d.in.Engine
	blocked, ok1 := m[metrics.GeneratorBlockedRatio]
	cpu, ok2 := m[metrics.GeneratorCPU]
	held, ok3 := m[metrics.ConnectionsHeld]
	rps, ok4 := m[metrics.ThroughputRPS]
	svc, ok5 := m[metrics.ServiceMean]
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || held <= 0 || rps <= 0 || svc <= 0 {
		return
	}
	target := rps * svc
	if blocked < PoolBlocked || cpu < PoolBusyCPU || target > PoolTargetShare*held {
		return
	}
	d.add(result.Finding{Rule: RuleGeneratorHeldConnections, Side: hoststat.SideGenerator, Process: "loadramp",
		Resource: "the generator's connections", Setting: "generator fleet size (more or larger generators)",
		Observed: fmt.Sprintf("%.0f%% of requests waited for a connection; the target's answers occupied %.1f of %.0f", 100*blocked, target, held),
		Evidence: []string{
			fmt.Sprintf("%.0f%% of the requests released found every connection busy (generator.blocked.ratio %.3f)", 100*blocked, blocked),
			fmt.Sprintf("the target's answers occupied %.1f connections on average (throughput %.0f req/s × mean service time %.3f ms, Little's law) of the %.0f held: the rest of the time they waited for the generator to write and read", target, rps, 1e3*svc, held),
			fmt.Sprintf("the generator used %.2f of its CPUs (generator.cpu)", cpu),
		},
		Fix: "add generators or give them more CPUs; the requests waited in the generator's own queue, so the step measured the generator, not the target"})
}
