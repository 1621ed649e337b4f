package wiring

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"google.golang.org/protobuf/types/known/durationpb"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/agent"
	"github.com/loadramp/loadramp/orchestrator/agents"
	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// agentSampler is the run's step sampler when fleets have agents: each
// step, every agent of a fleet of remote hosts opens a sampling window on
// its host (package observe, in the agent), and base samples this machine
// when anything of the run runs on it. Each host is reported on its own
// (SampleSpec.Host) with its findings, named by the agent's name; the step's
// target.* and host.* metrics are the worst target host's.
type agentSampler struct {
	set    *agentSet
	base   orchestrator.StepSampler // nil: nothing of the run runs here
	host   string                   // this machine's name in findings
	log    zerolog.Logger
	prefix string

	mu      sync.Mutex
	windows int
}

var _ orchestrator.HostAuditor = (*agentSampler)(nil)

func newAgentSampler(cfg Config, p *plan.Plan, render orchestrator.Renderer, base orchestrator.StepSampler, log zerolog.Logger) *agentSampler {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	s := &agentSampler{set: newAgentSet(cfg, p, render, log), host: cfg.Host, log: log, prefix: hex.EncodeToString(b)}
	if runsHere(p) {
		s.base = base
	}
	return s
}

// observed are the fleets whose hosts their agents observe.
func (s *agentSampler) observed() []string {
	var out []string
	for _, name := range s.set.fleets() {
		if !observedHere(s.set.p.Fleets[name]) {
			out = append(out, name)
		}
	}
	return out
}

// Local implements orchestrator.HostAuditor.
func (s *agentSampler) Local() bool { return s.base != nil }

// AuditHosts implements orchestrator.HostAuditor: each observed host's
// limits funnel, read by its agent (the processes the plan names found by
// their command name, nginx's configuration from its master).
func (s *agentSampler) AuditHosts(ctx context.Context) (map[string]map[string]any, []string, error) {
	out := map[string]map[string]any{}
	var warnings []string
	var errs []string
	for _, fleet := range s.observed() {
		cs, err := s.set.dial(ctx, fleet)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		var procs []*agentv1.Process
		for _, name := range s.set.p.Fleets[fleet].Agents.Processes {
			procs = append(procs, &agentv1.Process{Name: name, Side: plan.FleetSide(fleet)})
		}
		for _, c := range cs {
			a, err := c.AuditLimits(ctx, &agentv1.AuditLimitsRequest{Processes: procs})
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			audit := auditFromWire(a)
			out[c.Name()] = audit.Static()
			for _, w := range audit.Warnings {
				warnings = append(warnings, fmt.Sprintf("host %s: %s", c.Name(), w))
			}
		}
	}
	if len(errs) > 0 {
		return out, warnings, fmt.Errorf("limits audit: %s", strings.Join(errs, "; "))
	}
	return out, warnings, nil
}

// auditFromWire reads an agent's audit.
func auditFromWire(a *agentv1.AuditLimitsResponse) diagnose.Audit {
	out := diagnose.Audit{Somaxconn: a.Somaxconn, TCPMaxSynBacklog: a.TcpMaxSynBacklog, ConntrackMax: a.ConntrackMax,
		FileMax: a.FileMax, PortRange: a.PortRange, TCPTWReuse: a.TcpTwReuse, Warnings: a.Warnings}
	if n := a.Nginx; n != nil {
		c := &diagnose.NginxConf{Path: n.Path, WorkerProcesses: int(n.WorkerProcesses), WorkerProcessesAuto: n.WorkerProcessesAuto,
			WorkerConnections: int(n.WorkerConnections), WorkerRlimitNofile: n.WorkerRlimitNofile, Proxies: n.Proxies}
		for _, b := range n.Backlogs {
			c.Backlogs = append(c.Backlogs, int(b))
		}
		out.Nginx = c
	}
	for _, p := range a.Procs {
		out.Procs = append(out.Procs, diagnose.ProcLimit{Name: p.Name, Pid: int(p.Pid), NoFile: p.Nofile, OpenFDs: int(p.OpenFds), Err: p.Error})
	}
	return out
}

// observing is one fleet's window across its agents.
type observing struct {
	fleet, side string
	clients     []*agents.Client
	// names are the fleet's agents when they could not be dialed.
	names []agents.Endpoint
	o     *agents.Observing
	err   error
}

// sharedMachines are the boot ids of the machines whose agents serve both
// sides (a target fleet's agent and a generators fleet's on one kernel:
// containers or network namespaces of one machine), from the boot ids of
// each side's agents: such a machine's CPUs and kernel tables are both
// sides', so its host-wide findings are given to neither.
func sharedMachines(bySide map[string][]string) map[string]bool {
	first := map[string]string{}
	shared := map[string]bool{}
	for side, ids := range bySide {
		for _, id := range ids {
			if id == "" {
				continue
			}
			if s, ok := first[id]; ok && s != side {
				shared[id] = true
			}
			first[id] = side
		}
	}
	return shared
}

// names lists a fleet's agents as the plan and its outputs name them, for
// the record of hosts that could not be observed.
func (s *agentSampler) names(fleet string) []agents.Endpoint {
	eps, _ := s.set.endpoints(fleet)
	return eps
}

