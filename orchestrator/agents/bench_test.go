package agents

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/orchestrator/agent"
)

// instantEngine is a fake engine for the coordinator's benchmark: it returns
// at once a window of n latencies drawn from its seed, so a step measures the
// coordinator's own work (split, prepare, start, poll, finish, decode,
// merge) and not load.
type instantEngine struct{ res *agent.Result }

func newInstantEngine(seed uint64, n int) *instantEngine {
	r := rand.New(rand.NewPCG(seed, 1))
	lat, svc := agent.NewHist(agent.HistDigits), agent.NewHist(agent.HistDigits)
	for range n {
		v := int64(r.ExpFloat64()*2000) + 1
		_ = lat.RecordValue(v)
		_ = svc.RecordValue(v/2 + 1)
	}
	return &instantEngine{res: &agent.Result{Latency: lat, Service: svc, Requests: int64(n), Completed: int64(n)}}
}

func (e *instantEngine) Run(context.Context, agent.EngineStep) (*agent.Result, error) {
	r := *e.res
	return &r, nil
}
func (e *instantEngine) Close() error { return nil }

// BenchmarkCoordinatorStep is the coordinator's overhead per step with 2 and
// 16 local agents (a 1ms start lead, 1ms polls), and the merged p99's
// accuracy against one histogram of every value (1 = exact). Run alone:
//
//	go test -run '^$' -bench CoordinatorStep -benchtime 50x ./orchestrator/agents
func BenchmarkCoordinatorStep(b *testing.B) {
	for _, n := range []int{2, 16} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			var eps []Endpoint
			single := agent.NewHist(agent.HistDigits)
			for i := range n {
				e := newInstantEngine(uint64(i+1), 20000)
				single.Merge(e.res.Latency)
				cfg := agentConfig(fmt.Sprintf("a%d", i), "tok", nil)
				cfg.Engines = func(*agentv1.Workload) (agent.LocalEngine, error) { return e, nil }
				a := startAgent(b, cfg)
				eps = append(eps, Endpoint{Name: cfg.Name, URL: a.url})
			}
			ctx := context.Background()
			f, err := DialFleet(ctx, eps, opts("tok"))
			if err != nil {
				b.Fatal(err)
			}
			if err := f.MeasureClocks(ctx, 4, 0); err != nil {
				b.Fatal(err)
			}
			var merged *hdrhistogram.Histogram
			var ov Overhead
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := f.RunStep(ctx, StepSpec{ID: fmt.Sprintf("b%d", i), Workload: httpWorkload(),
					Params: map[string]float64{"rate": 1000, "connections": float64(n)}, Shares: Shares(false),
					Hold: time.Millisecond, Lead: time.Millisecond, PollEvery: time.Millisecond})
				if err != nil {
					b.Fatal(err)
				}
				merged = res.Merged.Latency
				ov = addOverhead(ov, res.Overhead)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/step")
			ReportOverhead(b, ov, b.N)
			b.ReportMetric(float64(merged.ValueAtQuantile(99))/float64(single.ValueAtQuantile(99)), "p99-merged/single")
		})
	}
}

// BenchmarkMerge merges 16 agents' decoded results (3 histograms of 20000
// values each).
func BenchmarkMerge(b *testing.B) {
	var rs []*agent.Result
	var names []string
	for i := range 16 {
		rs = append(rs, newInstantEngine(uint64(i+1), 20000).res)
		names = append(names, fmt.Sprint(i))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Merge(names, rs); err != nil {
			b.Fatal(err)
		}
	}
}

func addOverhead(a, b Overhead) Overhead {
	return Overhead{Split: a.Split + b.Split, Prepare: a.Prepare + b.Prepare, Start: a.Start + b.Start,
		Finish: a.Finish + b.Finish, Merge: a.Merge + b.Merge}
}
