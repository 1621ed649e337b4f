package orchestrator

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// attempt runs one step attempt at vals and appends it to steps.jsonl.
func (r *runner) attempt(ctx context.Context, st plan.Step, vals map[string]float64, kind string, attempt int) (*result.Step, error) {
	warm, hold := r.p.Ramp.Warmup.D(), r.p.Ramp.Hold.D()
	info := StepInfo{
		Index: st.Index, Attempt: attempt, Kind: kind, Params: vals, ParamOrder: r.order,
		Changed: st.Changed, Seconds: int((warm + hold + time.Second - 1) / time.Second),
	}
	rec := &result.Step{
		Index: st.Index, Attempt: attempt, Kind: kind, Parameters: vals,
		Changed: st.Changed, From: st.From, To: st.To,
		Generators: r.genSize, Findings: []result.Finding{}, FailedGates: []result.GateResult{},
		Start: r.deps.Now().UTC(),
	}
	if kind == result.KindRefine {
		rec.To = vals[st.Changed]
	}
	if done := r.replayed(st.Index, kind, attempt, vals); done != nil {
		r.obs.StepEnded(info, done)
		return done, nil
	}
	r.obs.StepStarted(info)

	stepCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu          sync.Mutex
		abortReason string
	)
	onSecond := func(sec result.Second) {
		r.obs.Second(info, sec)
		m := secondMetrics(sec)
		for _, g := range r.abort {
			res := g.Evaluate(m)
			if res.Missing || !res.Pass {
				continue
			}
			mu.Lock()
			if abortReason == "" {
				abortReason = fmt.Sprintf("abort gate %q tripped at second %d (%s)", g.Expr, sec.T+1, res.Explain)
				cancel()
			}
			mu.Unlock()
		}
	}

	var stop func(StepFacts) (map[string]float64, []result.Finding)
	var notMeasured []string // guarded by mu
	var hosts []result.Host  // guarded by mu
	if r.sampler != nil {
		var err error
		stop, err = r.sampler.Start(stepCtx, SampleSpec{
			Target: r.target, Generator: r.generatorProcesses(),
			Logs: r.logFiles, Warmup: warm, Side: r.localSide,
			Sink: func(v any) {
				if err := r.dir.AppendSample(v); err != nil {
					r.log.Debug().Err(err).Msg("samples.jsonl")
				}
			},
			NotMeasured: func(s string) {
				mu.Lock()
				notMeasured = append(notMeasured, s)
				mu.Unlock()
			},
			Host: func(h result.Host) {
				mu.Lock()
				hosts = append(hosts, h)
				mu.Unlock()
			},
		})
		if err != nil {
			r.log.Warn().Err(err).Msg("host sampler did not start; the step has no host measurements")
		}
	}
	var (
		probeM   metrics.Metrics
		probeErr error
		probeWG  sync.WaitGroup
	)
	if r.probe != nil {
		probeWG.Add(1)
		go func() {
			defer probeWG.Done()
			probeM, probeErr = r.probe.Step(stepCtx, warm, hold)
		}()
	}
	res, engErr := r.engine.Step(stepCtx, EngineStep{Params: vals, Warmup: warm, Hold: hold, OnSecond: onSecond})
	probeWG.Wait()
	if probeErr != nil && stepCtx.Err() == nil {
		r.log.Debug().Err(probeErr).Msg("probe")
	}
	if res == nil {
		res = &result.EngineResult{}
	}
	m := metrics.Metrics{}
	m.Merge(res.Metrics)
	m.Merge(probeM)
	rec.Metrics = m
	rec.Series = res.Series
	rec.ErrorClasses = res.ErrorClasses
	rec.Requests = res.Requests
	rec.Agents = res.Agents
	rec.Findings = append(rec.Findings, res.Findings...)
	if stop != nil {
		hm, findings := stop(StepFacts{ErrorClasses: res.ErrorClasses, Metrics: rec.Metrics, Params: vals, StarvedAt: starvedAt(r.health)})
		m.Merge(hm)
		rec.Findings = append(rec.Findings, findings...)
	}
	rec.End = r.deps.Now().UTC()

	mu.Lock()
	aborted := abortReason
	rec.NotMeasured = notMeasured
	rec.Hosts = hosts
	mu.Unlock()
	for _, n := range rec.NotMeasured {
		r.log.Warn().Int("step", rec.Index).Msg(n)
	}
	for i := range rec.Hosts {
		for _, f := range rec.Findings {
			if f.Host == rec.Hosts[i].Host {
				rec.Hosts[i].Findings++
			}
		}
	}
	r.judge(ctx, rec, engErr, aborted, probeErr)

	if err := r.dir.AppendStep(rec); err != nil {
		return rec, fmt.Errorf("recording step %d: %w", rec.Index, err)
	}
	r.log.Info().Int("step", rec.Index).Int("attempt", rec.Attempt).Str("kind", rec.Kind).
		Interface("parameters", rec.Parameters).Str("verdict", rec.Verdict).Str("reason", rec.Reason).Msg("step ended")
	r.obs.StepEnded(info, rec)
	return rec, nil
}

