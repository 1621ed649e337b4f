package wiring

import (
	"context"
	"fmt"

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
	for _, f := range []struct {
		path string
		in   string
		out  *string
	}{
		{"probe.url", pr.URL, &cfg.URL},
		{"probe.publish", pr.Publish, &cfg.Publish},
		{"probe.subscribe", pr.Subscribe, &cfg.Subscribe},
	} {
		if f.in == "" {
			continue
		}
		s, err := render(f.in)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.path, err)
		}
		*f.out = s
	}
	return probe.New(cfg)
}
