package report

import (
	"strconv"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Cause is one distinct cause of a run: the findings of one rule on one host
// and process, gathered across every step attempt where they were seen. A
// ramp that keeps hitting the same limit reports it once, with the attempts
// it showed on. It is an element of report.json's run-level "findings".
type Cause struct {
	// Finding is the strongest of the cause's findings (see strength): its
	// observation and evidence are what the report shows.
	result.Finding
	// Steps are the attempts where the cause was seen, in run order.
	Steps []StepRef `json:"steps"`
	// Strongest is the attempt Finding comes from.
	Strongest StepRef `json:"strongest"`
	// Bottleneck marks one of the bottleneck's own findings; they come first.
	Bottleneck bool `json:"bottleneck,omitempty"`
}

// StepRef points at one step attempt.
type StepRef struct {
	// Ref is the attempt's address, as `loadramp note` takes it and the step
	// tables show it: "6.2", "6.r1" for a refine attempt.
	Ref     string `json:"ref"`
	Index   int    `json:"index"`
	Attempt int    `json:"attempt"`
	Kind    string `json:"kind"`
	Verdict string `json:"verdict"`
}

func refOf(s result.Step) StepRef {
	return StepRef{Ref: record.AddrOf(s).String(), Index: s.Index, Attempt: s.Attempt, Kind: s.Kind, Verdict: s.Verdict}
}

// causeKey is what makes two findings one cause.
type causeKey struct{ rule, host, process string }

func keyOf(f result.Finding) causeKey { return causeKey{f.Rule, f.Host, f.Process} }

// causes groups the findings of every attempt by rule, host and process. The
// bottleneck's own findings come first, in their order; then every other
// cause in the order it was first seen. Each cause keeps its strongest
// finding and lists the attempts it was seen on.
func causes(steps []result.Step, bottleneck []result.Finding) []Cause {
	out := []Cause{}
	at := map[causeKey]int{}
	strengths := []float64{}
	add := func(f result.Finding) int {
		k := keyOf(f)
		if i, ok := at[k]; ok {
			return i
		}
		at[k] = len(out)
		out = append(out, Cause{Finding: f, Steps: []StepRef{}})
		strengths = append(strengths, -1)
		return len(out) - 1
	}
	for _, f := range bottleneck {
		out[add(f)].Bottleneck = true
	}
	for _, s := range steps {
		seen := map[causeKey]bool{}
		for _, f := range s.Findings {
			i := add(f)
			c := &out[i]
			if !seen[keyOf(f)] {
				seen[keyOf(f)] = true
				c.Steps = append(c.Steps, refOf(s))
			}
			// Ties go to the later attempt: the ramp only goes up, so it ran
			// at the higher load.
			if st := strength(f); st >= strengths[i] {
				strengths[i] = st
				c.Finding = f
				c.Strongest = refOf(s)
			}
		}
	}
	return out
}

// strength orders the findings of one cause: the first number of the
// observation (every rule observes "how much": "1024 of 1024", "98% of the
// host's CPUs", "340 overflows"), then how many evidence lines it has.
func strength(f result.Finding) float64 {
	n, ok := leadingNumber(f.Observed)
	if !ok {
		n = 0
	}
	// Evidence breaks ties between equal observations, never outweighs one.
	return n*1000 + float64(min(len(f.Evidence), 999))
}

// leadingNumber is the first decimal number in s ("98% of 2 CPUs" is 98).
func leadingNumber(s string) (float64, bool) {
	start := strings.IndexAny(s, "0123456789")
	if start < 0 {
		return 0, false
	}
	end := start
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.') {
		end++
	}
	v, err := strconv.ParseFloat(strings.TrimRight(s[start:end], "."), 64)
	return v, err == nil
}

// refs lists the addresses of refs ("5.1, 6.1, 6.2").
func refs(rs []StepRef) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Ref
	}
	return out
}
