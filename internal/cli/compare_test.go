package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// writeRun makes a finished run directory whose ramp passed up to capacity
// (rate) and failed at the next doubling: input data for compare, built with
// the same record package a real run uses.
func writeRun(t *testing.T, runs, id string, capacity float64) string {
	t.Helper()
	start := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)
	run := &record.Run{ID: id, Plan: "nightly", Status: result.StatusRunning, Start: start,
		Static: map[string]any{"eventbus_nofile": 1024}, Params: []string{"rate"}}
	dir, err := record.Create(filepath.Join(runs, id), run, []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	idx := 0
	for rate := capacity / 8; rate <= capacity*2; rate *= 2 {
		idx++
		verdict := result.VerdictPass
		p99 := 0.005
		if rate > capacity {
			verdict, p99 = result.VerdictTargetFail, 0.8
		}
		st := &result.Step{Index: idx, Attempt: 1, Kind: result.KindRamp, Parameters: map[string]float64{"rate": rate},
			Changed: "rate", From: rate / 2, To: rate, Verdict: verdict,
			Metrics: metrics.Metrics{metrics.ThroughputRPS: rate * 0.999, metrics.LatencyP99: p99},
			Start:   start.Add(time.Duration(idx) * time.Minute), End: start.Add(time.Duration(idx)*time.Minute + 30*time.Second)}
		if verdict != result.VerdictPass {
			st.FailedGates = []result.GateResult{{Gate: "latency.p99 < 100ms", Metric: metrics.LatencyP99, Observed: p99, Threshold: 0.1, Explain: "latency.p99 800 ms > 100 ms"}}
		}
		if err := dir.AppendStep(st); err != nil {
			t.Fatal(err)
		}
	}
	run.Status, run.End = result.StatusBottleneck, start.Add(time.Hour)
	if err := dir.WriteRun(run); err != nil {
		t.Fatal(err)
	}
	return dir.Path()
}

func TestCompareEqualRunsPass(t *testing.T) {
	runs := t.TempDir()
	a := writeRun(t, runs, "20261126T020000Z-nightly", 8000)
	b := writeRun(t, runs, "20261127T020000Z-nightly", 8000)
	code, out, errOut := runArgs(t, nil, "compare", a, b)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "capacity held") {
		t.Errorf("no verdict in:\n%s", out)
	}
}

func TestCompareRegressionExits3(t *testing.T) {
	runs := t.TempDir()
	a := writeRun(t, runs, "20261126T020000Z-nightly", 8000)
	b := writeRun(t, runs, "20261127T020000Z-nightly", 6000) // 25% lower
	code, out, _ := runArgs(t, nil, "compare", a, b, "--max-regression", "10%")
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s", code, out)
	}
	for _, want := range []string{"capacity rate regressed 25.0%", "8,000", "6,000"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Within a 30% tolerance the same runs pass.
	if code, out, _ := runArgs(t, nil, "compare", a, b, "--max-regression", "30%"); code != 0 {
		t.Errorf("30%% tolerance: exit %d\n%s", code, out)
	}
	if code, _, errOut := runArgs(t, nil, "compare", a, b, "--max-regression", "lots"); code != 2 || !strings.Contains(errOut, "max-regression") {
		t.Errorf("bad tolerance: exit %d %s", code, errOut)
	}
}

func TestRunAgainstBaselineAndMinimum(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	plan := busPlan(t, "nightly", "",
		"  - { name: rate, start: 200, max: 400 }\n  - { name: connections, start: 4, max: 4 }",
		"ramp:\n  warmup: 0s\n  hold: 1s\n  cooldown: 0s\ngates:\n  - errors.ratio < 0.01\n")
	out := t.TempDir()
	runOnce := func(extra ...string) (int, string) {
		var so, se bytes.Buffer
		args := append([]string{"run", plan, "--out", out, "--progress", "none"}, extra...)
		code := run(args, IO{In: strings.NewReader(""), Out: &so, ErrOut: &se}, emptyEnv)
		return code, so.String() + se.String()
	}
	if code, text := runOnce("--baseline", "latest"); code != 0 || !strings.Contains(text, "no finished run") {
		t.Fatalf("first run: exit %d\n%s", code, text)
	}
	time.Sleep(1100 * time.Millisecond) // run ids have second resolution
	code, text := runOnce("--baseline", "latest", "--max-regression", "10%")
	if code != 0 || !strings.Contains(text, "capacity policy passed") {
		t.Fatalf("equal run against latest: exit %d\n%s", code, text)
	}
	time.Sleep(1100 * time.Millisecond)
	code, text = runOnce("--min-capacity", "rate=100000")
	if code != 3 || !strings.Contains(text, "capacity rate is 400, below the minimum 100,000") {
		t.Fatalf("below minimum: exit %d, want 3\n%s", code, text)
	}
	// The judgement is in report.md and junit.xml too.
	entries, _ := os.ReadDir(out)
	last := filepath.Join(out, entries[len(entries)-1].Name())
	md, _ := os.ReadFile(filepath.Join(last, "report.md"))
	junit, _ := os.ReadFile(filepath.Join(last, "junit.xml"))
	if !strings.Contains(string(md), "Capacity policy: FAILED") || !strings.Contains(string(junit), "capacity-regression") {
		t.Errorf("policy missing from report.md or junit.xml")
	}
}
