package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	awsinfra "github.com/loadramp/loadramp/infra/aws"
	"github.com/loadramp/loadramp/internal/wiring"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/report"
	"github.com/loadramp/loadramp/orchestrator/result"
)

type runOptions struct {
	sets          []string
	out           string
	keepInfra     bool
	progress      string
	baseline      string
	maxRegression string
	minCapacity   []string
	upload        string
	notes         []string
}

func (a *app) runCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run PLAN",
		Short: "Run a ramp plan until the first bottleneck and write its report",
		Long: `run provisions the plan's fleets, then runs load in steps that double one parameter at a
time. Each step has a warmup, a hold (the steady-state window the gates judge) and a
cooldown. A step that fails its gates is rerun to confirm it, then the failing parameter
is bisected to refine the capacity, and the run stops: the first real bottleneck. A step
that fails because the load generator itself saturated is never called a bottleneck: the
generator fleet is grown and the step rerun, or the run ends "generator-limited". A step
whose generator fell behind only because other work took its CPU (a virtual machine's
steal, a busy neighbour), or with half its CPU to spare and nothing measured to say why,
is first rerun on the same generators (ramp.interference_reruns).

Every step attempt is appended to RUN_DIR/steps.jsonl as it ends, so nothing finished is
lost. At the end (also on error or interrupt) the fleets are torn down and the reports
are written: report.json, steps.csv, report.md, report.html, junit.xml.

The first SIGINT (Ctrl-C) or SIGTERM stops the run, tears down and writes a partial
report (exit 130); a second one exits at once.`,
		Example: `  loadramp run plans/local-eventbus.yaml
  loadramp run plans/local-eventbus.yaml --set ramp.hold=10s --set static.eventbus_nofile=4096
  loadramp run plans/local-eventbus.yaml --progress plain --log-format json 2>events.jsonl`,
		Args:              exactArgs(1, "PLAN"),
		ValidArgsFunction: completePlans,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runPlan(cmd.Context(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.sets, "set", nil, "override a plan value: key=value, e.g. static.eventbus_nofile=4096 (repeatable)")
	f.StringVar(&o.out, "out", "", "directory in which the run directory is made (default: runs_dir from the configuration, \"runs\")")
	f.BoolVar(&o.keepInfra, "keep-infra", false, "leave the fleets up at the end (tear down later with 'loadramp destroy RUN_DIR')")
	f.StringVar(&o.baseline, "baseline", "", "judge capacity against a baseline: a run directory, or latest (the newest finished run of the same plan in the runs directory); a regression beyond --max-regression exits 3")
	f.StringVar(&o.maxRegression, "max-regression", "10%", "tolerated capacity loss against --baseline, e.g. 10%")
	f.StringArrayVar(&o.minCapacity, "min-capacity", nil, "required capacity, parameter=value (e.g. rate=8000, throughput.rps=7500); below it exits 3 (repeatable)")
	f.StringVar(&o.upload, "upload", "", "upload the run directory to s3://bucket/prefix at the end (overrides the plan's report.upload); a failed upload keeps the local copy and is reported")
	f.StringArrayVar(&o.notes, "note", nil, "an engineer's note on the run, shown in every report (repeatable; add notes later with 'loadramp note')")
	f.StringVar(&o.progress, "progress", "auto", "progress display: auto (live on a terminal, plain otherwise), plain (a line per step, for CI logs), none")
	return cmd
}

