package orchestrator

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// fakeEngine is a fake of a load engine for unit tests of the ramp:
// the target holds up to capacity req/s; the generator holds up to perGen
// req/s per generator of the fleet.
type fakeEngine struct {
	capacity float64
	perGen   float64
	gens     *fakeFleet
	steps    []map[string]float64
	// failAbove: above this rate every request errors, seen in the first second.
	failAbove float64
}

func (e *fakeEngine) Step(ctx context.Context, s EngineStep) (*result.EngineResult, error) {
	e.steps = append(e.steps, s.Params)
	rate := s.Params["rate"]
	if e.failAbove > 0 && rate > e.failAbove && s.OnSecond != nil {
		s.OnSecond(result.Second{T: 0, Requests: 100, Errors: 100})
		select {
		case <-ctx.Done():
			return &result.EngineResult{Metrics: metrics.Metrics{metrics.ErrorsRatio: 1}}, ctx.Err()
		case <-time.After(2 * time.Second):
			return nil, errors.New("fake engine: the abort gate did not cancel the step")
		}
	}
	p99, lag := 0.005, 0.0001
	if rate > e.capacity {
		p99 = 1.5
	}
	if e.perGen > 0 && rate > e.perGen*float64(e.gens.size) {
		lag = 0.2
	}
	return &result.EngineResult{Metrics: metrics.Metrics{
		metrics.LatencyP99: p99, metrics.ThroughputRPS: rate, metrics.ThroughputOffered: rate,
		metrics.GeneratorLagP99: lag,
	}}, nil
}

func (e *fakeEngine) Close() error { return nil }

// fakeFleet is a fake fleet that can grow maxSize times.
type fakeFleet struct {
	size, maxSize int
	ups, downs    int
}

func (f *fakeFleet) Up(context.Context) (FleetState, error) {
	f.ups++
	return FleetState{Outputs: map[string]string{"endpoint": "http://127.0.0.1:1"}, Size: f.size}, nil
}

func (f *fakeFleet) Scale(_ context.Context, factor float64) (FleetState, bool, error) {
	if f.size*int(factor) > f.maxSize {
		return FleetState{}, false, nil
	}
	f.size *= int(factor)
	return FleetState{Size: f.size}, true, nil
}

func (f *fakeFleet) Down(context.Context) error { f.downs++; return nil }
func (f *fakeFleet) Check() error               { return nil }

const fakePlan = `version: 1
name: fake
fleets:
  target:
    provider: static
    outputs: { endpoint: "http://127.0.0.1:1" }
  generators:
    provider: static
    outputs: { master: "http://127.0.0.1:2" }
workload:
  engine: builtin
  http: { url: "{{ .fleets.target.endpoint }}/" }
parameters:
  - { name: rate, start: 100, max: 6400 }
ramp: { warmup: 0s, hold: 1ms, cooldown: 0s, confirm: 1, refine: 3 }
gates: [latency.p99 < 100ms]
generator_health: [generator.lag.p99 < 10ms]
report: { formats: [json] }
`

func runFake(t *testing.T, capacity, perGen float64, maxGens int) (*Result, *fakeEngine, *fakeFleet) {
	return runFakePlan(t, fakePlan, capacity, perGen, maxGens, 0)
}

func runFakePlan(t *testing.T, src string, capacity, perGen float64, maxGens int, failAbove float64) (*Result, *fakeEngine, *fakeFleet) {
	t.Helper()
	p, err := plan.Parse([]byte(src), "fake.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if errs := Check(p, nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	gens := &fakeFleet{size: 1, maxSize: maxGens}
	target := &fakeFleet{size: 1, maxSize: 1}
	eng := &fakeEngine{capacity: capacity, perGen: perGen, gens: gens, failAbove: failAbove}
	deps := Deps{
		Provision: func(_ context.Context, spec ProvisionSpec) (Fleet, error) {
			if spec.Name == "generators" {
				return gens, nil
			}
			return target, nil
		},
		NewEngine: func(context.Context, *plan.Plan, Renderer, zerolog.Logger) (Engine, error) { return eng, nil },
		Now:       time.Now,
	}
	res, err := Run(context.Background(), p, deps, Options{OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if target.downs != 1 || gens.downs != 1 {
		t.Errorf("teardown: target down %d, generators down %d, want 1 each", target.downs, gens.downs)
	}
	return res, eng, gens
}

func TestRunStopsAtTheFirstBottleneckAndRefines(t *testing.T) {
	res, eng, _ := runFake(t, 1000, 0, 1)
	if res.Status != result.StatusBottleneck {
		t.Fatalf("status %s, want bottleneck", res.Status)
	}
	var rates []string
	for _, s := range eng.steps {
		rates = append(rates, fmtRate(s["rate"]))
	}
	// 100..800 pass, 1600 fails and is confirmed, then bisection between 800
	// and 1600: 1200 fails, 1000 passes, 1100 fails.
	if got, want := strings.Join(rates, " "), "100 200 400 800 1600 1600 1200 1000 1100"; got != want {
		t.Errorf("rates %s, want %s", got, want)
	}
	c := res.Report.Capacity
	if c == nil || c.Parameters["rate"] != 1000 {
		t.Errorf("capacity %+v, want rate 1000", c)
	}
	if b := res.Report.Bottleneck; b == nil || b.Parameter != "rate" || b.From != 800 || b.To != 1600 {
		t.Errorf("bottleneck %+v, want rate 800 -> 1600", b)
	}
}

func TestRunGrowsASaturatedGeneratorAndRerunsTheStep(t *testing.T) {
	// Each generator holds 500 req/s; the fleet can grow to 8; the target holds 10000.
	res, eng, gens := runFake(t, 10000, 500, 8)
	if res.Status != result.StatusGeneratorLimited {
		t.Fatalf("status %s, want generator-limited", res.Status)
	}
	if gens.size != 8 {
		t.Errorf("generator fleet %d, want grown to 8", gens.size)
	}
	if res.Report.Bottleneck != nil {
		t.Errorf("a generator-limited run reported a bottleneck: %+v", res.Report.Bottleneck)
	}
	kinds := map[string]int{}
	for _, s := range res.Report.Steps {
		kinds[s.Kind+"/"+s.Verdict]++
	}
	if kinds["rerun/pass"] == 0 || kinds["ramp/generator-fail"] == 0 {
		t.Errorf("attempts %v, want generator-fail ramp attempts rerun and passing", kinds)
	}
	if n := len(eng.steps); n < 8 {
		t.Errorf("%d attempts", n)
	}
}

func fmtRate(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func TestAnAbortedStepIsNotRerunToConfirm(t *testing.T) {
	src := strings.Replace(fakePlan, "report: { formats: [json] }", "abort: [errors.ratio > 0.5]\nreport: { formats: [json] }", 1)
	res, eng, _ := runFakePlan(t, src, 100000, 0, 1, 1000)
	if res.Status != result.StatusBottleneck {
		t.Fatalf("status %s, want bottleneck", res.Status)
	}
	var rates []string
	for _, s := range eng.steps {
		rates = append(rates, fmtRate(s["rate"]))
	}
	// 1600 trips the abort once, is not confirmed, and refinement bisects below it.
	if got, want := strings.Join(rates, " "), "100 200 400 800 1600 1200 1000 1100"; got != want {
		t.Errorf("rates %s, want %s", got, want)
	}
	if s := res.Report.Steps[4]; !s.Aborted || s.Verdict != result.VerdictTargetFail {
		t.Errorf("step 5: aborted=%v verdict=%s", s.Aborted, s.Verdict)
	}
}
