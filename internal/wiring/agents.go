package wiring

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"connectrpc.com/connect"
	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/agents"
	"github.com/loadramp/loadramp/orchestrator/plan"
)

// agentSet is a run's agents, fleet by fleet: where they are is read again
// from the plan and the fleets' outputs whenever it is asked (a grown fleet
// lists more), and each agent is dialed once (its client kept by URL).
type agentSet struct {
	cfg    Config
	p      *plan.Plan
	render orchestrator.Renderer
	log    zerolog.Logger

	mu      sync.Mutex
	clients map[string]*agents.Client // by URL
	cas     map[string]*x509.CertPool // by CA file
}

func newAgentSet(cfg Config, p *plan.Plan, render orchestrator.Renderer, log zerolog.Logger) *agentSet {
	return &agentSet{cfg: cfg, p: p, render: render, log: log, clients: map[string]*agents.Client{}, cas: map[string]*x509.CertPool{}}
}

// fleets are the plan's fleets that declare agents, in name order.
func (s *agentSet) fleets() []string {
	var out []string
	for _, name := range sortedNames(s.p.Fleets) {
		if s.p.Fleets[name].HasAgents() {
			out = append(out, name)
		}
	}
	return out
}

// endpoints lists a fleet's agents as they are now: the plan's endpoints,
// then the fleet output's list (its local agents' for a local fleet).
func (s *agentSet) endpoints(fleet string) ([]agents.Endpoint, error) {
	f := s.p.Fleets[fleet]
	if !f.HasAgents() {
		return nil, nil
	}
	a := f.Agents
	path := "fleets." + fleet + ".agents"
	var eps []agents.Endpoint
	for i, e := range a.Endpoints {
		u, err := s.render(e.URL)
		if err != nil {
			return nil, fmt.Errorf("%s.endpoints[%d].url: %w", path, i, err)
		}
		if err := plan.CheckAgentURL(u); err != nil {
			return nil, fmt.Errorf("%s.endpoints[%d].url: %w", path, i, err)
		}
		list, err := agents.ParseList(u)
		if err != nil {
			return nil, fmt.Errorf("%s.endpoints[%d].url: %w", path, i, err)
		}
		if e.Name != "" {
			list[0].Name = e.Name
		}
		eps = append(eps, list...)
	}
	output := a.Output
	if a.Local > 0 {
		output = plan.AgentsOutput
	}
	if output != "" {
		v, err := s.render("{{ ." + "fleets." + fleet + "." + output + " }}")
		if err != nil {
			return nil, fmt.Errorf("%s.output: %w", path, err)
		}
		list, err := agents.ParseList(v)
		if err != nil {
			return nil, fmt.Errorf("%s.output: fleets.%s.%s: %w", path, fleet, output, err)
		}
		eps = append(eps, list...)
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("%s: the fleet lists no agent (output %q is empty)", path, output)
	}
	seen := map[string]string{}
	for _, e := range eps {
		if u, dup := seen[e.Name]; dup {
			return nil, fmt.Errorf("%s: two agents are named %q (%s and %s): name them in the plan", path, e.Name, u, e.URL)
		}
		seen[e.Name] = e.URL
	}
	return eps, nil
}

// options are the connection options of a fleet's agents: the configured
// token, else for agents the run starts itself (a local or Terraform fleet)
// the run's own token.
func (s *agentSet) options(fleet string) (agents.Options, error) {
	o := agents.Options{Version: s.cfg.Version, Token: s.cfg.AgentToken}
	if o.Token == "" && s.p.Fleets[fleet].Provider != plan.ProviderStatic {
		o.Token = s.cfg.runToken
	}
	ca := s.cfg.AgentCA
	if a := s.p.Fleets[fleet].Agents; a != nil && a.CA != "" {
		var err error
		if ca, err = s.render(a.CA); err != nil {
			return o, fmt.Errorf("fleets.%s.agents.ca: %w", fleet, err)
		}
	}
	if ca == "" {
		return o, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pool, ok := s.cas[ca]
	if !ok {
		var err error
		if pool, err = agents.LoadCA(ca); err != nil {
			return o, fmt.Errorf("fleets.%s.agents.ca: %w", fleet, err)
		}
		s.cas[ca] = pool
	}
	o.RootCAs = pool
	return o, nil
}

// dial returns the fleet's agents as they are now, dialing those not dialed
// yet (at once); an agent that refuses is named with its reason.
func (s *agentSet) dial(ctx context.Context, fleet string) ([]*agents.Client, error) {
	eps, err := s.endpoints(fleet)
	if err != nil {
		return nil, err
	}
	opts, err := s.options(fleet)
	if err != nil {
		return nil, err
	}
	out := make([]*agents.Client, len(eps))
	errs := make([]error, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		s.mu.Lock()
		c, ok := s.clients[ep.URL]
		s.mu.Unlock()
		if ok && c.Name() == ep.Name {
			out[i] = c
			continue
		}
		wg.Go(func() {
			c, err := agents.Dial(ctx, ep, opts)
			if err != nil {
				var ae *agents.Error
				if errors.As(err, &ae) && ae.Code == connect.CodeUnauthenticated && s.cfg.AgentToken == "" {
					err = fmt.Errorf("%w (loadramp has no agent token: set agent_token in the configuration, or LOADRAMP_AGENT_TOKEN)", err)
				}
				errs[i] = fmt.Errorf("fleet %s: %w", fleet, err)
				return
			}
			s.mu.Lock()
			s.clients[ep.URL] = c
			s.mu.Unlock()
			out[i] = c
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// observedHere reports whether a fleet's hosts are this machine's, which
// the local sampler observes: any fleet but one of remote hosts with agents
// (the agents a local fleet starts share this machine).
func observedHere(f *plan.Fleet) bool { return !f.LogsOnAgents() }

// runsHere reports whether anything of the run runs on this machine: the
// engine (the builtin one inside loadramp, a local generators fleet), a
// local fleet's processes, or a fleet that has no agent to observe its
// hosts (today's behaviour: this machine is sampled for it).
func runsHere(p *plan.Plan) bool {
	if p.Workload.Engine == plan.EngineBuiltin && !p.BuiltinOnAgents() {
		return true
	}
	for _, f := range p.Fleets {
		if f == nil || f.Provider == plan.ProviderLocal || !f.HasAgents() {
			return true
		}
	}
	return false
}

// runToken returns the token of the agents a run starts itself (a local
// fleet's, a Terraform module's): the configured AgentToken, or a random one
// that never leaves this process but to those agents (it is written to no
// file).
func runToken(cfg Config) string {
	if cfg.AgentToken != "" {
		return cfg.AgentToken
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sortedNames(m map[string]*plan.Fleet) []string { return slices.Sorted(maps.Keys(m)) }