// judge sets the verdict of a finished attempt: error, generator-fail,
// target-fail or pass, in that order of precedence. A saturated or starved
// generator makes a step generator-fail even when the target's gates failed
// too, since its measurements of the target cannot be trusted. A target-side
// finding of a hard limit reached (LimitReached) makes a step target-fail
// even when every gate holds: the target did not serve the load it was
// given (it closed held connections, dropped connects, ran out of files).
func (r *runner) judge(ctx context.Context, rec *result.Step, engErr error, aborted string, probeErr error) {
	switch {
	case memoryCause(ctx) != nil:
		rec.Verdict, rec.Reason, rec.Error = result.VerdictError, "stopped: memory limit", memoryCause(ctx).Error()
		return
	case ctx.Err() != nil:
		rec.Verdict, rec.Reason = result.VerdictError, "interrupted"
		return
	case engErr != nil && aborted == "":
		rec.Verdict, rec.Reason, rec.Error = result.VerdictError, "engine: "+engErr.Error(), engErr.Error()
		return
	}
	for _, f := range r.fleets {
		if err := f.fleet.Check(); err != nil {
			rec.Verdict, rec.Reason = result.VerdictError, fmt.Sprintf("fleet %s: %v", f.name, err)
			return
		}
	}
	rec.Gates = explainMissing(toResults(r.gates, rec.Metrics), rec.NotMeasured)
	rec.Health = explainMissing(toResults(r.health, rec.Metrics), rec.NotMeasured)
	for _, g := range rec.Gates {
		if !g.Pass {
			rec.FailedGates = append(rec.FailedGates, g)
		}
	}
	for _, f := range achievedFindings(rec) {
		f.Host = r.targetAddr
		rec.Findings = append(rec.Findings, f)
	}

	var genReasons []string
	for _, h := range rec.Health {
		if !h.Pass && !h.Missing {
			rec.FailedHealth = append(rec.FailedHealth, h)
			genReasons = append(genReasons, h.Explain)
		}
	}
	for _, f := range behindFindings(rec) {
		if !r.p.BuiltinOnAgents() {
			f.Host = cmp.Or(r.deps.Host, "local")
		}
		rec.Findings = append(rec.Findings, f)
	}
	// Agents that generated the step are judged one by one too, so a
	// generator-fail names the saturated one.
	var saturated []result.Finding
	for _, a := range rec.Agents {
		if a.Idle || len(a.Metrics) == 0 {
			continue
		}
		var failed []string
		for _, h := range toResults(r.health, a.Metrics) {
			if !h.Pass && !h.Missing {
				failed = append(failed, h.Explain)
			}
		}
		if len(failed) == 0 {
			continue
		}
		genReasons = append(genReasons, fmt.Sprintf("agent %s: %s", a.Agent, strings.Join(failed, ", ")))
		saturated = append(saturated, agentSaturated(a, failed))
	}
	if n := rec.Metrics[metrics.GeneratorErrorsCount]; n > 0 {
		genReasons = append(genReasons, fmt.Sprintf("%d errors raised by the generator itself (%s)", int64(n), genClasses(rec.ErrorClasses)))
	}
	// Engines with generator units of their own (Locust workers) report lost
	// or CPU-saturated units under these names.
	if n := rec.Metrics[metrics.GeneratorWorkersMissing]; n > 0 {
		genReasons = append(genReasons, fmt.Sprintf("%d generator workers missing", int64(n)))
	}
	if n := rec.Metrics[metrics.GeneratorWorkersSaturated]; n > 0 {
		genReasons = append(genReasons, fmt.Sprintf("%d generator workers at their CPU limit", int64(n)))
	}
	for _, f := range rec.Findings {
		if f.Side == result.SideGenerator {
			genReasons = append(genReasons, fmt.Sprintf("%s: %s", f.Rule, findingWhat(f)))
		}
	}
	rec.Findings = append(rec.Findings, saturated...)
	if len(genReasons) > 0 {
		rec.Verdict = result.VerdictGeneratorFail
		rec.Reason = "generator saturated: " + strings.Join(genReasons, "; ") +
			". The target's latency in this step is not trustworthy: the generator's own delays are in it"
		var targetFailed []string
		for _, g := range rec.FailedGates {
			if !g.Missing {
				targetFailed = append(targetFailed, g.Explain)
			}
		}
		if len(targetFailed) > 0 {
			rec.Reason += " (the target's gates failed too, not counted against it: " + strings.Join(targetFailed, "; ") + ")"
		}
		return
	}
	if aborted != "" {
		rec.Aborted = true
		rec.Verdict, rec.Reason = result.VerdictTargetFail, aborted
		return
	}
	var missing, failed []string
	for _, g := range rec.FailedGates {
		if g.Missing {
			missing = append(missing, g.Metric)
		} else {
			failed = append(failed, g.Explain)
		}
	}
	var limits []string
	for _, f := range rec.Findings {
		if f.Side == result.SideTarget && f.LimitReached {
			limits = append(limits, fmt.Sprintf("%s: %s", f.Rule, findingWhat(f)))
		}
	}
	switch {
	case len(failed) > 0:
		rec.Verdict, rec.Reason = result.VerdictTargetFail, strings.Join(failed, "; ")
		if len(limits) > 0 {
			rec.Reason += "; limit reached: " + strings.Join(limits, "; ")
		}
	case len(limits) > 0:
		rec.Verdict = result.VerdictTargetFail
		rec.Reason = "limit reached with the gates holding: " + strings.Join(limits, "; ")
	case len(missing) > 0 && probeErr != nil && r.passed && onlyProbe(missing):
		// The probe worked on earlier steps and failed now: the target
		// stopped serving it (refused, timed out), which is what users feel.
		rec.Verdict = result.VerdictTargetFail
		rec.Reason = "the probe could not measure delivery: " + probeErr.Error()
	case len(missing) > 0:
		rec.Verdict = result.VerdictError
		rec.Reason = "gate metrics not measured: " + strings.Join(missing, ", ")
		for _, n := range notesAbout(missing, rec.NotMeasured) {
			rec.Reason += "; " + n
		}
		if probeErr != nil {
			rec.Reason += " (probe: " + probeErr.Error() + ")"
		}
	default:
		rec.Verdict, rec.Reason = result.VerdictPass, "all gates hold"
		r.passed = true
	}
}

