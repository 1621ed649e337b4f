package agents

import (
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
)

// Observing is a step's sampling window open on several agents' hosts.
// While it is open it keeps the agents' keepalive: an agent whose
// coordinator stops calling closes its windows by itself.
type Observing struct {
	id      string
	clients []*Client
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// Observe opens the window id on every agent, with the request req makes for
// each (its window_id is set to id), and calls the agents every keepalive/3
// until Stop. If one agent refuses, the windows opened are closed and the
// error names the agent.
func Observe(ctx context.Context, clients []*Client, id string, keepalive time.Duration, req func(c *Client) *agentv1.StartObservationRequest) (*Observing, error) {
	if keepalive <= 0 {
		keepalive = 10 * time.Second
	}
	opened := make([]bool, len(clients))
	err := each(clients, func(i int, c *Client) error {
		r := req(c)
		r.WindowId = id
		if r.Keepalive == nil {
			r.Keepalive = durationpb.New(keepalive)
		}
		if err := c.StartObservation(ctx, r); err != nil {
			return err
		}
		opened[i] = true
		return nil
	})
	if err != nil {
		_ = each(clients, func(i int, c *Client) error {
			if opened[i] {
				_, _ = c.StopObservation(context.WithoutCancel(ctx), &agentv1.StopObservationRequest{WindowId: id})
			}
			return nil
		})
		return nil, err
	}
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	o := &Observing{id: id, clients: clients, stop: stop}
	for _, c := range clients {
		o.wg.Go(func() {
			t := time.NewTicker(keepalive / 3)
			defer t.Stop()
			for {
				select {
				case <-kctx.Done():
					return
				case <-t.C:
					_, _ = c.Health(kctx) // any call is a keepalive; a failure shows at Stop
				}
			}
		})
	}
	return o, nil
}

// Stop closes the window on every agent and returns each host's
// observation, in the order of the clients; errors name their agents.
func (o *Observing) Stop(ctx context.Context, generatorErrors map[string]int64) ([]*agentv1.HostObservation, error) {
	o.stop()
	o.wg.Wait()
	out := make([]*agentv1.HostObservation, len(o.clients))
	err := each(o.clients, func(i int, c *Client) error {
		obs, err := c.StopObservation(ctx, &agentv1.StopObservationRequest{WindowId: o.id, GeneratorErrorClasses: generatorErrors})
		out[i] = obs
		return err
	})
	return out, err
}
