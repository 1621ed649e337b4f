// Package orchestrator runs a ramp plan: it provisions the fleets, drives the
// engine step by step, judges each step's steady state against the plan's gates,
// tells a saturated generator from a saturated target, stops at the first real
// bottleneck and writes the run directory and its reports.
package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/gate"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/report"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// MaxGeneratorScales bounds how often one step is rerun on a grown generator fleet.
const MaxGeneratorScales = 3

// Renderer renders a plan template with the run's current template data.
type Renderer func(text string) (string, error)

// Deps are the real or fake implementations Run wires together.
type Deps struct {
	// Provision builds the provider of one fleet from its plan block.
	Provision func(ctx context.Context, spec ProvisionSpec) (Fleet, error)
	// NewEngine builds the plan's engine once every fleet is up.
	NewEngine func(ctx context.Context, p *plan.Plan, render Renderer, log zerolog.Logger) (Engine, error)
	// NewProbe, if set, builds the plan's probe (nil when the plan has none)
	// once every fleet is up.
	NewProbe func(ctx context.Context, p *plan.Plan, render Renderer, log zerolog.Logger) (Probe, error)
	// Preflight, if set, audits the limits of the hosts once the fleets are up
	// (the funnel: accept queues, connection tracking, proxy connections, open
	// files). The result is recorded in run.json and the report as static
	// parameters; warnings are shown to the user.
	Preflight func(ctx context.Context, target []Process) (limits map[string]any, warnings []string, err error)
	// Locate, if set, finds the processes of this host that listen on the
	// target's endpoints ("host:port"), for a target fleet that names none
	// (a static endpoint); local reports whether an endpoint's address is
	// this host's own. The run then watches and audits what it found, and a
	// target found nowhere on this host makes this host the generator's
	// only (SampleSpec.Side).
	Locate func(ctx context.Context, endpoints []string) (procs []Process, local bool, err error)
	// Policy, if set, judges the finished run's report (baseline, minimum
	// capacities); its result goes into run.json and every report.
	Policy func(rep *report.Report) *result.Policy
	// Sampler, if set, measures hosts and processes during each step's hold and
	// names findings; nil means no host measurements.
	Sampler StepSampler
	// NewSampler, if set, builds the run's step sampler once every fleet is
	// up (like NewEngine: the plan's templates can name the fleets' outputs)
	// and before the first step; it replaces Sampler for the run. Its error
	// stops the run before any load (a source the plan names that cannot be
	// read). A sampler that observes fleet hosts of its own (their agents)
	// may implement HostAuditor.
	NewSampler func(ctx context.Context, p *plan.Plan, render Renderer, log zerolog.Logger) (StepSampler, error)
	Observer   Observer
	// LogOutput receives the run's log events (besides events.log, which gets
	// them all); nil discards them.
	LogOutput io.Writer
	LogLevel  zerolog.Level
	Now       func() time.Time
	Version   string
	// LookupEnv reads the environment variables request templates ask for
	// with {{ env "NAME" }} (nil: os.LookupEnv). Run refuses a plan whose
	// variables are not set, and keeps their values out of the run directory.
	LookupEnv func(string) (string, bool)
	// MemoryLimit bounds loadramp's own memory during the run (zero value:
	// DefaultMemoryShare of the memory available): over it, the run stops
	// with a *MemoryError, ends in error and is torn down, before the
	// machine runs out.
	MemoryLimit MemoryLimit
	// Host names this machine in findings, as its sampler's own do ("" is
	// "local"): the findings the run names itself about a generator that
	// runs here (diagnose.GeneratorBehind, GeneratorStolen) carry it, so the
	// report counts them with the sampler's as one cause.
	Host string
}

// ProvisionSpec is what Provision builds a fleet from.
type ProvisionSpec struct {
	// Name is the fleet's name in the plan ("target", "generators"...).
	Name  string
	Fleet *plan.Fleet
	// Render renders the block's templates (static parameters, ports, the
	// outputs of fleets already up).
	Render Renderer
	// RunDir is the run directory, for logs, files and Terraform data.
	RunDir string
	// CampaignID is set while a campaign runs: its variants share Terraform
	// workspaces, each re-applying the fleet in place.
	CampaignID string
	Log        zerolog.Logger
}

// StepSampler measures the hosts during a step and diagnoses what it saw.
type StepSampler interface {
	// Start begins sampling for one step attempt; the returned stop function
	// ends sampling and returns the hold window's metrics and findings.
	Start(ctx context.Context, spec SampleSpec) (stop func(StepFacts) (map[string]float64, []result.Finding), err error)
}

