package plan

import (
	"slices"
	"strings"
	"testing"
)

func TestLoadParamsTable(t *testing.T) {
	for _, tt := range []struct {
		workload string
		want     []string
	}{
		{WorkloadHTTP, []string{"rate", "connections"}},
		{WorkloadPubSub, []string{"publishers", "subscribers", "rate"}},
		{WorkloadLocust, []string{"users", "spawn_rate"}},
		{"", nil},
	} {
		if got := ParamNamesOf(tt.workload); !slices.Equal(got, tt.want) {
			t.Errorf("ParamNamesOf(%q) = %v, want %v", tt.workload, got, tt.want)
		}
	}
	seen := map[string]bool{}
	for _, lp := range LoadParams {
		key := lp.Workload + "/" + lp.Name
		if seen[key] {
			t.Errorf("%s twice in the table", key)
		}
		seen[key] = true
		if lp.Required == (lp.Default > 0) {
			t.Errorf("%s: a parameter is either required or has a default", key)
		}
		if lp.Example <= 0 || lp.Description == "" {
			t.Errorf("%s: needs an example and a description", key)
		}
	}
	if got := CeilingKeys(); !slices.Equal(got, []string{CeilingMaxRate, CeilingMaxUsers}) {
		t.Errorf("CeilingKeys() = %v", got)
	}
	for _, tt := range []struct {
		workload, name string
		params         map[string]float64
		want           float64
	}{
		{WorkloadHTTP, ParamConnections, nil, 64},
		{WorkloadHTTP, ParamConnections, map[string]float64{"connections": 8}, 8},
		{WorkloadPubSub, ParamSubscribers, map[string]float64{"rate": 5}, 1},
		{WorkloadLocust, ParamSpawnRate, nil, 100},
		{WorkloadLocust, ParamUsers, map[string]float64{"users": 20}, 20},
	} {
		if got := ParamValue(tt.workload, tt.params, tt.name); got != tt.want {
			t.Errorf("ParamValue(%s, %v, %s) = %g, want %g", tt.workload, tt.params, tt.name, got, tt.want)
		}
	}
}

func TestCheckCeilings(t *testing.T) {
	pubsub := `version: 1
name: ps
fleets:
  target: { provider: static, outputs: { endpoint: "http://127.0.0.1:1" } }
workload:
  engine: builtin
  pubsub: { publish: "{{ .fleets.target.endpoint }}/p", subscribe: "{{ .fleets.target.endpoint }}/s" }
parameters:
  - { name: publishers, start: 1, max: 8 }
  - { name: rate, start: 10, max: 1000 }
ramp: { hold: 1s }
`
	p, err := Parse([]byte(pubsub), "ps.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if errs := p.CheckCeilings(Ceilings{CeilingMaxRate: 4000}); len(errs) != 1 ||
		!strings.Contains(errs[0].Error(), "8 publishers x 1000 messages/s is 8000/s, over the safety ceiling max_rate=4000") {
		t.Errorf("pub/sub ceiling: %v", errs)
	}
	if errs := p.CheckCeilings(Ceilings{CeilingMaxRate: 8000, CeilingMaxUsers: 1}); len(errs) != 0 {
		t.Errorf("within the ceilings: %v", errs)
	}
	if errs := p.CheckCeilings(nil); len(errs) != 0 {
		t.Errorf("no ceilings: %v", errs)
	}
}
