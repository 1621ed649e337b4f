package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/loadramp/loadramp/orchestrator/result"
)

// A run whose steps observed several hosts through their agents shows each
// host, and each agent's share, of the bottleneck's failing attempt.
func TestReportShowsHostsAndAgents(t *testing.T) {
	run, steps := fixtureRun()
	for i := range steps {
		steps[i].Hosts = []result.Host{
			{Host: "target-host", Side: "target", Fleet: "target", Source: "agent http://10.0.0.2:7070", Samples: 6, Findings: 1,
				Metrics: map[string]float64{"host.cpu": 0.5, "host.listen_overflows": float64(100 * i), "target.cpu": 0.25}},
			{Host: "gen-a", Side: "generator", Fleet: "generators", Source: "agent http://10.0.0.3:7070", Error: "agent gen-a unreachable <x>"},
		}
		steps[i].Agents = []result.AgentShare{
			{Agent: "gen-a", Parameters: map[string]float64{"rate": 100}, Metrics: map[string]float64{"requests.count": 500, "latency.p99": 0.012, "generator.starved.ratio": 0.15}},
			{Agent: "gen-b", Idle: true},
		}
	}
	rep := Build(run, steps)
	var md bytes.Buffer
	if err := WriteMarkdown(&md, rep); err != nil {
		t.Fatal(err)
	}
	failing := failingStep(rep)
	if failing == nil {
		t.Fatal("the fixture has no failing step")
	}
	want := []string{
		"## Hosts", "Each host observed over the hold of " + StepName(*failing, rep.Parameters),
		"| host | side | observed by | samples | findings | host cpu | target cpu | listen overflows |",
		"| target-host | target | agent http://10.0.0.2:7070 | 6 | 1 | 50% | 25% | 700 |",
		"| gen-a | generator | agent http://10.0.0.3:7070 (not observed: agent gen-a unreachable &lt;x>) |  | 0 |",
		"## Agents", "| agent | share | requests | p99 | starvation |",
		"| gen-a | rate=100 | 500 | 12 ms | 15% |", "| gen-b | (sat the step out) |",
	}
	for _, w := range want {
		if !strings.Contains(md.String(), w) {
			t.Errorf("report.md lacks %q:\n%s", w, md.String())
		}
	}
	var html bytes.Buffer
	if err := WriteHTML(&html, rep); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`<section id="hosts">`, `<td class="mono">target-host</td>`, `<section id="agents">`, "not observed: agent gen-a unreachable &lt;x&gt;"} {
		if !strings.Contains(html.String(), w) {
			t.Errorf("report.html lacks %q", w)
		}
	}
	// A run without hosts shows neither section.
	run, steps = fixtureRun()
	md.Reset()
	_ = WriteMarkdown(&md, Build(run, steps))
	if strings.Contains(md.String(), "## Hosts") || strings.Contains(md.String(), "## Agents") {
		t.Error("a run without hosts or agents shows their sections")
	}
}
