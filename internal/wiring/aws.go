package wiring

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	awsinfra "github.com/loadramp/loadramp/infra/aws"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/agents"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// fleetAgents are the Terraform fleets provisioned so far, by name, so that
// the readiness wait finds each one's agents in the outputs of its apply.
type fleetAgents struct {
	cfg   Config
	mu    sync.Mutex
	specs map[string]orchestrator.ProvisionSpec
}

func (a *fleetAgents) add(spec orchestrator.ProvisionSpec) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.specs[spec.Name] = spec
}

// of returns the agents a fleet's outputs list (its agents.output) and how
// to reach them (the token, the CA): awsinfra.TargetConfig.Agents. A fleet
// that declares no agents output has none to wait for.
func (a *fleetAgents) of(fleet string, outputs map[string]string) ([]agents.Endpoint, agents.Options, error) {
	a.mu.Lock()
	spec, ok := a.specs[fleet]
	a.mu.Unlock()
	if !ok || !spec.Fleet.HasAgents() || spec.Fleet.Agents.Output == "" {
		return nil, agents.Options{}, nil
	}
	set := newAgentSet(a.cfg, &plan.Plan{Fleets: map[string]*plan.Fleet{fleet: spec.Fleet}}, spec.Render, spec.Log)
	opts, err := set.options(fleet)
	if err != nil {
		return nil, opts, err
	}
	out := spec.Fleet.Agents.Output
	eps, err := agents.ParseList(outputs[out])
	if err != nil {
		return nil, opts, fmt.Errorf("fleets.%s.agents.output: fleets.%s.%s: %w", fleet, fleet, out, err)
	}
	return eps, opts, nil
}

// newAWSTarget is the watch of a run's EC2 target (awsinfra.Target): it
// calls AWS only for a Terraform target fleet that outputs instance_ids, or
// with aws_region configured. A Terraform fleet whose agents its outputs
// list is ready once they answer (the target's once its health_url answers
// through them too), within aws_ready_timeout.
func newAWSTarget(cfg Config, obs orchestrator.Observer, fa *fleetAgents) *awsinfra.Target {
	cc := awsClientConfig(cfg)
	t := awsinfra.NewTarget(awsinfra.TargetConfig{
		Region: cfg.AWSRegion,
		Clients: func(ctx context.Context) (awsinfra.TargetClients, error) {
			c, err := awsinfra.LoadConfig(ctx, cc)
			if err != nil {
				return awsinfra.TargetClients{}, err
			}
			return awsinfra.TargetClients{EC2: awsinfra.NewEC2(c, cc), CloudWatch: awsinfra.NewCloudWatch(c, cc)}, nil
		},
		ReadyTimeout:  cfg.AWSReadyTimeout,
		ProgressEvery: awsinfra.DefaultProgressEvery,
		Settle:        cfg.CloudWatchSettle,
		Notify:        obs.Message,
		Agents:        fa.of,
	})
	t.SetLog(cfg.Log)
	return t
}

// provisionFunc is orchestrator.Deps.Provision's shape.
type provisionFunc func(ctx context.Context, spec orchestrator.ProvisionSpec) (orchestrator.Fleet, error)

// awsProvision wraps next: a Terraform target fleet comes back as an
// awsFleet, another Terraform fleet whose outputs list its agents as an
// agentsFleet, every other fleet as next built it.
func awsProvision(t *awsinfra.Target, fa *fleetAgents, next provisionFunc) provisionFunc {
	return func(ctx context.Context, spec orchestrator.ProvisionSpec) (orchestrator.Fleet, error) {
		fl, err := next(ctx, spec)
		if err != nil || spec.Fleet.Provider != plan.ProviderTerraform {
			return fl, err
		}
		fa.add(spec)
		if spec.Name != "target" {
			if !spec.Fleet.HasAgents() || spec.Fleet.Agents.Output == "" {
				return fl, nil
			}
			return &agentsFleet{Fleet: fl, t: t, name: spec.Name}, nil
		}
		lb := ""
		if tmpl, ok := spec.Fleet.Outputs[awsinfra.OutputLoadBalancer]; ok {
			if lb, err = spec.Render(tmpl); err != nil {
				return nil, fmt.Errorf("fleets.%s.outputs.%s: %w", spec.Name, awsinfra.OutputLoadBalancer, err)
			}
		}
		abs, err := filepath.Abs(spec.RunDir)
		if err != nil {
			return nil, fmt.Errorf("run directory: %w", err)
		}
		t.SetLog(spec.Log)
		return &awsFleet{Fleet: fl, t: t, runID: filepath.Base(abs), planLB: lb}, nil
	}
}

// awsFleet is a Terraform target fleet whose Up (and Scale) returns once its
// EC2 instances, if it has any, are ready.
type awsFleet struct {
	orchestrator.Fleet
	t      *awsinfra.Target
	runID  string
	planLB string
}

func (f *awsFleet) Up(ctx context.Context) (orchestrator.FleetState, error) {
	st, err := f.Fleet.Up(ctx)
	if err != nil {
		return st, err
	}
	return st, f.t.Ready(ctx, f.runID, st.Outputs, f.planLB)
}

func (f *awsFleet) Scale(ctx context.Context, factor float64) (orchestrator.FleetState, bool, error) {
	st, ok, err := f.Fleet.Scale(ctx, factor)
	if err != nil || !ok {
		return st, ok, err
	}
	return st, ok, f.t.Ready(ctx, f.runID, st.Outputs, f.planLB)
}

// agentsFleet is a Terraform fleet (the generators) whose Up (and Scale)
// returns once the agents its outputs list answer.
type agentsFleet struct {
	orchestrator.Fleet
	t    *awsinfra.Target
	name string
}

func (f *agentsFleet) Up(ctx context.Context) (orchestrator.FleetState, error) {
	st, err := f.Fleet.Up(ctx)
	if err != nil {
		return st, err
	}
	return st, f.t.ReadyAgents(ctx, f.name, st.Outputs)
}

func (f *agentsFleet) Scale(ctx context.Context, factor float64) (orchestrator.FleetState, bool, error) {
	st, ok, err := f.Fleet.Scale(ctx, factor)
	if err != nil || !ok {
		return st, ok, err
	}
	return st, ok, f.t.ReadyAgents(ctx, f.name, st.Outputs)
}

// awsSampler is the run's StepSampler: the local sampler, plus CloudWatch's
// target.* figures over each step's hold once an EC2 target is up. Before
// that, or without one, it is the local sampler alone.
type awsSampler struct {
	local  orchestrator.StepSampler
	target *awsinfra.Target
}

func (s *awsSampler) Start(ctx context.Context, spec orchestrator.SampleSpec) (func(orchestrator.StepFacts) (map[string]float64, []result.Finding), error) {
	stopLocal, err := s.local.Start(ctx, spec)
	if !s.target.Watched() {
		return stopLocal, err
	}
	if err != nil {
		stopLocal = nil // the step has only CloudWatch's measurements
	}
	holdFrom := s.target.Now().Add(spec.Warmup)
	return func(f orchestrator.StepFacts) (map[string]float64, []result.Finding) {
		m := metrics.Metrics{}
		var findings []result.Finding
		if stopLocal != nil {
			lm, lf := stopLocal(f)
			m.Merge(lm)
			findings = lf
		}
		// CloudWatch describes the target; /proc here the generator host.
		m.Merge(s.target.Window(ctx, holdFrom, spec.Sink))
		return m, findings
	}, nil
}
