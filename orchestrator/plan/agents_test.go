package plan

import (
	"strings"
	"testing"
)

func TestValidateAgents(t *testing.T) {
	gens := func(block string) string {
		return replace(t, "static:\n", "  generators:\n"+block+"static:\n")
	}
	tfGens := gens("    provider: terraform\n    terraform: {dir: infra/modules/aws/generators}\n")
	staticGens := gens("    provider: static\n")
	tests := []struct {
		name string
		src  string
		sets []string
		want string // "" means valid
	}{
		{"builtin in loadramp", gens("    provider: local\n"), nil, ""},
		{"builtin on a terraform fleet without agents", tfGens, nil,
			"fleets.generators.agents (line 12): the builtin engine runs inside loadramp on this machine, or on the agents of a terraform generators fleet"},
		{"builtin on a static fleet without agents", staticGens, nil,
			"fleets.generators.agents (line 12): the builtin engine runs inside loadramp on this machine, or on the agents of a static generators fleet"},
		{"agents from an output", tfGens, []string{"fleets.generators.agents={output: agents}"}, ""},
		{"agents in the plan", staticGens, []string{"fleets.generators.agents={endpoints: [{name: g1, url: 'http://10.0.0.5:7070'}, {url: 'https://gen-2.internal:7070'}]}"}, ""},
		{"templated agent", staticGens, []string{"fleets.generators.agents={endpoints: [{url: 'http://{{ .static.nofile }}:7070'}]}"}, ""},
		{"locust needs no agents", tfGens, []string{"workload.engine=locust", "workload.http=null", "workload.locust={locustfile: plans/x.py}",
			"parameters[0].name=users", "parameters[1].name=spawn_rate", "parameters[1].start=8", "workload.arrival="}, ""},
		{"empty block", tfGens, []string{"fleets.generators.agents={}"},
			"fleets.generators.agents: names no agent: give output (a fleet output listing their URLs), endpoints, or local"},
		{"bad output name", tfGens, []string{"fleets.generators.agents={output: 'a-b'}"},
			`fleets.generators.agents.output: "a-b" is not an output name`},
		{"static output missing", staticGens, []string{"fleets.generators.outputs={list: x}", "fleets.generators.agents={output: lsit}"},
			`fleets.generators.agents.output: fleet "generators" has no output "lsit"; did you mean "list"?`},
		{"local output", gens("    provider: local\n"), []string{"fleets.generators.agents={output: agents}"},
			"fleets.generators.agents.output: a local fleet lists its agents itself: use agents.local"},
		{"local agents", gens("    provider: local\n"), []string{"fleets.generators.agents={local: 2}"}, ""},
		{"local agents on terraform", tfGens, []string{"fleets.generators.agents={local: 2}"},
			`fleets.generators.agents.local: only a local fleet starts agents on this machine (provider is "terraform")`},
		{"too many local agents", gens("    provider: local\n"), []string{"fleets.generators.agents={local: 65}"},
			"fleets.generators.agents.local: 65: must be from 1 to 64"},
		{"agent url with a path", staticGens, []string{"fleets.generators.agents={endpoints: [{url: 'http://10.0.0.5:7070/x'}]}"},
			`fleets.generators.agents.endpoints[0].url: "http://10.0.0.5:7070/x": an agent's address is http://HOST:PORT or https://HOST:PORT`},
		{"agent url without a port", staticGens, []string{"fleets.generators.agents={endpoints: [{url: 'http://10.0.0.5'}]}"},
			"an agent's address is http://HOST:PORT"},
		{"agent without url", staticGens, []string{"fleets.generators.agents={endpoints: [{name: a}]}"},
			"fleets.generators.agents.endpoints[0].url: missing; give the agent's address"},
		{"duplicate agent", staticGens, []string{"fleets.generators.agents={endpoints: [{name: a, url: 'http://h:1'}, {name: a, url: 'http://h:2'}]}"},
			`fleets.generators.agents.endpoints[1].name: duplicate agent name "a" (also fleets.generators.agents.endpoints[0])`},
		{"bad agent name", staticGens, []string{"fleets.generators.agents={endpoints: [{name: 'a b', url: 'http://h:1'}]}"},
			`fleets.generators.agents.endpoints[0].name: "a b": use 1-64 letters`},
		{"bad process", tfGens, []string{"fleets.generators.agents={output: agents, processes: ['/usr/sbin/nginx']}"},
			`fleets.generators.agents.processes[0]: "/usr/sbin/nginx": give a process's command name`},
		{"negative clock bound", tfGens, []string{"fleets.generators.agents={output: agents, max_clock_offset: -1s}"},
			"fleets.generators.agents.max_clock_offset: must be >= 0"},
		{"agents template checked", staticGens, []string{"fleets.generators.agents={endpoints: [{url: 'http://{{ .static.nofiel }}:7070'}]}"},
			`fleets.generators.agents.endpoints[0].url: .static.nofiel: no static parameter "nofiel"`},
		{"target agents", basePlan, []string{"fleets.target.agents={local: 1, processes: [eventbus]}"}, ""},
		{"local agents output in templates", gens("    provider: local\n"),
			[]string{"fleets.generators.agents={local: 1}", "workload.http.body={{ .fleets.generators.agents }} {{ .fleets.generators.size }}"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.src, tt.sets...)
			got := errStrings(p.Validate())
			if tt.want == "" {
				if len(got) != 0 {
					t.Fatalf("want valid, got:\n%s", strings.Join(got, "\n"))
				}
				return
			}
			for _, g := range got {
				if strings.Contains(g, tt.want) {
					return
				}
			}
			t.Fatalf("want a problem containing %q, got:\n%s", tt.want, strings.Join(got, "\n"))
		})
	}
}

func TestAgentsDefaults(t *testing.T) {
	p := mustParse(t, basePlan, "fleets.target.agents={local: 1}")
	if got := p.Fleets["target"].Agents.MaxClockOffset; got != DefaultMaxClockOffset {
		t.Errorf("max_clock_offset %v, want the default %v", got, DefaultMaxClockOffset)
	}
	p = mustParse(t, basePlan, "fleets.target.agents={local: 1, max_clock_offset: 0s}")
	if got := p.Fleets["target"].Agents.MaxClockOffset; got != 0 {
		t.Errorf("max_clock_offset %v written as 0s, want 0 (no bound)", got)
	}
	if !p.Fleets["target"].HasAgents() || p.Fleets["target"].LogsOnAgents() {
		t.Error("a local fleet's agents share this machine: its logs are read here")
	}
}