// findingWhat is a finding in a few words for a step's reason: what was
// observed, and where.
func findingWhat(f result.Finding) string {
	what := f.Observed
	if what == "" {
		what = f.Resource
	}
	if f.Process != "" {
		what += " (" + f.Process + ")"
	}
	return what
}

// achievedFindings explains the failed checks that a load parameter was
// achieved: what was asked, what the target let the generator achieve, and
// the evidence.
func achievedFindings(rec *result.Step) []result.Finding {
	var out []result.Finding
	done := map[string]bool{}
	for _, g := range rec.FailedGates {
		if g.Missing {
			continue
		}
		var f result.Finding
		var ok bool
		switch g.Metric {
		case metrics.ConnectionsHeldRatio, metrics.ConnectionsReopenedRatio:
			f, ok = diagnose.ConnectionsClosed(rec.Parameters, rec.Metrics)
		case metrics.SubscribersHeldRatio:
			f, ok = diagnose.SubscriptionsLost(rec.Parameters, rec.Metrics)
		}
		if ok && !done[f.Rule] {
			done[f.Rule] = true
			out = append(out, f)
		}
	}
	return out
}

// behindFindings explains a failed generator health check on its lag when
// its CPUs were taken from it (diagnose.GeneratorBehind), or on the
// hypervisor's steal of them (diagnose.GeneratorStolen), unless a finding
// already names the generator's CPU: one finding, for the first such check.
func behindFindings(rec *result.Step) []result.Finding {
	for _, f := range rec.Findings {
		if f.Side == result.SideGenerator && (f.Rule == diagnose.RuleCPUSaturation || f.Rule == diagnose.RuleGeneratorSaturated) {
			return nil
		}
	}
	for _, h := range rec.FailedHealth {
		var f result.Finding
		var ok bool
		switch {
		case strings.HasPrefix(h.Metric, "generator.lag."):
			f, ok = diagnose.GeneratorBehind(rec.Metrics, h.Metric)
		case strings.HasPrefix(h.Metric, "generator.steal."):
			f, ok = diagnose.GeneratorStolen(rec.Metrics, h.Metric)
		}
		if ok {
			return []result.Finding{f}
		}
	}
	return nil
}

