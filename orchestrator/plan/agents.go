package plan

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Agents says where a fleet's agents are (`loadramp agent`, docs/agents.md):
// one loadramp on each of the fleet's hosts that generates the host's share
// of the load (on the generators fleet, with the builtin engine) and
// observes the host over every step (its counters, limits, logs and network
// devices). A fleet lists them through a provider output, in the plan, or
// both; a local fleet can start them on this machine.
type Agents struct {
	// Output names the fleet output that lists the agents: their URLs
	// (http://HOST:PORT or https://HOST:PORT) as a JSON list of strings, or
	// separated by commas or white space. The output is read again after the
	// fleet grows, so new hosts' agents join.
	Output string `yaml:"output,omitempty" json:"output,omitempty"`
	// Endpoints are agents written in the plan (templates).
	Endpoints []AgentEndpoint `yaml:"endpoints,omitempty" json:"endpoints,omitempty"`
	// Local, on a local fleet, starts this many agents on this machine
	// (loadramp agent on 127.0.0.1, named <fleet>-agent-N). They are the
	// fleet's unit of growth: a generator-fail multiplies them by ramp.factor.
	Local int `yaml:"local,omitempty" json:"local,omitempty"`
	// CA is a PEM file of the CA that signed the https:// agents'
	// certificates (default: the agent_ca configuration key, then the
	// system's roots).
	CA string `yaml:"ca,omitempty" json:"ca,omitempty"`
	// Processes name processes the agents watch on their hosts, by command
	// name (/proc/PID/comm): their CPU, memory and open files every step, and
	// their limits in the audit before the first step.
	Processes []string `yaml:"processes,omitempty" json:"processes,omitempty"`
	// MaxClockOffset refuses an agent whose clock is further than this from
	// the coordinator's (default DefaultMaxClockOffset): the agents of a step
	// start at one instant of their own clocks.
	MaxClockOffset Duration `yaml:"max_clock_offset,omitempty" json:"max_clock_offset,omitempty"`
}

// AgentEndpoint is one agent written in the plan.
type AgentEndpoint struct {
	// Name names the agent in findings, steps and messages (default: the
	// URL's host:port).
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	URL  string `yaml:"url" json:"url"`
}

// Limits and defaults of an agents block.
const (
	// MaxLocalAgents bounds agents.local.
	MaxLocalAgents = 64
	// MaxAgentClockOffset bounds agents.max_clock_offset: agents further
	// apart than this cannot start a step together.
	MaxAgentClockOffset = 10 * time.Second
	// DefaultMaxClockOffset is agents.max_clock_offset's default.
	DefaultMaxClockOffset = Duration(100 * time.Millisecond)
	// AgentsOutput is the output through which a local fleet with local
	// agents lists them (like SizeOutput).
	AgentsOutput = "agents"
)

// HasAgents reports whether the fleet declares agents.
func (f *Fleet) HasAgents() bool {
	return f != nil && f.Agents != nil && (f.Agents.Output != "" || len(f.Agents.Endpoints) > 0 || f.Agents.Local > 0)
}

// LogsOnAgents reports whether the fleet's logs are files on its agents'
// hosts, read by the agents, rather than files on this machine: when the
// fleet declares agents and is not local.
func (f *Fleet) LogsOnAgents() bool {
	return f.HasAgents() && f.Provider != ProviderLocal
}

// FleetSide is the side a fleet's hosts serve: the generator side for the
// generators fleet, the target's for any other.
func FleetSide(fleet string) string {
	if fleet == "generators" {
		return "generator"
	}
	return "target"
}

// BuiltinOnAgents reports whether the plan's builtin engine runs on the
// generators fleet's agents rather than inside loadramp.
func (p *Plan) BuiltinOnAgents() bool {
	return p.Workload.Engine == EngineBuiltin && p.Fleets["generators"].HasAgents()
}

func (v *validator) agents(name string, f *Fleet) {
	fp := "fleets." + name
	a := f.Agents
	if a == nil {
		if name == "generators" && v.p.Workload.Engine == EngineBuiltin && f.Provider != ProviderLocal {
			v.add(fp+".agents", "the builtin engine runs inside loadramp on this machine, or on the agents of a %s generators fleet: "+
				"say where they are (agents: {output: agents} for a module that outputs their URLs, or agents: {endpoints: [{url: http://HOST:7070}]}), "+
				"or make the generators fleet local", f.Provider)
		}
		return
	}
	ap := fp + ".agents"
	if !f.HasAgents() {
		v.add(ap, "names no agent: give output (a fleet output listing their URLs), endpoints, or local (a local fleet's count)")
	}
	if a.Output != "" {
		switch {
		case !identRe.MatchString(a.Output):
			v.add(ap+".output", "%q is not an output name: use letters, digits and _", a.Output)
		case f.Provider == ProviderLocal:
			v.add(ap+".output", "a local fleet lists its agents itself: use agents.local (or endpoints)")
		case f.Provider == ProviderStatic:
			if _, ok := f.Outputs[a.Output]; !ok {
				v.add(ap+".output", "fleet %q has no output %q%s", name, a.Output, hint(a.Output, mapKeys(f.Outputs)))
			}
		}
	}
	if a.Local != 0 {
		switch {
		case f.Provider != ProviderLocal:
			v.add(ap+".local", "only a local fleet starts agents on this machine (provider is %q): list them with output or endpoints", f.Provider)
		case a.Local < 1 || a.Local > MaxLocalAgents:
			v.add(ap+".local", "%d: must be from 1 to %d", a.Local, MaxLocalAgents)
		}
		if _, ok := f.Outputs[AgentsOutput]; ok {
			v.add(fp+".outputs."+AgentsOutput, "local agents report this output themselves: rename it")
		}
	}
	names := map[string]int{}
	for i, e := range a.Endpoints {
		ep := fmt.Sprintf("%s.endpoints[%d]", ap, i)
		switch {
		case strings.TrimSpace(e.URL) == "":
			v.add(ep+".url", "missing; give the agent's address, e.g. http://10.0.1.5:7070")
		case !strings.Contains(e.URL, "{{"):
			if err := CheckAgentURL(e.URL); err != nil {
				v.add(ep+".url", "%v", err)
			}
		}
		if e.Name != "" {
			if !planNameRe.MatchString(e.Name) {
				v.add(ep+".name", "%q: use 1-64 letters, digits, '.', '_' or '-'", e.Name)
			}
			if j, dup := names[e.Name]; dup {
				v.add(ep+".name", "duplicate agent name %q (also %s.endpoints[%d])", e.Name, ap, j)
			} else {
				names[e.Name] = i
			}
		}
	}
	if strings.Contains(a.CA, "\x00") {
		v.add(ap+".ca", "not a file path")
	}
	for i, pr := range a.Processes {
		if strings.TrimSpace(pr) == "" || strings.ContainsAny(pr, "/\x00") {
			v.add(fmt.Sprintf("%s.processes[%d]", ap, i), "%q: give a process's command name (as ps -o comm shows it)", pr)
		}
	}
	if a.MaxClockOffset < 0 {
		v.add(ap+".max_clock_offset", "must be >= 0")
	}
	v.atMost(ap+".max_clock_offset", "Agents.max_clock_offset", float64(a.MaxClockOffset))
}

// CheckAgentURL checks an agent's address: http://HOST:PORT or
// https://HOST:PORT, nothing after the port.
func CheckAgentURL(s string) error {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Port() == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%q: an agent's address is http://HOST:PORT or https://HOST:PORT", s)
	}
	return nil
}
