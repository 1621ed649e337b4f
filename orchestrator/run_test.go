package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/xuri/excelize/v2"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/report"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// The tests of this file drive the ramp's state machine with fakes: no
// process is started, no port opened. A fake engine decides each attempt's
// measurements from its load and the generator fleet's size; fake fleets
// count their Up, Scale and Down calls.

// Outcomes a fakeEngine script can force on one attempt.
const (
	forcePass      = "pass"
	forceTarget    = "target"    // the target's latency gate fails
	forceGenerator = "generator" // the generator lags (generator_health fails)
	forceInterrupt = "interrupt" // the run is interrupted (its ctx cancelled) mid-step
)

// fakeEngine is a fake of a load engine: the target holds up to capacity
// req/s; the generator holds up to perGen req/s per generator of the fleet.
type fakeEngine struct {
	capacity float64
	perGen   float64
	gens     *fakeFleet
	// failAbove: above this rate every request errors, seen in the first second.
	failAbove float64
	// script, if set, forces the outcome of attempt call (from 1) at rate;
	// "" leaves it to the rules above.
	script func(call int, rate float64) string
	// interrupt cancels the run's context, for forceInterrupt.
	interrupt context.CancelFunc

	mu     sync.Mutex
	steps  []map[string]float64
	closed int
}

func (e *fakeEngine) Step(ctx context.Context, s EngineStep) (*result.EngineResult, error) {
	e.mu.Lock()
	e.steps = append(e.steps, s.Params)
	call := len(e.steps)
	e.mu.Unlock()
	rate := s.Params["rate"]
	ok := map[string]float64{metrics.LatencyP99: 0.005, metrics.ThroughputRPS: rate, metrics.ThroughputOffered: rate, metrics.GeneratorLagP99: 0.0001}
	with := func(name string, v float64) *result.EngineResult {
		m := map[string]float64{}
		for k, x := range ok {
			m[k] = x
		}
		m[name] = v
		return &result.EngineResult{Metrics: m}
	}
	if e.script != nil {
		switch e.script(call, rate) {
		case forcePass:
			return with(metrics.LatencyP99, 0.005), nil
		case forceTarget:
			return with(metrics.LatencyP99, 1.5), nil
		case forceGenerator:
			return with(metrics.GeneratorLagP99, 0.2), nil
		case forceInterrupt:
			e.interrupt()
			<-ctx.Done()
			return with(metrics.LatencyP99, 0.005), ctx.Err()
		}
	}
	if e.failAbove > 0 && rate > e.failAbove && s.OnSecond != nil {
		s.OnSecond(result.Second{T: 0, Requests: 100, Errors: 100})
		select {
		case <-ctx.Done():
			return &result.EngineResult{Metrics: map[string]float64{metrics.ErrorsRatio: 1}}, ctx.Err()
		case <-time.After(2 * time.Second):
			return nil, errors.New("fake engine: the abort gate did not cancel the step")
		}
	}
	r := with(metrics.LatencyP99, 0.005)
	if rate > e.capacity {
		r.Metrics[metrics.LatencyP99] = 1.5
	}
	if e.perGen > 0 && rate > e.perGen*float64(e.gens.size) {
		r.Metrics[metrics.GeneratorLagP99] = 0.2
	}
	return r, nil
}

func (e *fakeEngine) Close() error { e.closed++; return nil }

// rates lists the rate of every attempt the engine ran.
func (e *fakeEngine) rates() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var rates []string
	for _, s := range e.steps {
		rates = append(rates, fmtRate(s["rate"]))
	}
	return strings.Join(rates, " ")
}

