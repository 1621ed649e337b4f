// Package wiring maps a plan onto the implementations that run it: the
// fleet providers (local processes, static endpoints, Terraform, and the
// readiness wait of an EC2 target), the engines (builtin http, builtin
// pubsub, Locust), the probe, the step sampler (this host's observer, with
// CloudWatch's figures for an EC2 target and the plan's Prometheus sources)
// and the preflight limits audit.
//
// It is given a plain Config and reads no flags, environment or
// configuration files: package cli turns those into a Config. Adding an
// engine or a sampler touches this package and the new one only.
package wiring

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/infra"
	awsinfra "github.com/loadramp/loadramp/infra/aws"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/observe"
	"github.com/loadramp/loadramp/orchestrator/plan"
)

// Config is what the wiring needs from loadramp's configuration.
type Config struct {
	// TerraformBin is the terraform binary ("": ./bin/terraform, then PATH).
	TerraformBin string
	// AWSProfile and AWSRegion select the AWS account and region ("": the
	// SDK's defaults). An EC2 target is looked up by its tags only when
	// AWSRegion is set.
	AWSProfile, AWSRegion string
	// AWSEndpoint points the AWS SDK at another endpoint ("": AWS's).
	AWSEndpoint string
	// AWSReadyTimeout bounds the wait for an EC2 target's instances to run
	// and pass their status checks (0: awsinfra.DefaultReadyTimeout).
	AWSReadyTimeout time.Duration
	// CloudWatchSettle bounds how long a step waits, after its hold, for
	// CloudWatch to publish the hold's last minute (0: no wait).
	CloudWatchSettle time.Duration
	// S3Endpoint is the S3 endpoint for uploads ("": AWS's).
	S3Endpoint string
	// Host names this host in findings.
	Host string
	// MemoryLimit bounds loadramp's own memory during a run (memory_limit).
	MemoryLimit orchestrator.MemoryLimit
	// Version is this loadramp's version: the agents a run calls must run
	// the same one.
	Version string
	// AgentToken is the bearer token of the fleets' agents ("": a token of
	// the run's own for the agents loadramp starts on this machine, and
	// none for others).
	AgentToken string
	// AgentCA is a PEM file of the CA that signed https:// agents'
	// certificates, when a plan's agents block names none ("": the
	// system's roots).
	AgentCA string
	// Loadramp is the loadramp binary the agents started on this machine
	// run ("": this process's executable).
	Loadramp string

	// runToken is the token of the agents a run starts itself (Deps sets
	// it: AgentToken, or a random one).
	runToken string
	// Log receives what happens outside a run's own log (preflight warnings
	// before a run logger exists, uploads, destroy).
	Log zerolog.Logger
}

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config {
	return Config{
		AWSReadyTimeout:  awsinfra.DefaultReadyTimeout,
		CloudWatchSettle: awsinfra.DefaultCloudWatchSettle,
		Host:             "local",
		Log:              zerolog.Nop(),
	}
}

// Deps builds the real implementations of a run, or of every run of a
// campaign: Provision, NewEngine, NewProbe, Sampler and Preflight, with obs
// as the run's observer (nil: none), which also receives the wiring's
// progress messages (an EC2 target's readiness wait, CloudWatch, the plan's
// Prometheus sources). The caller
// adds what is its own: Policy, LogOutput, LogLevel, Version.
func Deps(cfg Config, obs orchestrator.Observer) orchestrator.Deps {
	if obs == nil {
		obs = orchestrator.NopObserver{}
	}
	if cfg.Host == "" {
		cfg.Host = "local"
	}
	if cfg.runToken == "" {
		cfg.runToken = runToken(cfg)
	}
	host := observe.New(cfg.Host, observe.WithLogger(cfg.Log))
	fa := &fleetAgents{cfg: cfg, specs: map[string]orchestrator.ProvisionSpec{}}
	target := newAWSTarget(cfg, obs, fa) // an EC2 target: readiness wait (instances, agents, health) and CloudWatch
	return orchestrator.Deps{
		Host:      cfg.Host,
		Provision: awsProvision(target, fa, Provision(cfg)),
		NewEngine: func(ctx context.Context, p *plan.Plan, render orchestrator.Renderer, log zerolog.Logger) (orchestrator.Engine, error) {
			if p.BuiltinOnAgents() {
				return newAgentEngine(cfg, p, render, log)
			}
			return NewEngine(ctx, p, render, log)
		},
		NewProbe: NewProbe,
		Sampler:  &awsSampler{local: hostSampler{host: host}, target: target},
		// The fleets' agents observe their hosts beside this machine's
		// sampler.
		// sampler, and the plan's Prometheus sources join them, once the
		// fleets are up.
		NewSampler: func(ctx context.Context, p *plan.Plan, render orchestrator.Renderer, log zerolog.Logger) (orchestrator.StepSampler, error) {
			var s orchestrator.StepSampler = &awsSampler{local: hostSampler{host: host, notGenerator: p.BuiltinOnAgents()}, target: target}
			if as := newAgentSampler(cfg, p, render, s, log); len(as.set.fleets()) > 0 {
				s = as
			}
			return newSampler(s, obs)(ctx, p, render, log)
		},
		Preflight: func(ctx context.Context, procs []orchestrator.Process) (map[string]any, []string, error) {
			return host.Audit(ctx, observeProcs(procs))
		},
		Locate:      locate(host),
		Observer:    obs,
		MemoryLimit: cfg.MemoryLimit,
	}
}

// awsClientConfig is the AWS account, region and endpoint of cfg.
func awsClientConfig(cfg Config) awsinfra.ClientConfig {
	return awsinfra.ClientConfig{Profile: cfg.AWSProfile, Region: cfg.AWSRegion, Endpoint: cfg.AWSEndpoint}
}

// terraformBin finds the terraform binary cfg names.
func terraformBin(cfg Config) (string, error) { return infra.LookTerraform(cfg.TerraformBin) }
