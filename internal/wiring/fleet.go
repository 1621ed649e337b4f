package wiring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/loadramp/loadramp/infra"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Provision returns the builder of the real provider of one fleet from its
// plan block: static endpoints, local processes or a Terraform module.
func Provision(cfg Config) func(ctx context.Context, spec orchestrator.ProvisionSpec) (orchestrator.Fleet, error) {
	return func(_ context.Context, spec orchestrator.ProvisionSpec) (orchestrator.Fleet, error) {
		return provision(cfg, spec)
	}
}

func provision(cfg Config, spec orchestrator.ProvisionSpec) (orchestrator.Fleet, error) {
	wcfg := cfg
	name, f, render, runDir, log := spec.Name, spec.Fleet, spec.Render, spec.RunDir, spec.Log
	outputs, err := renderMap(render, f.Outputs, "fleets."+name+".outputs")
	if err != nil {
		return nil, err
	}
	switch f.Provider {
	case plan.ProviderStatic:
		return &fleetAdapter{p: infra.NewStatic(name, outputs), provider: f.Provider}, nil
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
		fa := &fleetAdapter{provider: f.Provider}
		if a := f.Agents; a != nil && a.Local > 0 {
			lp, err := localAgents(wcfg, name, a.Local)
			if err != nil {
				return nil, fmt.Errorf("fleets.%s.agents.local: %w", name, err)
			}
			cfg.Processes = append(cfg.Processes, lp)
			fa.agents = lp.Name
		}
		fa.p = infra.NewLocal(cfg)
		return fa, nil
	case plan.ProviderTerraform:
		tf, err := terraformProvider(cfg, spec)
		if err != nil {
			return nil, err
		}
		return &fleetAdapter{p: tf, provider: f.Provider}, nil
	}
	return nil, fmt.Errorf("unknown provider %q", f.Provider)
}

// field is a template of the plan, where it is (for errors), and where its
// rendered text goes.
type field struct {
	path, text string
	out        *string
}

// renderFields renders every field, naming the path of the first that fails.
// An empty template stays empty.
func renderFields(render orchestrator.Renderer, fields ...field) error {
	for _, f := range fields {
		if f.text == "" {
			continue
		}
		s, err := render(f.text)
		if err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
		*f.out = s
	}
	return nil
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

// agentListening is the line `loadramp agent` prints once it listens.
var agentListening = regexp.MustCompile(`(?m)^agent \S+ listening on (\S+)`)

// localAgents is the local process that runs a local fleet's agents: this
// loadramp binary (or cfg.Loadramp) as `loadramp agent` on a free loopback
// port, n replicas, the fleet's unit of growth. Their token is the run's
// (the configured one, or one of the run's own), given in their
// environment, never on a command line or in a file.
func localAgents(cfg Config, fleet string, n int) (infra.LocalProcess, error) {
	bin := cfg.Loadramp
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return infra.LocalProcess{}, fmt.Errorf("finding the loadramp binary for the agents: %w", err)
		}
		bin = exe
	}
	return infra.LocalProcess{
		Name:     "agent",
		Command:  []string{bin, "agent", "--listen", "127.0.0.1:0", "--name", fleet + "-agent", "--log-format", "json"},
		Env:      map[string]string{EnvAgentToken: cfg.runToken},
		Replicas: n, Scalable: true, Address: agentListening,
	}, nil
}

// EnvAgentToken is the environment variable `loadramp agent` reads its
// token from when it is given no token file.
const EnvAgentToken = "LOADRAMP_AGENT_TOKEN"

// fleetAdapter presents an infra.Provider as the orchestrator's Fleet.
type fleetAdapter struct {
	p        infra.Provider
	provider string
	// agents names the local process that runs the fleet's agents ("" for
	// none): their addresses become the fleet's agents output.
	agents string
}

func (f *fleetAdapter) state(fl *infra.Fleet) orchestrator.FleetState {
	st := orchestrator.FleetState{Outputs: fl.Outputs, Sensitive: fl.Sensitive, Size: fl.Size}
	pids := map[string]int{}
	var ids map[string]result.ProcessID
	var list []string
	for _, pr := range fl.Processes {
		st.Processes = append(st.Processes, orchestrator.Process{Name: pr.Name, Pid: pr.Pid, LogPath: pr.LogPath})
		pids[pr.Name] = pr.Pid
		if id := pr.Identity; id.Known() {
			if ids == nil {
				ids = map[string]result.ProcessID{}
			}
			ids[pr.Name] = result.ProcessID{Pid: id.Pid, Start: id.Start, Boot: id.Boot, Exe: id.Exe}
		}
		if f.agents != "" && strings.HasPrefix(pr.Name, f.agents+"-") && pr.Address != "" {
			k, _ := json.Marshal(fl.Name + "-" + pr.Name)
			v, _ := json.Marshal("http://" + pr.Address)
			list = append(list, string(k)+":"+string(v))
		}
	}
	if f.agents != "" {
		// A JSON object from the agents' names to their URLs, in order.
		st.Outputs = maps.Clone(st.Outputs)
		if st.Outputs == nil {
			st.Outputs = map[string]string{}
		}
		st.Outputs[plan.AgentsOutput] = "{" + strings.Join(list, ",") + "}"
	}
	st.Ref = result.InfraRef{Fleet: fl.Name, Provider: f.provider, Pids: pids, Processes: ids, Outputs: record.RedactOutputs(fl.Outputs, fl.Sensitive),
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
