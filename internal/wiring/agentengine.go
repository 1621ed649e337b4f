package wiring

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/agent"
	"github.com/loadramp/loadramp/orchestrator/agents"
	"github.com/loadramp/loadramp/orchestrator/loadgen"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/pubsub"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// newAgentEngine builds the builtin engine run by the generators fleet's
// agents: each step is split among them, started at one instant, and their
// measurements merged exactly (package agents). The workload's templates are
// rendered once; the agents are read again before every step, so a grown
// fleet's new agents take part.
func newAgentEngine(cfg Config, p *plan.Plan, render orchestrator.Renderer, log zerolog.Logger) (orchestrator.Engine, error) {
	w, err := agentWorkload(p, render)
	if err != nil {
		return nil, err
	}
	e := &agentEngine{
		set: newAgentSet(cfg, p, render, log), workload: w, kind: p.WorkloadKind(),
		clockBound: p.Fleets["generators"].Agents.MaxClockOffset.D(), log: log,
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	e.prefix = hex.EncodeToString(b)
	e.shares = agents.Shares(e.kind == plan.WorkloadPubSub)
	// The agents are dialed now, so a refused token or a version mismatch
	// stops the run before any load, naming the agent.
	if _, err := e.current(context.Background()); err != nil {
		return nil, err
	}
	return e, nil
}

// agentWorkload is the plan's workload as the agents receive it.
func agentWorkload(p *plan.Plan, render orchestrator.Renderer) (*agentv1.Workload, error) {
	w := &agentv1.Workload{Arrival: p.Workload.Arrival, Seed: 1}
	switch p.WorkloadKind() {
	case plan.WorkloadHTTP:
		h, err := httpWorkload(p, render, os.LookupEnv)
		if err != nil {
			return nil, err
		}
		// A unique feeder gives each row once a run: agents cannot share
		// that (the plan refuses it; this is the engine's own guard).
		for name, f := range h.Feeders {
			if f.GetMode() == plan.FeederUnique {
				return nil, fmt.Errorf("workload.http.feeders.%s.mode: unique cannot be shared by the generators fleet's agents: use circular or random", name)
			}
		}
		// The agents check the target themselves; a bad request is refused
		// here already, before any agent is called.
		target, err := targetOf(h)
		if err == nil {
			_, err = loadgen.New(target)
		}
		if err != nil {
			return nil, fmt.Errorf("workload.http: %w", err)
		}
		w.Kind = &agentv1.Workload_Http{Http: h}
		if n := proto.Size(w); n > agent.MaxMessageBytes/2 {
			return nil, fmt.Errorf("workload.http.feeders: the workload agents receive would be %d bytes with its feeders' rows; at most %d travel to agents: use smaller feeders", n, agent.MaxMessageBytes/2)
		}
	case plan.WorkloadPubSub:
		ps := p.Workload.PubSub
		bus, err := renderBus(render, "workload.pubsub", ps.PubSubBus)
		if err != nil {
			return nil, err
		}
		if _, err := bus.Compile(); err != nil {
			return nil, fmt.Errorf("workload.pubsub: %w", err)
		}
		b, err := json.Marshal(bus)
		if err != nil {
			return nil, fmt.Errorf("workload.pubsub: %w", err)
		}
		w.Kind = &agentv1.Workload_Pubsub{Pubsub: &agentv1.PubSubWorkload{BusJson: string(b), BodyBytes: int32(ps.BodyBytes),
			Timeout: durationpb.New(ps.Timeout.D())}}
	default:
		return nil, fmt.Errorf("the %s engine does not run on agents", p.Workload.Engine)
	}
	return w, nil
}

// agentEngine is orchestrator.Engine on the generators fleet's agents.
type agentEngine struct {
	set        *agentSet
	workload   *agentv1.Workload
	kind       string
	shares     []agents.ParamShare
	clockBound time.Duration
	log        zerolog.Logger
	prefix     string // of step ids: this run's, unlike another coordinator's

	fleet *agents.Fleet
	urls  []string
	steps int
}

// current is the fleet of agents the generators fleet lists now; a new
// agent is dialed and its clock measured (and refused beyond the bound).
func (e *agentEngine) current(ctx context.Context) (*agents.Fleet, error) {
	cs, err := e.set.dial(ctx, "generators")
	if err != nil {
		return nil, err
	}
	urls := make([]string, len(cs))
	for i, c := range cs {
		urls[i] = c.Endpoint().URL
	}
	if e.fleet != nil && slices.Equal(urls, e.urls) {
		return e.fleet, nil
	}
	f := agents.NewFleet(cs)
	if err := f.MeasureClocks(ctx, agents.DefaultClockRounds, e.clockBound); err != nil {
		return nil, err
	}
	if e.fleet != nil {
		e.log.Info().Strs("agents", urls).Msg("the generators fleet's agents changed")
	}
	e.fleet, e.urls = f, urls
	return f, nil
}

func (e *agentEngine) Step(ctx context.Context, s orchestrator.EngineStep) (*result.EngineResult, error) {
	f, err := e.current(ctx)
	if err != nil {
		return nil, err
	}
	e.steps++
	// Every share parameter is split, the ones the plan does not ramp at
	// their defaults: an agent's default is not the fleet's.
	params := maps.Clone(s.Params)
	for _, sh := range e.shares {
		if _, ok := params[sh.Name]; !ok {
			if v := plan.ParamValue(e.kind, params, sh.Name); v > 0 {
				params[sh.Name] = v
			}
		}
	}
	for k := range params {
		if !slices.ContainsFunc(e.shares, func(sh agents.ParamShare) bool { return sh.Name == k }) {
			delete(params, k)
		}
	}
	res, err := f.RunStep(ctx, agents.StepSpec{
		ID: fmt.Sprintf("%s-%d", e.prefix, e.steps), Workload: e.workload,
		Params: params, Shares: e.shares, Warmup: s.Warmup, Hold: s.Hold, OnSecond: s.OnSecond,
	})
	if res == nil {
		return nil, err
	}
	rs := make([]*agent.Result, 0, len(res.Agents))
	for _, a := range res.Agents {
		if a.Result != nil {
			rs = append(rs, a.Result)
		}
	}
	subs := make([]float64, 0, len(res.Agents))
	for _, a := range res.Agents {
		if a.Result != nil {
			subs = append(subs, a.Params[plan.ParamSubscribers])
		}
	}
	out := &result.EngineResult{Metrics: e.metrics(res.Merged, rs, subs), ErrorClasses: res.Merged.ErrorClasses,
		Histograms: maps.Clone(res.Merged.Histograms), Requests: res.Merged.Mix}
	if out.Histograms == nil {
		out.Histograms = map[string]*hdrhistogram.Histogram{}
	}
	for k, h := range map[string]*hdrhistogram.Histogram{metrics.HistLatency: res.Merged.Latency, metrics.HistService: res.Merged.Service, metrics.HistLag: res.Merged.Lag} {
		if h != nil {
			out.Histograms[k] = h
		}
	}
	for _, sec := range res.Merged.Series {
		out.Series = append(out.Series, sec.Second)
	}
	for i, a := range res.Agents {
		c := f.Agents()[i]
		share := result.AgentShare{Agent: a.Agent, URL: c.Endpoint().URL, Parameters: a.Params,
			ClockOffset: c.Clock().Offset.Seconds(), StartLead: a.Lead.Seconds()}
		if a.Result != nil {
			share.Metrics = e.metrics(a.Result, []*agent.Result{a.Result}, nil)
			share.Error = a.Result.Err
		}
		out.Agents = append(out.Agents, share)
	}
	for _, name := range res.Idle {
		share := result.AgentShare{Agent: name, Idle: true}
		for _, c := range f.Agents() {
			if c.Name() == name {
				share.URL = c.Endpoint().URL
			}
		}
		out.Agents = append(out.Agents, share)
	}
	return out, err
}

// metrics are the step metrics of agents' results rs, merged into merged
// (agents.Merge): their counts summed, their histograms merged
// (percentiles of every request of every agent), the generator's health the
// worst agent's. The http workload's metrics come from loadgen's own
// formula, the pubsub workload's from the engine's metric names.
func (e *agentEngine) metrics(merged *agent.Result, rs []*agent.Result, subs []float64) metrics.Metrics {
	var m metrics.Metrics
	if e.kind == plan.WorkloadPubSub {
		m = pubsubMetrics(merged, rs, subs)
	} else {
		w := &loadgen.Window{Start: merged.HoldStart, Duration: merged.Hold, Offered: merged.Offered,
			Requests: merged.Requests, Sent: merged.Sent, Completed: merged.Completed,
			Errors: merged.Errors, GeneratorErrors: merged.GeneratorErrors, ErrorClasses: merged.ErrorClasses,
			Latency: merged.Latency, Service: merged.Service, Lag: merged.Lag, OutOfRange: merged.OutOfRange,
			Released: merged.Released, Blocked: merged.Blocked, Reopened: merged.Reopened,
			Open: merged.Open, Connections: merged.Connections,
			CPU: merged.Health.CPU, GCPauseP99: merged.Health.GCPauseP99, GCPauseMax: merged.Health.GCPauseMax}
		// The connections held add up (their peaks too: an upper bound, the
		// agents' peaks need not coincide).
		w.HeldKnown = len(rs) > 0
		for _, r := range rs {
			held, ok := r.Metrics[metrics.ConnectionsHeld]
			w.HeldKnown = w.HeldKnown && ok
			w.Held += held
			w.HeldPeak += int(r.Metrics[metrics.ConnectionsHeldPeak])
		}
		if w.Latency == nil {
			w.Latency = metrics.NewHistogram(metrics.HistDigits)
		}
		m = w.Metrics()
		for _, q := range merged.Mix {
			putRequestMetrics(m, q.Name, merged)
		}
	}
	// The generator's health is the worst agent's, figure by figure.
	for k, v := range agents.HealthMetrics(merged.Health) {
		if k == metrics.GeneratorLagP99 && v == 0 {
			continue // not measured by the engine: keep the histogram's
		}
		m[k] = v
	}
	maps.Copy(m, agents.WorstMetrics(rs))
	return m
}

// putRequestMetrics sets a mix's request's metrics (request.<name>.*) of
// agents' merged results: its counts and rate summed (by agents.Merge), its
// ratios recomputed, its percentiles from its merged latencies.
func putRequestMetrics(m metrics.Metrics, name string, merged *agent.Result) {
	key := func(k string) string { return metrics.RequestMetric(name, k) }
	ratio := func(n, d float64) float64 {
		if d == 0 {
			return 0
		}
		return n / d
	}
	n, errs := merged.Metrics[key(metrics.RequestsCount)], merged.Metrics[key(metrics.ErrorsCount)]
	m[key(metrics.RequestsCount)], m[key(metrics.ErrorsCount)] = n, errs
	m[key(metrics.ErrorsRatio)] = ratio(errs, n)
	m[key(metrics.ThroughputRPS)] = merged.Metrics[key(metrics.ThroughputRPS)]
	m[key(metrics.RequestShare)] = ratio(n, float64(merged.Requests))
	if h := merged.Histograms[key(metrics.HistLatency)]; n > 0 && h != nil {
		own := metrics.Metrics{}
		own.PutQuantiles(h, metrics.Latency)
		for k, v := range own {
			m[key(k)] = v
		}
	}
}

// pubsubMetrics are the pubsub workload's metrics of agents' results: counts,
// rates, the offered rate and the subscribers summed, ratios recomputed
// (per topic too), percentiles from the merged histograms, the subscribers
// held weighted by each agent's share of them (subs).
func pubsubMetrics(merged *agent.Result, rs []*agent.Result, subs []float64) metrics.Metrics {
	m := metrics.Metrics{}
	summed := func(k string) bool {
		return strings.HasSuffix(k, ".count") || strings.HasSuffix(k, ".rps") || k == metrics.ThroughputOffered || k == pubsub.Subscribers
	}
	for _, r := range rs {
		for k, v := range r.Metrics {
			if summed(k) {
				m[k] += v
			}
		}
		m[pubsub.TopicsCount] = max(m[pubsub.TopicsCount], r.Metrics[pubsub.TopicsCount])
	}
	if m[pubsub.TopicsCount] == 0 {
		delete(m, pubsub.TopicsCount)
	}
	ratio := func(n, d float64) float64 {
		if d == 0 {
			return 0
		}
		return n / d
	}
	m[metrics.ErrorsRatio] = ratio(m[metrics.ErrorsCount], m[metrics.RequestsCount])
	m[metrics.GeneratorErrorsRatio] = ratio(m[metrics.GeneratorErrorsCount], m[metrics.RequestsCount])
	m[metrics.ThroughputRatio] = ratio(m[metrics.ThroughputRPS], m[metrics.ThroughputOffered])
	lost := func(expected, delivered float64) float64 { return max(0, ratio(expected-delivered, expected)) }
	if exp := m[pubsub.ExpectedCount]; exp > 0 {
		m[pubsub.LostRatio] = lost(exp, m[pubsub.DeliveredCount])
	}
	// Per topic: its loss from its summed counts, and the worst topic's.
	worst, topics := 0.0, false
	for k := range m {
		seg, ok := strings.CutPrefix(k, "pubsub.topic.")
		if !ok {
			continue
		}
		if seg, ok = strings.CutSuffix(seg, "."+pubsub.TopicExpected); !ok {
			continue
		}
		l := lost(m[k], m[pubsub.TopicMetric(seg, pubsub.TopicDelivered)])
		m[pubsub.TopicMetric(seg, pubsub.TopicLost)] = l
		worst, topics = max(worst, l), true
	}
	if topics {
		m[pubsub.WorstTopicLost] = worst
	}
	var held, weight float64
	for i, r := range rs {
		if v, ok := r.Metrics[metrics.SubscribersHeldRatio]; ok {
			w := 1.0
			if i < len(subs) {
				w = subs[i]
			}
			held += v * w
			weight += w
		}
	}
	if weight > 0 {
		m[metrics.SubscribersHeldRatio] = held / weight
	}
	if h := merged.Latency; h != nil && h.TotalCount() > 0 {
		m.PutQuantiles(h, metrics.Latency)
	}
	if h := merged.Lag; h != nil && h.TotalCount() > 0 {
		m.PutQuantiles(h, metrics.Lag)
	}
	if h := merged.Histograms[pubsub.HistDelay]; h != nil && h.TotalCount() > 0 {
		m.PutQuantiles(h, pubsub.DeliveryDelay)
	}
	m[metrics.GeneratorCPU] = merged.Health.CPU
	return m
}

func (e *agentEngine) Close() error { return nil }
