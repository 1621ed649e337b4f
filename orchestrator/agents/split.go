package agents

import (
	"fmt"
	"math"
	"sort"
)

// ShareMode says how a load parameter is shared among a step's agents.
type ShareMode int

const (
	// Divide splits the value among the agents so that the shares add up to
	// it: a rate in requests/s, connections, publishers, subscribers.
	Divide ShareMode = iota
	// Copy gives every agent the whole value: a per-unit figure such as the
	// pubsub workload's rate per publisher.
	Copy
)

// ParamShare says how one load parameter is shared.
type ParamShare struct {
	Name string
	Mode ShareMode
	// Whole parameters are counts: each share is a whole number and the
	// remainder goes one each to the first agents. A divided parameter that is
	// not whole is split evenly, unless its value is whole: then it is split
	// like a count, so no agent gets a fraction of a request per second.
	Whole bool
	// Needed marks a count without which an agent cannot run (connections,
	// publishers): when it is smaller than the number of agents, only as many
	// agents as it allows take part in the step.
	Needed bool
}

// Shares are the builtin engine's load parameters (DESIGN.md): the rate of
// the http workload is divided; the pubsub workload's rate is per publisher,
// so every agent sends it with its own share of publishers.
func Shares(pubsub bool) []ParamShare {
	if pubsub {
		return []ParamShare{
			{Name: "publishers", Mode: Divide, Whole: true, Needed: true},
			{Name: "subscribers", Mode: Divide, Whole: true},
			{Name: "rate", Mode: Copy},
		}
	}
	return []ParamShare{
		{Name: "rate", Mode: Divide},
		{Name: "connections", Mode: Divide, Whole: true, Needed: true},
	}
}

// Split shares a step's load parameters among n agents. It returns one map a
// taking-part agent, agents 0..len-1 in order; an agent past the end of the
// result sits the step out (a needed count smaller than n). Divided shares
// add up to the step's values exactly. A parameter not in specs, a negative
// or fractional count, or n < 1 is an error naming it.
func Split(params map[string]float64, specs []ParamShare, n int) ([]map[string]float64, error) {
	if n < 1 {
		return nil, fmt.Errorf("split among %d agents: need at least one", n)
	}
	byName := make(map[string]ParamShare, len(specs))
	for _, s := range specs {
		byName[s.Name] = s
	}
	names := make([]string, 0, len(params))
	for name, v := range params {
		s, ok := byName[name]
		if !ok {
			known := make([]string, 0, len(specs))
			for _, s := range specs {
				known = append(known, s.Name)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("split parameter %q: not a parameter the agents know (known: %v)", name, known)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return nil, fmt.Errorf("split parameter %q = %v: must be a finite number >= 0", name, v)
		}
		if s.Whole && v != math.Trunc(v) {
			return nil, fmt.Errorf("split parameter %q = %v: must be a whole number", name, v)
		}
		if s.Whole && v > 1<<53 {
			return nil, fmt.Errorf("split parameter %q = %v: too large", name, v)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	k := n
	for _, name := range names {
		if s := byName[name]; s.Needed && s.Mode == Divide && int(params[name]) < k {
			k = int(params[name])
		}
	}
	if k < 1 {
		k = 1 // a zero needed count: one agent gets the (empty) step
	}
	out := make([]map[string]float64, k)
	for i := range out {
		out[i] = make(map[string]float64, len(names))
	}
	for _, name := range names {
		s, v := byName[name], params[name]
		switch {
		case s.Mode == Copy:
			for i := range out {
				out[i][name] = v
			}
		case s.Whole || v == math.Trunc(v) && v <= 1<<53:
			q, r := int64(v)/int64(k), int64(v)%int64(k)
			for i := range out {
				share := q
				if int64(i) < r {
					share++
				}
				out[i][name] = float64(share)
			}
		default:
			// An even real split; the last agent takes what rounding left, so
			// the shares add up to v exactly.
			each := v / float64(k)
			sum := 0.0
			for i := 0; i < k-1; i++ {
				out[i][name] = each
				sum += each
			}
			out[k-1][name] = v - sum
		}
	}
	return out, nil
}

// First numbers each agent's first unit of every divided whole parameter
// (publishers, subscribers, connections) in the fleet: agent i's first is
// the sum of the shares before it, so the agents' clients are numbered once
// across the fleet (a plan's client templates see one .index per client).
func First(shares []map[string]float64, specs []ParamShare) []map[string]int64 {
	out := make([]map[string]int64, len(shares))
	next := map[string]int64{}
	for i, sh := range shares {
		out[i] = map[string]int64{}
		for _, s := range specs {
			if s.Mode != Divide || !s.Whole {
				continue
			}
			if v, ok := sh[s.Name]; ok {
				out[i][s.Name] = next[s.Name]
				next[s.Name] += int64(v)
			}
		}
	}
	return out
}
