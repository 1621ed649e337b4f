package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	awsinfra "github.com/loadramp/loadramp/infra/aws"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Configuration keys of the AWS target hooks (config file, or LOADRAMP_ +
// upper case in the environment).
const (
	// keyAWSReadyTimeout bounds the wait for the target's instances to run
	// and pass their status checks after terraform apply.
	keyAWSReadyTimeout = "aws_ready_timeout"
	// keyCloudWatchSettle bounds how long a step waits, after its hold, for
	// CloudWatch to publish the hold's last minute (0: do not wait).
	keyCloudWatchSettle = "cloudwatch_settle"
)

const (
	defaultAWSReadyTimeout  = 10 * time.Minute
	defaultCloudWatchSettle = 3 * time.Minute
	cloudWatchPoll          = 20 * time.Second
	// readyProgressEvery is how often an unchanged readiness wait says so.
	readyProgressEvery = time.Minute
)

// Outputs of a target fleet the AWS hooks read: the AWS modules' instance
// ids (comma-joined by the Terraform provider) and an Application Load
// Balancer (ARN or app/NAME/ID) in front of them, from the module or from
// fleets.target.outputs in the plan.
const (
	outputInstanceIDs  = "instance_ids"
	outputLoadBalancer = "load_balancer"
)

// awsClients are the AWS APIs a run with an EC2 target calls.
type awsClients struct {
	ec2 awsinfra.EC2API
	cw  awsinfra.CloudWatchAPI
}

// awsHooks wire an EC2 target into one run. When the plan's target fleet is a
// Terraform fleet whose module outputs instance_ids, or aws_region is
// configured and the run's instances are tagged loadramp:run-id, the fleet's
// Up waits (bounded by aws_ready_timeout) until its instances run and pass
// both status checks, and every step adds CloudWatch's target.* figures to
// the local sampler's. Otherwise nothing here calls AWS.
type awsHooks struct {
	region   string // aws_region, "" when not configured
	clients  func(ctx context.Context) (awsClients, error)
	obs      orchestrator.Observer
	cfgErr   error
	now      func() time.Time
	timeout  time.Duration // readiness wait
	poll     time.Duration // readiness poll
	settle   time.Duration // CloudWatch publication wait
	cwPoll   time.Duration
	period   time.Duration
	progress time.Duration

	mu        sync.Mutex
	log       zerolog.Logger
	cw        awsinfra.CloudWatchAPI
	instances []string
	lb        string
}

// newAWSHooks builds the AWS hooks of one run from the configuration.
func (a *app) newAWSHooks(obs orchestrator.Observer) *awsHooks {
	h := &awsHooks{
		region: a.v.GetString(keyAWSRegion), obs: obs, now: time.Now,
		timeout: defaultAWSReadyTimeout, poll: awsinfra.DefaultReadyPoll,
		settle: defaultCloudWatchSettle, cwPoll: cloudWatchPoll, period: awsinfra.CloudWatchPeriod,
		progress: readyProgressEvery, log: a.log,
	}
	if obs == nil {
		h.obs = orchestrator.NopObserver{}
	}
	cc := awsinfra.ClientConfig{Profile: a.v.GetString(keyAWSProfile), Region: h.region}
	h.clients = func(ctx context.Context) (awsClients, error) {
		cfg, err := awsinfra.LoadConfig(ctx, cc)
		if err != nil {
			return awsClients{}, err
		}
		return awsClients{ec2: awsinfra.NewEC2(cfg, cc), cw: awsinfra.NewCloudWatch(cfg, cc)}, nil
	}
	for key, d := range map[string]*time.Duration{keyAWSReadyTimeout: &h.timeout, keyCloudWatchSettle: &h.settle} {
		if !a.v.IsSet(key) {
			continue
		}
		v, err := time.ParseDuration(strings.TrimSpace(a.v.GetString(key)))
		if err != nil || v < 0 || (key == keyAWSReadyTimeout && v == 0) {
			h.cfgErr = fmt.Errorf("%s %q: want a positive duration such as 10m", key, a.v.GetString(key))
			continue
		}
		*d = v
	}
	return h
}

// provisionFunc is orchestrator.Deps.Provision's shape.
type provisionFunc func(ctx context.Context, name string, f *plan.Fleet, render orchestrator.Renderer, runDir string, log zerolog.Logger) (orchestrator.Fleet, error)

// provision wraps next: a Terraform target fleet comes back as an awsFleet,
// every other fleet as next built it.
func (h *awsHooks) provision(next provisionFunc) provisionFunc {
	return func(ctx context.Context, name string, f *plan.Fleet, render orchestrator.Renderer, runDir string, log zerolog.Logger) (orchestrator.Fleet, error) {
		fl, err := next(ctx, name, f, render, runDir, log)
		if err != nil || name != "target" || f.Provider != plan.ProviderTerraform {
			return fl, err
		}
		if h.cfgErr != nil {
			return nil, h.cfgErr
		}
		lb := ""
		if tmpl, ok := f.Outputs[outputLoadBalancer]; ok {
			if lb, err = render(tmpl); err != nil {
				return nil, fmt.Errorf("fleets.%s.outputs.%s: %w", name, outputLoadBalancer, err)
			}
		}
		abs, err := filepath.Abs(runDir)
		if err != nil {
			return nil, fmt.Errorf("run directory: %w", err)
		}
		h.mu.Lock()
		h.log = log
		h.mu.Unlock()
		return &awsFleet{Fleet: fl, h: h, runID: filepath.Base(abs), planLB: lb}, nil
	}
}

// awsFleet is a Terraform target fleet whose Up (and Scale) returns once its
// EC2 instances, if it has any, are ready.
type awsFleet struct {
	orchestrator.Fleet
	h      *awsHooks
	runID  string
	planLB string
}

func (f *awsFleet) Up(ctx context.Context) (orchestrator.FleetState, error) {
	st, err := f.Fleet.Up(ctx)
	if err != nil {
		return st, err
	}
	return st, f.h.ready(ctx, f.runID, st.Outputs, f.planLB)
}

func (f *awsFleet) Scale(ctx context.Context, factor float64) (orchestrator.FleetState, bool, error) {
	st, ok, err := f.Fleet.Scale(ctx, factor)
	if err != nil || !ok {
		return st, ok, err
	}
	return st, ok, f.h.ready(ctx, f.runID, st.Outputs, f.planLB)
}

// splitList reads a list output the Terraform provider joined with commas.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ready waits until the target's instances run and pass their status checks,
// then remembers them (and the load balancer) for CloudWatch. Instances are
// the instance_ids output, or with aws_region set the run's instances tagged
// with role target.
func (h *awsHooks) ready(ctx context.Context, runID string, outputs map[string]string, planLB string) error {
	ids := splitList(outputs[outputInstanceIDs])
	lb := outputs[outputLoadBalancer]
	if lb == "" {
		lb = planLB
	}
	if lb != "" {
		if _, err := awsinfra.LoadBalancerDimension(lb); err != nil {
			return fmt.Errorf("fleet target: output %s: %w", outputLoadBalancer, err)
		}
	}
	if len(ids) == 0 && h.region == "" {
		return nil // not an EC2 fleet, or AWS not configured: no AWS calls
	}
	cl, err := h.clients(ctx)
	if err != nil {
		if len(ids) == 0 {
			h.obs.Message("aws_region is set but AWS is not usable (%v): the target fleet is not checked on EC2 and CloudWatch is not sampled", err)
			return nil
		}
		return fmt.Errorf("fleet target outputs %s, but AWS is not configured: %w", outputInstanceIDs, err)
	}
	if len(ids) == 0 {
		insts, err := awsinfra.TaggedInstances(ctx, cl.ec2, runID)
		if err != nil {
			h.obs.Message("aws_region is set but listing the run's EC2 instances failed (%v): no readiness wait, no CloudWatch", err)
			return nil
		}
		for _, in := range insts {
			if in.Role == "" || in.Role == "target" {
				ids = append(ids, in.ID)
			}
		}
		if len(ids) == 0 {
			h.obs.Message("no EC2 instance is tagged %s=%s: the target fleet is not on EC2; no readiness wait, no CloudWatch", awsinfra.TagRunID, runID)
			return nil
		}
	}
	h.obs.Message("waiting up to %s for %d target instance(s) to run and pass status checks (%s)", h.timeout, len(ids), strings.Join(ids, ", "))
	wctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	h.mu.Lock()
	log := h.log
	h.mu.Unlock()
	pw := &readyProgress{obs: h.obs, log: log, now: h.now, every: h.progress, start: h.now(), timeout: h.timeout}
	ready, err := awsinfra.WaitInstancesReady(wctx, cl.ec2, runID, len(ids), h.poll, zerolog.New(pw), nil)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("fleet target: instances not ready within aws_ready_timeout %s (tagged %s=%s): %w", h.timeout, awsinfra.TagRunID, runID, err)
	}
	readySet := map[string]bool{}
	for _, id := range ready {
		readySet[id] = true
	}
	for _, id := range ids {
		if !readySet[id] {
			log.Warn().Str("instance", id).Strs("ready", ready).Msg("a target instance is not among the run's ready instances (is it tagged loadramp:run-id?)")
		}
	}
	h.obs.Message("target instances ready after %s: %s", h.now().Sub(pw.start).Round(time.Second), strings.Join(ready, ", "))
	h.mu.Lock()
	h.cw, h.instances, h.lb = cl.cw, ids, lb
	h.mu.Unlock()
	return nil
}

