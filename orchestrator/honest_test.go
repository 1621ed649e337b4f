package orchestrator

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Honest verdicts, driven with fakes: a hard limit the target reached fails
// a step whose gates hold; a host-wide finding on a host that runs only the
// generator is the generator's; a starved generator is never the target's
// bottleneck; the default checks apply unless the plan turns them off; a
// step is judged on the connections it really held.

// metricsEngine is a fake engine whose measurements are a function of the
// step's load parameters.
type metricsEngine struct {
	fn func(params map[string]float64) map[string]float64

	mu    sync.Mutex
	steps []map[string]float64
}

func (e *metricsEngine) Step(_ context.Context, s EngineStep) (*result.EngineResult, error) {
	e.mu.Lock()
	e.steps = append(e.steps, s.Params)
	e.mu.Unlock()
	m := map[string]float64{metrics.LatencyP99: 0.005, metrics.GeneratorLagP99: 0.0001}
	for k, v := range e.fn(s.Params) {
		m[k] = v
	}
	return &result.EngineResult{Metrics: m}, nil
}

func (e *metricsEngine) Close() error { return nil }

// fakeSampler is a fake of the host sampler: findings decides a step's
// findings from what it was asked to watch and what the engine saw.
type fakeSampler struct {
	findings func(spec SampleSpec, f StepFacts) []result.Finding

	mu    sync.Mutex
	specs []SampleSpec
}

func (s *fakeSampler) Start(_ context.Context, spec SampleSpec) (func(StepFacts) (map[string]float64, []result.Finding), error) {
	s.mu.Lock()
	s.specs = append(s.specs, spec)
	s.mu.Unlock()
	return func(f StepFacts) (map[string]float64, []result.Finding) { return nil, s.findings(spec, f) }, nil
}

// honestRun runs src on fakes with eng and sampler (nil: none) and locate.
func honestRun(t *testing.T, src string, eng Engine, sampler StepSampler, locate func(context.Context, []string) ([]Process, bool, error)) *Result {
	t.Helper()
	return observedRun(t, src, eng, sampler, locate, nil)
}

