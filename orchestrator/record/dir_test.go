package record

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/result"
	"github.com/rs/zerolog"
)

func TestNewRunID(t *testing.T) {
	at := time.Date(2026, 11, 27, 7, 30, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct{ name, want string }{
		{"local-eventbus", "20261127T063000Z-local-eventbus"},
		{"Local EventBus", "20261127T063000Z-local-eventbus"},
		{"../../etc/passwd", "20261127T063000Z-etc-passwd"},
		{"a/b\\c:d", "20261127T063000Z-a-b-c-d"},
		{"nginx_1.25", "20261127T063000Z-nginx_1.25"},
		{"", "20261127T063000Z-run"},
		{"ünïcode", "20261127T063000Z-n-code"},
		{"...", "20261127T063000Z-run"},
		{strings.Repeat("x", 100), "20261127T063000Z-" + strings.Repeat("x", 64)},
	}
	for _, tt := range tests {
		if got := NewRunID(at, tt.name); got != tt.want {
			t.Errorf("NewRunID(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func testRun(id string, start time.Time) *Run {
	return &Run{ID: id, Plan: "p", Start: start, Status: result.StatusRunning, Params: []string{"rate", "connections"},
		Static: map[string]any{"nofile": 1024.0}}
}

func step(index, attempt int, kind, verdict string, params map[string]float64) *result.Step {
	return &result.Step{Index: index, Attempt: attempt, Kind: kind, Verdict: verdict, Parameters: params,
		Metrics: map[string]float64{"latency.p99": 0.01 * float64(index)}, Findings: []result.Finding{}}
}

func TestCreateOpenRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs", "r1")
	run := testRun("r1", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	d, err := Create(dir, run, []byte("version: 1\nname: p\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir, run, nil); err == nil {
		t.Error("Create on an existing run directory succeeded; it must be exclusive")
	}
	for i := 1; i <= 3; i++ {
		if err := d.AppendStep(step(i, 1, result.KindRamp, result.VerdictPass, map[string]float64{"rate": float64(int(250) << i)})); err != nil {
			t.Fatal(err)
		}
	}
	run.Status = result.StatusBottleneck
	if err := d.WriteRun(run); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.AppendStep(step(4, 1, result.KindRamp, result.VerdictPass, nil)); err == nil {
		t.Error("AppendStep after Close succeeded")
	}
	if plan, _ := os.ReadFile(filepath.Join(dir, PlanFile)); string(plan) != "version: 1\nname: p\n" {
		t.Errorf("plan.yaml = %q", plan)
	}

	o, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if o.Path() != dir {
		t.Errorf("Path() = %q", o.Path())
	}
	got, err := o.ReadRun()
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != result.StatusBottleneck || !got.Start.Equal(run.Start) || got.Static["nofile"] != 1024.0 {
		t.Errorf("ReadRun = %+v", got)
	}
	steps, err := o.ReadSteps()
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 3 || steps[2].Index != 3 || steps[2].Parameters["rate"] != 2000 || o.TruncatedTail() {
		t.Errorf("ReadSteps = %+v truncated=%v", steps, o.TruncatedTail())
	}
	if _, err := Open(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("Open of a directory without run.json succeeded")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// stepsFile writes n complete step lines and returns the file content.
func stepsLog(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	for i := 1; i <= n; i++ {
		line, err := json.Marshal(step(i, 1, result.KindRamp, result.VerdictPass, map[string]float64{"rate": float64(i)}))
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// TestReadStepsEveryTruncation cuts a log at every byte: every complete line is
// kept, the partial tail is skipped and flagged, and nothing errors.
func TestReadStepsEveryTruncation(t *testing.T) {
	full := stepsLog(t, 3)
	ends := []int{} // offsets just after each newline
	for i, b := range full {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	for cut := 0; cut <= len(full); cut++ {
		steps, truncated, err := ReadStepsFrom(bytes.NewReader(full[:cut]))
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		complete := 0
		for _, e := range ends {
			if e <= cut {
				complete++
			}
		}
		// A line cut just before its newline is whole JSON: it is kept.
		wantSteps, wantTrunc := complete, false
		if cut > 0 && (complete == 0 || ends[complete-1] != cut) {
			if complete < len(ends) && ends[complete]-1 == cut {
				wantSteps++
			} else {
				wantTrunc = true
			}
		}
		if len(steps) != wantSteps || truncated != wantTrunc {
			t.Fatalf("cut at %d/%d: %d steps truncated=%v, want %d truncated=%v", cut, len(full), len(steps), truncated, wantSteps, wantTrunc)
		}
		for i, s := range steps {
			if s.Index != i+1 {
				t.Fatalf("cut at %d: step %d has index %d", cut, i, s.Index)
			}
		}
	}
}

func TestReadStepsCorruptMiddleLine(t *testing.T) {
	log := stepsLog(t, 3)
	lines := bytes.SplitAfter(log, []byte("\n"))
	bad := append(append(append([]byte{}, lines[0]...), []byte("{\"index\":\n")...), lines[1]...)
	if _, _, err := ReadStepsFrom(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("corrupt middle line: err = %v, want an error naming line 2", err)
	}
	// NUL bytes a file system can leave at the tail after a crash are a
	// truncated tail, as is a blank line after a partial one.
	tail := append(append([]byte{}, log...), append(bytes.Repeat([]byte{0}, 40), '\n', '\n')...)
	steps, truncated, err := ReadStepsFrom(bytes.NewReader(tail))
	if err != nil || len(steps) != 3 || !truncated {
		t.Errorf("NUL tail: %d steps truncated=%v err=%v", len(steps), truncated, err)
	}
}

// TestAppendAfterCrash: a run killed mid-line is resumed; the partial line is
// cut so the next attempt lands on a line of its own.
func TestAppendAfterCrash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r")
	d, err := Create(dir, testRun("r", time.Now()), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if err := d.AppendStep(step(i, 1, result.KindRamp, result.VerdictPass, nil)); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	f, err := os.OpenFile(filepath.Join(dir, StepsFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"index":3,"attempt":1,"kind":"ramp","verd`)
	f.Close()

	o, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := o.ReadSteps()
	if err != nil || len(steps) != 2 || !o.TruncatedTail() {
		t.Fatalf("after crash: %d steps truncated=%v err=%v", len(steps), o.TruncatedTail(), err)
	}
	if err := o.AppendStep(step(3, 1, result.KindRamp, result.VerdictTargetFail, nil)); err != nil {
		t.Fatal(err)
	}
	steps, err = o.ReadSteps()
	if err != nil || len(steps) != 3 || o.TruncatedTail() || steps[2].Verdict != result.VerdictTargetFail {
		t.Fatalf("after resume: %+v truncated=%v err=%v", steps, o.TruncatedTail(), err)
	}
	o.Close()
}

func TestConcurrentAppendStep(t *testing.T) {
	d, err := Create(filepath.Join(t.TempDir(), "r"), testRun("r", time.Now()), nil)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				s := step(w*each+i+1, 1, result.KindRamp, result.VerdictPass, map[string]float64{"rate": float64(i)})
				s.Reason = strings.Repeat("x", 5000) // lines larger than a pipe buffer
				if err := d.AppendStep(s); err != nil {
					errs <- err
				}
				if err := d.AppendSample(map[string]int{"w": w, "i": i}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	steps, err := d.ReadSteps()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, s := range steps {
		seen[s.Index] = true
	}
	if len(steps) != writers*each || len(seen) != writers*each {
		t.Errorf("read %d steps (%d distinct), want %d", len(steps), len(seen), writers*each)
	}
	samples, err := os.ReadFile(filepath.Join(d.Path(), SamplesFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(samples, []byte("\n")); n != writers*each {
		t.Errorf("samples.jsonl has %d lines after Close, want %d", n, writers*each)
	}
}

// TestWriteRunAtomic reads run.json while it is rewritten: every read parses.
func TestWriteRunAtomic(t *testing.T) {
	run := testRun("r", time.Now())
	run.Extra = map[string]string{"pad": strings.Repeat("y", 100_000)}
	d, err := Create(filepath.Join(t.TempDir(), "r"), run, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	done := make(chan struct{})
	var readErr error
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			if _, err := d.ReadRun(); err != nil {
				readErr = err
				return
			}
		}
	}()
	for i := 0; i < 50; i++ {
		run.Error = fmt.Sprint("n", i)
		if err := d.WriteRun(run); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if readErr != nil {
		t.Fatalf("a reader saw a torn run.json: %v", readErr)
	}
	got, err := d.ReadRun()
	if err != nil || got.Error != "n49" {
		t.Errorf("final run.json: %+v, %v", got, err)
	}
}

func TestEventsLogWithZerolog(t *testing.T) {
	d, err := Create(filepath.Join(t.TempDir(), "r"), testRun("r", time.Now()), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := d.EventsLog()
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(w).With().Str("run", "r").Logger()
	for i := 0; i < 10; i++ {
		log.Info().Int("step", i).Msg("step done")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil { // closes the events log again: a no-op
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(d.Path(), EventsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev["run"] != "r" || ev["message"] != "step done" {
			t.Errorf("line %d: %s (%v)", n+1, sc.Text(), err)
		}
	}
	if n != 10 {
		t.Errorf("events.log has %d lines, want 10", n)
	}
}