func fmtRate(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// fakeFleet is a fake fleet that can grow to maxSize.
type fakeFleet struct {
	size, maxSize int
	ups, downs    int
	scales        int
}

func (f *fakeFleet) Up(context.Context) (FleetState, error) {
	f.ups++
	return FleetState{Outputs: map[string]string{"endpoint": "http://127.0.0.1:1"}, Size: f.size}, nil
}

func (f *fakeFleet) Scale(_ context.Context, factor float64) (FleetState, bool, error) {
	if f.size*int(factor) > f.maxSize {
		return FleetState{}, false, nil
	}
	f.scales++
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
    agents: { endpoints: [{ url: "http://127.0.0.1:3" }] }
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

// fakeRun is one run of a plan on fakes.
type fakeRun struct {
	p       *plan.Plan
	engine  *fakeEngine
	gens    *fakeFleet
	target  *fakeFleet
	ctx     context.Context
	opts    Options
	newSpec []ProvisionSpec
}

func newFakeRun(t *testing.T, src string, capacity, perGen float64, maxGens int) *fakeRun {
	t.Helper()
	p, err := plan.Parse([]byte(src), "fake.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if errs := Check(p, nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	gens := &fakeFleet{size: 1, maxSize: maxGens}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &fakeRun{
		p: p, gens: gens, target: &fakeFleet{size: 1, maxSize: 1}, ctx: ctx,
		engine: &fakeEngine{capacity: capacity, perGen: perGen, gens: gens, interrupt: cancel},
		opts:   Options{OutDir: t.TempDir()},
	}
}

func (f *fakeRun) deps() Deps {
	return Deps{
		Provision: func(_ context.Context, spec ProvisionSpec) (Fleet, error) {
			f.newSpec = append(f.newSpec, spec)
			if spec.Name == "generators" {
				return f.gens, nil
			}
			return f.target, nil
		},
		NewEngine: func(context.Context, *plan.Plan, Renderer, zerolog.Logger) (Engine, error) { return f.engine, nil },
		Now:       time.Now,
	}
}

func (f *fakeRun) run(t *testing.T) *Result {
	t.Helper()
	res, err := Run(f.ctx, f.p, f.deps(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// attempts lists the recorded attempts as kind/verdict@rate.
func attempts(r *Result) string {
	var out []string
	for _, s := range r.Report.Steps {
		out = append(out, fmt.Sprintf("%s/%s@%s", s.Kind, s.Verdict, fmtRate(s.Parameters["rate"])))
	}
	return strings.Join(out, " ")
}

func torndown(t *testing.T, f *fakeRun) {
	t.Helper()
	if f.target.downs != 1 || f.gens.downs != 1 {
		t.Errorf("teardown: target down %d, generators down %d, want 1 each", f.target.downs, f.gens.downs)
	}
	if f.engine.closed != 1 {
		t.Errorf("engine closed %d times, want 1", f.engine.closed)
	}
}

func TestRunPassesEveryStepToTheMaximum(t *testing.T) {
	f := newFakeRun(t, fakePlan, 1e9, 0, 1)
	res := f.run(t)
	torndown(t, f)
	if res.Status != result.StatusMaxReached || res.Report.Bottleneck != nil {
		t.Fatalf("status %s, bottleneck %+v; want max-reached and none", res.Status, res.Report.Bottleneck)
	}
	if got, want := f.engine.rates(), "100 200 400 800 1600 3200 6400"; got != want {
		t.Errorf("rates %s, want %s", got, want)
	}
	if c := res.Report.Capacity; c == nil || c.Parameters["rate"] != 6400 {
		t.Errorf("capacity %+v, want rate 6400", c)
	}
}

func TestRunStopsAtTheFirstBottleneckAndRefines(t *testing.T) {
	f := newFakeRun(t, fakePlan, 1000, 0, 1)
	res := f.run(t)
	torndown(t, f)
	if res.Status != result.StatusBottleneck {
		t.Fatalf("status %s, want bottleneck", res.Status)
	}
	// 100..800 pass, 1600 fails and is confirmed, then bisection between 800
	// and 1600: 1200 fails, 1000 passes, 1100 fails.
	if got, want := f.engine.rates(), "100 200 400 800 1600 1600 1200 1000 1100"; got != want {
		t.Errorf("rates %s, want %s", got, want)
	}
	if got := attempts(res); !strings.Contains(got, "ramp/target-fail@1600 confirm/target-fail@1600 refine/target-fail@1200 refine/pass@1000 refine/target-fail@1100") {
		t.Errorf("attempts %s", got)
	}
	c := res.Report.Capacity
	if c == nil || c.Parameters["rate"] != 1000 {
		t.Errorf("capacity %+v, want rate 1000", c)
	}
	if b := res.Report.Bottleneck; b == nil || b.Parameter != "rate" || b.From != 800 || b.To != 1600 || b.Refined == nil || b.Refined.Pass != 1000 || b.Refined.Fail != 1100 {
		t.Errorf("bottleneck %+v, want rate 800 -> 1600 refined to 1000..1100", b)
	}
}

func TestAFailureTheConfirmationDoesNotRepeatIsNoBottleneck(t *testing.T) {
	f := newFakeRun(t, fakePlan, 1e9, 0, 1)
	f.engine.script = func(call int, _ float64) string {
		if call == 3 { // 400 fails once
			return forceTarget
		}
		return ""
	}
	res := f.run(t)
	if res.Status != result.StatusMaxReached {
		t.Fatalf("status %s, want max-reached", res.Status)
	}
	if got := attempts(res); !strings.HasPrefix(got, "ramp/pass@100 ramp/pass@200 ramp/target-fail@400 confirm/pass@400 ramp/pass@800") {
		t.Errorf("attempts %s", got)
	}
}

func TestRunGrowsASaturatedGeneratorAndRerunsTheStep(t *testing.T) {
	// Each generator holds 500 req/s; the fleet can grow to 8; the target holds 10000.
	f := newFakeRun(t, fakePlan, 10000, 500, 8)
	res := f.run(t)
	torndown(t, f)
	if res.Status != result.StatusGeneratorLimited {
		t.Fatalf("status %s, want generator-limited", res.Status)
	}
	if f.gens.size != 8 {
		t.Errorf("generator fleet %d, want grown to 8", f.gens.size)
	}
	if res.Report.Bottleneck != nil {
		t.Errorf("a generator-limited run reported a bottleneck: %+v", res.Report.Bottleneck)
	}
	// 800 saturates one generator: grown to 2, rerun and passes; 1600 to 4,
	// 3200 to 8; 6400 saturates 8 and the fleet cannot grow.
	if got, want := attempts(res), "ramp/pass@100 ramp/pass@200 ramp/pass@400 ramp/generator-fail@800 rerun/pass@800 "+
		"ramp/generator-fail@1600 rerun/pass@1600 ramp/generator-fail@3200 rerun/pass@3200 ramp/generator-fail@6400"; got != want {
		t.Errorf("attempts\n%s\nwant\n%s", got, want)
	}
	if s := res.Report.Steps[4]; s.Generators != 2 {
		t.Errorf("the rerun at 800 ran on %d generators, want 2", s.Generators)
	}
}

func TestAGeneratorThatCannotGrowEndsTheRunGeneratorLimited(t *testing.T) {
	f := newFakeRun(t, fakePlan, 10000, 300, 1)
	res := f.run(t)
	torndown(t, f)
	if res.Status != result.StatusGeneratorLimited || f.gens.scales != 0 {
		t.Fatalf("status %s after %d scales, want generator-limited without growing", res.Status, f.gens.scales)
	}
	if got, want := attempts(res), "ramp/pass@100 ramp/pass@200 ramp/generator-fail@400"; got != want {
		t.Errorf("attempts %s, want %s", got, want)
	}
	if c := res.Report.Capacity; c == nil || c.Parameters["rate"] != 200 {
		t.Errorf("capacity %+v, want rate 200", c)
	}
}

func TestAGeneratorSaturatedDuringTheConfirmationIsGrownAndTheConfirmationRerun(t *testing.T) {
	f := newFakeRun(t, fakePlan, 1000, 0, 4)
	f.engine.script = func(call int, _ float64) string {
		if call == 6 { // the confirmation of 1600
			return forceGenerator
		}
		return ""
	}
	res := f.run(t)
	if res.Status != result.StatusBottleneck || f.gens.size != 2 {
		t.Fatalf("status %s, generators %d; want bottleneck on a fleet grown to 2", res.Status, f.gens.size)
	}
	if got := attempts(res); !strings.Contains(got, "ramp/target-fail@1600 confirm/generator-fail@1600 rerun/target-fail@1600 refine/") {
		t.Errorf("attempts %s: want the confirmation rerun on the grown fleet, then refinement", got)
	}
	if b := res.Report.Bottleneck; b == nil || b.Attempt != 3 {
		t.Errorf("bottleneck %+v, want attempt 3 (the rerun)", b)
	}
}

func TestAnAbortedStepIsNotRerunToConfirm(t *testing.T) {
	src := strings.Replace(fakePlan, "report: { formats: [json] }", "abort: [errors.ratio > 0.5]\nreport: { formats: [json] }", 1)
	f := newFakeRun(t, src, 100000, 0, 1)
	f.engine.failAbove = 1000
	res := f.run(t)
	torndown(t, f)
	if res.Status != result.StatusBottleneck {
		t.Fatalf("status %s, want bottleneck", res.Status)
	}
	// 1600 trips the abort once, is not confirmed, and refinement bisects below it.
	if got, want := f.engine.rates(), "100 200 400 800 1600 1200 1000 1100"; got != want {
		t.Errorf("rates %s, want %s", got, want)
	}
	if s := res.Report.Steps[4]; !s.Aborted || s.Verdict != result.VerdictTargetFail || !strings.Contains(s.Reason, "abort gate") {
		t.Errorf("step 5: aborted=%v verdict=%s reason %q", s.Aborted, s.Verdict, s.Reason)
	}
}

func TestAnInterruptionTearsDownAndKeepsTheFinishedSteps(t *testing.T) {
	f := newFakeRun(t, fakePlan, 1000, 0, 1)
	f.engine.script = func(call int, _ float64) string {
		if call == 3 {
			return forceInterrupt
		}
		return ""
	}
	res, err := Run(f.ctx, f.p, f.deps(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	torndown(t, f)
	if !res.Interrupted || res.Status != result.StatusAborted {
		t.Fatalf("interrupted %v, status %s; want an aborted, interrupted run", res.Interrupted, res.Status)
	}
	if got, want := attempts(res), "ramp/pass@100 ramp/pass@200 ramp/error@400"; got != want {
		t.Errorf("attempts %s, want %s", got, want)
	}
	if s := res.Report.Steps[2]; s.Reason != "interrupted" {
		t.Errorf("the cut attempt's reason %q, want interrupted", s.Reason)
	}
	d, err := record.Open(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if run, err := d.ReadRun(); err != nil || run.Status != result.StatusAborted {
		t.Errorf("run.json status %v, %v; want aborted", run, err)
	}
	if _, err := os.Stat(filepath.Join(res.Dir, "report.json")); err != nil {
		t.Errorf("no partial report: %v", err)
	}
}

func TestResumeReplaysTheFinishedAttemptsAndRunsTheRest(t *testing.T) {
	// An uninterrupted run, for the attempts a resumed one must end with.
	whole := newFakeRun(t, fakePlan, 1000, 0, 1).run(t)

	f := newFakeRun(t, fakePlan, 1000, 0, 1)
	f.engine.script = func(call int, _ float64) string {
		if call == 6 { // the confirmation of 1600
			return forceInterrupt
		}
		return ""
	}
	first, err := Run(f.ctx, f.p, f.deps(), f.opts)
	if err != nil || !first.Interrupted {
		t.Fatalf("first run: %v, %v", first, err)
	}

	g := newFakeRun(t, fakePlan, 1000, 0, 1)
	g.opts = Options{OutDir: filepath.Dir(first.Dir), Resume: first.Dir}
	res := g.run(t)
	torndown(t, g)
	if res.Dir != first.Dir || res.RunID != first.RunID {
		t.Errorf("resumed as %s in %s, want the run %s continued", res.RunID, res.Dir, first.RunID)
	}
	// The five finished attempts are replayed, not rerun: the engine starts
	// at the confirmation that was cut short.
	if got, want := g.engine.rates(), "1600 1200 1000 1100"; got != want {
		t.Errorf("resumed engine ran %s, want %s", got, want)
	}
	// The log keeps the attempt the interruption cut, then goes on as the
	// uninterrupted run did.
	want := strings.Replace(attempts(whole), "ramp/target-fail@1600 ", "ramp/target-fail@1600 confirm/error@1600 ", 1)
	if res.Status != whole.Status || attempts(res) != want {
		t.Errorf("resumed run %s: %s\nuninterrupted %s: %s", res.Status, attempts(res), whole.Status, attempts(whole))
	}
	if c, w := res.Report.Capacity, whole.Report.Capacity; c == nil || w == nil || c.Parameters["rate"] != w.Parameters["rate"] {
		t.Errorf("capacity %+v, want %+v", c, w)
	}
}

const fakeCampaign = `version: 1
name: fake-campaign
fleets:
  target:
    provider: terraform
    terraform: { dir: modules/target }
  generators:
    provider: static
    outputs: { master: "http://127.0.0.1:2" }
    agents: { endpoints: [{ url: "http://127.0.0.1:3" }] }
static: { capacity: 1000, broken: 0 }
campaign:
  variants:
    - { capacity: 1000 }
    - { capacity: 2000 }
    - { capacity: 2000, broken: 1 }
    - { capacity: 2000, broken: 0 }
workload:
  engine: builtin
  http: { url: "http://127.0.0.1:1/" }
parameters:
  - { name: rate, start: 500, max: 4000 }
ramp: { warmup: 0s, hold: 1ms, cooldown: 0s, confirm: 0, refine: 0 }
gates: [latency.p99 < 100ms]
report: { formats: [json] }
`

// fakeCampaignRun runs fakeCampaign; each variant gets an engine whose target
// holds static.capacity; a variant with static.broken 1 cannot build its
// engine. interruptAt, if > 0, interrupts the campaign at that engine call.
func fakeCampaignRun(t *testing.T, interruptAt int) (*CampaignResult, map[string][]*fakeFleet, []int, error) {
	t.Helper()
	p, err := plan.Parse([]byte(fakeCampaign), "campaign.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if errs := Check(p, nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fleets := map[string][]*fakeFleet{}
	calls := 0
	deps := Deps{
		Provision: func(_ context.Context, spec ProvisionSpec) (Fleet, error) {
			if spec.CampaignID == "" {
				t.Errorf("fleet %s provisioned without the campaign id", spec.Name)
			}
			f := &fakeFleet{size: 1, maxSize: 1}
			fleets[spec.Name] = append(fleets[spec.Name], f)
			return f, nil
		},
		NewEngine: func(_ context.Context, pv *plan.Plan, _ Renderer, _ zerolog.Logger) (Engine, error) {
			if fmt.Sprint(pv.Static["broken"]) == "1" {
				return nil, errors.New("fake engine: broken variant")
			}
			capacity, _ := strconv.ParseFloat(fmt.Sprint(pv.Static["capacity"]), 64)
			e := &fakeEngine{capacity: capacity, gens: &fakeFleet{size: 1}, interrupt: cancel}
			e.script = func(int, float64) string {
				calls++
				if calls == interruptAt {
					return forceInterrupt
				}
				return ""
			}
			return e, nil
		},
	}
	var variants []int
	cr, err := RunCampaign(ctx, p, deps, Options{OutDir: t.TempDir()}, func(i int, _ *Result) { variants = append(variants, i) })
	return cr, fleets, variants, err
}

func TestCampaignVariantsKeepTerraformFleetsAndGoOnAfterAFailure(t *testing.T) {
	cr, fleets, variants, err := fakeCampaignRun(t, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(variants) != 4 || cr.Interrupted || cr.Failed == nil || !strings.Contains(cr.Failed.Error(), "broken variant") {
		t.Fatalf("variants %v, interrupted %v, failed %v; want all four run and the third failed", variants, cr.Interrupted, cr.Failed)
	}
	var caps, statuses []string
	for _, v := range cr.Report.Variants {
		caps = append(caps, fmtRate(v.Capacity["rate"]))
		statuses = append(statuses, v.Status)
	}
	if got, want := strings.Join(caps, " ")+" / "+strings.Join(statuses, " "), "1000 2000 0 2000 / bottleneck bottleneck error bottleneck"; got != want {
		t.Errorf("variants' capacities and statuses %s, want %s", got, want)
	}
	// The Terraform target is kept by a variant that finishes for the next
	// one to re-apply; the failed variant and the last one tear it down. The
	// static generators go down after every variant.
	var tfDowns, genDowns []string
	for i := range fleets["target"] {
		tfDowns = append(tfDowns, strconv.Itoa(fleets["target"][i].downs))
		genDowns = append(genDowns, strconv.Itoa(fleets["generators"][i].downs))
	}
	if got, want := strings.Join(tfDowns, " "), "0 0 1 1"; got != want {
		t.Errorf("terraform target torn down %s times per variant, want %s", got, want)
	}
	if got, want := strings.Join(genDowns, " "), "1 1 1 1"; got != want {
		t.Errorf("generators torn down %s times per variant, want %s", got, want)
	}
	for i, v := range cr.Report.Variants {
		if want := fmt.Sprintf("v%d-", i+1); !strings.HasPrefix(v.RunID, want) {
			t.Errorf("variant %d run id %s", i+1, v.RunID)
		}
		if _, err := os.Stat(filepath.Join(cr.Dir, v.RunID, "run.json")); err != nil {
			t.Errorf("variant %d has no run directory in the campaign's: %v", i+1, err)
		}
	}
	if len(cr.Paths) == 0 || filepath.Dir(cr.Paths[0]) != cr.Dir {
		t.Errorf("campaign reports %v, want them in %s", cr.Paths, cr.Dir)
	}
	// The workbook: a summary and a sheet per variant that reported.
	wb, err := excelize.OpenFile(filepath.Join(cr.Dir, report.WorkbookFile))
	if err != nil {
		t.Fatalf("the campaign's workbook: %v", err)
	}
	defer wb.Close()
	if n := len(wb.GetSheetList()); n != 1+len(cr.Report.Variants) {
		t.Errorf("the workbook has sheets %v, want the summary and one per variant (%d)", wb.GetSheetList(), len(cr.Report.Variants))
	}
	if last := cr.Paths[len(cr.Paths)-1]; filepath.Base(last) != "campaign.html" {
		t.Errorf("the last campaign report is %s; the CLI prints it as the campaign's report and wants campaign.html", last)
	}
}

func TestAnInterruptedCampaignStopsAndKeepsWhatFinished(t *testing.T) {
	// Variant 1 runs 500, 1000, 2000; the interrupt falls in variant 2.
	cr, fleets, variants, err := fakeCampaignRun(t, 5)
	if err != nil {
		t.Fatal(err)
	}
	if !cr.Interrupted || !cr.Report.Partial || fmt.Sprint(variants) != "[1 2]" {
		t.Fatalf("interrupted %v, partial %v, variants run %v; want the campaign stopped in variant 2", cr.Interrupted, cr.Report.Partial, variants)
	}
	if len(cr.Report.Variants) != 2 || cr.Report.Variants[1].Status != result.StatusAborted {
		t.Errorf("variants %+v, want the finished one and the interrupted one", cr.Report.Variants)
	}
	if n := len(fleets["target"]); n != 2 || fleets["target"][1].downs != 1 {
		t.Errorf("%d targets provisioned; the interrupted variant's torn down %d times", n, fleets["target"][len(fleets["target"])-1].downs)
	}
}

// fakeNoteSampler is a fake StepSampler that measures fake.q on the first
// step only and, after that, notes why it could not.
type fakeNoteSampler struct{ steps int }

func (s *fakeNoteSampler) Start(_ context.Context, spec SampleSpec) (func(StepFacts) (map[string]float64, []result.Finding), error) {
	s.steps++
	n := s.steps
	return func(StepFacts) (map[string]float64, []result.Finding) {
		if n == 1 {
			return map[string]float64{"prom.q": 1, "prom.q.peak": 2}, nil
		}
		spec.NotMeasured("http://h:9100/metrics was not read during the hold: connection refused")
		spec.NotMeasured("prom.q not measured: no data (max(q))")
		return nil, nil
	}, nil
}

func TestNewSamplerBuildsTheSamplerOnceFleetsAreUp(t *testing.T) {
	src := strings.Replace(fakePlan, "gates: [latency.p99 < 100ms]", "gates: [latency.p99 < 100ms, prom.q.peak < 10]\nprometheus: {query: 'http://h:9090', metrics: {q: 'max(q)'}}", 1)
	f := newFakeRun(t, src, 1e9, 0, 1)
	s := &fakeNoteSampler{}
	var upWhenBuilt bool
	d := f.deps()
	d.NewSampler = func(_ context.Context, p *plan.Plan, render Renderer, _ zerolog.Logger) (StepSampler, error) {
		out, err := render("{{ .fleets.target.endpoint }}")
		upWhenBuilt = err == nil && out == "http://127.0.0.1:1"
		return s, nil
	}
	res, err := Run(f.ctx, f.p, d, f.opts)
	if err == nil || !strings.Contains(err.Error(), "step 2: gate metrics not measured: prom.q.peak; prom.q not measured: no data (max(q))") {
		t.Fatalf("err = %v", err)
	}
	if !upWhenBuilt {
		t.Error("NewSampler was called before the target fleet's outputs could be rendered")
	}
	if got := attempts(res); got != "ramp/pass@100 ramp/error@200" {
		t.Fatalf("attempts %s", got)
	}
	st := res.Report.Steps[1]
	if len(st.NotMeasured) != 2 || !strings.Contains(st.NotMeasured[0], "connection refused") {
		t.Errorf("notes %q", st.NotMeasured)
	}
	var explained bool
	for _, g := range st.FailedGates {
		explained = explained || g.Missing && g.Explain == "prom.q.peak not measured: no data (max(q))"
	}
	if !explained {
		t.Errorf("failed gates %+v: the missing gate does not say why", st.FailedGates)
	}
	torndown(t, f)
}

func TestNewSamplerErrorStopsTheRunBeforeAnyLoad(t *testing.T) {
	f := newFakeRun(t, fakePlan, 1e9, 0, 1)
	d := f.deps()
	d.NewSampler = func(context.Context, *plan.Plan, Renderer, zerolog.Logger) (StepSampler, error) {
		return nil, errors.New("prometheus: the Prometheus server at http://h:9090 is not reachable")
	}
	res, err := Run(f.ctx, f.p, d, f.opts)
	if err == nil || !strings.Contains(err.Error(), "is not reachable") || res.Status != result.StatusError {
		t.Fatalf("status %v, err %v", res.Status, err)
	}
	if len(res.Report.Steps) != 0 || f.engine.rates() != "" {
		t.Errorf("load was sent: steps %d, rates %q", len(res.Report.Steps), f.engine.rates())
	}
	torndown(t, f)
}
