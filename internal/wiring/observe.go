package wiring

import (
	"context"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/observe"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// hostSampler presents a host observer as the orchestrator's StepSampler.
// notGenerator: loadramp generates no load in the run (agents do).
type hostSampler struct {
	host         *observe.Host
	notGenerator bool
}

func (s hostSampler) Start(ctx context.Context, spec orchestrator.SampleSpec) (func(orchestrator.StepFacts) (map[string]float64, []result.Finding), error) {
	logs := make([]observe.Log, 0, len(spec.Logs))
	for _, l := range spec.Logs {
		logs = append(logs, observe.Log{Path: l.Path, Side: l.Side})
	}
	w, err := s.host.Start(ctx, observe.Spec{
		Target: observeProcs(spec.Target), Generator: observeProcs(spec.Generator),
		Logs: logs, Warmup: spec.Warmup, Sink: spec.Sink, Side: spec.Side, NotGenerator: s.notGenerator,
	})
	if err != nil {
		return nil, err
	}
	return func(f orchestrator.StepFacts) (map[string]float64, []result.Finding) {
		return w.StopWith(observe.Facts{ErrorClasses: f.ErrorClasses, Metrics: f.Metrics, Params: f.Params, StarvedAt: f.StarvedAt})
	}, nil
}

// locate finds the target's processes on this host from its endpoints
// (orchestrator.Deps.Locate).
func locate(host *observe.Host) func(ctx context.Context, endpoints []string) ([]orchestrator.Process, bool, error) {
	return func(ctx context.Context, endpoints []string) ([]orchestrator.Process, bool, error) {
		found, local, err := host.Locate(ctx, endpoints)
		out := make([]orchestrator.Process, 0, len(found))
		for _, p := range found {
			out = append(out, orchestrator.Process{Name: p.Name, Pid: p.Pid})
		}
		return out, local, err
	}
}

func observeProcs(ps []orchestrator.Process) []observe.Proc {
	out := make([]observe.Proc, 0, len(ps))
	for _, p := range ps {
		out = append(out, observe.Proc{Name: p.Name, Pid: p.Pid, LogPath: p.LogPath})
	}
	return out
}
