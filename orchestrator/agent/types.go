// Package agent is `loadramp agent`: a long-running server, one per fleet
// host, that generates its share of a step's load (the generator role) and
// observes its host over a step's window (the observer role), for a
// coordinator (`loadramp run`) that drives every host of a fleet at once.
//
// The protocol is Connect over HTTP/2 (h2c on plain TCP, or TLS) with the
// protobuf messages of proto/loadramp/agent/v1/agent.proto. Every call needs
// the agent's bearer token and the coordinator's loadramp version, which must
// be the agent's own. The agent bounds its own work: a step ends at most its
// grace after warmup+hold, and a step or a sampling window whose coordinator
// falls silent for its keepalive is stopped by the agent, so a coordinator
// that dies leaves no load running.
//
// The engines and the host observer are given to the server as the small
// interfaces below (LocalEngine, Observer, Auditor), so the server is tested
// without them.
package agent

import (
	"context"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Protocol is the version of the agent protocol; coordinator and agent
// refuse each other when it, or their loadramp versions, differ.
const Protocol = 1

// Headers every call carries besides Authorization.
const (
	HeaderVersion  = "Loadramp-Version"
	HeaderProtocol = "Loadramp-Protocol"
)

// HealthPath answers 200 "ready" without a token, for readiness checks
// (systemd, Terraform, a load balancer); it says nothing else.
const HealthPath = "/healthz"

// Defaults of a step and a sampling window, when the coordinator leaves them
// at zero, and the agent's own bounds on what a coordinator may ask.
const (
	DefaultKeepalive = 10 * time.Second
	DefaultGrace     = 30 * time.Second
	MaxKeepalive     = 5 * time.Minute
	MaxGrace         = 10 * time.Minute
	// MaxStepLength bounds warmup+hold of one step.
	MaxStepLength = 24 * time.Hour
	// MaxStartLead bounds how far ahead a step may be scheduled.
	MaxStartLead = time.Minute
)

// Second is one second of a step on one agent, with its latencies when the
// engine keeps them (merged across agents, the series' percentiles are then
// exact).
type Second struct {
	result.Second
	Latency *hdrhistogram.Histogram // SecondDigits; may be nil
}

// Health is the agent process's own health over a step's hold.
type Health struct {
	CPU          float64 // share of the agent's CPUs, 0..1
	LagP99       float64 // seconds
	BlockedRatio float64
	GCPauseP99   float64 // seconds
	GCPauseMax   float64 // seconds
	// Starvation is the run-queue wait of the agent's threads per second of
	// wall time and per CPU it may use: a starved agent waits for a CPU while
	// its CPU share stays low. Negative: not measured (the agent's kernel
	// shows no run delay).
	Starvation float64
	GOMAXPROCS int
}

// Result is one agent's measurement of a step's hold window.
type Result struct {
	HoldStart time.Time
	Hold      time.Duration
	Offered   float64 // requests/s

	Requests, Sent, Completed   int64
	Errors, GeneratorErrors     int64
	ErrorClasses                map[string]int64
	Latency, Service, Lag       *hdrhistogram.Histogram // HistDigits, µs
	OutOfRange                  int64
	Released, Blocked, Reopened int64
	Open, Connections           int
	Metrics                     metrics.Metrics                    // engine-specific (pubsub.*)
	Histograms                  map[string]*hdrhistogram.Histogram // engine-specific, HistDigits
	Health                      Health
	Series                      []Second
	// Mix are the requests of a mix with their error classes; their
	// figures are in Metrics (request.<name>.*), their latencies in
	// Histograms (request.<name>.latency).
	Mix []result.Request
	// Err says why the step ended early; the result is then partial.
	Err string
}

// EngineStep is one step's share as an engine runs it.
type EngineStep struct {
	Params map[string]float64
	// First numbers this agent's first unit of each whole parameter in the
	// fleet (publishers, subscribers): its clients are numbered from there.
	First  map[string]int
	Warmup time.Duration
	Hold   time.Duration
	// OnSecond is called once per elapsed second, from one goroutine; it must
	// not block.
	OnSecond func(Second)
}

// LocalEngine runs steps of one workload on this host; it keeps its
// connections across steps and releases them in Close.
type LocalEngine interface {
	// Run runs warmup then hold and returns the hold's measurement. When ctx
	// is cancelled it returns what it measured so far with ctx.Err().
	Run(ctx context.Context, s EngineStep) (*Result, error)
	Close() error
}

// EngineFactory makes the engine of a workload; it returns a clear error for
// a workload it cannot run.
type EngineFactory func(w *agentv1.Workload) (LocalEngine, error)

// ProcessRef names a process to watch on the agent's host.
type ProcessRef struct {
	Name    string
	Pid     int
	LogPath string
	Side    string
}

// LogRef is a log file scanned for bottleneck signatures.
type LogRef struct{ Path, Side string }

// ObserveSpec is one sampling window on the agent's host.
type ObserveSpec struct {
	WindowID string
	Side     string
	// SharedMachine: another side's agent runs on this kernel, so the
	// host's host-wide findings are neither side's.
	SharedMachine bool
	Processes     []ProcessRef
	Logs          []LogRef
	Warmup        time.Duration
	Hold          time.Duration
}

// Observation is the host over one window.
type Observation struct {
	Summary     hoststat.Summary
	Metrics     metrics.Metrics
	Findings    []result.Finding
	Logs        []diagnose.LogMatch
	Unavailable []string
}

// Observer opens sampling windows on the agent's host.
type Observer interface {
	Start(ctx context.Context, spec ObserveSpec) (Window, error)
}

// Window is an open sampling window.
type Window interface {
	// Stop closes the window and diagnoses it; generatorErrors are the
	// generators' own error classes over the step.
	Stop(ctx context.Context, generatorErrors map[string]int64) (*Observation, error)
	// Discard closes the window without a result (its coordinator is gone).
	Discard()
}

// Auditor audits the host's limits funnel.
type Auditor interface {
	Audit(ctx context.Context, procs []hoststat.Proc, nginxConf string) (diagnose.Audit, error)
}

// ProcAuditor audits the host whose procfs is at Root (default /proc) with
// diagnose.AuditLimits. A process given by name only (Pid 0) is every
// process of that command name.
type ProcAuditor struct{ Root string }

// Audit implements Auditor.
func (a ProcAuditor) Audit(ctx context.Context, procs []hoststat.Proc, nginxConf string) (diagnose.Audit, error) {
	var ps []hoststat.Proc
	for _, p := range procs {
		if p.Pid > 0 {
			ps = append(ps, p)
			continue
		}
		pids, _ := hoststat.PidsByComm(a.Root, p.Name)
		for _, pid := range pids {
			ps = append(ps, hoststat.Proc{Name: p.Name, Pid: pid})
		}
	}
	return diagnose.AuditLimits(ctx, a.Root, ps, nginxConf)
}