// SampleSpec says what a step's sampler watches.
type SampleSpec struct {
	Target    []Process
	Generator []Process
	// Logs are extra log files of the fleets (nginx error.log...), by side.
	Logs []LogFile
	// Warmup is excluded from the window the metrics describe.
	Warmup time.Duration
	// Sink receives every raw sample (for samples.jsonl); may be nil.
	Sink func(sample any)
	// NotMeasured receives what the sampler could not measure in the step
	// and why, one sentence each, before stop returns. A sentence about one metric
	// starts "<metric> not measured: " (prom.queue not measured: no data
	// ...): it then explains a gate on that metric, or on one of its
	// figures (prom.queue.peak). They go into the step's not_measured. May
	// be nil.
	NotMeasured func(string)
	// Side is the side loadramp's own host serves when it serves one only:
	// "generator" when the target runs elsewhere (a static or remote target
	// with no process here), "target" when the generators run elsewhere and
	// the target here; "" when it runs both. Its host-wide findings take
	// that side (diagnose.Input.Side).
	Side string
	// Host receives each host the sampler observed over the step, with its
	// own figures, before stop returns (steps.jsonl "hosts"). May be nil.
	Host func(result.Host)
}

// HostAuditor is a StepSampler that observes fleet hosts of its own (the
// agents on them): before the first step it audits each host's limits
// funnel, recorded in run.json under limits.hosts.<host>.
type HostAuditor interface {
	// AuditHosts returns each host's audit as static parameters, and the
	// funnel's warnings, each naming its host.
	AuditHosts(ctx context.Context) (hosts map[string]map[string]any, warnings []string, err error)
	// Local reports whether this machine runs anything of the run; when it
	// does not, the local preflight audit (Deps.Preflight) is not made: it
	// would describe the wrong machine.
	Local() bool
}

// LogFile is a log file scanned for bottleneck signatures.
type LogFile struct {
	Path, Side string
}

// StepFacts is what the engine saw, for the diagnosis: the generator's own
// errors, its metrics (connections held, its starvation) and the step's load
// parameters.
type StepFacts struct {
	ErrorClasses map[string]int64
	Metrics      map[string]float64
	Params       map[string]float64
	// StarvedAt is the generator.starved.ratio from which the plan's
	// generator health calls the generator starved (its check's threshold,
	// the default's 0.2 unless the plan sets its own); negative when the
	// plan judges no starvation (default generator health off and no check
	// of its own): the diagnosis then names none.
	StarvedAt float64
}

// Options are the per-invocation settings of a run.
type Options struct {
	OutDir    string // where run directories are made
	PlanFile  string
	PlanHash  string
	KeepInfra bool
	RunID     string // optional; generated when empty
	// KeepProviders names the providers whose fleets a finished run leaves up
	// (a campaign's next variant re-applies them in place); an interrupted or
	// failed run still tears them down.
	KeepProviders map[string]bool
	// CampaignID is the campaign this run is a variant of ("" for none).
	CampaignID string
	// Resume is an interrupted run's directory to continue: its recorded
	// attempts are replayed, not rerun, and the run goes on from the first
	// attempt that did not finish.
	Resume string
	// Notes are engineers' notes on the run (`loadramp run --note`), written
	// to notes.jsonl when the run directory is made.
	Notes []string
}

// Result says how a run ended.
type Result struct {
	RunID  string
	Dir    string
	Status string
	Report *report.Report
	// Interrupted is true when ctx was cancelled (SIGINT/SIGTERM).
	Interrupted bool
	// Secrets are the values of the fleets' sensitive outputs: never
	// written anywhere, kept so an upload can replace them in any file
	// that holds one (a process's log, a file it was given).
	Secrets []string
}