// readyProgress turns WaitInstancesReady's log events into progress
// messages (when the count changes, else every minute) and run log lines.
type readyProgress struct {
	obs     orchestrator.Observer
	log     zerolog.Logger
	now     func() time.Time
	every   time.Duration
	start   time.Time
	timeout time.Duration

	last     string
	lastTime time.Time
}

func (p *readyProgress) Write(b []byte) (int, error) {
	var ev struct {
		Message            string
		Ready, Total, Want int
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&ev); err != nil {
		return len(b), nil
	}
	p.log.Info().Int("ready", ev.Ready).Int("total", ev.Total).Int("want", ev.Want).Msg(ev.Message)
	if ev.Message != "waiting for instances" {
		return len(b), nil
	}
	now := p.now()
	state := fmt.Sprintf("%d of %d", ev.Ready, ev.Total)
	if state == p.last && now.Sub(p.lastTime) < p.every {
		return len(b), nil
	}
	p.last, p.lastTime = state, now
	p.obs.Message("target instances: %s running and passing status checks (want %d; %s of %s waited)",
		state, ev.Want, now.Sub(p.start).Round(time.Second), p.timeout)
	return len(b), nil
}

// target returns what CloudWatch measures; cw is nil when the target is not
// on EC2.
func (h *awsHooks) target() (cw awsinfra.CloudWatchAPI, instances []string, lb string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cw, h.instances, h.lb
}

