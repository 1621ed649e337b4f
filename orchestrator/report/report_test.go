package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/gate"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func gateResult(expr string, m map[string]float64) result.GateResult {
	r := gate.MustParse(expr).Evaluate(m)
	return result.GateResult{Gate: r.Gate, Metric: r.Metric, Observed: r.Observed, Threshold: r.Threshold,
		Pass: r.Pass, Missing: r.Missing, Explain: r.Explain}
}

func TestGolden(t *testing.T) {
	rep := Build(fixtureRun())
	for _, f := range Builtin() {
		if f.Name == "xlsx" {
			continue // a zip: TestWorkbook opens it
		}
		t.Run(f.Name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := f.Write(&buf, rep); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", f.File+".golden")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s differs from %s (run with -update if the change is intended)\n--- got ---\n%s", f.File, golden, buf.String())
			}
			// Deterministic: a second rendering of a fresh build is identical.
			var again bytes.Buffer
			if err := f.Write(&again, Build(fixtureRun())); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), again.Bytes()) {
				t.Errorf("%s is not deterministic", f.File)
			}
		})
	}
}

func TestBuildFixture(t *testing.T) {
	run, steps := fixtureRun()
	r := Build(run, steps)
	if r.Schema != Schema || r.Status != result.StatusBottleneck || r.Partial {
		t.Errorf("header = %q %q partial=%v", r.Schema, r.Status, r.Partial)
	}
	if len(r.Steps) != len(steps) {
		t.Errorf("%d steps, want %d", len(r.Steps), len(steps))
	}
	c := r.Capacity
	if c == nil || c.Step != 6 || c.Kind != result.KindRefine || c.Parameters["rate"] != 1500 {
		t.Errorf("capacity = %+v, want the passing refine attempt at rate 1500", c)
	}
	b := r.Bottleneck
	if b == nil {
		t.Fatal("no bottleneck")
	}
	if b.Step != 6 || b.Attempt != 2 || b.Parameter != "rate" || b.From != 1000 || b.To != 2000 || b.Side != "target" {
		t.Errorf("bottleneck = %+v", b)
	}
	if len(b.FailedGates) != 3 || b.FailedGates[0].Metric != "latency.p99" || b.FailedGates[0].Observed != 0.9031 {
		t.Errorf("bottleneck failed gates = %+v, want those of the confirm attempt", b.FailedGates)
	}
	if len(b.Findings) != 1 || b.Findings[0].Rule != "fd-process" {
		t.Errorf("findings = %+v", b.Findings)
	}
	if b.Refined == nil || b.Refined.Pass != 1500 || b.Refined.Fail != 1750 {
		t.Errorf("refined = %+v, want pass 1500 fail 1750", b.Refined)
	}
	want := "Capacity 1,499 req/s (rate=1500 connections=32, p99 8.9 ms). First bottleneck at step 6, rate 1,000 -> 2,000: eventbus open files exhausted (1024 of 1024). Refined: rate passes at 1,500, fails at 1,750."
	if r.Summary != want {
		t.Errorf("summary =\n%s\nwant\n%s", r.Summary, want)
	}
	if gen := r.Steps[4]; len(gen.FailedHealth) != 1 || gen.FailedHealth[0].Metric != "generator.cpu" {
		t.Errorf("generator-fail step failed health = %+v", gen.FailedHealth)
	}
	r.Policy = &result.Policy{Passed: false, Messages: []string{"capacity rate=1500 is under the minimum 2000"}}
	lines := SummaryLines(r)
	wantLines := []string{want,
		"change: RLIMIT_NOFILE (systemd LimitNOFILE) (raise the process open-file limit above 2x peak connections)",
		"capacity policy FAILED (exit 3):", "  capacity rate=1500 is under the minimum 2000"}
	if strings.Join(lines, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("SummaryLines =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}
}

// TestBuildRules covers the derivation rules one situation at a time.
func TestBuildRules(t *testing.T) {
	p99 := func(v float64) map[string]float64 { return map[string]float64{"latency.p99": v, "throughput.rps": 100} }
	st := func(index, attempt int, kind, verdict string, rate float64, extra ...func(*result.Step)) result.Step {
		s := result.Step{Index: index, Attempt: attempt, Kind: kind, Verdict: verdict,
			Parameters: map[string]float64{"rate": rate}, Changed: "rate", From: rate / 2, To: rate, Metrics: p99(0.01)}
		if index == 1 {
			s.Changed, s.From, s.To = "", 0, 0
		}
		for _, f := range extra {
			f(&s)
		}
		return s
	}
	failed := func(s *result.Step) {
		s.Metrics = p99(0.5)
		s.FailedGates = []result.GateResult{gateResult("latency.p99 < 100ms", s.Metrics)}
		s.Reason = s.FailedGates[0].Explain
	}
	onlyGates := func(s *result.Step) {
		s.Metrics = p99(0.5)
		s.Gates = []result.GateResult{gateResult("latency.p99 < 100ms", s.Metrics), gateResult("latency.p99 < 1s", s.Metrics)}
	}
	tests := []struct {
		name       string
		status     string
		runErr     string
		steps      []result.Step
		wantStatus string
		partial    bool
		capacity   float64 // rate, 0 for none
		bottleneck int
		summary    string
	}{
		{name: "killed mid-run", status: result.StatusRunning,
			steps:      []result.Step{st(1, 1, "ramp", "pass", 100), st(2, 1, "ramp", "pass", 200)},
			wantStatus: result.StatusAborted, partial: true, capacity: 200,
			summary: "Capacity 100 req/s (rate=200, p99 10 ms). The run did not finish (partial report after 2 step attempts)."},
		{name: "no status recorded", status: "", steps: nil, wantStatus: result.StatusAborted, partial: true,
			summary: "No step ran. The run did not finish (partial report after 0 step attempts)."},
		{name: "max reached", status: result.StatusMaxReached,
			steps:      []result.Step{st(1, 1, "ramp", "pass", 100), st(2, 1, "ramp", "pass", 200)},
			wantStatus: result.StatusMaxReached, capacity: 200,
			summary: "Capacity 100 req/s (rate=200, p99 10 ms). No bottleneck up to the largest step of the plan."},
		{name: "first step fails", status: result.StatusBottleneck,
			steps:      []result.Step{st(1, 1, "ramp", "target-fail", 100, failed), st(1, 2, "confirm", "target-fail", 100, failed)},
			wantStatus: result.StatusBottleneck, bottleneck: 1,
			summary: "No step passed. First bottleneck at step 1: latency.p99 500 ms > 100 ms."},
		{name: "failed gates derived from gates", status: result.StatusBottleneck,
			steps:      []result.Step{st(1, 1, "ramp", "pass", 100), st(2, 1, "ramp", "target-fail", 200, onlyGates)},
			wantStatus: result.StatusBottleneck, capacity: 100, bottleneck: 2,
			summary: "Capacity 100 req/s (rate=100, p99 10 ms). First bottleneck at step 2, rate 100 -> 200: latency.p99 500 ms > 100 ms."},
		{name: "flaky failure passes its confirmation", status: result.StatusMaxReached,
			steps: []result.Step{st(1, 1, "ramp", "pass", 100), st(2, 1, "ramp", "target-fail", 200, failed),
				st(2, 2, "confirm", "pass", 200), st(3, 1, "ramp", "pass", 400)},
			wantStatus: result.StatusMaxReached, capacity: 400,
			summary: "Capacity 100 req/s (rate=400, p99 10 ms). No bottleneck up to the largest step of the plan."},
		{name: "generator limited", status: result.StatusGeneratorLimited,
			steps: []result.Step{st(1, 1, "ramp", "pass", 100), st(2, 1, "ramp", "generator-fail", 200, func(s *result.Step) {
				s.Reason = "generator saturated: generator.cpu 97% > 85%"
			})},
			wantStatus: result.StatusGeneratorLimited, capacity: 100,
			summary: "Capacity 100 req/s (rate=100, p99 10 ms). The load generators saturated at step 2 before the target failed: generator.cpu 97% > 85%."},
		{name: "error", status: result.StatusError, runErr: "engine: connection refused",
			steps:      []result.Step{st(1, 1, "ramp", "error", 100)},
			wantStatus: result.StatusError,
			summary:    "No step passed. The run failed: engine: connection refused."},
		{name: "interrupted while refining keeps the bottleneck", status: result.StatusAborted,
			steps: []result.Step{st(1, 1, "ramp", "pass", 100), st(2, 1, "ramp", "target-fail", 200, failed),
				st(2, 1, "refine", "pass", 150)},
			wantStatus: result.StatusAborted, capacity: 150, bottleneck: 2,
			summary: "Capacity 100 req/s (rate=150, p99 10 ms). First bottleneck at step 2, rate 100 -> 200: latency.p99 500 ms > 100 ms. Refined: rate passes at 150, fails at 200. The run was aborted after 3 step attempts."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(&record.Run{ID: "id", Plan: "p", Status: tt.status, Error: tt.runErr, Params: []string{"rate"}}, tt.steps)
			if r.Status != tt.wantStatus || r.Partial != tt.partial {
				t.Errorf("status %q partial %v, want %q %v", r.Status, r.Partial, tt.wantStatus, tt.partial)
			}
			if (r.Capacity == nil) != (tt.capacity == 0) || (r.Capacity != nil && r.Capacity.Parameters["rate"] != tt.capacity) {
				t.Errorf("capacity = %+v, want rate %v", r.Capacity, tt.capacity)
			}
			if (r.Bottleneck == nil) != (tt.bottleneck == 0) || (r.Bottleneck != nil && r.Bottleneck.Step != tt.bottleneck) {
				t.Errorf("bottleneck = %+v, want step %d", r.Bottleneck, tt.bottleneck)
			}
			if r.Bottleneck != nil && len(r.Bottleneck.FailedGates) != 1 {
				t.Errorf("bottleneck failed gates = %+v, want 1", r.Bottleneck.FailedGates)
			}
			if r.Summary != tt.summary {
				t.Errorf("summary =\n%s\nwant\n%s", r.Summary, tt.summary)
			}
			// Every format renders every situation, and JSON never holds nulls
			// where lists or maps are promised.
			for _, f := range Builtin() {
				var buf bytes.Buffer
				if err := f.Write(&buf, r); err != nil {
					t.Errorf("%s: %v", f.Name, err)
				}
				if f.Name == "json" && (strings.Contains(buf.String(), `"steps": null`) || strings.Contains(buf.String(), `"findings": null`) ||
					strings.Contains(buf.String(), `"metrics": null`) || strings.Contains(buf.String(), `"static": null`)) {
					t.Errorf("report.json has a null list or map:\n%s", buf.String())
				}
			}
		})
	}
}

func TestWriteAll(t *testing.T) {
	dir := t.TempDir()
	rep := Build(fixtureRun())
	paths, err := WriteAll(dir, rep, []string{"html", "json", "csv", "md", "junit", "json"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"report.html", "report.json", "steps.csv", "report.md", "junit.xml"}
	if len(paths) != len(want) {
		t.Fatalf("paths = %v", paths)
	}
	for i, p := range paths {
		if p != filepath.Join(dir, want[i]) {
			t.Errorf("paths[%d] = %q, want %q", i, p, want[i])
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, "report.html")); err != nil || !strings.Contains(string(data), `id="summary"`) {
		t.Errorf("report.html not written by the built-in html writer: %v", err)
	}

	// Each file reads back with a standard parser.
	f, _ := os.Open(filepath.Join(dir, "report.json"))
	back, err := Read(f)
	f.Close()
	if err != nil || back.Bottleneck == nil || back.Bottleneck.Step != 6 || len(back.Steps) != len(rep.Steps) {
		t.Errorf("report.json read back: %+v, %v", back, err)
	}
	var raw map[string]any
	data, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	json.Unmarshal(data, &raw)
	for _, k := range []string{"schema", "run_id", "plan", "status", "static", "capacity", "bottleneck", "steps", "summary"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("report.json lacks %q", k)
		}
	}

	cf, _ := os.Open(filepath.Join(dir, "steps.csv"))
	rows, err := csv.NewReader(cf).ReadAll()
	cf.Close()
	if err != nil || len(rows) != len(rep.Steps)+1 {
		t.Fatalf("steps.csv: %d rows, %v", len(rows), err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, h := range []string{"static.eventbus_nofile", "static.kernel.somaxconn", "rate", "connections", "latency.p99_ms", "errors.ratio", "throughput.rps", "verdict", "reason"} {
		if _, ok := col[h]; !ok {
			t.Errorf("steps.csv lacks column %q: %v", h, rows[0])
		}
	}
	if got := rows[7][col["latency.p99_ms"]]; got != "812.3" {
		t.Errorf("step 6 latency.p99_ms = %q, want 812.3", got)
	}

	var suites junitSuites
	data, _ = os.ReadFile(filepath.Join(dir, "junit.xml"))
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatal(err)
	}
	s := suites.Suites[0]
	if s.Tests != 10 || s.Failures != 3 || s.Skipped != 1 || s.Errors != 0 || len(s.Cases) != 10 {
		t.Errorf("junit counts: tests %d failures %d skipped %d errors %d", s.Tests, s.Failures, s.Skipped, s.Errors)
	}
	if s.Cases[2].Name != "step 3 attempt 1: rate=500 connections=16" {
		t.Errorf("case name = %q", s.Cases[2].Name)
	}

	if _, err := WriteAll(dir, rep, []string{"json", "pdf"}); err == nil || !strings.Contains(err.Error(), `"pdf"`) {
		t.Errorf("unknown format: err = %v", err)
	}
}

// TestWritersRegister shows how the HTML renderer plugs in.
func TestWritersRegister(t *testing.T) {
	ws := Builtin()
	ws.Register(Format{Name: "html", File: "report.html", Write: func(w io.Writer, r *Report) error {
		_, err := io.WriteString(w, "<h1>"+r.Plan+"</h1>")
		return err
	}})
	dir := t.TempDir()
	paths, err := ws.WriteAll(dir, Build(fixtureRun()), []string{"html"})
	if err != nil || len(paths) != 1 {
		t.Fatalf("WriteAll = %v, %v", paths, err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "report.html")); string(data) != "<h1>local-eventbus</h1>" {
		t.Errorf("report.html = %q", data)
	}
	if got := strings.Join(ws.Names(), ","); got != "csv,html,json,junit,md,xlsx" {
		t.Errorf("Names() = %s", got)
	}
}

// TestFromRunDirectory goes through a real run directory: a run killed
// mid-write (status still running, a truncated last line) still reports every
// complete attempt, as a partial report.
func TestFromRunDirectory(t *testing.T) {
	run, steps := fixtureRun()
	run.Status = result.StatusRunning
	dir := filepath.Join(t.TempDir(), run.ID)
	d, err := record.Create(dir, run, []byte("name: local-eventbus\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range steps[:7] {
		if err := d.AppendStep(&steps[i]); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	f, err := os.OpenFile(filepath.Join(dir, record.StepsFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"index":6,"attempt":2,"kind":"confirm","param`)
	f.Close()

	o, err := record.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	gotRun, err := o.ReadRun()
	if err != nil {
		t.Fatal(err)
	}
	gotSteps, err := o.ReadSteps()
	if err != nil || !o.TruncatedTail() {
		t.Fatalf("ReadSteps: %d steps, truncated=%v, %v", len(gotSteps), o.TruncatedTail(), err)
	}
	r := Build(gotRun, gotSteps)
	if r.Status != result.StatusAborted || !r.Partial || len(r.Steps) != 7 {
		t.Errorf("status %q partial %v steps %d", r.Status, r.Partial, len(r.Steps))
	}
	// Step 6 failed once and its confirmation never finished: a bottleneck
	// candidate, reported as such since its last complete attempt failed.
	if r.Capacity == nil || r.Capacity.Step != 5 || r.Bottleneck == nil || r.Bottleneck.Step != 6 {
		t.Errorf("capacity %+v bottleneck %+v", r.Capacity, r.Bottleneck)
	}
	paths, err := WriteAll(dir, r, []string{"json", "csv", "md", "junit", "html"})
	if err != nil || len(paths) != 5 {
		t.Fatalf("WriteAll = %v, %v", paths, err)
	}
	o.Close()
}

// TestFindingsOnePerCause: a cause seen on several attempts, observed a
// little differently each time, is one entry with the attempts it was seen
// on and its strongest observation; the bottleneck's own come first.
func TestFindingsOnePerCause(t *testing.T) {
	r := Build(fixtureRun())
	if len(r.Findings) != 2 {
		t.Fatalf("%d causes, want 2 (fd-process, cpu-saturation): %+v", len(r.Findings), r.Findings)
	}
	fd, cpu := r.Findings[0], r.Findings[1]
	if fd.Rule != "fd-process" || !fd.Bottleneck || fd.Observed != "1024 of 1024" || fd.Strongest.Ref != "6.2" {
		t.Errorf("first cause = %+v, want the bottleneck's fd-process, strongest 1024 of 1024 on 6.2", fd)
	}
	if got := strings.Join(refs(fd.Steps), ","); got != "6.1,6.2" {
		t.Errorf("fd-process seen on %s, want 6.1,6.2", got)
	}
	if cpu.Rule != "cpu-saturation" || cpu.Bottleneck || cpu.Observed != "97% of the host's CPUs" || cpu.Strongest.Ref != "5.1" || cpu.Strongest.Verdict != result.VerdictGeneratorFail {
		t.Errorf("second cause = %+v, want cpu-saturation, strongest 97%% on 5.1", cpu)
	}
	if got := strings.Join(refs(cpu.Steps), ","); got != "4.1,5.1,5.2,6.1" {
		t.Errorf("cpu-saturation seen on %s, want 4.1,5.1,5.2,6.1", got)
	}
	// Another host or process is another cause.
	run, steps := fixtureRun()
	other := steps[3].Findings[0]
	other.Host = "gen-2"
	steps[3].Findings = append(steps[3].Findings, other)
	if n := len(Build(run, steps).Findings); n != 3 {
		t.Errorf("%d causes with cpu-saturation on a second host, want 3", n)
	}
	// report.json carries them with the steps.
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Findings []struct {
			Rule  string `json:"rule"`
			Steps []struct {
				Ref string `json:"ref"`
			} `json:"steps"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || len(doc.Findings) != 2 || len(doc.Findings[1].Steps) != 4 {
		t.Errorf("report.json findings = %+v, %v", doc.Findings, err)
	}
}

func TestStrength(t *testing.T) {
	for obs, want := range map[string]float64{"98% of the host's CPUs": 98, "1024 of 1024": 1024, "340 overflows": 340, "allowance exceeded: pps": 0, "2.5 GiB": 2.5} {
		if got, _ := leadingNumber(obs); got != want {
			t.Errorf("leadingNumber(%q) = %g, want %g", obs, got, want)
		}
	}
}

// TestNotesInEveryFormat: a note on the run, on a step and on one attempt
// shows in every format, on the right row.
func TestNotesInEveryFormat(t *testing.T) {
	run, steps := fixtureRun()
	at := t0.Add(time.Hour)
	notes := []record.Note{
		{Time: at, Step: "run", Text: "kernel 6.1 with BBR"},
		{Time: at, Step: "6.2", Text: "dmesg: possible SYN flooding on port 8080"},
		{Time: at, Step: "6.r1", Text: "bisection passes here <ok>"},
		{Time: at, Step: "5", Text: "generator box was busy"},
	}
	r := Build(run, steps, WithNotes(notes))
	if got := r.NotesOf(&r.Steps[7]); len(got) != 1 || got[0].Step != "6.2" {
		t.Errorf("notes of 6.2 = %+v", got)
	}
	if got := r.NotesOf(&r.Steps[8]); len(got) != 1 || got[0].Step != "6.r1" {
		t.Errorf("notes of 6.r1 = %+v (6.1 ramp and 6.r1 refine share index and attempt)", got)
	}
	if got := r.NotesOf(&r.Steps[6]); len(got) != 0 {
		t.Errorf("notes of 6.1 = %+v, want none", got)
	}
	if got := r.NotesOf(&r.Steps[4]); len(got) != 1 || r.NotesOf(&r.Steps[5]) != nil {
		t.Errorf("a note on step 5 shows on its first attempt only: %+v, %+v", got, r.NotesOf(&r.Steps[5]))
	}
	out := map[string]string{}
	for _, f := range Builtin() {
		var buf bytes.Buffer
		if err := f.Write(&buf, r); err != nil {
			t.Fatal(err)
		}
		out[f.Name] = buf.String()
	}
	for name, wants := range map[string][]string{
		"html":  {`<td class="note">kernel 6.1 with BBR</td>`, `<td>step 6.2 (step 6 attempt 2, confirm)</td>`, `bisection passes here &lt;ok&gt;`, `<th>notes</th>`},
		"md":    {"## Notes", "- **run**: kernel 6.1 with BBR", "- **step 6.2**: dmesg: possible SYN flooding on port 8080", "| dmesg: possible SYN flooding on port 8080 |", "bisection passes here &lt;ok>"},
		"json":  {`"notes": [`, `"step": "6.r1"`, `"text": "kernel 6.1 with BBR"`},
		"junit": {`<property name="note" value="kernel 6.1 with BBR">`, "note: dmesg: possible SYN flooding on port 8080"},
	} {
		for _, w := range wants {
			if !strings.Contains(out[name], w) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
	}
	rows, err := csv.NewReader(strings.NewReader(out["csv"])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for i, want := range map[int]string{5: "generator box was busy", 6: "", 8: "dmesg: possible SYN flooding on port 8080", 9: "bisection passes here <ok>"} {
		if got := rows[i][col["notes"]]; got != want {
			t.Errorf("steps.csv row %d (%s) notes = %q, want %q", i, rows[i][col["ref"]], got, want)
		}
	}
	// No notes: nothing changes (the goldens hold without a notes column).
	if strings.Contains(renderHTML(t, Build(fixtureRun())), `<th>notes</th>`) {
		t.Error("report.html without notes has a notes column")
	}
}
