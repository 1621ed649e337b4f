package wiring

import (
	"context"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/probe"
	"github.com/rs/zerolog"
)

// NewProbe builds the plan's probe (nil when the plan has none), its URLs
// rendered with the run's template data.
func NewProbe(_ context.Context, p *plan.Plan, render orchestrator.Renderer, log zerolog.Logger) (orchestrator.Probe, error) {
	pr := p.Probe
	if pr == nil {
		return nil, nil
	}
	cfg := probe.Config{Kind: pr.Kind, Expect: pr.Expect, Rate: pr.Rate, Timeout: pr.Timeout.D(), Log: log}
	if err := renderFields(render, field{"probe.url", pr.URL, &cfg.URL},
		field{"probe.publish", pr.Publish, &cfg.Publish}, field{"probe.subscribe", pr.Subscribe, &cfg.Subscribe}); err != nil {
		return nil, err
	}
	return probe.New(cfg)
}