// Run executes plan p to its end: a bottleneck, the end of the schedule, a
// generator limit, an abort or an error. It always tears down what it started
// (unless opts.KeepInfra) and always writes the reports of what it measured.
func Run(ctx context.Context, p *plan.Plan, deps Deps, opts Options) (res *Result, err error) {
	if deps.Observer == nil {
		deps.Observer = NopObserver{}
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	r, err := newRunner(p, deps, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopGuard := guardMemory(ctx, deps.MemoryLimit, func(e *MemoryError) {
		deps.Observer.Message("%v", e)
		cancel(e)
	})
	defer stopGuard()
	// A panic in the run still tears the fleets down (what it started may
	// cost money or hold ports), then ends the run with an error.
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			r.log.Error().Interface("panic", v).Bytes("stack", stack).Msg("panic during the run")
			if !opts.KeepInfra {
				if terr := r.teardown(); terr != nil {
					err = fmt.Errorf("teardown after the panic: %w", terr)
				}
			}
			if r.runRec != nil && r.dir != nil {
				r.runRec.Status = result.StatusError
				r.runRec.End = r.deps.Now().UTC()
				r.runRec.Error = fmt.Sprint("panic: ", v)
				_ = r.dir.WriteRun(r.runRec)
			}
			res = nil
			err = errors.Join(fmt.Errorf("panic during the run (fleets torn down): %v\n%s", v, stack), err)
		}
	}()
	return r.run(ctx)
}

type runner struct {
	// secrets are the values of the fleets' sensitive outputs (Result.Secrets).
	secrets []string
	p       *plan.Plan
	deps    Deps
	opts    Options
	log     zerolog.Logger
	obs     Observer
	gates   []check
	health  []check
	abort   []gate.Gate
	checks  *result.Checks
	order   []string

	dir     *record.Dir
	runRec  *record.Run
	ports   *plan.Ports
	tdata   plan.TemplateData
	fleets  []namedFleet
	engine  Engine
	probe   Probe
	sampler StepSampler
	states  map[string]FleetState
	genSize int
	// logFiles are the fleets' extra logs (plan fleets.*.logs), rendered.
	logFiles []LogFile
	// target are the target's processes on this host: the target fleet's,
	// or those found listening on its endpoints (Deps.Locate).
	target []Process
	// localSide is the side loadramp's own host serves (SampleSpec.Side).
	localSide string
	// targetAddr is the target's first endpoint (host:port), the host of
	// findings made from the client's view.
	targetAddr string
	// replay holds the attempts of an interrupted run, in order, while a
	// resumed run walks past them.
	replay []result.Step
	// passed is true once an attempt passed: the probe and the gates were
	// shown to work.
	passed bool
}

type namedFleet struct {
	name     string
	provider string
	fleet    Fleet
	up       bool
	// kept: left up for the next run of a campaign, which updates it in place.
	kept bool
}

