package wiring

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/loadgen"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// NewEngine builds the plan's engine for its workload (plan.Workload*).
// Adding an engine is a case here, and a file of this package adapting it to
// orchestrator.Engine.
func NewEngine(_ context.Context, p *plan.Plan, render orchestrator.Renderer, log zerolog.Logger) (orchestrator.Engine, error) {
	switch p.WorkloadKind() {
	case plan.WorkloadHTTP:
		return newHTTPEngine(p, render)
	case plan.WorkloadPubSub:
		return newPubSubEngine(p, render, log)
	case plan.WorkloadLocust:
		return newLocustEngine(p, render, log)
	}
	return nil, fmt.Errorf("engine %q is not available in this build yet", p.Workload.Engine)
}

// newHTTPEngine builds the builtin engine's HTTP workload (workload.http),
// its URL, body and headers rendered.
func newHTTPEngine(p *plan.Plan, render orchestrator.Renderer) (orchestrator.Engine, error) {
	h := p.Workload.HTTP
	if h == nil {
		return nil, fmt.Errorf("workload.http: missing")
	}
	var url, body string
	if err := renderFields(render, field{"workload.http.url", h.URL, &url}, field{"workload.http.body", h.Body, &body}); err != nil {
		return nil, err
	}
	headers, err := renderMap(render, h.Headers, "workload.http.headers")
	if err != nil {
		return nil, err
	}
	g, err := loadgen.New(loadgen.Target{Method: h.Method, URL: url, Headers: headers, Body: []byte(body),
		Timeout: h.Timeout.D(), Insecure: h.Insecure})
	if err != nil {
		return nil, err
	}
	return &httpEngine{g: g, poisson: p.Workload.Arrival == plan.ArrivalPoisson}, nil
}

// httpEngine adapts loadgen.Generator to the orchestrator's Engine.
type httpEngine struct {
	g       *loadgen.Generator
	poisson bool
}

func (e *httpEngine) Step(ctx context.Context, s orchestrator.EngineStep) (*result.EngineResult, error) {
	w, err := e.g.Run(ctx, loadgen.Step{
		Rate:        s.Params[plan.ParamRate],
		Connections: int(plan.ParamValue(plan.WorkloadHTTP, s.Params, plan.ParamConnections)),
		Warmup:      s.Warmup,
		Hold:        s.Hold,
		Poisson:     e.poisson,
		OnSecond:    s.OnSecond,
	})
	if w == nil {
		return nil, err
	}
	return w.Result(), err
}

func (e *httpEngine) Close() error { return e.g.Close() }
