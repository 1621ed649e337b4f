package report

import (
	"fmt"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// hostColumns are the host figures the per-host table shows, when any host
// has them.
var hostColumns = []struct{ metric, label string }{
	{"host.cpu", "host cpu"},
	{"host.psi.cpu.some", "cpu pressure"},
	{metrics.TargetCPU, "target cpu"},
	{metrics.TargetFDRatio, "target fds"},
	{metrics.GeneratorCPU, "gen cpu"},
	{"host.listen_overflows", "listen overflows"},
	{"host.syn.reqq_full_drops", "SYN drops"},
	{"host.tcp.tw", "TIME_WAIT"},
	{"host.conntrack.ratio", "conntrack"},
}

// agentColumns are an agent's figures the per-agent table shows.
var agentColumns = []struct{ metric, label string }{
	{metrics.RequestsCount, "requests"},
	{metrics.ThroughputRPS, "achieved"},
	{metrics.LatencyP99, "p99"},
	{metrics.ErrorsRatio, "errors"},
	{metrics.GeneratorCPU, "gen cpu"},
	{metrics.GeneratorLagP99, "lag p99"},
	{metrics.GeneratorStarvedRatio, "starvation"},
}

// hostsView is one attempt's hosts and agents, each with its own figures.
type hostsView struct {
	// Step names the attempt shown: the bottleneck's, else the capacity's,
	// else the last one that observed hosts.
	Step      string
	HostCols  []string
	Hosts     []hostRow
	AgentCols []string
	Agents    []agentRow
	HasAgents bool
	HasHosts  bool
	AgentStep string
}

type hostRow struct {
	Host, Side, Source string
	// Samples is the count of samples, "" when the observer does not say.
	Samples  string
	Findings int
	Values   []string
	Error    string
}

type agentRow struct {
	Agent, Params string
	Values        []string
	Idle          bool
	Error         string
}

// hostsOf picks the attempt to show per host: the failing attempt of the
// bottleneck, else the capacity's, else the last with hosts (or agents).
func hostsOf(r *Report) hostsView {
	var v hostsView
	pick := func(has func(result.Step) bool) *result.Step {
		if f := failingStep(r); f != nil && r.Bottleneck != nil && has(*f) {
			return f
		}
		if c := r.Capacity; c != nil {
			for i := range r.Steps {
				s := &r.Steps[i]
				if s.Index == c.Step && s.Attempt == c.Attempt && s.Kind == c.Kind && has(*s) {
					return s
				}
			}
		}
		for i := len(r.Steps) - 1; i >= 0; i-- {
			if has(r.Steps[i]) {
				return &r.Steps[i]
			}
		}
		return nil
	}
	if s := pick(func(s result.Step) bool { return len(s.Hosts) > 0 }); s != nil {
		v.HasHosts = true
		v.Step = StepName(*s, r.Parameters)
		var cols []string
		for _, c := range hostColumns {
			for _, h := range s.Hosts {
				if _, ok := h.Metrics[c.metric]; ok {
					cols = append(cols, c.metric)
					v.HostCols = append(v.HostCols, c.label)
					break
				}
			}
		}
		for _, h := range s.Hosts {
			row := hostRow{Host: h.Host, Side: h.Side, Source: h.Source, Findings: h.Findings, Error: h.Error}
			if h.Samples > 0 {
				row.Samples = fmt.Sprint(h.Samples)
			}
			for _, m := range cols {
				cell := ""
				if x, ok := h.Metrics[m]; ok {
					cell = metrics.FormatValue(m, x)
				}
				row.Values = append(row.Values, cell)
			}
			v.Hosts = append(v.Hosts, row)
		}
	}
	if s := pick(func(s result.Step) bool { return len(s.Agents) > 0 }); s != nil {
		v.HasAgents = true
		v.AgentStep = StepName(*s, r.Parameters)
		var cols []string
		for _, c := range agentColumns {
			for _, a := range s.Agents {
				if _, ok := a.Metrics[c.metric]; ok {
					cols = append(cols, c.metric)
					v.AgentCols = append(v.AgentCols, c.label)
					break
				}
			}
		}
		for _, a := range s.Agents {
			row := agentRow{Agent: a.Agent, Params: ParamString(a.Parameters, r.Parameters), Idle: a.Idle, Error: a.Error}
			if a.Idle {
				row.Params = "(sat the step out)"
			}
			for _, m := range cols {
				cell := ""
				if x, ok := a.Metrics[m]; ok {
					cell = metrics.FormatValue(m, x)
				}
				row.Values = append(row.Values, cell)
			}
			v.Agents = append(v.Agents, row)
		}
	}
	return v
}

// markdownHosts writes the per-host and per-agent tables.
func markdownHosts(p func(string, ...any), r *Report) {
	v := hostsOf(r)
	if v.HasHosts {
		p("## Hosts\n\nEach host observed over the hold of %s.\n\n", mdText(v.Step))
		p("| host | side | observed by | samples | findings |")
		for _, c := range v.HostCols {
			p(" %s |", c)
		}
		p("\n|---|---|---|---:|---:|")
		for range v.HostCols {
			p("---:|")
		}
		p("\n")
		for _, h := range v.Hosts {
			p("| %s | %s | %s | %s | %d |", mdCell(h.Host), mdCell(h.Side), mdCell(hostSource(h)), h.Samples, h.Findings)
			for _, x := range h.Values {
				p(" %s |", x)
			}
			p("\n")
		}
		p("\n")
	}
	if v.HasAgents {
		p("## Agents\n\nEach agent's share and measurement of %s.\n\n", mdText(v.AgentStep))
		p("| agent | share |")
		for _, c := range v.AgentCols {
			p(" %s |", c)
		}
		p("\n|---|---|")
		for range v.AgentCols {
			p("---:|")
		}
		p("\n")
		for _, a := range v.Agents {
			share := a.Params
			if a.Error != "" {
				share += " (" + a.Error + ")"
			}
			p("| %s | %s |", mdCell(a.Agent), mdCell(share))
			for _, x := range a.Values {
				p(" %s |", x)
			}
			p("\n")
		}
		p("\n")
	}
}

func hostSource(h hostRow) string {
	if h.Error != "" {
		return fmt.Sprintf("%s (not observed: %s)", h.Source, h.Error)
	}
	return h.Source
}
