package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/agents"
)

// Defaults of TargetConfig.
const (
	// DefaultReadyTimeout bounds the wait for a target's instances to run and
	// pass their status checks (configuration key aws_ready_timeout).
	DefaultReadyTimeout = 10 * time.Minute
	// DefaultCloudWatchSettle bounds how long a step waits, after its hold,
	// for CloudWatch to publish the hold's last minute (cloudwatch_settle).
	DefaultCloudWatchSettle = 3 * time.Minute
	// DefaultCloudWatchPoll is how often a step asks CloudWatch again while
	// it waits.
	DefaultCloudWatchPoll = 20 * time.Second
	// DefaultProgressEvery is how often an unchanged readiness wait says so.
	DefaultProgressEvery = time.Minute
)

// Outputs of a fleet a Target reads: the AWS modules' instance ids
// (comma-joined by the Terraform provider), the load balancer in front of
// them (an ARN, or the CloudWatch dimension app/NAME/ID or net/NAME/ID; ""
// for none), the health URL of the service as its own host sees it
// (checked through each host's agent), and the hosts' agents.
const (
	OutputInstanceIDs  = "instance_ids"
	OutputLoadBalancer = "load_balancer"
	OutputHealthURL    = "health_url"
	OutputAgents       = "agents"
)

// TargetClients are the AWS APIs a Target calls.
type TargetClients struct {
	EC2        EC2API
	CloudWatch CloudWatchAPI
}

// TargetConfig configures a Target.
type TargetConfig struct {
	// Region is the configured aws_region, "" when none is: then only a
	// fleet that outputs instance_ids is looked up on EC2.
	Region string
	// Clients builds the AWS clients once the target turns out to be on EC2.
	Clients func(ctx context.Context) (TargetClients, error)
	// ReadyTimeout bounds the readiness wait (0: DefaultReadyTimeout).
	ReadyTimeout time.Duration
	// ReadyPoll is the readiness poll (0: DefaultReadyPoll).
	ReadyPoll time.Duration
	// ProgressEvery: an unchanged readiness wait says so this often (0: at
	// every poll).
	ProgressEvery time.Duration
	// Settle bounds the wait for CloudWatch's last minute after a step (0:
	// take what it has at once).
	Settle time.Duration
	// CloudWatchPoll is how often a step asks again while it waits (0:
	// DefaultCloudWatchPoll).
	CloudWatchPoll time.Duration
	// Period is the CloudWatch query period (0: CloudWatchPeriod).
	Period time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Notify, if set, receives progress messages for the user.
	Notify func(format string, args ...any)
	// Agents, if set, returns a fleet's agents from its outputs, and how to
	// reach them (version, token, CA): readiness then waits until each
	// answers and, for the target, until its health_url answers through it.
	// No agents: no such wait.
	Agents func(fleet string, outputs map[string]string) ([]agents.Endpoint, agents.Options, error)
	// AgentPoll is how often the agents are asked again (0:
	// agents.DefaultReadyPoll).
	AgentPoll time.Duration
}

// Target is one run's EC2 target fleet. When the fleet outputs instance_ids,
// or aws_region is configured and the run's instances are tagged with its run
// id, Ready waits (bounded by ReadyTimeout) until its instances run and pass
// both status checks, and Window then reads CloudWatch's target.* figures of
// a step. Otherwise it calls no AWS API at all.
type Target struct {
	cfg TargetConfig

	mu        sync.Mutex
	log       zerolog.Logger
	cw        CloudWatchAPI
	instances []string
	lb        string
}

