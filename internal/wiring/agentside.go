package wiring

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/rs/zerolog"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/orchestrator/agent"
	"github.com/loadramp/loadramp/orchestrator/delivery"
	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/loadgen"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/observe"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/pubsub"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// AgentToken is the token of `loadramp agent`: the content of file (--token-file),
// else the environment's EnvAgentToken (read with getenv); "" is no token.
func AgentToken(file string, getenv func(string) string) (string, error) {
	if file == "" {
		return strings.TrimSpace(getenv(EnvAgentToken)), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("--token-file %s is empty", file)
	}
	return t, nil
}

// AgentTLS is the TLS configuration of `loadramp agent` serving the PEM
// certificate and key given (--tls-cert, --tls-key); nil when neither is.
func AgentTLS(certFile, keyFile string) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if certFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// AgentRoles are what `loadramp agent` serves on its host: the builtin
// engine for the generator role (loadgen for the http workload, pubsub for
// the pubsub workload) and this host's observer (package observe) for the
// observer role, named name in findings, reading procfs at procRoot ("":
// /proc).
func AgentRoles(name, procRoot string, log zerolog.Logger) (agent.EngineFactory, agent.Observer, agent.Auditor) {
	o := &agentObserver{name: name, root: procRoot, log: log}
	return agentEngines(log), o, o
}

// agentEngines builds the builtin engine of a step's workload.
func agentEngines(log zerolog.Logger) agent.EngineFactory {
	return func(w *agentv1.Workload) (agent.LocalEngine, error) {
		poisson := false
		switch w.GetArrival() {
		case "", plan.ArrivalConstant:
		case plan.ArrivalPoisson:
			poisson = true
		default:
			return nil, fmt.Errorf("arrival %q: want %s or %s", w.GetArrival(), plan.ArrivalConstant, plan.ArrivalPoisson)
		}
		switch k := w.GetKind().(type) {
		case *agentv1.Workload_Http:
			target, err := targetOf(k.Http)
			if err != nil {
				return nil, err
			}
			g, err := loadgen.New(target, loadgen.WithSeed(max(w.GetSeed(), 1)), loadgen.WithLogger(log))
			if err != nil {
				return nil, err
			}
			return &agentHTTP{g: g, poisson: poisson}, nil
		case *agentv1.Workload_Pubsub:
			p := k.Pubsub
			var bus delivery.Bus
			if err := json.Unmarshal([]byte(p.GetBusJson()), &bus); err != nil {
				return nil, fmt.Errorf("pubsub workload: bus: %w", err)
			}
			e, err := pubsub.New(pubsub.Config{Bus: bus, BodyBytes: int(p.GetBodyBytes()), Timeout: p.GetTimeout().AsDuration(), Log: log})
			if err != nil {
				return nil, err
			}
			return &agentPubSub{e: e}, nil
		}
		return nil, errors.New("workload: neither http nor pubsub")
	}
}

// agentHTTP runs the http workload's share of a step with loadgen.
type agentHTTP struct {
	g       *loadgen.Generator
	poisson bool
}

func (e *agentHTTP) Run(ctx context.Context, s agent.EngineStep) (*agent.Result, error) {
	w, err := e.g.Run(ctx, loadgen.Step{
		Rate:        s.Params[plan.ParamRate],
		Connections: int(plan.ParamValue(plan.WorkloadHTTP, s.Params, plan.ParamConnections)),
		Warmup:      s.Warmup, Hold: s.Hold, Poisson: e.poisson,
		OnSecond: func(sec result.Second) {
			if s.OnSecond != nil {
				s.OnSecond(agent.Second{Second: sec})
			}
		},
	})
	if w == nil {
		return nil, err
	}
	return windowResult(w), err
}

func (e *agentHTTP) Close() error { return e.g.Close() }

// windowResult is loadgen's measurement as an agent returns it.
func windowResult(w *loadgen.Window) *agent.Result {
	r := &agent.Result{
		HoldStart: w.Start, Hold: w.Duration, Offered: w.Offered,
		Requests: w.Requests, Sent: w.Sent, Completed: w.Completed,
		Errors: w.Errors, GeneratorErrors: w.GeneratorErrors, ErrorClasses: w.ErrorClasses,
		Latency: w.Latency, Service: w.Service, Lag: w.Lag, OutOfRange: w.OutOfRange,
		Released: w.Released, Blocked: w.Blocked, Reopened: w.Reopened, Open: w.Open, Connections: w.Connections,
		Metrics: w.Metrics(),
	}
	// A mix's requests: their error classes, and their latencies to merge.
	for _, rw := range w.PerRequest {
		r.Mix = append(r.Mix, result.Request{Name: rw.Name, Weight: rw.Weight, ErrorClasses: rw.ErrorClasses})
		if rw.Latency != nil {
			if r.Histograms == nil {
				r.Histograms = map[string]*hdrhistogram.Histogram{}
			}
			r.Histograms[metrics.RequestMetric(rw.Name, metrics.HistLatency)] = rw.Latency
		}
	}
	r.Health = agent.Health{CPU: w.CPU, GCPauseP99: w.GCPauseP99, GCPauseMax: w.GCPauseMax,
		LagP99: r.Metrics[metrics.GeneratorLagP99], BlockedRatio: r.Metrics[metrics.GeneratorBlockedRatio]}
	return r
}