func (a *app) runPlan(parent context.Context, path string, o runOptions) error {
	switch o.progress {
	case "auto", "plain", "none":
	default:
		return usageErr(fmt.Errorf("--progress %q: allowed values are auto, plain, none", o.progress))
	}
	tol, err := parsePercent(o.maxRegression)
	if err != nil {
		return usageErr(fmt.Errorf("--max-regression: %w", err))
	}
	minCap, err := parseMinCapacity(o.minCapacity)
	if err != nil {
		return usageErr(err)
	}
	p, err := a.loadPlan(path, o.sets)
	if err != nil {
		return err
	}
	// A secret the request templates read from the environment must be
	// there before anything starts.
	if errs := p.CheckEnv(os.LookupEnv); len(errs) > 0 {
		fmt.Fprintf(a.io.ErrOut, "%s: %d problem(s):\n", path, len(errs))
		for _, e := range errs {
			fmt.Fprintf(a.io.ErrOut, "  - %v\n", e)
		}
		return &exitError{code: ExitUsage, err: fmt.Errorf("invalid plan %s", path), quiet: true}
	}
	out := o.out
	if out == "" {
		out = a.v.GetString(keyRunsDir)
	}
	var policy func(*report.Report) *result.Policy
	if o.baseline != "" || len(minCap) > 0 {
		var base *report.Report
		if o.baseline != "" {
			if base, err = findBaseline(o.baseline, p.Name, out); err != nil {
				return err
			}
			if base == nil {
				fmt.Fprintf(a.io.ErrOut, "note: no finished run of plan %s in %s to use as the baseline; this run will be the first\n", p.Name, filepath.Clean(out))
			}
		}
		policy = func(rep *report.Report) *result.Policy {
			if base == nil && len(minCap) == 0 {
				return nil
			}
			return report.Judge(rep, base, tol, minCap)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return withCode(ExitRuntime, err)
	}
	sum := sha256.Sum256(raw)

	upload := o.upload
	if upload == "" {
		upload = p.Report.Upload
	}
	if upload != "" {
		if _, _, err := awsinfra.ParseS3URL(upload); err != nil {
			return usageErr(err)
		}
	}
	for _, n := range o.notes {
		if err := record.CheckNoteText(n); err != nil {
			return usageErr(fmt.Errorf("--note: %w", err))
		}
	}
	opts := orchestrator.Options{OutDir: out, PlanFile: path, PlanHash: hex.EncodeToString(sum[:]), KeepInfra: o.keepInfra, Notes: o.notes}
	if p.Campaign != nil {
		if o.baseline != "" || len(minCap) > 0 {
			return usageErr(fmt.Errorf("--baseline and --min-capacity judge a single run; a campaign compares its variants itself (compare two variant runs with 'loadramp compare')"))
		}
		return a.runCampaign(parent, p, opts, o.progress, upload)
	}
	return a.execute(parent, p, opts, o.progress, policy, upload)
}

// execute runs (or resumes) a checked plan with the real implementations,
// uploads its run directory when upload is set, and maps the outcome to an
// exit code.
func (a *app) execute(parent context.Context, p *plan.Plan, opts orchestrator.Options, progress string, policy func(*report.Report) *result.Policy, upload string) error {
	ctx, obs, stop := a.interruptible(parent, progress)
	defer stop()

	deps := a.deps(obs, progress, policy)
	res, err := orchestrator.Run(ctx, p, deps, opts)
	if res != nil {
		printSummary(a.io.Out, res)
		a.uploadRun(upload, res.Dir, res.Secrets)
	}
	switch {
	case res != nil && res.Interrupted:
		return &exitError{code: ExitInterrupted, err: fmt.Errorf("interrupted"), quiet: true}
	case err != nil:
		return withCode(ExitRuntime, err)
	case res.Status == result.StatusError:
		return withCode(ExitRuntime, fmt.Errorf("the run ended in error"))
	case res.Report != nil && res.Report.Policy != nil && !res.Report.Policy.Passed:
		return &exitError{code: ExitPolicy, err: fmt.Errorf("capacity policy failed"), quiet: true}
	}
	return nil
}

// uploadRun uploads a finished run directory to url when an upload was
// asked for. A failed upload is reported and never touches the local copy;
// it does not change the run's exit code, which says how the run went.
func (a *app) uploadRun(url, dir string, secrets []string) {
	if url == "" || dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := wiring.Upload(ctx, a.wiring, url, dir, secrets)
	if err != nil {
		fmt.Fprintf(a.io.ErrOut, "upload FAILED (the local copy in %s is complete): %v\n", dir, err)
		return
	}
	fmt.Fprintf(a.io.Out, "uploaded %d files (%d bytes) to s3://%s/%s/%s\n", len(res.Files), res.Bytes, res.Bucket, res.Prefix, filepath.Base(dir))
}

// deps builds the real implementations a run is wired with.
func (a *app) deps(obs orchestrator.Observer, progress string, policy func(*report.Report) *result.Policy) orchestrator.Deps {
	d := wiring.Deps(a.wiring, obs)
	d.Policy = policy
	d.LogOutput = a.logOut
	d.LogLevel = a.runLogLevel(progress)
	d.Version = Version
	return d
}

// runLogLevel is the console log level during a run: progress lines tell the
// story, so informational log lines (all kept in events.log) are shown only
// when asked for with --log-level or LOADRAMP_LOG_LEVEL, or with --progress none.
func (a *app) runLogLevel(progress string) zerolog.Level {
	if progress == "none" || a.v.IsSet(keyLogLevel) && a.explicitLogLevel() {
		return a.logLevel
	}
	if a.logLevel > zerolog.WarnLevel {
		return a.logLevel
	}
	return zerolog.WarnLevel
}

// interruptible returns the context of a run (cancelled by the first SIGINT or
// SIGTERM), its progress display, and the function that releases both.
func (a *app) interruptible(parent context.Context, mode string) (context.Context, *progress, func()) {
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	obs := newObserver(a.io, mode)
	stopSignals := a.handleSignals(cancel, obs)
	return ctx, obs, func() {
		stopSignals()
		cancel()
	}
}

// handleSignals cancels the run on the first SIGINT or SIGTERM and exits at
// once on the second.
func (a *app) handleSignals(cancel context.CancelFunc, obs orchestrator.Observer) func() {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			obs.Message("received %s: stopping the step, tearing down and writing a partial report (send it again to exit at once)", sig)
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-ch:
			fmt.Fprintf(a.io.ErrOut, "\nreceived %s again: exiting now. Fleets may be left running: clean up with 'loadramp destroy RUN_DIR' (the run directory printed at start).\n", sig)
			os.Exit(ExitInterrupted)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