// NewTarget returns the target watch cfg describes.
func NewTarget(cfg TargetConfig) *Target {
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.ReadyPoll <= 0 {
		cfg.ReadyPoll = DefaultReadyPoll
	}
	if cfg.CloudWatchPoll <= 0 {
		cfg.CloudWatchPoll = DefaultCloudWatchPoll
	}
	if cfg.Period <= 0 {
		cfg.Period = CloudWatchPeriod
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Notify == nil {
		cfg.Notify = func(string, ...any) {}
	}
	return &Target{cfg: cfg, log: zerolog.Nop()}
}

// Now is the target's clock.
func (t *Target) Now() time.Time { return t.cfg.Now() }

// SetLog sets the run's logger.
func (t *Target) SetLog(log zerolog.Logger) {
	t.mu.Lock()
	t.log = log
	t.mu.Unlock()
}

func (t *Target) logger() zerolog.Logger {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.log
}

// Watched reports whether the target's instances are ready and CloudWatch is
// to be read for each step.
func (t *Target) Watched() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cw != nil
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

// Ready waits until the target is ready, bounded by ReadyTimeout: its
// instances run and pass their status checks, then (with TargetConfig.Agents)
// each instance's agent answers and the target's health_url answers through
// it. It then remembers the instances (and the load balancer) for Window.
// The instances are the instance_ids output or, with aws_region set, the
// instances tagged with runID and role target. planLB is the load balancer
// the plan names when the fleet's outputs do not.
func (t *Target) Ready(ctx context.Context, runID string, outputs map[string]string, planLB string) error {
	lb := outputs[OutputLoadBalancer]
	if lb == "" {
		lb = planLB
	}
	if lb != "" {
		if _, err := ParseLoadBalancer(lb); err != nil {
			return fmt.Errorf("fleet target: output %s: %w", OutputLoadBalancer, err)
		}
	}
	start := t.cfg.Now()
	wctx, cancel := context.WithTimeout(ctx, t.cfg.ReadyTimeout)
	defer cancel()
	cw, ids, err := t.instancesReady(ctx, wctx, runID, outputs)
	if err != nil {
		return err
	}
	if err := t.agentsReady(ctx, wctx, start, "target", outputs); err != nil {
		return err
	}
	if ids != nil {
		t.mu.Lock()
		t.cw, t.instances, t.lb = cw, ids, lb
		t.mu.Unlock()
	}
	return nil
}

// ReadyAgents waits, bounded by ReadyTimeout, until each of a fleet's agents
// (TargetConfig.Agents) answers: a generators fleet is ready when its agents
// are. A fleet without agents is ready at once.
func (t *Target) ReadyAgents(ctx context.Context, fleet string, outputs map[string]string) error {
	wctx, cancel := context.WithTimeout(ctx, t.cfg.ReadyTimeout)
	defer cancel()
	return t.agentsReady(ctx, wctx, t.cfg.Now(), fleet, outputs)
}

// instancesReady is Ready's first wait: the target's EC2 instances running
// and passing their status checks, within wctx. It returns the CloudWatch
// client and the instances to watch; none when the target is not on EC2.
func (t *Target) instancesReady(ctx, wctx context.Context, runID string, outputs map[string]string) (CloudWatchAPI, []string, error) {
	ids := splitList(outputs[OutputInstanceIDs])
	if len(ids) == 0 && t.cfg.Region == "" {
		return nil, nil, nil // not an EC2 fleet, or AWS not configured: no AWS calls
	}
	notify := t.cfg.Notify
	cl, err := t.cfg.Clients(ctx)
	if err != nil {
		if len(ids) == 0 {
			notify("aws_region is set but AWS is not usable (%v): the target fleet is not checked on EC2 and CloudWatch is not sampled", err)
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("fleet target outputs %s, but AWS is not configured: %w", OutputInstanceIDs, err)
	}
	if len(ids) == 0 {
		insts, err := TaggedInstances(ctx, cl.EC2, runID)
		if err != nil {
			notify("aws_region is set but listing the run's EC2 instances failed (%v): no readiness wait, no CloudWatch", err)
			return nil, nil, nil
		}
		for _, in := range insts {
			if in.Role == "" || in.Role == "target" {
				ids = append(ids, in.ID)
			}
		}
		if len(ids) == 0 {
			notify("no EC2 instance is tagged %s=%s: the target fleet is not on EC2; no readiness wait, no CloudWatch", TagRunID, runID)
			return nil, nil, nil
		}
	}
	timeout := t.cfg.ReadyTimeout
	notify("waiting up to %s for %d target instance(s) to run and pass status checks (%s)", timeout, len(ids), strings.Join(ids, ", "))
	log := t.logger()
	start := t.cfg.Now()
	var last string
	var lastTime time.Time
	progress := func(st ReadyState, want int) {
		now := t.cfg.Now()
		state := fmt.Sprintf("%d of %d", st.Ready, st.Total)
		if state == last && now.Sub(lastTime) < t.cfg.ProgressEvery {
			return
		}
		last, lastTime = state, now
		notify("target instances: %s running and passing status checks (want %d; %s of %s waited)",
			state, want, now.Sub(start).Round(time.Second), timeout)
	}
	ready, err := WaitInstancesReady(wctx, cl.EC2, runID, len(ids), t.cfg.ReadyPoll, log, progress)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("fleet target: instances not ready within aws_ready_timeout %s (tagged %s=%s): %w", timeout, TagRunID, runID, err)
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
	notify("target instances ready after %s: %s", t.cfg.Now().Sub(start).Round(time.Second), strings.Join(ready, ", "))
	return cl.CloudWatch, ids, nil
}

// agentsReady waits within wctx until every agent of the fleet answers and,
// for the target, its health_url answers through it.
func (t *Target) agentsReady(ctx, wctx context.Context, start time.Time, fleet string, outputs map[string]string) error {
	if t.cfg.Agents == nil {
		return nil
	}
	eps, opts, err := t.cfg.Agents(fleet, outputs)
	if err != nil {
		return fmt.Errorf("fleet %s: %w", fleet, err)
	}
	if len(eps) == 0 {
		return nil
	}
	health := ""
	if fleet == "target" {
		health = outputs[OutputHealthURL]
	}
	timeout := t.cfg.ReadyTimeout
	what := "their agents to answer"
	if health != "" {
		what = fmt.Sprintf("their agents to answer and %s to answer through each", health)
	}
	notify := t.cfg.Notify
	notify("fleet %s: waiting up to %s (from its apply) for %s on %d host(s)", fleet, timeout, what, len(eps))
	var last string
	var lastTime time.Time
	err = agents.WaitReady(wctx, eps, agents.WaitOptions{Options: opts, HealthURL: health, Poll: t.cfg.AgentPoll,
		Progress: func(st agents.ReadyState) {
			now := t.cfg.Now()
			state := st.String()
			if state == last && now.Sub(lastTime) < t.cfg.ProgressEvery {
				return
			}
			last, lastTime = state, now
			notify("fleet %s: %d of %d host(s) ready (%s; %s of %s waited)", fleet, len(st.Ready), len(eps), state,
				now.Sub(start).Round(time.Second), timeout)
		}})
	var nr *agents.NotReadyError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return err
	case errors.As(err, &nr):
		return fmt.Errorf("fleet %s: not ready within aws_ready_timeout %s: %s%s", fleet, timeout, nr.State, consoleHint(nr.State))
	default:
		return fmt.Errorf("fleet %s: %w", fleet, err)
	}
	log := t.logger()
	log.Info().Str("fleet", fleet).Int("agents", len(eps)).Str("health_url", health).Msg("fleet ready")
	notify("fleet %s ready after %s: %d agent(s) answer%s", fleet, t.cfg.Now().Sub(start).Round(time.Second), len(eps),
		map[bool]string{true: ", and so does " + health, false: ""}[health != ""])
	return nil
}

// consoleHint says where to look when an EC2 instance is not ready: its
// console output holds user_data's log.
func consoleHint(st agents.ReadyState) string {
	var ids []string
	for name := range st.NotReady {
		if strings.HasPrefix(name, "i-") {
			ids = append(ids, name)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	slices.Sort(ids)
	return fmt.Sprintf(" (user_data's log is in the instance's console output: aws ec2 get-console-output --latest --output text --instance-id %s)", ids[0])
}

// Window returns CloudWatch's target.* figures of a step's hold, from start
// to now. It queries again every CloudWatchPoll until CloudWatch has
// published the hold's last minute or Settle has passed (not at all once
// ctx is done: an aborted or interrupted step takes what is there). sink, if
// set, receives the window as a sample. It returns nil when the target is
// not watched, the hold is empty or CloudWatch fails (which it says).
func (t *Target) Window(ctx context.Context, start time.Time, sink func(any)) map[string]float64 {
	t.mu.Lock()
	cw, instances, lb := t.cw, t.instances, t.lb
	t.mu.Unlock()
	end := t.cfg.Now()
	if cw == nil || !end.After(start) {
		return nil // not on EC2, or the step ended within its warmup
	}
	q := TargetQuery{InstanceIDs: instances, LoadBalancer: lb, Start: start, End: end, Period: t.cfg.Period}
	deadline := t.cfg.Now().Add(t.cfg.Settle)
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.cfg.Settle+2*time.Minute)
	defer cancel()
	log := t.logger()
	for {
		s, err := TargetMetrics(qctx, cw, q)
		if err != nil {
			log.Warn().Err(err).Msg("cloudwatch")
			t.cfg.Notify("CloudWatch: %v; this step has no target.* figures from CloudWatch", err)
			return nil
		}
		done := s.Complete || ctx.Err() != nil || !t.cfg.Now().Add(t.cfg.CloudWatchPoll).Before(deadline)
		if !done {
			timer := time.NewTimer(t.cfg.CloudWatchPoll)
			select {
			case <-ctx.Done():
				timer.Stop()
			case <-timer.C:
			}
			continue
		}
		if !s.Complete {
			t.cfg.Notify("CloudWatch had not published all of %s..%s (missing %s); target.* figures cover what it had",
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
