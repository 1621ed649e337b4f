package agents

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"testing/quick"

	"github.com/loadramp/loadramp/orchestrator/agent"
	"github.com/loadramp/loadramp/orchestrator/metrics"
)

func TestSplit(t *testing.T) {
	http, pubsub := Shares(false), Shares(true)
	type m = map[string]float64
	cases := []struct {
		name   string
		params m
		specs  []ParamShare
		n      int
		want   []m
		err    string
	}{
		{"one agent takes all", m{"rate": 250, "connections": 8}, http, 1, []m{{"rate": 250, "connections": 8}}, ""},
		{"even", m{"rate": 1000, "connections": 8}, http, 2, []m{{"rate": 500, "connections": 4}, {"rate": 500, "connections": 4}}, ""},
		{"remainders to the first agents", m{"rate": 1001, "connections": 10}, http, 3,
			[]m{{"rate": 334, "connections": 4}, {"rate": 334, "connections": 3}, {"rate": 333, "connections": 3}}, ""},
		{"fractional rate split evenly", m{"rate": 2.5, "connections": 2}, http, 2, []m{{"rate": 1.25, "connections": 1}, {"rate": 1.25, "connections": 1}}, ""},
		{"fewer connections than agents: fewer agents", m{"rate": 100, "connections": 2}, http, 4, []m{{"rate": 50, "connections": 1}, {"rate": 50, "connections": 1}}, ""},
		{"pubsub rate is per publisher", m{"publishers": 5, "subscribers": 3, "rate": 10}, pubsub, 2,
			[]m{{"publishers": 3, "subscribers": 2, "rate": 10}, {"publishers": 2, "subscribers": 1, "rate": 10}}, ""},
		{"subscribers may be zero on an agent", m{"publishers": 4, "subscribers": 1, "rate": 1}, pubsub, 4,
			[]m{{"publishers": 1, "subscribers": 1, "rate": 1}, {"publishers": 1, "subscribers": 0, "rate": 1}, {"publishers": 1, "subscribers": 0, "rate": 1}, {"publishers": 1, "subscribers": 0, "rate": 1}}, ""},
		{"unknown parameter", m{"users": 10}, http, 2, nil, `"users": not a parameter the agents know`},
		{"fractional count", m{"connections": 2.5}, http, 2, nil, `"connections" = 2.5: must be a whole number`},
		{"negative", m{"rate": -1}, http, 2, nil, `"rate" = -1: must be a finite number >= 0`},
		{"no agent", m{"rate": 1}, http, 0, nil, "need at least one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Split(c.params, c.specs, c.n)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Split = %v, want %v", got, c.want)
			}
		})
	}
}

// Properties: divided shares add up to the step's value exactly, whole
// shares differ by at most one, and no more agents take part than asked.
func TestSplitProperties(t *testing.T) {
	specs := Shares(false)
	f := func(rate uint32, frac uint8, conns uint16, n uint8) bool {
		agents := int(n%64) + 1
		r := float64(rate%1_000_000) + float64(frac)/256
		p := map[string]float64{"rate": r, "connections": float64(conns%5000) + 1}
		got, err := Split(p, specs, agents)
		if err != nil || len(got) > agents || len(got) < 1 {
			return false
		}
		var sumRate, sumConns float64
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, s := range got {
			sumRate += s["rate"]
			sumConns += s["connections"]
			lo, hi = math.Min(lo, s["connections"]), math.Max(hi, s["connections"])
			if s["connections"] < 1 {
				return false
			}
		}
		return math.Abs(sumRate-r) <= 1e-9*math.Max(1, r) && sumConns == p["connections"] && hi-lo <= 1
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 2000}); err != nil {
		t.Fatal(err)
	}
}

// An agent whose kernel shows no run delay reports its starvation as not
// measured (negative): the merge keeps the worst measured one, and with none
// measured the step has no generator.starved.ratio rather than a 0.
func TestMergeStarvationNotMeasured(t *testing.T) {
	measured := &agent.Result{Health: agent.Health{Starvation: 0.3}}
	unknown := &agent.Result{Health: agent.Health{Starvation: -1}}
	m, err := Merge([]string{"a", "b"}, []*agent.Result{unknown, measured})
	if err != nil {
		t.Fatal(err)
	}
	if got := HealthMetrics(m.Health)[metrics.GeneratorStarvedRatio]; got != 0.3 {
		t.Errorf("merged starvation %v, want the measured agent's 0.3", got)
	}
	m, err = Merge([]string{"a", "b"}, []*agent.Result{unknown, unknown})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := HealthMetrics(m.Health)[metrics.GeneratorStarvedRatio]; ok {
		t.Errorf("starvation %v reported although no agent measured it", v)
	}
}

// The steal and worst seconds an agent's engine reports among its metrics:
// the step's are the worst agent's, and a figure no agent measured is left
// out rather than read as 0.
func TestWorstMetrics(t *testing.T) {
	rs := []*agent.Result{
		{Metrics: metrics.Metrics{metrics.GeneratorStealRatio: 0.02, metrics.GeneratorStealPeak: 0.05, metrics.RequestsCount: 10}},
		nil,
		{Metrics: metrics.Metrics{metrics.GeneratorStealRatio: 0.19, metrics.GeneratorStealPeak: 0.03}},
		{Metrics: metrics.Metrics{metrics.GeneratorStealRatio: 0}},
	}
	want := metrics.Metrics{metrics.GeneratorStealRatio: 0.19, metrics.GeneratorStealPeak: 0.05}
	if got := WorstMetrics(rs); !reflect.DeepEqual(got, want) {
		t.Errorf("WorstMetrics = %v, want %v", got, want)
	}
	if got := WorstMetrics(rs[3:]); !reflect.DeepEqual(got, metrics.Metrics{metrics.GeneratorStealRatio: 0}) {
		t.Errorf("one agent at 0: %v", got)
	}
}
