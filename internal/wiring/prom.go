package wiring

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/prom"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// PromCheckTimeout bounds the first reading of a plan's prometheus sources,
// once the fleets are up.
const PromCheckTimeout = 30 * time.Second

// newSampler is orchestrator.Deps.NewSampler: the run's sampler is base (the
// direct observation: this host's /proc, CloudWatch), plus one
// prom.Source per prometheus block of the plan. Each source is read once
// here; a source that cannot be read stops the run before any load
// (docs/prometheus.md, "When the source fails").
func newSampler(base orchestrator.StepSampler, obs orchestrator.Observer) func(context.Context, *plan.Plan, orchestrator.Renderer, zerolog.Logger) (orchestrator.StepSampler, error) {
	return func(ctx context.Context, p *plan.Plan, render orchestrator.Renderer, log zerolog.Logger) (orchestrator.StepSampler, error) {
		var sources []*prom.Source
		for _, ps := range p.PromSources() {
			src, err := promSource(ctx, ps, render)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ps.Path, err)
			}
			obs.Message("%s: %s", ps.Path, src.Describe())
			sources = append(sources, src)
		}
		if len(sources) == 0 {
			return base, nil
		}
		return &promSampler{base: base, sources: sources, log: log}, nil
	}
}

// promSource renders one prometheus block, builds its source and reads it
// once.
func promSource(ctx context.Context, ps plan.PromSource, render orchestrator.Renderer) (*prom.Source, error) {
	cfg := prom.Config{Side: ps.Side(), Settle: ps.Settle.D(), Metrics: map[string]string{}}
	for i, u := range ps.Scrape {
		var out string
		if err := renderFields(render, field{fmt.Sprintf("scrape[%d]", i), u, &out}); err != nil {
			return nil, err
		}
		cfg.Scrape = append(cfg.Scrape, out)
	}
	if err := renderFields(render, field{"query", ps.Query, &cfg.Query}); err != nil {
		return nil, err
	}
	m, err := renderMap(render, ps.Metrics, "metrics")
	if err != nil {
		return nil, err
	}
	if m != nil {
		cfg.Metrics = m
	}
	src, err := prom.New(cfg)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, PromCheckTimeout)
	defer cancel()
	if err := src.Check(cctx); err != nil {
		return nil, fmt.Errorf("%w (read once before the first step; the run stops before any load)", err)
	}
	return src, nil
}

// promSampler is the run's StepSampler with Prometheus sources: base's
// metrics and findings, each source's prom.* metrics, and the findings of the
// hosts the sources' exporters describe, merged with base's by prom.Beside
// (direct observation wins; an exporter's finding of the same rule and host
// joins it as "exporter agrees" evidence). What a source could not measure
// goes to the step's notes.
type promSampler struct {
	base    orchestrator.StepSampler
	sources []*prom.Source
	log     zerolog.Logger
}

func (s *promSampler) Start(ctx context.Context, spec orchestrator.SampleSpec) (func(orchestrator.StepFacts) (map[string]float64, []result.Finding), error) {
	var stopBase func(orchestrator.StepFacts) (map[string]float64, []result.Finding)
	if s.base != nil {
		var err error
		if stopBase, err = s.base.Start(ctx, spec); err != nil {
			s.log.Warn().Err(err).Msg("host sampler did not start; the step has the Prometheus sources' measurements only")
			stopBase = nil
		}
	}
	steps := make([]*prom.Step, len(s.sources))
	for i, src := range s.sources {
		steps[i] = src.Start(ctx, prom.StepSpec{Warmup: spec.Warmup, Sink: spec.Sink})
	}
	return func(f orchestrator.StepFacts) (map[string]float64, []result.Finding) {
		m := metrics.Metrics{}
		var direct, exporter []result.Finding
		if stopBase != nil {
			bm, bf := stopBase(f)
			m.Merge(bm)
			direct = bf
		}
		for _, st := range steps {
			res := st.Stop(ctx)
			m.Merge(res.Metrics)
			exporter = append(exporter, res.Findings()...)
			for _, p := range res.Problems {
				if spec.NotMeasured != nil {
					spec.NotMeasured(p)
				}
			}
		}
		return m, prom.Beside(direct, exporter)
	}, nil
}

// Check returns every problem of plan p, as `loadramp plan` lists them:
// orchestrator.Check's (the plan's validation, gates, ceilings), the
// samplers' own checks of what the plan gives them (the PromQL of its
// prometheus blocks, by Prometheus's parser), and the Terraform fleets'
// variables and outputs against their modules (checkModules).
func Check(p *plan.Plan, c plan.Ceilings) []error {
	return append(append(orchestrator.Check(p, c), prom.CheckPlan(p)...), checkModules(p)...)
}

// AuditHosts passes the audit of the hosts base observes through its agents
// (orchestrator.HostAuditor); none when base observes none.
func (s *promSampler) AuditHosts(ctx context.Context) (map[string]map[string]any, []string, error) {
	if a, ok := s.base.(orchestrator.HostAuditor); ok {
		return a.AuditHosts(ctx)
	}
	return nil, nil, nil
}

// Local reports whether base samples this machine.
func (s *promSampler) Local() bool {
	if a, ok := s.base.(orchestrator.HostAuditor); ok {
		return a.Local()
	}
	return true
}
