package cli

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/loadramp/loadramp/internal/wiring"

	"github.com/loadramp/loadramp/orchestrator/agents"
)

// BenchmarkAgentProcesses is the coordinator's overhead per step with 2 and
// 16 real `loadramp agent` processes on this machine, each running the
// builtin engine (loadgen) at 100 req/s for a 200 ms hold against a local
// server: split, prepare, start (the start lead excepted), finish (from the
// last agent's end to every measurement decoded) and merge, and the merged
// p99 against the p99 of the union of the agents' raw histograms (1 =
// exact) and against the mean of the agents' p99s (what averaging would
// report). The machine's other load shows in the figures: re-measure alone
// with
//
//	go test -run '^$' -bench AgentProcesses -benchtime 20x ./internal/cli
func BenchmarkAgentProcesses(b *testing.B) {
	lr, _ := binaries(b)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(len(r.URL.Path)%3) * time.Millisecond) // a little spread
		w.WriteHeader(200)
	}))
	defer srv.Close()
	listening := regexp.MustCompile(`listening on (\S+)`)
	for _, n := range []int{2, 16} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			var eps []agents.Endpoint
			for i := range n {
				cmd := exec.Command(lr, "agent", "--listen", "127.0.0.1:0", "--name", fmt.Sprintf("b%d", i), "--log-level", "warn")
				cmd.Env = append(os.Environ(), wiring.EnvAgentToken+"=bench-token", "XDG_CONFIG_HOME="+b.TempDir())
				out, err := cmd.StdoutPipe()
				if err != nil {
					b.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
				line, _ := bufio.NewReader(out).ReadString('\n')
				m := listening.FindStringSubmatch(line)
				if m == nil {
					b.Fatalf("agent %d: %q", i, line)
				}
				eps = append(eps, agents.Endpoint{Name: fmt.Sprintf("b%d", i), URL: "http://" + m[1]})
			}
			ctx := context.Background()
			f, err := agents.DialFleet(ctx, eps, agents.Options{Version: Version, Token: "bench-token"})
			if err != nil {
				b.Fatal(err)
			}
			if err := f.MeasureClocks(ctx, 4, 0); err != nil {
				b.Fatal(err)
			}
			var sum agents.Overhead
			var exact, averaged float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := f.RunStep(ctx, agents.StepSpec{ID: fmt.Sprintf("bench-%d-%d", n, i), Workload: httpWorkload(srv.URL + "/x"),
					Params: map[string]float64{"rate": float64(100 * n), "connections": float64(2 * n)}, Shares: agents.Shares(false),
					Hold: 200 * time.Millisecond, Lead: time.Millisecond, PollEvery: 50 * time.Millisecond})
				if err != nil {
					b.Fatal(err)
				}
				o := res.Overhead
				sum = agents.Overhead{Split: sum.Split + o.Split, Prepare: sum.Prepare + o.Prepare, Start: sum.Start + o.Start,
					Finish: sum.Finish + o.Finish, Merge: sum.Merge + o.Merge}
				u := newUnion()
				mean := 0.0
				for _, a := range res.Agents {
					u.add(a.Result.Latency)
					mean += float64(a.Result.Latency.ValueAtQuantile(99)) / float64(len(res.Agents))
				}
				exact = float64(res.Merged.Latency.ValueAtQuantile(99)) / float64(u.h.ValueAtQuantile(99))
				averaged = mean / float64(u.h.ValueAtQuantile(99))
			}
			b.StopTimer()
			agents.ReportOverhead(b, sum, b.N)
			b.ReportMetric(exact, "p99-merged/union")
			b.ReportMetric(averaged, "p99-averaged/union")
		})
	}
}
