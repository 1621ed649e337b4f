package wiring

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/pubsub"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// newPubSubEngine builds the builtin engine's pubsub workload
// (workload.pubsub), its URLs rendered.
func newPubSubEngine(p *plan.Plan, render orchestrator.Renderer, log zerolog.Logger) (orchestrator.Engine, error) {
	ps := p.Workload.PubSub
	var pub, sub string
	if err := renderFields(render, field{"workload.pubsub.publish", ps.Publish, &pub}, field{"workload.pubsub.subscribe", ps.Subscribe, &sub}); err != nil {
		return nil, err
	}
	e, err := pubsub.New(pubsub.Config{Publish: pub, Subscribe: sub, BodyBytes: ps.BodyBytes, Timeout: ps.Timeout.D(), Log: log})
	if err != nil {
		return nil, err
	}
	return &pubsubEngine{e: e}, nil
}

// pubsubEngine adapts pubsub.Engine to the orchestrator's Engine.
type pubsubEngine struct{ e *pubsub.Engine }

// Step runs one step; publishers and subscribers take their defaults
// (plan.LoadParams) when the plan does not ramp them.
func (a *pubsubEngine) Step(ctx context.Context, s orchestrator.EngineStep) (*result.EngineResult, error) {
	count := func(name string) int { return int(plan.ParamValue(plan.WorkloadPubSub, s.Params, name)) }
	return a.e.Run(ctx, pubsub.Step{
		Publishers: count(plan.ParamPublishers), Subscribers: count(plan.ParamSubscribers), Rate: s.Params[plan.ParamRate],
		Warmup: s.Warmup, Hold: s.Hold, OnSecond: s.OnSecond,
	})
}

func (a *pubsubEngine) Close() error { return a.e.Close() }