func (s *agentSampler) Start(ctx context.Context, spec orchestrator.SampleSpec) (func(orchestrator.StepFacts) (map[string]float64, []result.Finding), error) {
	var stopBase func(orchestrator.StepFacts) (map[string]float64, []result.Finding)
	if s.base != nil {
		var err error
		if stopBase, err = s.base.Start(ctx, spec); err != nil {
			s.log.Warn().Err(err).Msg("this machine's sampler did not start; the step has the agents' observations only")
			stopBase = nil
		}
	}
	s.mu.Lock()
	s.windows++
	id := fmt.Sprintf("%s-w%d", s.prefix, s.windows)
	s.mu.Unlock()
	var opens []*observing
	for _, fleet := range s.observed() {
		ob := &observing{fleet: fleet, side: plan.FleetSide(fleet)}
		opens = append(opens, ob)
		ob.clients, ob.err = s.set.dial(ctx, fleet)
	}
	bySide := map[string][]string{}
	for _, ob := range opens {
		for _, c := range ob.clients {
			bySide[ob.side] = append(bySide[ob.side], c.Hello().GetBootId())
		}
	}
	shared := sharedMachines(bySide)
	for _, ob := range opens {
		if ob.err != nil {
			continue
		}
		fleet := ob.fleet
		logs, err := s.logs(fleet)
		if err != nil {
			ob.err = err
			continue
		}
		var procs []*agentv1.Process
		for _, name := range s.set.p.Fleets[fleet].Agents.Processes {
			procs = append(procs, &agentv1.Process{Name: name, Side: ob.side})
		}
		ob.o, ob.err = agents.Observe(ctx, ob.clients, id, agent.DefaultKeepalive, func(c *agents.Client) *agentv1.StartObservationRequest {
			return &agentv1.StartObservationRequest{Side: ob.side, SharedMachine: shared[c.Hello().GetBootId()], Processes: procs, Logs: logs,
				Warmup: durationpb.New(spec.Warmup)}
		})
	}
	for _, ob := range opens {
		if ob.err != nil {
			s.log.Warn().Err(ob.err).Str("fleet", ob.fleet).Msg("the fleet's agents did not open their sampling windows")
			if ob.clients == nil {
				ob.names = s.names(ob.fleet)
			}
		}
	}
	return func(f orchestrator.StepFacts) (map[string]float64, []result.Finding) {
		m := metrics.Metrics{}
		var findings []result.Finding
		if stopBase != nil {
			lf := f
			if s.set.p.BuiltinOnAgents() {
				// The engine ran on the agents: its generator.* figures are
				// theirs (the worst agent's), which this machine's diagnosis
				// must not read as its own threads'.
				lf.Metrics = maps.Clone(f.Metrics)
				maps.DeleteFunc(lf.Metrics, func(k string, _ float64) bool { return strings.HasPrefix(k, "generator.") })
			}
			bm, bf := stopBase(lf)
			if spec.Host != nil {
				spec.Host(result.Host{Host: s.host, Source: "this machine (/proc)", Metrics: maps.Clone(bm)})
			}
			if s.set.p.BuiltinOnAgents() {
				// The agents' own health is the generator's (the engine's
				// worst agent), not these processes' sum.
				for k := range bm {
					if strings.HasPrefix(k, "generator.") {
						delete(bm, k)
					}
				}
			}
			m.Merge(bm)
			findings = bf
		}
		worst := metrics.Metrics{}
		for _, ob := range opens {
			for _, e := range ob.names {
				if spec.Host != nil {
					spec.Host(result.Host{Host: e.Name, Side: ob.side, Fleet: ob.fleet, Source: "agent " + e.URL, Error: ob.err.Error()})
				}
			}
			var hosts []*agentv1.HostObservation
			err := ob.err
			if ob.o != nil {
				hosts, err = ob.o.Stop(context.WithoutCancel(ctx), f.ErrorClasses)
			}
			if err != nil {
				s.log.Warn().Err(err).Str("fleet", ob.fleet).Msg("agents' observations")
			}
			for i, c := range ob.clients {
				h := result.Host{Host: c.Name(), Side: ob.side, Fleet: ob.fleet, Source: "agent " + c.Endpoint().URL}
				var ho *agentv1.HostObservation
				if i < len(hosts) {
					ho = hosts[i]
				}
				if ho == nil {
					h.Error = "not observed"
					if err != nil {
						h.Error = err.Error()
					}
					if spec.Host != nil {
						spec.Host(h)
					}
					continue
				}
				h.Samples, h.Metrics, h.Unavailable = int(ho.Samples), ho.Metrics, ho.Unavailable
				if h.Metrics == nil {
					h.Metrics = map[string]float64{}
				}
				for _, fd := range agent.FindingsFromWire(ho.Findings) {
					fd.Host = c.Name()
					findings = append(findings, fd)
				}
				if ob.side == result.SideTarget {
					for k, v := range ho.Metrics {
						if strings.HasPrefix(k, "target.") || strings.HasPrefix(k, "host.") {
							if old, ok := worst[k]; !ok || v > old {
								worst[k] = v
							}
						}
					}
				}
				if spec.Host != nil {
					spec.Host(h)
				}
			}
		}
		// The target hosts' figures describe the target; this machine's,
		// if it is sampled, describe it only where no target host does.
		m.Merge(worst)
		return m, findings
	}, nil
}

// logs are a fleet's log files on its agents' hosts.
func (s *agentSampler) logs(fleet string) ([]*agentv1.LogFile, error) {
	var out []*agentv1.LogFile
	for i, l := range s.set.p.Fleets[fleet].Logs {
		path, err := s.set.render(l)
		if err != nil {
			return nil, fmt.Errorf("fleets.%s.logs[%d]: %w", fleet, i, err)
		}
		out = append(out, &agentv1.LogFile{Path: path, Side: plan.FleetSide(fleet)})
	}
	return out, nil
}
