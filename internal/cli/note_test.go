package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/report"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// finishedRun makes a finished run directory with its reports, as a run
// leaves it.
func finishedRun(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "20261127T063000Z-p")
	run := &record.Run{ID: "20261127T063000Z-p", Plan: "p", Status: result.StatusRunning, Start: time.Now(), Params: []string{"rate"}}
	d, err := record.Create(dir, run, []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []string{result.VerdictPass, result.VerdictTargetFail} {
		s := &result.Step{Index: i + 1, Attempt: 1, Kind: result.KindRamp, Verdict: v, Parameters: map[string]float64{"rate": float64(250 * (i + 1))}}
		if err := d.AppendStep(s); err != nil {
			t.Fatal(err)
		}
	}
	run.Status = result.StatusBottleneck
	if err := d.WriteRun(run); err != nil {
		t.Fatal(err)
	}
	d.Close()
	rep, _, err := report.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := report.WriteAll(dir, rep, []string{"html", "md", "json"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestNoteCommand(t *testing.T) {
	dir := finishedRun(t)
	steps, _ := os.ReadFile(filepath.Join(dir, record.StepsFile))

	code, out, errOut := runArgs(t, nil, "note", dir, "2.1", "dmesg: possible SYN flooding")
	if code != 0 || !strings.Contains(out, "noted on 2.1") || !strings.Contains(out, "report.html") {
		t.Fatalf("note on a step: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = runArgs(t, nil, "note", dir, "kernel 6.1 with BBR"); code != 0 || !strings.Contains(out, "noted on run") {
		t.Fatalf("note on the run: exit %d\n%s%s", code, out, errOut)
	}
	// The reports already there were rewritten; no other format appeared.
	for _, f := range []string{"report.html", "report.md", "report.json"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if !strings.Contains(string(b), "dmesg: possible SYN flooding") || !strings.Contains(string(b), "kernel 6.1 with BBR") {
			t.Errorf("%s does not show the notes", f)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "junit.xml")); err == nil {
		t.Error("note wrote junit.xml, which the run directory did not have")
	}
	// Regenerating keeps them; the step log is untouched.
	if code, _, errOut := runArgs(t, nil, "report", dir); code != 0 {
		t.Fatalf("report: exit %d: %s", code, errOut)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "steps.csv"))
	if !strings.Contains(string(b), "dmesg: possible SYN flooding") {
		t.Errorf("regenerated steps.csv lacks the note:\n%s", b)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, record.StepsFile)); !bytes.Equal(steps, after) {
		t.Error("notes changed steps.jsonl")
	}

	// Bad input: a clear error naming the forms, exit 2.
	for _, args := range [][]string{{"note", dir, "7", "x"}, {"note", dir, "2.x", "x"}, {"note", dir, "2", " "}, {"note", t.TempDir(), "x"}} {
		if code, _, errOut := runArgs(t, nil, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errOut)
		}
	}

	// A live run: the note on the step running now is stored, and the
	// reports are left to the run, which writes them when it ends.
	lock, err := record.Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	html, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	if code, out, errOut := runArgs(t, nil, "note", dir, "3.1", "latency climbing"); code != 0 || strings.Contains(out, "wrote") {
		t.Fatalf("note on a live run: exit %d\n%s%s", code, out, errOut)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "report.html")); !bytes.Equal(html, again) {
		t.Error("a note on a live run rewrote its reports")
	}
	notes, _ := record.ReadNotes(dir)
	if len(notes) != 3 || notes[2].Step != "3.1" {
		t.Errorf("notes = %+v", notes)
	}
}
