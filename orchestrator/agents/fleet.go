package agents

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/orchestrator/agent"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Defaults of a step across agents.
const (
	DefaultPollEvery = time.Second
	// DefaultLostAfter: an agent that answers no poll for this long is lost.
	DefaultLostAfter = 3 * time.Second
	// DefaultClockRounds round trips measure an agent's clock.
	DefaultClockRounds = 8
	// minLead is the least time between sending the start and the start.
	minLead = 250 * time.Millisecond
)

// Fleet is the agents of a generators (or target) fleet.
type Fleet struct {
	clients []*Client
}

// DialFleet dials every agent at once; an agent that fails makes the whole
// fleet fail, with every failing agent named.
func DialFleet(ctx context.Context, eps []Endpoint, opts Options) (*Fleet, error) {
	if len(eps) == 0 {
		return nil, errors.New("agents: the fleet declares no agent")
	}
	seen := map[string]bool{}
	for _, ep := range eps {
		if ep.Name == "" {
			continue
		}
		if seen[ep.Name] {
			return nil, fmt.Errorf("agents: two agents are named %q", ep.Name)
		}
		seen[ep.Name] = true
	}
	cs := make([]*Client, len(eps))
	errs := make([]error, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Go(func() { cs[i], errs[i] = Dial(ctx, ep, opts) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Fleet{clients: cs}, nil
}

// NewFleet is a fleet of agents already dialed, in this order.
func NewFleet(clients []*Client) *Fleet {
	return &Fleet{clients: append([]*Client(nil), clients...)}
}

// Agents are the fleet's agents, in the order they were given.
func (f *Fleet) Agents() []*Client { return f.clients }

// MeasureClocks measures every agent's clock offset and refuses one beyond
// bound (0: no bound), naming it.
func (f *Fleet) MeasureClocks(ctx context.Context, rounds int, bound time.Duration) error {
	errs := make([]error, len(f.clients))
	var wg sync.WaitGroup
	for i, c := range f.clients {
		wg.Go(func() {
			clk, err := c.MeasureClock(ctx, rounds)
			if err == nil && bound > 0 {
				err = CheckClock(c.Name(), clk, bound)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// StepSpec is one step across the fleet.
type StepSpec struct {
	// ID names the step attempt, unique in the run.
	ID       string
	Workload *agentv1.Workload
	// Params are the step's load parameters, split among the agents by
	// Shares.
	Params map[string]float64
	Shares []ParamShare
	Warmup time.Duration
	Hold   time.Duration
	// Keepalive and Grace are passed to the agents (0: their defaults).
	Keepalive time.Duration
	Grace     time.Duration
	// Lead is how long after sending the start the agents start (0: four
	// times the slowest agent's round trip, at least 250ms).
	Lead time.Duration
	// PollEvery and LostAfter pace the series' collection and say when an
	// agent that does not answer is lost (0: defaults).
	PollEvery time.Duration
	LostAfter time.Duration
	// OnSecond receives the series summed across agents, a second once every
	// agent has sent it (or ended), from one goroutine; it must not block.
	OnSecond func(result.Second)
}

// AgentResult is one agent's part of a step.
type AgentResult struct {
	Agent string
	// Params is the agent's share of the step's load parameters.
	Params map[string]float64
	Result *agent.Result
	// Lead is how long before the start instant the agent got the start
	// (negative: it started late by that much).
	Lead time.Duration
}

// StepResult is a step across the fleet.
type StepResult struct {
	// Start is the agreed start instant, in the coordinator's clock.
	Start time.Time
	// Merged is every agent's measurement merged (Merge).
	Merged *agent.Result
	// Agents are the agents that took part, in fleet order.
	Agents []AgentResult
	// Idle names the agents that sat the step out (a needed count smaller
	// than the fleet).
	Idle []string
	// Overhead is the coordinator's own time on the step.
	Overhead Overhead
}

// Overhead is the time the coordinator spends on a step around the agents'
// load: splitting it, preparing and starting the agents (the start lead
// excepted), collecting and decoding their measurements once the step ended,
// and merging them.
type Overhead struct {
	Split   time.Duration
	Prepare time.Duration
	Start   time.Duration
	// Finish is from the last agent's end to every measurement decoded.
	Finish time.Duration
	Merge  time.Duration
}

// Total is the whole overhead.
func (o Overhead) Total() time.Duration { return o.Split + o.Prepare + o.Start + o.Finish + o.Merge }

// LostError is an agent lost during a step: the step is an error naming
// it, never a verdict on the target.
type LostError struct {
	Agent string
	Step  string
	Err   error
}

func (e *LostError) Error() string {
	return fmt.Sprintf("agent %s lost during step %s: %v", e.Agent, e.Step, e.Err)
}

func (e *LostError) Unwrap() error { return e.Err }

type pollEvent struct {
	i       int
	seconds []agent.Second
	ended   bool
	err     error
	// lost: the agent stopped answering (else it answered with an error).
	lost bool
}

// RunStep splits the step among the agents, prepares them, starts them at
// one instant (each in its own clock), collects their series until they end
// and returns their merged measurement. An agent lost mid-step stops the
// others and returns a *LostError naming it. When ctx is cancelled the
// agents are stopped and what they measured is returned with ctx.Err().
func (f *Fleet) RunStep(ctx context.Context, spec StepSpec) (*StepResult, error) {
	if spec.ID == "" {
		return nil, errors.New("agents: step id is empty")
	}
	t0 := time.Now()
	shares, err := Split(spec.Params, spec.Shares, len(f.clients))
	if err != nil {
		return nil, fmt.Errorf("step %s: %w", spec.ID, err)
	}
	var ov Overhead
	ov.Split = time.Since(t0)
	if spec.PollEvery <= 0 {
		spec.PollEvery = DefaultPollEvery
	}
	if spec.LostAfter <= 0 {
		spec.LostAfter = DefaultLostAfter
	}
	part := f.clients[:len(shares)]
	res := &StepResult{}
	for _, c := range f.clients[len(shares):] {
		res.Idle = append(res.Idle, c.Name())
	}
	for i, c := range part {
		res.Agents = append(res.Agents, AgentResult{Agent: c.Name(), Params: shares[i]})
	}

	// An agent whose clock was never measured is measured now: the start
	// instant is given in each agent's clock.
	if err := each(part, func(_ int, c *Client) error {
		if c.clock.Rounds > 0 {
			return nil
		}
		_, err := c.MeasureClock(ctx, DefaultClockRounds)
		return err
	}); err != nil {
		return nil, err
	}

	// Prepare every agent; one that refuses stops the step before any load.
	firsts := First(shares, spec.Shares)
	t0 = time.Now()
	if err := each(part, func(i int, c *Client) error {
		cctx, cancel := c.call(ctx)
		defer cancel()
		// Each agent draws its own arrival schedule, the same one every step.
		w := proto.Clone(spec.Workload).(*agentv1.Workload)
		w.Seed = spec.Workload.GetSeed() + uint64(i)
		_, err := c.svc.PrepareStep(cctx, connect.NewRequest(&agentv1.PrepareStepRequest{
			StepId: spec.ID, Workload: w, Params: shares[i], First: firsts[i],
			Warmup: durationpb.New(spec.Warmup), Hold: durationpb.New(spec.Hold),
			Keepalive: durationpb.New(spec.Keepalive), Grace: durationpb.New(spec.Grace),
		}))
		return c.wrap("prepare step "+spec.ID, err)
	}); err != nil {
		f.stop(part, spec.ID, "another agent refused the step")
		return nil, err
	}

	ov.Prepare = time.Since(t0)
	// One instant for all, in each agent's clock.
	t0 = time.Now()
	lead := spec.Lead
	if lead <= 0 {
		lead = minLead
		for _, c := range part {
			lead = max(lead, 4*c.clock.RTT)
		}
	}
	res.Start = time.Now().Add(lead)
	if err := each(part, func(i int, c *Client) error {
		cctx, cancel := c.call(ctx)
		defer cancel()
		at := res.Start.Add(c.clock.Offset)
		resp, err := c.svc.StartStep(cctx, connect.NewRequest(&agentv1.StartStepRequest{StepId: spec.ID, StartUnixNano: at.UnixNano()}))
		if err != nil {
			return c.wrap("start step "+spec.ID, err)
		}
		res.Agents[i].Lead = resp.Msg.Lead.AsDuration()
		return nil
	}); err != nil {
		f.stop(part, spec.ID, "another agent could not start the step")
		return nil, err
	}
	ov.Start = time.Since(t0)

	if err := f.collect(ctx, part, spec); err != nil {
		f.stop(part, spec.ID, err.Error())
		f.finish(context.WithoutCancel(ctx), part, spec, res) // the others' partial results are discarded
		return nil, err
	}
	if ctx.Err() != nil {
		f.stop(part, spec.ID, "the coordinator stopped the step: "+context.Cause(ctx).Error())
	}
	t0 = time.Now()
	errs := f.finish(context.WithoutCancel(ctx), part, spec, res)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	ov.Finish = time.Since(t0)
	t0 = time.Now()
	names := make([]string, len(res.Agents))
	rs := make([]*agent.Result, len(res.Agents))
	for i, a := range res.Agents {
		names[i], rs[i] = a.Agent, a.Result
	}
	if res.Merged, err = Merge(names, rs); err != nil {
		return nil, fmt.Errorf("step %s: %w", spec.ID, err)
	}
	ov.Merge = time.Since(t0)
	res.Overhead = ov
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	for i, a := range res.Agents {
		if a.Result.Err != "" {
			return res, &Error{Agent: a.Agent, URL: part[i].ep.URL, Op: "step " + spec.ID,
				Code: connect.CodeAborted, Err: fmt.Errorf("the step ended early on the agent: %s", a.Result.Err)}
		}
	}
	return res, nil
}

// collect polls every agent until all have ended, feeding the summed series
// to spec.OnSecond; it returns the first agent lost (a *LostError) or
// failed, or nil (also when ctx is cancelled: the caller stops the agents).
func (f *Fleet) collect(ctx context.Context, part []*Client, spec StepSpec) error {
	events := make(chan pollEvent, len(part))
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i, c := range part {
		wg.Go(func() { poll(pctx, i, c, spec, events) })
	}
	pending := make([]map[int]agent.Second, len(part))
	next := make([]int, len(part)) // the next second each agent will send
	ended := make([]bool, len(part))
	emitted := 0
	emit := func() {
		// A second is complete when every agent sent it or has ended.
		for {
			ready := true
			for i := range part {
				if !ended[i] && next[i] <= emitted {
					ready = false
				}
			}
			if !ready {
				return
			}
			var secs [][]agent.Second
			have := false
			for i := range part {
				if s, ok := pending[i][emitted]; ok {
					secs = append(secs, []agent.Second{s})
					delete(pending[i], emitted)
					have = true
				}
			}
			if !have {
				if allEnded(ended) {
					return
				}
				emitted++
				continue
			}
			if m := MergeSeries(secs); len(m) == 1 && spec.OnSecond != nil {
				spec.OnSecond(m[0].Second)
			}
			emitted++
		}
	}
	stopped := false
	for !allEnded(ended) {
		var ev pollEvent
		select {
		case ev = <-events:
		case <-ctx.Done():
			if !stopped {
				stopped = true
				// Stop the load now; keep polling so the agents' ends are seen.
				reason := "the coordinator stopped the step: " + context.Cause(ctx).Error()
				wg.Go(func() { f.stop(part, spec.ID, reason) })
			}
			ev = <-events
		}
		if ev.err != nil {
			if ev.lost {
				return &LostError{Agent: part[ev.i].Name(), Step: spec.ID, Err: ev.err}
			}
			return ev.err
		}
		if pending[ev.i] == nil {
			pending[ev.i] = map[int]agent.Second{}
		}
		for _, s := range ev.seconds {
			pending[ev.i][s.T] = s
			next[ev.i] = max(next[ev.i], s.T+1)
		}
		ended[ev.i] = ended[ev.i] || ev.ended
		emit()
	}
	return nil
}

func allEnded(e []bool) bool {
	for _, x := range e {
		if !x {
			return false
		}
	}
	return true
}

// poll polls one agent every spec.PollEvery until the step ends on it, or
// until it has not answered for spec.LostAfter.
func poll(ctx context.Context, i int, c *Client, spec StepSpec, out chan<- pollEvent) {
	send := func(ev pollEvent) {
		select {
		case out <- ev:
		case <-ctx.Done():
		}
	}
	t := time.NewTicker(spec.PollEvery)
	defer t.Stop()
	from := int32(0)
	var failingSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, min(c.opts.CallTimeout, spec.LostAfter))
		resp, err := c.svc.PollStep(cctx, connect.NewRequest(&agentv1.PollStepRequest{StepId: spec.ID, FromSecond: from}))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			code := connect.CodeOf(err)
			if code == connect.CodeUnauthenticated || code == connect.CodeNotFound || code == connect.CodeFailedPrecondition {
				// The agent answers, but not for this step: it restarted.
				send(pollEvent{i: i, err: c.wrap("poll step "+spec.ID, err)})
				return
			}
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) >= spec.LostAfter {
				send(pollEvent{i: i, lost: true, err: fmt.Errorf("no answer for %v: %w", spec.LostAfter, c.wrap("poll step "+spec.ID, err))})
				return
			}
			continue
		}
		failingSince = time.Time{}
		m := resp.Msg
		ev := pollEvent{i: i}
		for _, s := range m.Seconds {
			sec, err := agent.DecodeSecond(s)
			if err != nil {
				send(pollEvent{i: i, err: c.wrap("poll step "+spec.ID, err)})
				return
			}
			ev.seconds = append(ev.seconds, sec)
			from = max(from, s.T+1)
		}
		switch m.State {
		case agentv1.StepState_STEP_STATE_DONE:
			ev.ended = true
		case agentv1.StepState_STEP_STATE_ABANDONED:
			send(pollEvent{i: i, err: &Error{Agent: c.ep.Name, URL: c.ep.URL, Op: "step " + spec.ID, Code: connect.CodeAborted,
				Err: fmt.Errorf("the agent abandoned the step: %s", m.Error)}})
			return
		}
		send(ev)
		if ev.ended {
			return
		}
	}
}

// stop asks every agent to stop the step; errors are ignored (an agent that
// does not hear it stops by itself when the keepalive runs out).
func (f *Fleet) stop(part []*Client, id, reason string) {
	_ = each(part, func(_ int, c *Client) error {
		cctx, cancel := c.call(context.Background())
		defer cancel()
		_, err := c.svc.StopStep(cctx, connect.NewRequest(&agentv1.StopStepRequest{StepId: id, Reason: reason}))
		return err
	})
}

// finish collects every agent's measurement into res.
func (f *Fleet) finish(ctx context.Context, part []*Client, spec StepSpec, res *StepResult) []error {
	errs := make([]error, len(part))
	bound := spec.Warmup + spec.Hold + max(spec.Grace, agent.DefaultGrace) + 10*time.Second
	var wg sync.WaitGroup
	for i, c := range part {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, bound)
			defer cancel()
			resp, err := c.svc.FinishStep(cctx, connect.NewRequest(&agentv1.FinishStepRequest{StepId: spec.ID}))
			if err != nil {
				errs[i] = c.wrap("finish step "+spec.ID, err)
				return
			}
			r, err := agent.DecodeResult(resp.Msg.Result)
			if err != nil {
				errs[i] = c.wrap("finish step "+spec.ID, err)
				return
			}
			// Hold start in the coordinator's clock.
			if !r.HoldStart.IsZero() {
				r.HoldStart = r.HoldStart.Add(-c.clock.Offset)
			}
			res.Agents[i].Result = r
		})
	}
	wg.Wait()
	return errs
}

// each calls fn for every client at once and joins the errors.
func each(cs []*Client, fn func(i int, c *Client) error) error {
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() { errs[i] = fn(i, c) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ReportOverhead reports the mean overhead per step of b.N steps whose
// overheads add up to sum, part by part, in milliseconds (a benchmark's
// split-ms, prepare-ms, start-ms, finish-ms, merge-ms and overhead-ms).
func ReportOverhead(b interface{ ReportMetric(float64, string) }, sum Overhead, steps int) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(max(steps, 1)) }
	b.ReportMetric(ms(sum.Split), "split-ms")
	b.ReportMetric(ms(sum.Prepare), "prepare-ms")
	b.ReportMetric(ms(sum.Start), "start-ms")
	b.ReportMetric(ms(sum.Finish), "finish-ms")
	b.ReportMetric(ms(sum.Merge), "merge-ms")
	b.ReportMetric(ms(sum.Total()), "overhead-ms")
}