// sampler combines local (this host's /proc: the generator side) with
// CloudWatch for an EC2 target.
func (h *awsHooks) sampler(local orchestrator.StepSampler) orchestrator.StepSampler {
	return &awsSampler{local: local, h: h}
}

// awsSampler is the run's StepSampler: the local sampler, plus CloudWatch's
// target.* figures over each step's hold once an EC2 target is up. Before
// that, or without one, it is the local sampler alone.
type awsSampler struct {
	local orchestrator.StepSampler
	h     *awsHooks
}

func (s *awsSampler) Start(ctx context.Context, spec orchestrator.SampleSpec) (func(orchestrator.StepFacts) (metrics.Metrics, []result.Finding), error) {
	stopLocal, err := s.local.Start(ctx, spec)
	cw, instances, lb := s.h.target()
	if cw == nil {
		return stopLocal, err
	}
	if err != nil {
		s.h.log.Warn().Err(err).Msg("local sampler did not start; the step has only CloudWatch measurements")
		stopLocal = nil
	}
	holdFrom := s.h.now().Add(spec.Warmup)
	return func(f orchestrator.StepFacts) (metrics.Metrics, []result.Finding) {
		m := metrics.Metrics{}
		var findings []result.Finding
		if stopLocal != nil {
			lm, lf := stopLocal(f)
			m.Merge(lm)
			findings = lf
		}
		q := awsinfra.TargetQuery{InstanceIDs: instances, LoadBalancer: lb, Start: holdFrom, End: s.h.now(), Period: s.h.period}
		if cm := s.h.cloudWatch(ctx, cw, q, spec.Sink); cm != nil {
			m.Merge(cm) // CloudWatch describes the target; /proc here the generator host
		}
		return m, findings
	}, nil
}

// cloudWatch queries the step's window, again every cwPoll until CloudWatch
// has published its last minute or settle has passed (not at all once ctx is
// done: an aborted or interrupted step takes what is there).
func (h *awsHooks) cloudWatch(ctx context.Context, cw awsinfra.CloudWatchAPI, q awsinfra.TargetQuery, sink func(any)) metrics.Metrics {
	if !q.End.After(q.Start) {
		return nil // the step ended within its warmup
	}
	deadline := h.now().Add(h.settle)
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.settle+2*time.Minute)
	defer cancel()
	h.mu.Lock()
	log := h.log
	h.mu.Unlock()
	for {
		s, err := awsinfra.TargetMetrics(qctx, cw, q)
		if err != nil {
			log.Warn().Err(err).Msg("cloudwatch")
			h.obs.Message("CloudWatch: %v; this step has no target.* figures from CloudWatch", err)
			return nil
		}
		done := s.Complete || ctx.Err() != nil || !h.now().Add(h.cwPoll).Before(deadline)
		if !done {
			t := time.NewTimer(h.cwPoll)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
			continue
		}
		if !s.Complete {
			h.obs.Message("CloudWatch had not published all of %s..%s (missing %s); target.* figures cover what it had",
				s.Start.Format("15:04"), s.End.Format("15:04"), missingOrLate(s.Missing))
		}
		log.Info().Time("start", s.Start).Time("end", s.End).Bool("complete", s.Complete).
			Strs("missing", s.Missing).Interface("metrics", s.Metrics).Msg("cloudwatch window")
		if sink != nil {
			sink(map[string]any{"source": "cloudwatch", "start": s.Start, "end": s.End, "complete": s.Complete, "metrics": s.Metrics})
		}
		return s.Metrics
	}
}

func missingOrLate(missing []string) string {
	if len(missing) == 0 {
		return "the last minute"
	}
	return strings.Join(missing, ", ")
}