// interfered says whether a generator-fail attempt failed only because
// other work took the generator's CPU, and what its finding observed: every
// generator health check it failed is on its schedule lag, its run delay or
// its steal (generator.lag.*, generator.starved.*, generator.steal.*), it
// used under CPUSaturated of its CPUs, it raised no error of its own, and
// its generator-side findings are all cpu-saturation (the hypervisor's steal
// or other threads explain its lag: GeneratorBehind; its threads waited for
// a CPU: the diagnosis's generatorStarved; its CPUs were busy with other
// work), at least one of them. A generator out of CPU, ports or files, or
// one behind for no reason measured, is not interfered with.
func interfered(rec *result.Step) (string, bool) {
	if !failedOnItsOwn(rec) {
		return "", false
	}
	if cpu, ok := rec.Metrics[metrics.GeneratorCPU]; ok && cpu >= diagnose.CPUSaturated {
		return "", false
	}
	for _, h := range rec.FailedHealth {
		if !cpuTaken(h.Metric) {
			return "", false
		}
	}
	why := ""
	for _, f := range rec.Findings {
		if f.Side != result.SideGenerator {
			continue
		}
		if f.Rule != diagnose.RuleCPUSaturation {
			return "", false
		}
		if why == "" {
			why = findingWhat(f)
		}
	}
	return why, why != ""
}

// failedOnItsOwn says whether an attempt is generator-fail with no error of
// the generator's own: none of its requests failed on its side, and no
// Locust worker went missing or hit its limit. interfered and stalled start
// from it.
func failedOnItsOwn(rec *result.Step) bool {
	m := rec.Metrics
	return rec.Verdict == result.VerdictGeneratorFail &&
		m[metrics.GeneratorErrorsCount] == 0 && m[metrics.GeneratorWorkersMissing] == 0 && m[metrics.GeneratorWorkersSaturated] == 0
}

// rerunCause is why a generator-fail attempt is measured again on the same
// generators before the fleet grows: what happened, the attempt's own
// figures, and what the progress advises when it happens in every attempt.
type rerunCause struct {
	what, why, advice string
}

// sameGenerators returns the cause for which a generator-fail attempt is
// rerun on the same generators (interfered, else stalled), and false when
// the fleet should grow instead.
func sameGenerators(rec *result.Step) (rerunCause, bool) {
	if why, ok := interfered(rec); ok {
		return rerunCause{"other work took the generator's CPU", why, "; run the generator where its CPUs are its own"}, true
	}
	if why, ok := stalled(rec); ok {
		return rerunCause{"the generator fell behind its schedule with CPU to spare", why, ""}, true
	}
	return rerunCause{}, false
}

// StalledCPU is the share of its CPUs under which a generator that fell
// behind its schedule is not short of CPU (stalled).
const StalledCPU = 0.5

// stalled says whether a generator-fail attempt fell behind its schedule
// while its CPUs were mostly idle, with nothing it measured to say why, and
// what it observed: every generator health check it failed is on its lag
// (generator.lag.*), it used under StalledCPU of its CPUs (the figure
// measured), it raised no error of its own, and no finding names the
// generator. A pause the guest does not see (a virtual machine paused, not
// counted as steal) reads so: more generators are not the first answer to
// a generator that had CPU to spare, and the step is measured again first.
func stalled(rec *result.Step) (string, bool) {
	if !failedOnItsOwn(rec) || len(rec.FailedHealth) == 0 {
		return "", false
	}
	cpu, ok := rec.Metrics[metrics.GeneratorCPU]
	if !ok || cpu >= StalledCPU {
		return "", false
	}
	var checks []string
	for _, h := range rec.FailedHealth {
		if !strings.HasPrefix(h.Metric, "generator.lag.") {
			return "", false
		}
		c := h.Explain
		if c == "" {
			c = h.Metric
		}
		checks = append(checks, c)
	}
	for _, f := range rec.Findings {
		if f.Side == result.SideGenerator {
			return "", false
		}
	}
	return fmt.Sprintf("%s at %.0f%% of its CPUs, and nothing it measured took them", strings.Join(checks, ", "), 100*cpu), true
}

// cpuTaken says whether a generator health metric measures what others
// took from the generator's CPUs, or its effect on its schedule: its lag,
// its threads' run delay, the hypervisor's steal.
func cpuTaken(metric string) bool {
	for _, p := range []string{"generator.lag.", "generator.starved.", "generator.steal."} {
		if strings.HasPrefix(metric, p) {
			return true
		}
	}
	return false
}

