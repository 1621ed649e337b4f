package agents

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/loadramp/loadramp/orchestrator/agent"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Merge adds agents' measurements of one step into one: counts and error
// classes are summed, histograms merged bucket by bucket (the merged p99 is
// the p99 of every request of every agent; percentiles are never averaged),
// the offered rate summed, and the health is the worst agent's, figure by
// figure. Engine-specific metrics are summed when they are counts or rates
// (*.count, *.rps) and otherwise left for the caller to recompute from the
// merged histograms. names label the results in errors.
func Merge(names []string, rs []*agent.Result) (*agent.Result, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("merge: no agent results")
	}
	out := &agent.Result{ErrorClasses: map[string]int64{}, Metrics: metrics.Metrics{}}
	out.Health.Starvation = -1 // the worst measured, if any agent measured it
	var errs []string
	for i, r := range rs {
		name := fmt.Sprint(i)
		if i < len(names) {
			name = names[i]
		}
		if r == nil {
			return nil, fmt.Errorf("merge: agent %s has no result", name)
		}
		if out.HoldStart.IsZero() || (!r.HoldStart.IsZero() && r.HoldStart.Before(out.HoldStart)) {
			out.HoldStart = r.HoldStart
		}
		out.Hold = max(out.Hold, r.Hold)
		out.Offered += r.Offered
		out.Requests += r.Requests
		out.Sent += r.Sent
		out.Completed += r.Completed
		out.Errors += r.Errors
		out.GeneratorErrors += r.GeneratorErrors
		out.OutOfRange += r.OutOfRange
		out.Released += r.Released
		out.Blocked += r.Blocked
		out.Reopened += r.Reopened
		out.Open += r.Open
		out.Connections += r.Connections
		for k, v := range r.ErrorClasses {
			out.ErrorClasses[k] += v
		}
		for k, v := range r.Metrics {
			if strings.HasSuffix(k, ".count") || strings.HasSuffix(k, ".rps") {
				out.Metrics[k] += v
			}
		}
		var err error
		if out.Latency, err = mergeHist(out.Latency, r.Latency); err != nil {
			return nil, fmt.Errorf("merge: agent %s latency: %w", name, err)
		}
		if out.Service, err = mergeHist(out.Service, r.Service); err != nil {
			return nil, fmt.Errorf("merge: agent %s service time: %w", name, err)
		}
		if out.Lag, err = mergeHist(out.Lag, r.Lag); err != nil {
			return nil, fmt.Errorf("merge: agent %s lag: %w", name, err)
		}
		for k, h := range r.Histograms {
			if out.Histograms == nil {
				out.Histograms = map[string]*hdrhistogram.Histogram{}
			}
			if out.Histograms[k], err = mergeHist(out.Histograms[k], h); err != nil {
				return nil, fmt.Errorf("merge: agent %s histogram %s: %w", name, k, err)
			}
		}
		h := &out.Health
		h.CPU = max(h.CPU, r.Health.CPU)
		h.LagP99 = max(h.LagP99, r.Health.LagP99)
		h.BlockedRatio = max(h.BlockedRatio, r.Health.BlockedRatio)
		h.GCPauseP99 = max(h.GCPauseP99, r.Health.GCPauseP99)
		h.GCPauseMax = max(h.GCPauseMax, r.Health.GCPauseMax)
		h.Starvation = max(h.Starvation, r.Health.Starvation)
		h.GOMAXPROCS += r.Health.GOMAXPROCS
		out.Mix = mergeRequests(out.Mix, r.Mix)
		if r.Err != "" {
			errs = append(errs, fmt.Sprintf("agent %s: %s", name, r.Err))
		}
	}
	out.Err = strings.Join(errs, "; ")
	series := make([][]agent.Second, len(rs))
	for i, r := range rs {
		series[i] = r.Series
	}
	out.Series = MergeSeries(series)
	return out, nil
}

// mergeRequests adds the requests of b to a, by name: their error classes
// summed.
func mergeRequests(a, b []result.Request) []result.Request {
	for _, q := range b {
		i := slices.IndexFunc(a, func(x result.Request) bool { return x.Name == q.Name })
		if i < 0 {
			a = append(a, result.Request{Name: q.Name, Weight: q.Weight})
			i = len(a) - 1
		}
		for k, v := range q.ErrorClasses {
			if a[i].ErrorClasses == nil {
				a[i].ErrorClasses = map[string]int64{}
			}
			a[i].ErrorClasses[k] += v
		}
	}
	return a
}