// observedRun is honestRun with the run's progress given to obs.
func observedRun(t *testing.T, src string, eng Engine, sampler StepSampler, locate func(context.Context, []string) ([]Process, bool, error), obs Observer) *Result {
	t.Helper()
	p, err := plan.Parse([]byte(src), "honest.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if errs := Check(p, nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	deps := Deps{
		Provision: func(context.Context, ProvisionSpec) (Fleet, error) { return &fakeFleet{size: 1, maxSize: 1}, nil },
		NewEngine: func(context.Context, *plan.Plan, Renderer, zerolog.Logger) (Engine, error) { return eng, nil },
		Locate:    locate,
		Now:       time.Now,
		Observer:  obs,
	}
	if sampler != nil {
		deps.Sampler = sampler
	}
	res, err := Run(context.Background(), p, deps, Options{OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

const honestPlan = `version: 1
name: honest
fleets:
  target:
    provider: static
    outputs: { endpoint: "http://127.0.0.1:1" }
workload:
  engine: builtin
  http: { url: "{{ .fleets.target.endpoint }}/" }
parameters:
  - { name: rate, start: 100, max: 1600 }
ramp: { warmup: 0s, hold: 1ms, cooldown: 0s, confirm: 1, refine: 0 }
gates: [latency.p99 < 100ms]
report: { formats: [json] }
`

func TestTargetLimitFindingFailsStepWithGatesHolding(t *testing.T) {
	eng := &metricsEngine{fn: func(map[string]float64) map[string]float64 { return nil }}
	s := &fakeSampler{findings: func(_ SampleSpec, f StepFacts) []result.Finding {
		var out []result.Finding
		if f.Params["rate"] >= 200 {
			// Near a limit: explains, does not fail.
			out = append(out, result.Finding{Rule: diagnose.RuleCPUSaturation, Side: result.SideTarget, Process: "srv", Observed: "93% of 1 CPUs"})
		}
		if f.Params["rate"] >= 800 {
			out = append(out, result.Finding{Rule: diagnose.RuleListenOverflow, Side: result.SideTarget, Observed: "12 overflows",
				Evidence: []string{"TcpExt ListenOverflows +12 in the window"}, LimitReached: true})
		}
		return out
	}}
	res := honestRun(t, honestPlan, eng, s, nil)
	if got := attempts(res); got != "ramp/pass@100 ramp/pass@200 ramp/pass@400 ramp/target-fail@800 confirm/target-fail@800" {
		t.Fatalf("attempts %s: want the limit reached at 800 to fail with every gate holding", got)
	}
	b := res.Report.Bottleneck
	if res.Status != result.StatusBottleneck || b == nil || b.To != 800 || b.Side != result.SideTarget {
		t.Fatalf("status %s bottleneck %+v; want the target's at rate 800", res.Status, b)
	}
	if !strings.Contains(b.Reason, "limit reached with the gates holding: listen-overflow: 12 overflows") || len(b.FailedGates) != 0 {
		t.Errorf("reason %q, failed gates %v: want the limit named, no gate failed", b.Reason, b.FailedGates)
	}
}

func TestHostFindingOnGeneratorOnlyHostIsTheGenerators(t *testing.T) {
	eng := &metricsEngine{fn: func(map[string]float64) map[string]float64 { return nil }}
	// The real rules on a window whose host CPUs were busy from rate 400 on,
	// with the side the run says this host serves.
	busyFrom400 := &fakeSampler{findings: func(spec SampleSpec, f StepFacts) []result.Finding {
		sum := hoststat.Summary{HostCPUMean: 0.2, HostCPUPeak: 0.3, GenCPUsMean: -1}
		if f.Params["rate"] >= 400 {
			sum.HostCPUMean, sum.HostCPUPeak = 0.97, 1
		}
		return diagnose.Diagnose(diagnose.Input{Host: "local", Summary: sum, Side: spec.Side})
	}}
	t.Run("target elsewhere", func(t *testing.T) {
		var asked []string
		res := honestRun(t, honestPlan, eng, busyFrom400, func(_ context.Context, eps []string) ([]Process, bool, error) {
			asked = eps
			return nil, false, nil // nothing listens here: the target is elsewhere
		})
		if strings.Join(asked, " ") != "127.0.0.1:1" {
			t.Errorf("Locate asked for %v, want the workload's endpoint", asked)
		}
		if res.Status != result.StatusGeneratorLimited || res.Report.Bottleneck != nil {
			t.Fatalf("status %s, bottleneck %+v: want generator-limited and no target bottleneck", res.Status, res.Report.Bottleneck)
		}
		last := res.Report.Steps[len(res.Report.Steps)-1]
		if last.Verdict != result.VerdictGeneratorFail || last.Parameters["rate"] != 400 {
			t.Fatalf("last step %s at %v, want generator-fail at 400", last.Verdict, last.Parameters)
		}
		var cpu *result.Finding
		for i, f := range last.Findings {
			if f.Rule == diagnose.RuleCPUSaturation {
				cpu = &last.Findings[i]
			}
		}
		if cpu == nil || cpu.Side != result.SideGenerator || !strings.Contains(strings.Join(cpu.Evidence, " "), "runs only load generators") {
			t.Errorf("CPU finding %+v: want it on the generator's side, saying why", cpu)
		}
		if !strings.Contains(last.Reason, "not trustworthy") {
			t.Errorf("reason %q: want the target's latency called untrustworthy", last.Reason)
		}
	})
	t.Run("target here", func(t *testing.T) {
		// The same busy host, running the target too: the finding blames
		// neither side and the ramp goes on.
		res := honestRun(t, honestPlan, eng, busyFrom400, func(context.Context, []string) ([]Process, bool, error) {
			return []Process{{Name: "nginx", Pid: 4242}}, true, nil
		})
		if res.Status != result.StatusMaxReached {
			t.Fatalf("status %s (%s): a host-wide CPU finding on a shared host blames neither side", res.Status, attempts(res))
		}
		if sp := busyFrom400.specs[len(busyFrom400.specs)-1]; sp.Side != "" || len(sp.Target) != 1 || sp.Target[0].Pid != 4242 {
			t.Errorf("sampler spec side %q target %v: want the located nginx watched, no side", sp.Side, sp.Target)
		}
	})
}

func TestStarvedGeneratorIsNeverTheTargetsBottleneck(t *testing.T) {
	// From rate 800 the generator waits for its CPU half the time and the
	// latency it measures breaks the target's gate: generator-fail, with no
	// generator_health in the plan (the default checks it).
	eng := &metricsEngine{fn: func(p map[string]float64) map[string]float64 {
		if p["rate"] >= 800 {
			return map[string]float64{metrics.LatencyP99: 2.3, metrics.GeneratorStarvedRatio: 0.5, metrics.GeneratorCPU: 0.73}
		}
		return map[string]float64{metrics.GeneratorStarvedRatio: 0.01, metrics.GeneratorCPU: 0.2}
	}}
	res := honestRun(t, honestPlan, eng, nil, nil)
	if res.Status != result.StatusGeneratorLimited || res.Report.Bottleneck != nil {
		t.Fatalf("status %s bottleneck %+v (%s): want generator-limited", res.Status, res.Report.Bottleneck, attempts(res))
	}
	last := res.Report.Steps[len(res.Report.Steps)-1]
	if len(last.FailedHealth) != 1 || last.FailedHealth[0].Metric != metrics.GeneratorStarvedRatio || !last.FailedHealth[0].Default {
		t.Errorf("failed health %+v: want the default starvation check", last.FailedHealth)
	}
	for _, want := range []string{"generator.starved.ratio", "not trustworthy", "the target's gates failed too", "latency.p99"} {
		if !strings.Contains(last.Reason, want) {
			t.Errorf("reason %q: want %q", last.Reason, want)
		}
	}
}

// A generator that falls behind its schedule because the hypervisor took its
// CPU (steal) ends the run generator-limited, and its step names why: the
// default lag check failed, and a cpu-saturation finding of the generator's
// gives the steal's worst second as the cause. Where the waits were too short
// to make the lag, the step says only that the check failed.
func TestStolenGeneratorNamesTheSteal(t *testing.T) {
	stolen := &metricsEngine{fn: func(p map[string]float64) map[string]float64 {
		m := map[string]float64{metrics.GeneratorCPU: 0.3, metrics.GeneratorStealRatio: 0.01, metrics.GeneratorStealPeak: 0.01,
			metrics.GeneratorStarvedRatio: 0.001, metrics.GeneratorStarvedPeak: 0.002}
		if p["rate"] >= 400 {
			m[metrics.GeneratorLagP99], m[metrics.GeneratorStealRatio], m[metrics.GeneratorStealPeak] = 0.0124, 0.046, 0.15
		}
		return m
	}}
	res := honestRun(t, honestPlan, stolen, nil, nil)
	if res.Status != result.StatusGeneratorLimited {
		t.Fatalf("status %s (%s): want generator-limited", res.Status, attempts(res))
	}
	last := res.Report.Steps[len(res.Report.Steps)-1]
	var found *result.Finding
	for i, f := range last.Findings {
		if f.Rule == diagnose.RuleCPUSaturation && f.Side == result.SideGenerator {
			found = &last.Findings[i]
		}
	}
	if found == nil {
		t.Fatalf("step %d.%d findings %+v: want the generator's cpu-saturation", last.Index, last.Attempt, last.Findings)
	}
	// The host of the sampler's own findings on this machine: the report
	// counts the two as one cause.
	if found.Host != "local" {
		t.Errorf("finding on host %q, want local", found.Host)
	}
	if !strings.Contains(found.Observed, "the hypervisor took 150.0 ms") || !strings.Contains(last.Reason, "cpu-saturation: ") ||
		!strings.Contains(last.Reason, "generator.lag.p99") {
		t.Errorf("finding %q, reason %q", found.Observed, last.Reason)
	}

	// The same run with the steal's worst second shorter than the lag.
	stolen.fn = func(p map[string]float64) map[string]float64 {
		if p["rate"] >= 400 {
			return map[string]float64{metrics.GeneratorCPU: 0.3, metrics.GeneratorLagP99: 0.0124,
				metrics.GeneratorStealRatio: 0.005, metrics.GeneratorStealPeak: 0.012}
		}
		return nil
	}
	res = honestRun(t, honestPlan, stolen, nil, nil)
	last = res.Report.Steps[len(res.Report.Steps)-1]
	if res.Status != result.StatusGeneratorLimited || len(last.Findings) != 0 {
		t.Errorf("status %s, findings %+v: want generator-limited and no finding", res.Status, last.Findings)
	}
}

func TestDefaultChecksAppliedListedAndTurnedOff(t *testing.T) {
	lagging := &metricsEngine{fn: func(p map[string]float64) map[string]float64 {
		if p["rate"] >= 400 {
			return map[string]float64{metrics.GeneratorLagP99: 0.2}
		}
		return nil
	}}
	runJSON := func(t *testing.T, res *Result) *record.Run {
		t.Helper()
		d, err := record.Open(res.Dir)
		if err != nil {
			t.Fatal(err)
		}
		run, err := d.ReadRun()
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	t.Run("on without generator_health", func(t *testing.T) {
		res := honestRun(t, honestPlan, lagging, nil, nil)
		if res.Status != result.StatusGeneratorLimited {
			t.Fatalf("status %s (%s): want the default lag check to see the lagging generator", res.Status, attempts(res))
		}
		c := runJSON(t, res).Checks
		if c == nil {
			t.Fatal("run.json has no checks")
		}
		var health []string
		for _, h := range c.GeneratorHealth {
			if !h.Default || h.Why == "" {
				t.Errorf("health check %+v: want a default with its reason", h)
			}
			health = append(health, h.Expr)
		}
		if got, want := strings.Join(health, "; "), "generator.lag.p99 < 10ms; generator.starved.ratio < 0.2; generator.cpu < 0.9"; got != want {
			t.Errorf("health checks %q, want %q", got, want)
		}
		// rate's achieved check, and the plan's own gate.
		if len(c.Gates) != 2 || c.Gates[0].Expr != "latency.p99 < 100ms" || c.Gates[0].Default ||
			c.Gates[1].Expr != "throughput.ratio > 0.9" || !c.Gates[1].Default || c.Gates[1].Param != "rate" {
			t.Errorf("gates %+v: want the plan's then rate's default", c.Gates)
		}
		if len(c.Off) != 0 {
			t.Errorf("off %v, want none", c.Off)
		}
	})
	t.Run("the plan's own threshold replaces the default", func(t *testing.T) {
		src := strings.Replace(honestPlan, "report:", "generator_health: [generator.lag.p99 < 500ms]\nreport:", 1)
		res := honestRun(t, src, lagging, nil, nil)
		if res.Status != result.StatusMaxReached {
			t.Fatalf("status %s (%s): the plan allows 500ms of lag", res.Status, attempts(res))
		}
		var health []string
		for _, h := range runJSON(t, res).Checks.GeneratorHealth {
			health = append(health, h.Expr)
		}
		if got, want := strings.Join(health, "; "), "generator.lag.p99 < 500ms; generator.starved.ratio < 0.2; generator.cpu < 0.9"; got != want {
			t.Errorf("health checks %q, want %q", got, want)
		}
	})
	t.Run("off", func(t *testing.T) {
		src := strings.Replace(honestPlan, "report:", "default_checks: { generator_health: false, parameters: false }\nreport:", 1)
		res := honestRun(t, src, lagging, nil, nil)
		if res.Status != result.StatusMaxReached {
			t.Fatalf("status %s (%s): default checks turned off judge nothing", res.Status, attempts(res))
		}
		c := runJSON(t, res).Checks
		if len(c.GeneratorHealth) != 0 || len(c.Gates) != 1 || strings.Join(c.Off, ",") != "generator_health,parameters" {
			t.Errorf("checks %+v: want the plan's gate only, and both default sets off", c)
		}
	})
}

func TestConnectionsAreJudgedOnWhatWasHeld(t *testing.T) {
	// The target holds 127 connections (nginx's 128 worker_connections, one
	// of them its listening socket): beyond, it closes idle ones and nearly
	// every request reopens one. Below, it closes every 20th request on
	// purpose, which stays under the default threshold.
	eng := &metricsEngine{fn: func(p map[string]float64) map[string]float64 {
		c := p["connections"]
		held := min(c, 127)
		reopened := 0.05
		if c > 127 {
			reopened = 0.97
		}
		return map[string]float64{metrics.ConnectionsHeld: held, metrics.ConnectionsHeldRatio: held / c,
			metrics.ConnectionsHeldPeak: held, metrics.ConnectionsReopenedRatio: reopened,
			metrics.ConnectionsReopened: reopened * 8000, metrics.RequestsCount: 8000}
	}}
	src := strings.Replace(honestPlan, "  - { name: rate, start: 100, max: 1600 }",
		"  - { name: connections, start: 16, max: 2048 }\n  - { name: rate, start: 2000, max: 2000 }", 1)
	res := honestRun(t, src, eng, nil, nil)
	b := res.Report.Bottleneck
	if res.Status != result.StatusBottleneck || b == nil || b.Parameter != "connections" || b.To != 128 || b.From != 64 {
		t.Fatalf("status %s bottleneck %+v (%s): want connections 64 -> 128", res.Status, b, attempts(res))
	}
	var f *result.Finding
	for i := range b.Findings {
		if b.Findings[i].Rule == diagnose.RuleConnectionsClosed {
			f = &b.Findings[i]
		}
	}
	if f == nil {
		t.Fatalf("no %s finding at the bottleneck: %+v", diagnose.RuleConnectionsClosed, b.Findings)
	}
	if f.Side != result.SideTarget || !f.LimitReached || f.Host != "127.0.0.1:1" ||
		!strings.Contains(f.Observed, "0.97 connections reopened per request, to hold 127 of 128") || !strings.Contains(f.Observed, "churn began at about 127") ||
		!strings.Contains(strings.Join(f.Evidence, " "), "7760 connections reopened for 8000 requests") {
		t.Errorf("finding %+v: want the target's side, the reopening first (127 of 128 held only by it), where the churn began and the reopens", f)
	}
	for _, s := range res.Report.Steps {
		if s.Parameters["connections"] < 128 && s.Verdict != result.VerdictPass {
			t.Errorf("step at %v connections (5%% reopened, all held) is %s: %s", s.Parameters["connections"], s.Verdict, s.Reason)
		}
	}
}

// firstAt400 returns a fake engine whose every attempt measures base, and
// whose first n attempts at rate 400 (all of them when n < 0) measure hit
// over it.
func firstAt400(n int, base, hit map[string]float64) *metricsEngine {
	var mu sync.Mutex
	seen := 0
	return &metricsEngine{fn: func(p map[string]float64) map[string]float64 {
		m := maps.Clone(base)
		if p["rate"] != 400 {
			return m
		}
		mu.Lock()
		seen++
		now := n < 0 || seen <= n
		mu.Unlock()
		if now {
			maps.Copy(m, hit)
		}
		return m
	}}
}

// A generator whose CPU the hypervisor took in one attempt is measured again
// on the same generators, and the run goes on when the rerun holds; one
// whose CPU is taken in every attempt, or that is itself out of CPU, ends
// the run generator-limited.
func TestInterferedGeneratorIsRerunOnTheSameGenerators(t *testing.T) {
	// stolenAt returns a fake engine: the generator's CPU is stolen in the
	// first n attempts at rate 400 (all of them when n < 0), which find it
	// using cpu of its CPUs (0.3 in the others).
	stolenAt := func(n int, cpu float64) *metricsEngine {
		return firstAt400(n,
			map[string]float64{metrics.GeneratorCPU: 0.3, metrics.GeneratorStealRatio: 0.004, metrics.GeneratorStealPeak: 0.008},
			map[string]float64{metrics.GeneratorLagP99: 0.0124, metrics.GeneratorStealRatio: 0.15, metrics.GeneratorStealPeak: 0.28, metrics.GeneratorCPU: cpu})
	}
	cases := []struct {
		name, plan   string
		eng          *metricsEngine
		status, want string
	}{
		{"stolen once", honestPlan, stolenAt(1, 0.3), result.StatusMaxReached,
			"ramp/pass@100 ramp/pass@200 ramp/generator-fail@400 rerun/pass@400 ramp/pass@800 ramp/pass@1600"},
		{"stolen twice", honestPlan, stolenAt(2, 0.3), result.StatusMaxReached,
			"ramp/pass@100 ramp/pass@200 ramp/generator-fail@400 rerun/generator-fail@400 rerun/pass@400 ramp/pass@800 ramp/pass@1600"},
		{"stolen in every attempt", honestPlan, stolenAt(-1, 0.3), result.StatusGeneratorLimited,
			"ramp/pass@100 ramp/pass@200 ramp/generator-fail@400 rerun/generator-fail@400 rerun/generator-fail@400"},
		{"no reruns asked for", strings.Replace(honestPlan, "refine: 0", "refine: 0, interference_reruns: 0", 1), stolenAt(1, 0.3),
			result.StatusGeneratorLimited, "ramp/pass@100 ramp/pass@200 ramp/generator-fail@400"},
		// Behind and busy: its own CPU, not the hypervisor's steal.
		{"busy generator", honestPlan, stolenAt(1, 0.95), result.StatusGeneratorLimited,
			"ramp/pass@100 ramp/pass@200 ramp/generator-fail@400"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := honestRun(t, c.plan, c.eng, nil, nil)
			if got := attempts(res); res.Status != c.status || got != c.want {
				t.Errorf("status %s, attempts %s\nwant %s, %s", res.Status, got, c.status, c.want)
			}
		})
	}
}

// interfered tells a generator whose CPU others took from one that failed
// for itself.
func TestInterferedOnlyWhenOthersTookTheCPU(t *testing.T) {
	stolen := result.Finding{Rule: diagnose.RuleCPUSaturation, Side: result.SideGenerator, Process: "loadramp", Observed: "fell behind its schedule"}
	lag := result.GateResult{Metric: metrics.GeneratorLagP99}
	base := func() *result.Step {
		return &result.Step{Verdict: result.VerdictGeneratorFail, Metrics: map[string]float64{metrics.GeneratorCPU: 0.4},
			FailedHealth: []result.GateResult{lag}, Findings: []result.Finding{stolen}}
	}
	cases := []struct {
		name  string
		edit  func(*result.Step)
		taken bool
	}{
		{"steal explains the lag", func(*result.Step) {}, true},
		{"starved", func(s *result.Step) {
			s.FailedHealth = []result.GateResult{{Metric: metrics.GeneratorStarvedRatio}}
		}, true},
		{"no CPU figure", func(s *result.Step) { delete(s.Metrics, metrics.GeneratorCPU) }, true},
		{"target-fail", func(s *result.Step) { s.Verdict = result.VerdictTargetFail }, false},
		{"nothing explains the lag", func(s *result.Step) { s.Findings = nil }, false},
		{"only a target finding", func(s *result.Step) {
			s.Findings = []result.Finding{{Rule: diagnose.RuleCPUSaturation, Side: result.SideTarget}}
		}, false},
		{"busy", func(s *result.Step) { s.Metrics[metrics.GeneratorCPU] = 0.93 }, false},
		{"failed its CPU check", func(s *result.Step) {
			s.FailedHealth = append(s.FailedHealth, result.GateResult{Metric: metrics.GeneratorCPU})
		}, false},
		{"its own errors", func(s *result.Step) { s.Metrics[metrics.GeneratorErrorsCount] = 3 }, false},
		{"a Locust worker at its limit", func(s *result.Step) { s.Metrics[metrics.GeneratorWorkersSaturated] = 1 }, false},
		{"out of ports too", func(s *result.Step) {
			s.Findings = append(s.Findings, result.Finding{Rule: diagnose.RuleEphemeralPorts, Side: result.SideGenerator})
		}, false},
		{"a saturated agent", func(s *result.Step) {
			s.Findings = append(s.Findings, result.Finding{Rule: "generator-saturated", Side: result.SideGenerator})
		}, false},
	}
	for _, c := range cases {
		s := base()
		c.edit(s)
		why, taken := interfered(s)
		if taken != c.taken || taken && !strings.Contains(why, "fell behind its schedule") {
			t.Errorf("%s: interfered = %q, %v; want %v", c.name, why, taken, c.taken)
		}
	}
}

// A generator that fell behind its schedule with most of its CPU to spare,
// and nothing it measured to say why (a pause the guest did not see: one
// sighting on this project's VM, lag p99 50 ms at 10,000 req/s and 0.13 of
// a core), is measured again on the same generators; one behind in every
// attempt ends the run generator-limited, and one behind at more than half
// its CPU is not rerun.
func TestStalledGeneratorIsRerunOnTheSameGenerators(t *testing.T) {
	// behindAt returns a fake engine whose generator, at rate 400, is 50 ms
	// behind in the first n attempts (all of them when n < 0), using cpu of
	// its CPUs, with no steal and no run delay.
	behindAt := func(n int, cpu float64) *metricsEngine {
		return firstAt400(n,
			map[string]float64{metrics.GeneratorCPU: 0.13, metrics.GeneratorStealRatio: 0, metrics.GeneratorStealPeak: 0,
				metrics.GeneratorStarvedRatio: 0.003, metrics.GeneratorStarvedPeak: 0.004},
			map[string]float64{metrics.GeneratorLagP99: 0.0504, metrics.GeneratorCPU: cpu})
	}
	cases := []struct {
		name, plan   string
		eng          *metricsEngine
		status, want string
		message      string
	}{
		{"behind once", honestPlan, behindAt(1, 0.13), result.StatusMaxReached,
			"ramp/pass@100 ramp/pass@200 ramp/generator-fail@400 rerun/pass@400 ramp/pass@800 ramp/pass@1600",
			"step 3: the generator fell behind its schedule with CPU to spare (generator.lag.p99 50.4 ms > 10 ms at 13% of its CPUs, and nothing it measured took them): rerunning the step on the same generators (1 of 2)"},
		{"behind in every attempt", honestPlan, behindAt(-1, 0.13), result.StatusGeneratorLimited,
			"ramp/pass@100 ramp/pass@200 ramp/generator-fail@400 rerun/generator-fail@400 rerun/generator-fail@400",
			"step 3: the generator fell behind its schedule with CPU to spare in 3 attempts running"},
		{"no reruns asked for", strings.Replace(honestPlan, "refine: 0", "refine: 0, interference_reruns: 0", 1), behindAt(1, 0.13),
			result.StatusGeneratorLimited, "ramp/pass@100 ramp/pass@200 ramp/generator-fail@400",
			"step 3: the generator fell behind its schedule with CPU to spare in 1 attempts running"},
		{"behind at 0.6 of its CPUs", honestPlan, behindAt(1, 0.6), result.StatusGeneratorLimited,
			"ramp/pass@100 ramp/pass@200 ramp/generator-fail@400",
			"step 3: the generator saturated and its fleet cannot grow"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs := &messageLog{}
			res := observedRun(t, c.plan, c.eng, nil, nil, obs)
			if got := attempts(res); res.Status != c.status || got != c.want {
				t.Errorf("status %s, attempts %s\nwant %s, %s", res.Status, got, c.status, c.want)
			}
			if got := obs.String(); !strings.Contains(got, c.message) {
				t.Errorf("messages:\n%s\nwant %q", got, c.message)
			}
		})
	}
}

// messageLog is a fake Observer that keeps the run's messages.
type messageLog struct {
	NopObserver
	mu    sync.Mutex
	lines []string
}

func (m *messageLog) Message(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lines = append(m.lines, fmt.Sprintf(format, args...))
}

func (m *messageLog) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.lines, "\n")
}