func newRunner(p *plan.Plan, deps Deps, opts Options) (*runner, error) {
	r := &runner{p: p, deps: deps, opts: opts, log: zerolog.Nop(), obs: deps.Observer, states: map[string]FleetState{}}
	if r.deps.LookupEnv == nil {
		r.deps.LookupEnv = os.LookupEnv
	}
	gs, errs := compileGates(p)
	errs = append(errs, p.CheckEnv(r.deps.LookupEnv)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	r.gates, r.health, r.abort = gs.gates, gs.health, gs.abort
	checks := gs.checks
	r.checks = &checks
	for _, prm := range p.Parameters {
		r.order = append(r.order, prm.Name)
	}
	return r, nil
}

func (r *runner) render(text string) (string, error) {
	return plan.Render(text, r.tdata, r.ports)
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	now := r.deps.Now().UTC()
	id := r.opts.RunID
	if id == "" {
		id = record.NewRunID(now, r.p.Name)
	}
	outDir := r.opts.OutDir
	if outDir == "" {
		outDir = "runs"
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating runs directory: %w", err)
	}
	r.runRec = &record.Run{
		ID:       id,
		Plan:     r.p.Name,
		PlanFile: r.opts.PlanFile,
		PlanHash: r.opts.PlanHash,
		Version:  r.deps.Version,
		Host:     hostFacts(),
		Static:   r.p.Static,
		Start:    now,
		Status:   result.StatusRunning,
		Params:   r.order,
		Gates:    r.p.Gates,
		Checks:   r.checks,
	}
	var dir *record.Dir
	var err error
	if r.opts.Resume != "" {
		if dir, err = r.reopen(); err != nil {
			return nil, err
		}
	} else {
		// plan.yaml is the resolved plan: defaults, overrides and every
		// static parameter as this run uses them.
		resolved, err := r.p.Marshal()
		if err != nil {
			return nil, err
		}
		for i := 1; ; i++ {
			path := filepath.Join(outDir, r.runRec.ID)
			dir, err = record.Create(path, r.runRec, resolved)
			if err == nil || !errors.Is(err, os.ErrExist) || i > 50 {
				break
			}
			// Another run of the same plan started in the same second.
			r.runRec.ID = fmt.Sprintf("%s-%d", id, i+1)
		}
		if err != nil {
			return nil, fmt.Errorf("creating run directory: %w", err)
		}
	}
	r.dir = dir
	defer dir.Close()
	r.envSecrets()
	// A crash Go cannot recover from (a fatal error, a panic in another
	// goroutine) leaves its stack in the run directory.
	defer dir.CaptureCrashes()()
	var sinks []io.Writer
	if ev, err := dir.EventsLog(); err == nil {
		defer ev.Close()
		sinks = append(sinks, ev)
	}
	if r.deps.LogOutput != nil {
		sinks = append(sinks, &zerolog.FilteredLevelWriter{Writer: zerolog.LevelWriterAdapter{Writer: r.deps.LogOutput}, Level: r.deps.LogLevel})
	}
	r.log = zerolog.New(zerolog.MultiLevelWriter(sinks...)).With().Timestamp().Str("run", r.runRec.ID).Logger()
	for _, text := range r.opts.Notes {
		if err := dir.AddNote(record.Note{Time: now, Step: record.StepAddr{}.String(), Text: text}); err != nil {
			return nil, fmt.Errorf("writing the run's note: %w", err)
		}
	}
	r.ports = plan.NewPorts()
	r.tdata = plan.TemplateData{
		Static: r.p.Static,
		Params: startParams(r.p),
		Fleets: map[string]map[string]string{},
		Run:    plan.RunInfo{ID: r.runRec.ID, Dir: dir.Path()},
	}
	sched := r.p.Schedule()
	r.obs.RunStarted(r.runRec.ID, dir.Path(), len(sched))

	res := &Result{RunID: r.runRec.ID, Dir: dir.Path()}
	status, runErr := r.ramp(ctx, sched)

	if me := memoryCause(ctx); me != nil {
		// Not the user's interrupt: the run could not go on.
		status, runErr = result.StatusError, me
		r.log.Error().Err(me).Msg("run stopped: memory limit")
	} else if ctx.Err() != nil {
		res.Interrupted = true
		if status == "" || status == result.StatusError {
			status = result.StatusAborted
		}
	}
	// Teardown always happens, on a context of its own: the run's may be cancelled.
	if !r.opts.KeepInfra {
		if ctx.Err() == nil && status != result.StatusError {
			// A campaign's variant keeps the fleets the next variant updates
			// in place; an interrupted or failed run tears everything down.
			for i := range r.fleets {
				if r.opts.KeepProviders[r.fleets[i].provider] && r.fleets[i].up {
					r.fleets[i].up, r.fleets[i].kept = false, true
					r.obs.Message("keeping fleet %s (%s) for the next variant, which updates it in place", r.fleets[i].name, r.fleets[i].provider)
				}
			}
		}
		if err := r.teardown(); err != nil {
			r.log.Error().Err(err).Msg("teardown failed")
			runErr = errors.Join(runErr, fmt.Errorf("teardown: %w", err))
		}
	} else {
		r.obs.Message("--keep-infra: leaving the fleets up; `loadramp destroy %s` tears them down", dir.Path())
	}
	if status == "" {
		status = result.StatusError
	}
	r.runRec.Status = status
	r.runRec.End = r.deps.Now().UTC()
	if runErr != nil {
		r.runRec.Error = runErr.Error()
	}
	if err := dir.WriteRun(r.runRec); err != nil {
		runErr = errors.Join(runErr, err)
	}
	steps, err := dir.ReadSteps()
	if err != nil {
		runErr = errors.Join(runErr, err)
	}
	notes, err := dir.ReadNotes()
	if err != nil {
		runErr = errors.Join(runErr, err)
	}
	rep := report.Build(r.runRec, steps, report.WithNotes(notes))
	if r.deps.Policy != nil && !res.Interrupted {
		if pol := r.deps.Policy(rep); pol != nil {
			r.runRec.Policy = pol
			if err := dir.WriteRun(r.runRec); err != nil {
				runErr = errors.Join(runErr, err)
			}
			rep = report.Build(r.runRec, steps, report.WithNotes(notes))
		}
	}
	if _, err := report.WriteAll(dir.Path(), rep, r.p.Report.Formats); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("writing reports: %w", err))
	}
	res.Status = status
	res.Report = rep
	res.Secrets = r.secrets
	r.log.Info().Str("status", status).Msg("run finished")
	if errors.Is(runErr, syscall.ENOSPC) {
		runErr = fmt.Errorf("the file system of the run directory %s is full: the steps recorded before are kept in %s; free space, then `loadramp report %s` rebuilds the report: %w",
			dir.Path(), record.StepsFile, dir.Path(), runErr)
	}
	return res, runErr
}

