package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/infra"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/loadgen"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
)

// provision builds the real provider of one fleet from its plan block.
func (a *app) provision(ctx context.Context, name string, f *plan.Fleet, render orchestrator.Renderer, runDir string, log zerolog.Logger) (orchestrator.Fleet, error) {
	outputs, err := renderMap(render, f.Outputs, "fleets."+name+".outputs")
	if err != nil {
		return nil, err
	}
	switch f.Provider {
	case plan.ProviderStatic:
		return &fleetAdapter{p: infra.NewStatic(name, outputs), provider: f.Provider, secrets: &a.secrets}, nil
	case plan.ProviderLocal:
		cfg := infra.LocalConfig{Fleet: name, Outputs: outputs, LogDir: runDir, Log: log}
		for i, pr := range f.Processes {
			path := fmt.Sprintf("fleets.%s.processes[%d]", name, i)
			lp := infra.LocalProcess{Name: pr.Name, ReadyTimeout: pr.ReadyTimeout.D(), Replicas: pr.Replicas, Scalable: pr.Scalable}
			if lp.Dir, err = render(pr.Dir); err != nil {
				return nil, fmt.Errorf("%s.dir: %w", path, err)
			}
			for j, arg := range pr.Command {
				s, err := render(arg)
				if err != nil {
					return nil, fmt.Errorf("%s.command[%d]: %w", path, j, err)
				}
				lp.Command = append(lp.Command, s)
			}
			if lp.Ready, err = render(pr.Ready); err != nil {
				return nil, fmt.Errorf("%s.ready: %w", path, err)
			}
			if lp.Env, err = renderMap(render, pr.Env, path+".env"); err != nil {
				return nil, err
			}
			if lp.Files, err = renderMap(render, pr.Files, path+".files"); err != nil {
				return nil, err
			}
			cfg.Processes = append(cfg.Processes, lp)
		}
		return &fleetAdapter{p: infra.NewLocal(cfg), provider: f.Provider, secrets: &a.secrets}, nil
	case plan.ProviderTerraform:
		tf, err := a.terraformProvider(name, f, render, runDir, log)
		if err != nil {
			return nil, err
		}
		return &fleetAdapter{p: tf, provider: f.Provider, secrets: &a.secrets}, nil
	}
	return nil, fmt.Errorf("unknown provider %q", f.Provider)
}

func renderMap(render orchestrator.Renderer, m map[string]string, path string) (map[string]string, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]string, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s, err := render(m[k])
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", path, k, err)
		}
		out[k] = s
	}
	return out, nil
}

// fleetAdapter presents an infra.Provider as the orchestrator's Fleet.
type fleetAdapter struct {
	p        infra.Provider
	provider string
	// secrets collects the values of sensitive outputs, for the upload.
	secrets *secretSet
}

// secretSet holds the values of the sensitive outputs the run's fleets
// reported, so that --upload replaces them in whatever file holds one.
type secretSet struct {
	mu   sync.Mutex
	vals []string
}

func (s *secretSet) add(vals ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals = append(s.vals, vals...)
}

func (s *secretSet) values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.vals)
}

func (f *fleetAdapter) state(fl *infra.Fleet) orchestrator.FleetState {
	st := orchestrator.FleetState{Outputs: fl.Outputs, Sensitive: fl.Sensitive, Size: fl.Size}
	f.secrets.add(record.SecretValues(fl.Outputs, fl.Sensitive)...)
	pids := map[string]int{}
	for _, pr := range fl.Processes {
		st.Processes = append(st.Processes, orchestrator.Process{Name: pr.Name, Pid: pr.Pid, LogPath: pr.LogPath})
		pids[pr.Name] = pr.Pid
	}
	st.Ref = record.InfraRef{Fleet: fl.Name, Provider: f.provider, Pids: pids, Outputs: record.RedactOutputs(fl.Outputs, fl.Sensitive),
		Module: fl.Ref[infra.RefModule], Workspace: fl.Ref[infra.RefWorkspace], State: fl.Ref[infra.RefState]}
	return st
}

func (f *fleetAdapter) Up(ctx context.Context) (orchestrator.FleetState, error) {
	fl, err := f.p.Up(ctx)
	if err != nil {
		return orchestrator.FleetState{}, err
	}
	return f.state(fl), nil
}

func (f *fleetAdapter) Scale(ctx context.Context, factor float64) (orchestrator.FleetState, bool, error) {
	fl, err := f.p.Scale(ctx, factor)
	if errors.Is(err, infra.ErrCannotScale) {
		return orchestrator.FleetState{}, false, nil
	}
	if err != nil {
		return orchestrator.FleetState{}, false, err
	}
	return f.state(fl), true, nil
}

func (f *fleetAdapter) Down(ctx context.Context) error { return f.p.Down(ctx) }

// Check reports a process that died while the fleet was up, for providers
// that watch their processes.
func (f *fleetAdapter) Check() error {
	if c, ok := f.p.(interface{ Check() error }); ok {
		return c.Check()
	}
	return nil
}

// newEngine builds the plan's engine.
func newEngine(ctx context.Context, p *plan.Plan, render orchestrator.Renderer, log zerolog.Logger) (orchestrator.Engine, error) {
	switch p.Workload.Engine {
	case plan.EngineBuiltin:
		if p.Workload.PubSub != nil {
			return newPubSubEngine(p, render, log)
		}
		h := p.Workload.HTTP
		url, err := render(h.URL)
		if err != nil {
			return nil, fmt.Errorf("workload.http.url: %w", err)
		}
		body, err := render(h.Body)
		if err != nil {
			return nil, fmt.Errorf("workload.http.body: %w", err)
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
		return &builtinEngine{g: g, poisson: p.Workload.Arrival == "poisson"}, nil
	case plan.EngineLocust:
		return newLocustEngine(p, render, log)
	}
	return nil, fmt.Errorf("engine %q is not available in this build yet", p.Workload.Engine)
}

// defaultConnections is the builtin engine's connection count when a plan
// does not ramp connections.
const defaultConnections = 64

// builtinEngine adapts loadgen.Generator to the orchestrator's Engine.
type builtinEngine struct {
	g       *loadgen.Generator
	poisson bool
}

func (e *builtinEngine) Step(ctx context.Context, s orchestrator.EngineStep) (*orchestrator.EngineResult, error) {
	conns := int(s.Params["connections"])
	if conns <= 0 {
		conns = defaultConnections
	}
	w, err := e.g.Run(ctx, loadgen.Step{
		Rate:        s.Params["rate"],
		Connections: conns,
		Warmup:      s.Warmup,
		Hold:        s.Hold,
		Poisson:     e.poisson,
		OnSecond:    s.OnSecond,
	})
	if w == nil {
		return nil, err
	}
	return &orchestrator.EngineResult{Metrics: w.Metrics(), Series: w.Series, ErrorClasses: w.ErrorClasses}, err
}

func (e *builtinEngine) Close() error { return e.g.Close() }
