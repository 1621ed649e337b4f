package report

import (
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

var t0 = time.Date(2026, 11, 27, 6, 30, 0, 0, time.UTC)

// fixtureRun is a realistic run: round-robin doubling of rate and
// connections on the bundled event bus, a generator-fail rerun after scaling,
// a target-fail confirmed by its rerun, then two refine attempts on the
// failing step's index (as the orchestrator records them).
func fixtureRun() (*record.Run, []result.Step) {
	run := &record.Run{
		ID: "20261127T063000Z-local-eventbus", Plan: "local-eventbus", PlanFile: "plans/local-eventbus.yaml",
		Version: "v0.1.0", Status: result.StatusBottleneck,
		Host:   result.HostFacts{Hostname: "ci-runner", OS: "linux", Arch: "amd64", CPUs: 2, Go: "go1.26.8"},
		Static: map[string]any{"eventbus_nofile": 1024.0, "eventbus_max_inflight": 512.0, "kernel": map[string]any{"somaxconn": 4096.0}},
		Start:  t0, End: t0.Add(6 * time.Minute),
		Params: []string{"rate", "connections"},
		Gates:  []string{"latency.p99 < 100ms", "errors.ratio < 0.001", "throughput.ratio > 95%"},
	}
	gates := func(p99, errs, tput float64) []result.GateResult {
		m := map[string]float64{"latency.p99": p99, "errors.ratio": errs, "throughput.ratio": tput}
		var out []result.GateResult
		for _, g := range run.Gates {
			out = append(out, gateResult(g, m))
		}
		return out
	}
	n := 0
	mk := func(index, attempt int, kind string, rate, conns float64, changed string, from, to float64, p99, errs, rps float64) result.Step {
		start := t0.Add(time.Duration(n) * 30 * time.Second)
		n++
		offered := rate
		s := result.Step{
			Index: index, Attempt: attempt, Kind: kind,
			Parameters: map[string]float64{"rate": rate, "connections": conns},
			Changed:    changed, From: from, To: to,
			Metrics: metrics.Metrics{
				metrics.LatencyP50: p99 / 4, metrics.LatencyP99: p99, metrics.ErrorsRatio: errs,
				metrics.ThroughputRPS: rps, metrics.ThroughputOffered: offered, metrics.ThroughputRatio: rps / offered,
				metrics.GeneratorCPU: rate / 2400, metrics.ErrorsCount: float64(int(errs * rps * 20)),
			},
			Gates:      gates(p99, errs, rps/offered),
			Findings:   []result.Finding{},
			Generators: 1,
			Start:      start, End: start.Add(27 * time.Second),
		}
		for _, g := range s.Gates {
			if !g.Pass {
				s.FailedGates = append(s.FailedGates, g)
			}
		}
		s.Verdict, s.Reason = result.VerdictPass, "all gates hold"
		if len(s.FailedGates) > 0 {
			s.Verdict = result.VerdictTargetFail
			s.Reason = s.FailedGates[0].Explain
		}
		return s
	}
	fd := result.Finding{
		Rule: "fd-process", Side: "target", Host: "local", Process: "eventbus", Resource: "open files",
		Setting: "RLIMIT_NOFILE (systemd LimitNOFILE)", Observed: "1024 of 1024",
		Evidence: []string{"http: Accept error: accept tcp 127.0.0.1:41234: accept4: too many open files; retrying in 5ms"},
		Fix:      "raise the process open-file limit above 2x peak connections",
	}
	// The host's CPU ran hot from step 4 on: the same cause on four attempts,
	// each observed a little differently. The report shows it once.
	cpu := func(pct string) result.Finding {
		return result.Finding{
			Rule: "cpu-saturation", Side: "generator", Host: "local", Resource: "host CPU",
			Setting: "instance size / count", Observed: pct + " of the host's CPUs",
			Evidence: []string{"host cpu " + pct + " busy over the hold; load average 2.1 on 2 CPUs"},
			Fix:      "add instances or CPUs; run the generator on other machines than the target",
		}
	}
	steps := []result.Step{
		mk(1, 1, result.KindRamp, 250, 8, "", 0, 0, 0.0021, 0, 249.9),
		mk(2, 1, result.KindRamp, 500, 8, "rate", 250, 500, 0.0024, 0, 499.8),
		mk(3, 1, result.KindRamp, 500, 16, "connections", 8, 16, 0.0023, 0, 499.9),
		mk(4, 1, result.KindRamp, 1000, 16, "rate", 500, 1000, 0.0031, 0, 999.6),
		mk(5, 1, result.KindRamp, 1000, 32, "connections", 16, 32, 0.0123, 0, 991.2),
	}
	// The generator could not keep up: rerun on a fleet twice the size.
	steps[3].Findings = []result.Finding{cpu("86%")}
	steps[4].Findings = []result.Finding{cpu("97%")}
	steps[4].Verdict = result.VerdictGeneratorFail
	steps[4].Reason = "generator saturated: generator.cpu 93% > 85%"
	steps[4].Metrics[metrics.GeneratorCPU] = 0.93
	steps[4].Health = []result.GateResult{gateResult("generator.cpu < 0.85", steps[4].Metrics)}
	rerun := mk(5, 2, result.KindRerun, 1000, 32, "connections", 16, 32, 0.0034, 0, 999.7)
	rerun.Generators = 2
	rerun.Findings = []result.Finding{cpu("88%")}
	fail := mk(6, 1, result.KindRamp, 2000, 32, "rate", 1000, 2000, 0.8123, 0.0213, 1623.4)
	fdEarly := fd
	fdEarly.Observed = "1019 of 1024"
	fail.Findings = []result.Finding{fdEarly, cpu("91%")}
	fail.ErrorClasses = map[string]int64{"reset": 412, "timeout": 279}
	confirm := mk(6, 2, result.KindConfirm, 2000, 32, "rate", 1000, 2000, 0.9031, 0.0250, 1597.1)
	confirm.Findings = []result.Finding{fd}
	refine1 := mk(6, 1, result.KindRefine, 1500, 32, "rate", 1000, 1500, 0.0089, 0, 1499.2)
	refine2 := mk(6, 2, result.KindRefine, 1750, 32, "rate", 1000, 1750, 0.2412, 0.0004, 1702.5)
	steps = append(steps, rerun, fail, confirm, refine1, refine2)
	return run, steps
}