func startParams(p *plan.Plan) map[string]float64 {
	m := map[string]float64{}
	for _, prm := range p.Parameters {
		m[prm.Name] = prm.Start
	}
	return m
}

// fleetOrder lists fleets target first, generators last, others in between.
func fleetOrder(p *plan.Plan) []string {
	var names []string
	for n := range p.Fleets {
		if n != "target" && n != "generators" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if _, ok := p.Fleets["target"]; ok {
		names = append([]string{"target"}, names...)
	}
	if _, ok := p.Fleets["generators"]; ok {
		names = append(names, "generators")
	}
	return names
}

func (r *runner) provision(ctx context.Context) error {
	defer r.ports.Release()
	for _, name := range fleetOrder(r.p) {
		f := r.p.Fleets[name]
		r.obs.Message("provisioning fleet %s (%s)", name, f.Provider)
		// The ports the fleet's templates allocate stay bound until it
		// starts, so no other program is handed one meanwhile.
		r.ports.Hold()
		fl, err := r.deps.Provision(ctx, ProvisionSpec{Name: name, Fleet: f, Render: r.render, RunDir: r.dir.Path(), CampaignID: r.opts.CampaignID, Log: r.log})
		if err != nil {
			return fmt.Errorf("fleet %s: %w", name, err)
		}
		nf := namedFleet{name: name, provider: f.Provider, fleet: fl}
		r.fleets = append(r.fleets, nf)
		r.ports.Release()
		st, err := fl.Up(ctx)
		r.fleets[len(r.fleets)-1].up = true // Down is safe after a failed Up
		if err != nil {
			return fmt.Errorf("fleet %s: %w", name, err)
		}
		r.states[name] = st
		r.tdata.Fleets[name] = st.Outputs
		r.secret(st)
		side := "target"
		if name == "generators" {
			side = "generator"
		}
		for i, l := range f.Logs {
			if f.LogsOnAgents() {
				break // the fleet's agents read them on its hosts
			}
			path, err := r.render(l)
			if err != nil {
				return fmt.Errorf("fleets.%s.logs[%d]: %w", name, i, err)
			}
			if !filepath.IsAbs(path) {
				path = filepath.Join(r.dir.Path(), path)
			}
			r.logFiles = append(r.logFiles, LogFile{Path: path, Side: side})
		}
		if name == "generators" {
			r.genSize = st.Size
		}
		ref, err := r.recordRef(name, f.Provider, st)
		if err != nil {
			return err
		}
		r.log.Info().Str("fleet", name).Interface("outputs", ref.Outputs).Msg("fleet up")
	}
	return nil
}

// recordRef writes (or, for a fleet that grew, replaces) fleet name's
// infrastructure reference in run.json: what `loadramp destroy` tears down
// after a crash, its processes with their identities included.
func (r *runner) recordRef(name, provider string, st FleetState) (result.InfraRef, error) {
	ref := st.Ref
	ref.Fleet = name
	if ref.Provider == "" {
		ref.Provider = provider
	}
	if ref.Outputs == nil {
		ref.Outputs = st.Outputs
	}
	ref.Outputs = record.RedactOutputs(ref.Outputs, st.Sensitive)
	i := slices.IndexFunc(r.runRec.Infra, func(x result.InfraRef) bool { return x.Fleet == name })
	if i < 0 {
		r.runRec.Infra = append(r.runRec.Infra, ref)
	} else {
		r.runRec.Infra[i] = ref
	}
	return ref, r.dir.WriteRun(r.runRec)
}

func (r *runner) teardown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var errs []error
	if r.probe != nil {
		if err := r.probe.Close(); err != nil {
			errs = append(errs, err)
		}
		r.probe = nil
	}
	if r.engine != nil {
		if err := r.engine.Close(); err != nil {
			errs = append(errs, err)
		}
		r.engine = nil
	}
	for i := len(r.fleets) - 1; i >= 0; i-- {
		f := r.fleets[i]
		if !f.up {
			continue
		}
		r.obs.Message("tearing down fleet %s", f.name)
		if err := f.fleet.Down(ctx); err != nil {
			errs = append(errs, fmt.Errorf("fleet %s: %w", f.name, err))
		}
		r.fleets[i].up = false
	}
	return errors.Join(errs...)
}

func (r *runner) processes(fleet string) []Process {
	return r.states[fleet].Processes
}