// agentPubSub runs the pubsub workload's share of a step.
type agentPubSub struct{ e *pubsub.Engine }

func (a *agentPubSub) Run(ctx context.Context, s agent.EngineStep) (*agent.Result, error) {
	count := func(name string) int { return int(plan.ParamValue(plan.WorkloadPubSub, s.Params, name)) }
	start := time.Now()
	res, err := a.e.Run(ctx, pubsub.Step{
		Publishers: count(plan.ParamPublishers), Subscribers: count(plan.ParamSubscribers), Rate: s.Params[plan.ParamRate],
		PublisherFirst: s.First[plan.ParamPublishers], SubscriberFirst: s.First[plan.ParamSubscribers],
		Warmup: s.Warmup, Hold: s.Hold,
		OnSecond: func(sec result.Second) {
			if s.OnSecond != nil {
				s.OnSecond(agent.Second{Second: sec})
			}
		},
	})
	if res == nil {
		return nil, err
	}
	m := metrics.Metrics(res.Metrics)
	r := &agent.Result{
		HoldStart: start.Add(s.Warmup), Hold: s.Hold, Offered: m[metrics.ThroughputOffered],
		Requests: int64(m[metrics.RequestsCount]), Errors: int64(m[metrics.ErrorsCount]),
		GeneratorErrors: int64(m[metrics.GeneratorErrorsCount]), ErrorClasses: res.ErrorClasses,
		Latency: res.Histograms[metrics.HistLatency], Lag: res.Histograms[metrics.HistLag],
		Metrics: m,
		Health:  agent.Health{CPU: m[metrics.GeneratorCPU], LagP99: m[metrics.GeneratorLagP99]},
	}
	r.Completed = int64(math.Round(m[metrics.ThroughputRPS] * s.Hold.Seconds()))
	if d := res.Histograms[pubsub.HistDelay]; d != nil {
		r.Histograms = map[string]*hdrhistogram.Histogram{pubsub.HistDelay: d}
	}
	return r, err
}

func (a *agentPubSub) Close() error { return a.e.Close() }

// agentObserver is the agent's observer role: each sampling window is a
// window of package observe on this host, and the limits audit is
// observe's (processes found by name, nginx's configuration from its
// master).
type agentObserver struct {
	name string
	root string
	log  zerolog.Logger
}

func (o *agentObserver) host() *observe.Host {
	opts := []observe.Option{observe.WithLogger(o.log)}
	if o.root != "" {
		opts = append(opts, observe.WithRoot(o.root))
	}
	return observe.New(o.name, opts...)
}

// Start opens a window; a window has a Host of its own, so windows of two
// coordinators do not share the log scanner's marks.
func (o *agentObserver) Start(ctx context.Context, spec agent.ObserveSpec) (agent.Window, error) {
	var ws observe.Spec
	for _, p := range spec.Processes {
		side := p.Side
		if side == "" {
			side = spec.Side
		}
		pr := observe.Proc{Name: p.Name, Pid: p.Pid, LogPath: p.LogPath}
		if side == hoststat.SideGenerator {
			ws.Generator = append(ws.Generator, pr)
		} else {
			ws.Target = append(ws.Target, pr)
		}
	}
	for _, l := range spec.Logs {
		side := l.Side
		if side == "" {
			side = spec.Side
		}
		ws.Logs = append(ws.Logs, observe.Log{Path: l.Path, Side: side})
	}
	ws.Warmup = spec.Warmup
	// The host serves its fleet's side: its host-wide findings are that
	// side's (a host of generators only is the generator's).
	ws.Side = spec.Side
	if spec.SharedMachine {
		ws.Side = "" // both sides run on this machine
	}
	// On a generator host the agent is the generator (its engine runs the
	// host's share of the load); elsewhere nothing of loadramp's generates.
	ws.NotGenerator = spec.Side != hoststat.SideGenerator
	h := o.host()
	var missing []string
	for _, p := range append(append([]observe.Proc{}, ws.Target...), ws.Generator...) {
		if p.Pid <= 0 && len(h.Resolve([]observe.Proc{p})) == 0 {
			missing = append(missing, fmt.Sprintf("process %q: no process of that command name on this host", p.Name))
		}
	}
	w, err := h.Start(ctx, ws)
	if err != nil {
		return nil, err
	}
	return &agentWindow{w: w, missing: missing}, nil
}

// Audit implements agent.Auditor.
func (o *agentObserver) Audit(ctx context.Context, procs []hoststat.Proc, nginxConf string) (diagnose.Audit, error) {
	ps := make([]observe.Proc, 0, len(procs))
	for _, p := range procs {
		ps = append(ps, observe.Proc{Name: p.Name, Pid: p.Pid})
	}
	return o.host().AuditDetail(ctx, ps, nginxConf)
}

type agentWindow struct {
	w       *observe.Window
	missing []string // the processes named but not found
}

func (a *agentWindow) Stop(_ context.Context, generatorErrors map[string]int64) (*agent.Observation, error) {
	d, ok := a.w.StopDetail(observe.Facts{ErrorClasses: generatorErrors}, nil)
	if !ok {
		return nil, errors.New("the window was already closed")
	}
	return &agent.Observation{Summary: d.Summary, Metrics: d.Metrics, Findings: d.Findings, Logs: d.Logs,
		Unavailable: append(a.missing, d.Skipped...)}, nil
}

func (a *agentWindow) Discard() { a.w.Discard() }