// agentSaturated is the finding that names an agent whose own health failed
// the generator health checks.
func agentSaturated(a result.AgentShare, failed []string) result.Finding {
	return result.Finding{
		Rule: "generator-saturated", Side: result.SideGenerator, Host: a.Agent, Process: "loadramp agent",
		Resource: "the agent's share of the load", Setting: "the generators fleet's size, or this agent host's CPU",
		Observed: strings.Join(failed, ", "),
		Evidence: append([]string{fmt.Sprintf("agent %s (%s) with %s", a.Agent, a.URL, paramList(a.Parameters))}, agentHealthEvidence(a.Metrics)...),
		Fix:      "add agents to the generators fleet (loadramp grows it and reruns the step), or free this agent's host of what competes for its CPU",
	}
}

// agentHealthEvidence lists an agent's generator.* figures.
func agentHealthEvidence(m map[string]float64) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		if strings.HasPrefix(k, "generator.") {
			out = append(out, fmt.Sprintf("%s = %s", k, metrics.FormatValue(k, m[k])))
		}
	}
	return out
}

func paramList(p map[string]float64) string {
	var parts []string
	for _, k := range sortedKeys(p) {
		parts = append(parts, fmt.Sprintf("%s=%s", k, metrics.FormatNumber(p[k])))
	}
	if len(parts) == 0 {
		return "no load parameters"
	}
	return strings.Join(parts, " ")
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (r *runner) generatorProcesses() []Process {
	return r.processes("generators")
}

func genClasses(c map[string]int64) string {
	var parts []string
	for k, v := range c {
		if metrics.IsGeneratorClass(k) {
			parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(k, metrics.GeneratorClassPrefix), v))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// toResults judges cs on m. A default check on a metric the step did not
// produce is left out: not every engine measures every default's metric.
func toResults(cs []check, m map[string]float64) []result.GateResult {
	out := make([]result.GateResult, 0, len(cs))
	for _, c := range cs {
		g := c.Evaluate(m)
		if c.def && g.Missing {
			continue
		}
		out = append(out, result.GateResult{Gate: g.Gate, Metric: g.Metric, Observed: g.Observed, Threshold: g.Threshold,
			Pass: g.Pass, Missing: g.Missing, Explain: g.Explain, Default: c.def})
	}
	return out
}

// secondMetrics is the view of one second that abort gates judge.
func secondMetrics(s result.Second) metrics.Metrics {
	m := metrics.Metrics{
		metrics.ErrorsCount:   float64(s.Errors),
		metrics.RequestsCount: float64(s.Requests),
		metrics.ThroughputRPS: float64(s.Requests),
	}
	if s.Requests > 0 {
		m[metrics.ErrorsRatio] = s.ErrorsRatio()
		m[metrics.LatencyP50] = s.P50
		m[metrics.LatencyP99] = s.P99
	}
	if s.Offered > 0 {
		m[metrics.ThroughputOffered] = float64(s.Offered)
		m[metrics.ThroughputRatio] = float64(s.Requests) / float64(s.Offered)
	}
	return m
}

// notMeasuredSep follows the metric's name in a sampler's sentence about
// one metric (SampleSpec.NotMeasured).
const notMeasuredSep = " not measured: "

// noteAbout returns the note that says why metric was not measured: one
// about the metric itself, or about the metric its figure belongs to
// (prom.queue for prom.queue.peak).
func noteAbout(metric string, notes []string) (string, bool) {
	for _, n := range notes {
		name, _, ok := strings.Cut(n, notMeasuredSep)
		if ok && (metric == name || strings.HasPrefix(metric, name+".")) {
			return n, true
		}
	}
	return "", false
}

// explainMissing adds to each gate on a metric that was not measured the
// sampler's note that says why.
func explainMissing(gs []result.GateResult, notes []string) []result.GateResult {
	for i, g := range gs {
		if !g.Missing {
			continue
		}
		if n, ok := noteAbout(g.Metric, notes); ok {
			_, why, _ := strings.Cut(n, notMeasuredSep)
			gs[i].Explain = g.Metric + notMeasuredSep + why
		}
	}
	return gs
}

// notesAbout lists, once each, the notes that say why metrics were not
// measured.
func notesAbout(metrics, notes []string) []string {
	var out []string
	for _, m := range metrics {
		if n, ok := noteAbout(m, notes); ok && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func onlyProbe(names []string) bool {
	for _, n := range names {
		if !strings.HasPrefix(n, "probe.") {
			return false
		}
	}
	return true
}
