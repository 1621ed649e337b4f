package wiring

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/probe"
)

// NewProbe builds the plan's probe (nil when the plan has none), its
// settings rendered with the run's template data; a pubsub probe's are the
// pubsub workload's (renderBus).
func NewProbe(_ context.Context, p *plan.Plan, render orchestrator.Renderer, log zerolog.Logger) (orchestrator.Probe, error) {
	pr := p.Probe
	if pr == nil {
		return nil, nil
	}
	cfg := probe.Config{Kind: pr.Kind, Expect: pr.Expect, Rate: pr.Rate, Timeout: pr.Timeout.D(), Log: log}
	if err := renderFields(render, field{"probe.url", pr.URL, &cfg.URL}); err != nil {
		return nil, err
	}
	if pr.Kind == probe.KindPubSub {
		bus, err := renderBus(render, "probe", pr.PubSubBus)
		if err != nil {
			return nil, err
		}
		cfg.Bus = bus
	}
	return probe.New(cfg)
}