// ramp provisions the fleets and runs the schedule, returning the status.
func (r *runner) ramp(ctx context.Context, sched []plan.Step) (string, error) {
	if err := r.provision(ctx); err != nil {
		return result.StatusError, err
	}
	eng, err := r.deps.NewEngine(ctx, r.p, r.render, r.log)
	if err != nil {
		return result.StatusError, fmt.Errorf("engine: %w", err)
	}
	r.engine = eng
	if r.deps.NewProbe != nil && r.p.Probe != nil {
		pr, err := r.deps.NewProbe(ctx, r.p, r.render, r.log)
		if err != nil {
			return result.StatusError, fmt.Errorf("probe: %w", err)
		}
		r.probe = pr
	}
	r.sampler = r.deps.Sampler
	if r.deps.NewSampler != nil {
		s, err := r.deps.NewSampler(ctx, r.p, r.render, r.log)
		if err != nil {
			return result.StatusError, err
		}
		r.sampler = s
	}
	r.locateTarget(ctx)
	if err := r.preflight(ctx); err != nil {
		return result.StatusError, err
	}

	var lastPass *plan.Step
	for i := range sched {
		st := sched[i]
		rec, err := r.attempt(ctx, st, st.Values, result.KindRamp, 1)
		if err != nil {
			return result.StatusError, err
		}
		if ctx.Err() != nil {
			return result.StatusAborted, nil
		}
		attempt := 1
		if rec, err = r.untilGeneratorHolds(ctx, st, rec, &attempt); err != nil || ctx.Err() != nil {
			return statusOf(ctx, err)
		}
		if rec.Verdict == result.VerdictGeneratorFail {
			return result.StatusGeneratorLimited, nil
		}
		switch rec.Verdict {
		case result.VerdictError:
			return result.StatusError, fmt.Errorf("step %d: %s", st.Index, rec.Reason)
		case result.VerdictPass:
			lastPass = &sched[i]
			if err := r.cooldown(ctx); err != nil {
				return result.StatusAborted, nil
			}
			continue
		}
		// target-fail: confirm before it counts, unless an abort gate tripped:
		// that load already hurt the target, and is not sent again.
		confirmed := true
		if rec.Aborted && r.p.Ramp.Confirm > 0 {
			r.obs.Message("step %d was aborted: not rerunning it to confirm", st.Index)
		}
		for c := 0; c < r.p.Ramp.Confirm && !rec.Aborted; c++ {
			if err := r.cooldown(ctx); err != nil {
				return result.StatusAborted, nil
			}
			attempt++
			rec, err = r.attempt(ctx, st, st.Values, result.KindConfirm, attempt)
			if err == nil && ctx.Err() == nil {
				// The confirmation is judged on the target only too.
				rec, err = r.untilGeneratorHolds(ctx, st, rec, &attempt)
			}
			if err != nil || ctx.Err() != nil {
				return statusOf(ctx, err)
			}
			if rec.Verdict != result.VerdictTargetFail {
				confirmed = false
				break
			}
		}
		if !confirmed {
			switch rec.Verdict {
			case result.VerdictPass:
				r.obs.Message("step %d failed once and passed its confirmation: continuing", st.Index)
				lastPass = &sched[i]
				continue
			case result.VerdictGeneratorFail:
				r.obs.Message("step %d: the generator saturated during confirmation: the run is generator-limited", st.Index)
				return result.StatusGeneratorLimited, nil
			default:
				return result.StatusError, fmt.Errorf("step %d: %s", st.Index, rec.Reason)
			}
		}
		if lastPass != nil && st.Changed != "" && r.p.Ramp.Refine > 0 {
			if err := r.refine(ctx, *lastPass, st); err != nil {
				return result.StatusError, err
			}
			if ctx.Err() != nil {
				return result.StatusAborted, nil
			}
		}
		return result.StatusBottleneck, nil
	}
	return result.StatusMaxReached, nil
}