// stalled tells a generator behind with CPU to spare and nothing measured
// from one behind for a reason.
func TestStalledOnlyWithCPUToSpareAndNoCause(t *testing.T) {
	lag := result.GateResult{Metric: metrics.GeneratorLagP99, Explain: "generator.lag.p99 50.4 ms > 10 ms"}
	base := func() *result.Step {
		return &result.Step{Verdict: result.VerdictGeneratorFail, Metrics: map[string]float64{metrics.GeneratorCPU: 0.13},
			FailedHealth: []result.GateResult{lag}, Findings: []result.Finding{{Rule: diagnose.RuleCPUSaturation, Side: result.SideTarget}}}
	}
	cases := []struct {
		name    string
		edit    func(*result.Step)
		stalled bool
	}{
		{"behind at 0.13, nothing measured", func(*result.Step) {}, true},
		{"at half its CPUs", func(s *result.Step) { s.Metrics[metrics.GeneratorCPU] = StalledCPU }, false},
		{"no CPU figure", func(s *result.Step) { delete(s.Metrics, metrics.GeneratorCPU) }, false},
		{"target-fail", func(s *result.Step) { s.Verdict = result.VerdictTargetFail }, false},
		{"a finding names the generator", func(s *result.Step) {
			s.Findings = append(s.Findings, result.Finding{Rule: diagnose.RuleCPUSaturation, Side: result.SideGenerator})
		}, false},
		{"starved too", func(s *result.Step) {
			s.FailedHealth = append(s.FailedHealth, result.GateResult{Metric: metrics.GeneratorStarvedRatio})
		}, false},
		{"failed its CPU check", func(s *result.Step) {
			s.FailedHealth = append(s.FailedHealth, result.GateResult{Metric: metrics.GeneratorCPU})
		}, false},
		{"its own errors", func(s *result.Step) { s.Metrics[metrics.GeneratorErrorsCount] = 3 }, false},
		{"a Locust worker missing", func(s *result.Step) { s.Metrics[metrics.GeneratorWorkersMissing] = 1 }, false},
		{"no failed check", func(s *result.Step) { s.FailedHealth = nil }, false},
	}
	for _, c := range cases {
		s := base()
		c.edit(s)
		why, ok := stalled(s)
		if ok != c.stalled || ok && why != "generator.lag.p99 50.4 ms > 10 ms at 13% of its CPUs, and nothing it measured took them" {
			t.Errorf("%s: stalled = %q, %v; want %v", c.name, why, ok, c.stalled)
		}
		if _, taken := interfered(s); taken && ok {
			t.Errorf("%s: both interfered and stalled", c.name)
		}
	}
}

