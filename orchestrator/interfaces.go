package orchestrator

import (
	"context"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Engine drives load for one step at a time. Implementations keep their
// connections (or their workers) across steps and release them in Close.
type Engine interface {
	// Step runs warmup then hold at the given load parameters and returns the
	// hold window's measurements. When ctx is cancelled (an abort gate tripped,
	// or the run was interrupted) it returns what it measured so far together
	// with ctx.Err().
	Step(ctx context.Context, s EngineStep) (*result.EngineResult, error)
	Close() error
}

// EngineStep is one step's load as the engine sees it.
type EngineStep struct {
	Params map[string]float64
	Warmup time.Duration
	Hold   time.Duration
	// OnSecond is called once per elapsed second (warmup included), from a single
	// goroutine; it must not block.
	OnSecond func(result.Second)
}

// Fleet is a provisioned group of processes or hosts (infra.Provider's shape,
// declared here so the ramp can be tested with fakes).
type Fleet interface {
	Up(ctx context.Context) (FleetState, error)
	// Scale grows the fleet by factor; ok is false when the fleet cannot grow.
	Scale(ctx context.Context, factor float64) (state FleetState, ok bool, err error)
	Down(ctx context.Context) error
	// Check reports a process of the fleet that died while it was up.
	Check() error
}

// FleetState is what a fleet exposes once up.
type FleetState struct {
	Outputs map[string]string
	// Sensitive names the Outputs that are secrets: templates see them,
	// run.json, the logs and uploads do not.
	Sensitive []string
	Processes []Process
	Size      int
	Ref       result.InfraRef
}

// Process is one local process of a fleet, for samplers and log scanning.
type Process struct {
	Name    string
	Pid     int
	LogPath string
}

// Observer receives progress as the run goes. Implementations must be quick:
// Second is called from the engine's measuring goroutine.
type Observer interface {
	RunStarted(runID, dir string, schedule int)
	StepStarted(s StepInfo)
	Second(s StepInfo, sec result.Second)
	StepEnded(s StepInfo, rec *result.Step)
	Message(format string, args ...any)
}

// StepInfo identifies a step attempt in progress.
type StepInfo struct {
	Index      int
	Attempt    int
	Kind       string
	Params     map[string]float64
	ParamOrder []string
	Changed    string
	Seconds    int // warmup + hold, in whole seconds
}

// NopObserver ignores all progress.
type NopObserver struct{}

func (NopObserver) RunStarted(string, string, int)   {}
func (NopObserver) StepStarted(StepInfo)             {}
func (NopObserver) Second(StepInfo, result.Second)   {}
func (NopObserver) StepEnded(StepInfo, *result.Step) {}
func (NopObserver) Message(string, ...any)           {}

// Probe measures what users feel, beside the engine and independent of it
// (DESIGN.md "probe"): it runs during every step at its own low rate.
type Probe interface {
	// Step probes for warmup+hold and returns the hold window's probe.*
	// metrics. It returns early, with what it measured, when ctx is cancelled.
	Step(ctx context.Context, warmup, hold time.Duration) (metrics.Metrics, error)
	Close() error
}