// locateTarget settles which target processes this host runs and which side
// it serves. A target fleet with processes here is watched as it is; one
// without (a static or remote endpoint) is looked for among the processes
// listening on its endpoints. A target found nowhere here, at an address
// that is not this host's, runs elsewhere: this host then serves the
// generator only, and its host-wide findings are the generator's.
func (r *runner) locateTarget(ctx context.Context) {
	r.target = r.processes("target")
	eps := r.targetEndpoints()
	if len(eps) > 0 {
		r.targetAddr = eps[0]
	}
	targetHere := len(r.target) > 0
	known := targetHere // whether this host's part in the target is known
	if !targetHere && r.deps.Locate != nil && len(eps) > 0 {
		procs, local, err := r.deps.Locate(ctx, eps)
		if err != nil {
			r.log.Debug().Err(err).Msg("locating the target's processes")
		}
		for _, p := range procs {
			r.obs.Message("target process found listening on %s: %s (pid %d)", strings.Join(eps, ", "), p.Name, p.Pid)
		}
		r.target = procs
		// An address of this host with no process found (not readable)
		// may still be the target's: then it counts as here.
		targetHere, known = local, true
	}
	// The builtin engine generates load inside loadramp; another engine's
	// generators are the generators fleet's processes.
	genHere := (r.p.Workload.Engine == plan.EngineBuiltin && !r.p.BuiltinOnAgents()) || len(r.processes("generators")) > 0
	switch {
	case known && genHere && !targetHere:
		r.localSide = result.SideGenerator
		r.obs.Message("the target (%s) runs elsewhere: this host runs the generator only, its host-wide findings are the generator's", strings.Join(eps, ", "))
	case targetHere && !genHere:
		r.localSide = result.SideTarget
	}
}

