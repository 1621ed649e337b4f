package wiring

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/locust"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// newLocustEngine builds the locust engine from the plan's workload.locust
// block: the master's web URL and the target host are rendered once, the
// expected worker count before every step (it follows a grown fleet).
func newLocustEngine(p *plan.Plan, render orchestrator.Renderer, log zerolog.Logger) (orchestrator.Engine, error) {
	l := p.Workload.Locust
	if l == nil {
		return nil, fmt.Errorf("workload.locust: missing")
	}
	var master, host string
	if err := renderFields(render, field{"workload.locust.master", l.Master, &master}, field{"workload.locust.host", l.Host, &host}); err != nil {
		return nil, err
	}
	if master == "" {
		return nil, fmt.Errorf("workload.locust.master: empty; give the master's web URL, e.g. {{ .fleets.generators.web }}")
	}
	cfg := locust.Config{Master: master, Host: host, Log: log}
	if strings.TrimSpace(l.Workers) != "" {
		cfg.Workers = func() (int, error) {
			s, err := render(l.Workers)
			if err != nil {
				return 0, fmt.Errorf("workload.locust.workers: %w", err)
			}
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				return 0, fmt.Errorf("workload.locust.workers: %q is not a worker count >= 1", s)
			}
			return n, nil
		}
	}
	e, err := locust.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("workload.locust.master: %w", err)
	}
	return &locustEngine{e: e}, nil
}

// locustEngine adapts locust.Engine to the orchestrator's Engine.
type locustEngine struct{ e *locust.Engine }

func (l *locustEngine) Step(ctx context.Context, s orchestrator.EngineStep) (*result.EngineResult, error) {
	return l.e.Step(ctx, locust.Step{
		Users:     int(s.Params[plan.ParamUsers]),
		SpawnRate: plan.ParamValue(plan.WorkloadLocust, s.Params, plan.ParamSpawnRate),
		Warmup:    s.Warmup, Hold: s.Hold, OnSecond: s.OnSecond,
	})
}

func (l *locustEngine) Close() error { return l.e.Close() }