// mergeHist adds b into a copy of a (a nil side is nothing). Merging
// histograms of different geometry would move values between buckets: it is
// refused.
func mergeHist(a, b *hdrhistogram.Histogram) (*hdrhistogram.Histogram, error) {
	if b == nil {
		return a, nil
	}
	if a == nil {
		a = hdrhistogram.New(b.LowestTrackableValue(), b.HighestTrackableValue(), int(b.SignificantFigures()))
	}
	if a.LowestTrackableValue() != b.LowestTrackableValue() || a.HighestTrackableValue() != b.HighestTrackableValue() ||
		a.SignificantFigures() != b.SignificantFigures() {
		return nil, fmt.Errorf("geometry %d..%d/%d differs from %d..%d/%d", b.LowestTrackableValue(), b.HighestTrackableValue(),
			b.SignificantFigures(), a.LowestTrackableValue(), a.HighestTrackableValue(), a.SignificantFigures())
	}
	if dropped := a.Merge(b); dropped != 0 {
		return nil, fmt.Errorf("%d values out of range", dropped)
	}
	return a, nil
}

// MergeSeries sums agents' per-second series by second: requests, errors and
// offered add up; the percentiles come from the merged latencies when every
// agent sent them for that second, else they are the largest agent's (an
// upper bound; the series only feeds progress and abort gates, while the
// step's gates judge the merged window's histograms).
func MergeSeries(series [][]agent.Second) []agent.Second {
	type acc struct {
		sec      agent.Second
		n, withH int
	}
	byT := map[int]*acc{}
	for _, s := range series {
		for _, sec := range s {
			a := byT[sec.T]
			if a == nil {
				a = &acc{sec: agent.Second{Second: result.Second{T: sec.T}}}
				byT[sec.T] = a
			}
			a.n++
			a.sec.Requests += sec.Requests
			a.sec.Errors += sec.Errors
			a.sec.Offered += sec.Offered
			a.sec.P50 = max(a.sec.P50, sec.P50)
			a.sec.P99 = max(a.sec.P99, sec.P99)
			if sec.Latency != nil {
				if m, err := mergeHist(a.sec.Latency, sec.Latency); err == nil {
					a.sec.Latency = m
					a.withH++
				}
			}
		}
	}
	ts := make([]int, 0, len(byT))
	for t := range byT {
		ts = append(ts, t)
	}
	sort.Ints(ts)
	out := make([]agent.Second, 0, len(ts))
	for _, t := range ts {
		a := byT[t]
		if a.withH == a.n && a.sec.Latency != nil && a.sec.Latency.TotalCount() > 0 {
			a.sec.P50 = float64(a.sec.Latency.ValueAtQuantile(50)) / 1e6
			a.sec.P99 = float64(a.sec.Latency.ValueAtQuantile(99)) / 1e6
		}
		out = append(out, a.sec)
	}
	return out
}

// HealthMetrics names an agent's health as the generator.* metrics that
// generator_health gates judge.
func HealthMetrics(h agent.Health) metrics.Metrics {
	m := metrics.Metrics{
		metrics.GeneratorCPU:          h.CPU,
		metrics.GeneratorLagP99:       h.LagP99,
		metrics.GeneratorBlockedRatio: h.BlockedRatio,
		metrics.GeneratorGCPauseP99:   h.GCPauseP99,
		metrics.GeneratorGCPauseMax:   h.GCPauseMax,
		metrics.GeneratorStarvedRatio: h.Starvation,
	}
	if h.Starvation < 0 {
		delete(m, metrics.GeneratorStarvedRatio) // not measured: a check on it says so
	}
	return m
}

// agentWorst are the generator health figures an agent's engine reports
// among its metrics rather than in its Health: the hypervisor's steal of
// the agent's CPUs over the hold and in its worst second, and its threads'
// run delay in their worst second.
var agentWorst = []string{metrics.GeneratorStealRatio, metrics.GeneratorStealPeak, metrics.GeneratorStarvedPeak}

// WorstMetrics is, for each figure of agentWorst that any of rs measured,
// the worst (largest) agent's: like the Health's, the step's generator is
// as stolen from as its most stolen-from agent.
func WorstMetrics(rs []*agent.Result) metrics.Metrics {
	m := metrics.Metrics{}
	for _, r := range rs {
		if r == nil {
			continue
		}
		for _, k := range agentWorst {
			if v, ok := r.Metrics[k]; ok {
				if w, seen := m[k]; !seen || v > w {
					m[k] = v
				}
			}
		}
	}
	return m
}

// Breach is an agent whose own health failed the generator's health checks:
// the step is generator-fail, and this agent is why.
type Breach struct {
	Agent  string
	Failed []string
}

func (b Breach) String() string {
	return fmt.Sprintf("agent %s saturated: %s", b.Agent, strings.Join(b.Failed, "; "))
}

// Breaches judges every agent's health on its own with check (which returns
// the failed checks in words) and returns the agents that failed, so a
// generator-fail names the saturated agent rather than the fleet.
func (r *StepResult) Breaches(check func(metrics.Metrics) []string) []Breach {
	var out []Breach
	for _, a := range r.Agents {
		if a.Result == nil {
			continue
		}
		m := maps.Clone(a.Result.Metrics)
		if m == nil {
			m = metrics.Metrics{}
		}
		maps.Copy(m, HealthMetrics(a.Result.Health))
		if f := check(m); len(f) > 0 {
			out = append(out, Breach{Agent: a.Agent, Failed: f})
		}
	}
	return out
}