// targetEndpoints are the host:port addresses the workload sends to, as
// rendered for the run ("" ports become the scheme's).
func (r *runner) targetEndpoints() []string {
	w := r.p.Workload
	var urls []string
	if w.HTTP != nil {
		urls = append(urls, w.HTTP.URL)
	}
	if w.PubSub != nil {
		urls = append(urls, w.PubSub.Publish, w.PubSub.Subscribe)
	}
	if w.Locust != nil && w.Locust.Host != "" {
		urls = append(urls, w.Locust.Host)
	}
	var out []string
	seen := map[string]bool{}
	for _, t := range urls {
		s, err := r.render(t)
		if err != nil {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || u.Hostname() == "" {
			continue
		}
		port := u.Port()
		if port == "" {
			port = "80"
			if u.Scheme == "https" {
				port = "443"
			}
		}
		ep := net.JoinHostPort(u.Hostname(), port)
		if !seen[ep] {
			seen[ep] = true
			out = append(out, ep)
		}
	}
	return out
}

// preflight audits the limits funnel of this machine (unless nothing of the
// run runs on it) and of every host the sampler observes through an agent,
// into run.json's limits.
func (r *runner) preflight(ctx context.Context) error {
	auditor, _ := r.sampler.(HostAuditor)
	var limits map[string]any
	if r.deps.Preflight != nil && (auditor == nil || auditor.Local()) {
		l, warnings, err := r.deps.Preflight(ctx, r.target)
		if err != nil {
			r.log.Warn().Err(err).Msg("preflight limits audit failed")
		}
		for _, w := range warnings {
			r.obs.Message("limits: %s", w)
		}
		limits = l
	}
	if auditor != nil {
		hosts, warnings, err := auditor.AuditHosts(ctx)
		if err != nil {
			r.log.Warn().Err(err).Msg("limits audit of the fleet hosts failed")
			r.obs.Message("limits: %v", err)
		}
		for _, w := range warnings {
			r.obs.Message("limits: %s", w)
		}
		if len(hosts) > 0 {
			if limits == nil {
				limits = map[string]any{}
			}
			hm := make(map[string]any, len(hosts))
			for h, l := range hosts {
				hm[h] = l
			}
			limits["hosts"] = hm
		}
	}
	if limits == nil {
		return nil
	}
	r.runRec.Limits = limits
	return r.dir.WriteRun(r.runRec)
}

// untilGeneratorHolds reruns a generator-fail attempt until the generator
// holds: a generator that could not keep its schedule is never the target's
// bottleneck. A generator whose CPU other work took (interfered), or that
// fell behind with most of its CPU to spare and nothing measured to say why
// (stalled), is rerun on the same generators first, up to
// ramp.interference_reruns times: the hypervisor's steal, a paused virtual
// machine and a neighbour's burst come and go, and more generators would not
// be spared them. Otherwise, or when that is spent, the
// step is rerun on a grown generator fleet until the fleet cannot grow or it
// was grown MaxGeneratorScales times. It returns the last attempt.
func (r *runner) untilGeneratorHolds(ctx context.Context, st plan.Step, rec *result.Step, attempt *int) (*result.Step, error) {
	reruns, scales := 0, 0
	for rec.Verdict == result.VerdictGeneratorFail {
		cause, same := sameGenerators(rec)
		if same && reruns < r.p.Ramp.InterferenceReruns {
			reruns++
			r.obs.Message("step %d: %s (%s): rerunning the step on the same generators (%d of %d)",
				st.Index, cause.what, cause.why, reruns, r.p.Ramp.InterferenceReruns)
			if err := r.cooldown(ctx); err != nil {
				return rec, nil
			}
		} else {
			grown, err := r.scaleGenerators(ctx, scales)
			scales++
			if err != nil {
				return rec, err
			}
			if !grown {
				if same {
					r.obs.Message("step %d: %s in %d attempts running (%s) and its fleet cannot grow: the run is generator-limited%s",
						st.Index, cause.what, reruns+1, cause.why, cause.advice)
				} else {
					r.obs.Message("step %d: the generator saturated and its fleet cannot grow: the run is generator-limited", st.Index)
				}
				return rec, nil
			}
		}
		*attempt++
		var err error
		if rec, err = r.attempt(ctx, st, st.Values, result.KindRerun, *attempt); err != nil || ctx.Err() != nil {
			return rec, err
		}
	}
	return rec, nil
}

// statusOf is the run status after an attempt that errored or was interrupted.
func statusOf(ctx context.Context, err error) (string, error) {
	if ctx.Err() != nil {
		return result.StatusAborted, nil
	}
	return result.StatusError, err
}

func (r *runner) cooldown(ctx context.Context) error {
	d := r.p.Ramp.Cooldown.D()
	if d <= 0 || len(r.replay) > 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// refine bisects the changed parameter between the last passing step and the
// first failing one.
func (r *runner) refine(ctx context.Context, pass, fail plan.Step) error {
	name := fail.Changed
	b := plan.NewBisect(pass.Values[name], fail.Values[name], plan.IntegerParam(name))
	for n := 0; n < r.p.Ramp.Refine; n++ {
		v, ok := b.Next()
		if !ok {
			break
		}
		if err := r.cooldown(ctx); err != nil {
			return nil
		}
		vals := map[string]float64{}
		for k, x := range fail.Values {
			vals[k] = x
		}
		vals[name] = v
		rec, err := r.attempt(ctx, fail, vals, result.KindRefine, n+1)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		switch rec.Verdict {
		case result.VerdictPass:
			b.Record(v, true)
		case result.VerdictTargetFail:
			b.Record(v, false)
		default:
			// A generator failure or an error says nothing about the target: stop refining.
			r.obs.Message("refine stopped at %s=%g: %s", name, v, rec.Reason)
			return nil
		}
	}
	return nil
}

func (r *runner) scaleGenerators(ctx context.Context, scales int) (bool, error) {
	if scales >= MaxGeneratorScales {
		return false, nil
	}
	for i := range r.fleets {
		f := r.fleets[i]
		if f.name != "generators" {
			continue
		}
		factor := r.p.Ramp.Factor
		r.obs.Message("growing the generator fleet by %gx", factor)
		st, ok, err := f.fleet.Scale(ctx, factor)
		if err != nil {
			return false, fmt.Errorf("scaling generators: %w", err)
		}
		if !ok {
			return false, nil
		}
		r.states[f.name] = st
		r.tdata.Fleets[f.name] = st.Outputs
		r.secret(st)
		r.genSize = st.Size
		// The new replicas are the fleet's too: a crash from now on leaves
		// them for `loadramp destroy`.
		if _, err := r.recordRef(f.name, f.provider, st); err != nil {
			return false, err
		}
		return true, nil
	}
	return false, nil
}

func hostFacts() result.HostFacts {
	h, _ := os.Hostname()
	kernel := hoststat.KernelRelease(hoststat.DefaultRoot)
	return result.HostFacts{Hostname: h, OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Kernel: kernel, Go: runtime.Version()}
}

// envSecrets notes the values of the environment variables the request
// templates read ({{ env "NAME" }}): like sensitive outputs, events.log
// scrubs them and the upload checks for them. The plan, run.json and the
// reports only ever hold the reference, {{ env "NAME" }}.
func (r *runner) envSecrets() {
	for _, ref := range r.p.EnvRefs() {
		if v, ok := r.deps.LookupEnv(ref.Name); ok && v != "" {
			r.dir.Redact(v)
			r.secrets = append(r.secrets, v)
		}
	}
}

// secret notes the values of a fleet's sensitive outputs: events.log scrubs
// them from then on, and the Result keeps them for the upload.
func (r *runner) secret(st FleetState) {
	vals := record.SecretValues(st.Outputs, st.Sensitive)
	r.dir.Redact(vals...)
	r.secrets = append(r.secrets, vals...)
}
