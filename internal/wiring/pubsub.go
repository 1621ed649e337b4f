package wiring

import (
	"context"
	"fmt"
	"sort"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/delivery"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/pubsub"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// newPubSubEngine builds the builtin engine's pubsub workload
// (workload.pubsub), its settings rendered.
func newPubSubEngine(p *plan.Plan, render orchestrator.Renderer, log zerolog.Logger) (orchestrator.Engine, error) {
	ps := p.Workload.PubSub
	bus, err := renderBus(render, "workload.pubsub", ps.PubSubBus)
	if err != nil {
		return nil, err
	}
	e, err := pubsub.New(pubsub.Config{Bus: bus, BodyBytes: ps.BodyBytes, Timeout: ps.Timeout.D(), Log: log})
	if err != nil {
		return nil, fmt.Errorf("workload.%w", err)
	}
	return &pubsubEngine{e: e}, nil
}

// renderBus renders the plan's values into the pub/sub settings at path
// (workload.pubsub or probe). They stay templates of the client's values
// (.index, .topic, .marker), which the engine and the probe render per
// subscriber and publisher (plan.DeferClient).
func renderBus(render orchestrator.Renderer, path string, b plan.PubSubBus) (delivery.Bus, error) {
	var firstErr error
	one := func(key, text string) string {
		if text == "" || firstErr != nil {
			return text
		}
		d, err := plan.DeferClient(text)
		if err == nil {
			d, err = render(d)
		}
		if err != nil {
			firstErr = fmt.Errorf("%s.%s: %w", path, key, err)
		}
		return d
	}
	headers := func(key string, m map[string]string) map[string]string {
		if m == nil {
			return nil
		}
		out := make(map[string]string, len(m))
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out[k] = one(key+"."+k, m[k])
		}
		return out
	}
	list := func(key string, l []string) []string {
		var out []string
		for i, s := range l {
			out = append(out, one(fmt.Sprintf("%s[%d]", key, i), s))
		}
		return out
	}
	out := delivery.Bus{
		Publish:          one("publish", b.Publish),
		Subscribe:        one("subscribe", b.Subscribe),
		PublishMethod:    b.PublishMethod,
		PublishHeaders:   headers("publish_headers", b.PublishHeaders),
		SubscribeHeaders: headers("subscribe_headers", b.SubscribeHeaders),
		Body:             one("body", b.Body),
		PublishTopic:     one("publish_topic", b.PublishTopic),
		SubscribeTopic:   one("subscribe_topic", b.SubscribeTopic),
		PublishOpen:      list("publish_open", b.PublishOpen),
		SubscribeOpen:    list("subscribe_open", b.SubscribeOpen),
		Replies:          b.Replies,
		Confirm:          b.Confirm,
		Settle:           delivery.DefaultSettle,
	}
	if b.Settle != nil {
		out.Settle = b.Settle.D()
	}
	return out, firstErr
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