// A generator whose CPUs the hypervisor took a quarter of the hold read its
// answers late: the target's latency gate failed while the generator kept its
// schedule (the figures of a bench step on this project's VM). With the
// plan's own check on steal the step is the generator's, names the steal, and
// is measured again; with the defaults, which do not judge steal, the target
// is blamed and its confirmation passes.
func TestStolenGeneratorIsNotTheTargetsBottleneck(t *testing.T) {
	var mu sync.Mutex
	seen := 0
	eng := &metricsEngine{fn: func(p map[string]float64) map[string]float64 {
		m := map[string]float64{metrics.GeneratorCPU: 0.4, metrics.GeneratorStealRatio: 0.01, metrics.GeneratorStealPeak: 0.02}
		mu.Lock()
		defer mu.Unlock()
		if p["rate"] == 400 {
			if seen++; seen == 1 {
				m[metrics.LatencyP99], m[metrics.GeneratorLagP99] = 0.153, 0.00838
				m[metrics.GeneratorStealRatio], m[metrics.GeneratorStealPeak] = 0.252, 0.41
			}
		}
		return m
	}}
	res := honestRun(t, strings.Replace(honestPlan, "gates:", "generator_health: [generator.steal.ratio < 0.2]\ngates:", 1), eng, nil, nil)
	if got, want := attempts(res), "ramp/pass@100 ramp/pass@200 ramp/generator-fail@400 rerun/pass@400 ramp/pass@800 ramp/pass@1600"; res.Status != result.StatusMaxReached || got != want {
		t.Fatalf("status %s, attempts %s; want max-reached, %s", res.Status, got, want)
	}
	stolen := res.Report.Steps[2]
	if len(stolen.Findings) != 1 || stolen.Findings[0].Side != result.SideGenerator || stolen.Findings[0].Host != "local" ||
		!strings.Contains(stolen.Findings[0].Observed, "the hypervisor took 25% of its CPUs' time (steal; 410.0 ms in its worst second)") {
		t.Errorf("findings %+v: want the steal named, on the generator's side", stolen.Findings)
	}
	if !strings.Contains(stolen.Reason, "generator.steal.ratio 25.2% > 20%") || !strings.Contains(stolen.Reason, "latency.p99") {
		t.Errorf("reason %q: want the steal check and the target's failed gate, not counted", stolen.Reason)
	}

	// The defaults: the target is blamed, and its confirmation (which the
	// hypervisor left alone) passes.
	mu.Lock()
	seen = 0
	mu.Unlock()
	res = honestRun(t, honestPlan, eng, nil, nil)
	if got, want := attempts(res), "ramp/pass@100 ramp/pass@200 ramp/target-fail@400 confirm/pass@400 ramp/pass@800 ramp/pass@1600"; got != want {
		t.Errorf("without the default checks: attempts %s, want %s", got, want)
	}
}
