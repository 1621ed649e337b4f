package record

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/result"
)

func TestStepAddr(t *testing.T) {
	for in, want := range map[string]StepAddr{
		"6": {Index: 6}, "6.2": {Index: 6, Attempt: 2}, "6.r1": {Index: 6, Attempt: 1, Refine: true},
		"run": {}, " 12.3 ": {Index: 12, Attempt: 3},
	} {
		got, err := ParseStepAddr(in)
		if err != nil || got != want {
			t.Errorf("ParseStepAddr(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if again, _ := ParseStepAddr(got.String()); again != got {
			t.Errorf("%q does not round-trip: %q", in, got.String())
		}
	}
	for _, bad := range []string{"", "0", "-1", "6.", "6.0", "6.x", "6.r", "6.r0", "a.1", "6.1.1", "r1"} {
		if _, err := ParseStepAddr(bad); err == nil || !strings.Contains(err.Error(), "6.r1") {
			t.Errorf("ParseStepAddr(%q) = %v; want an error showing the forms", bad, err)
		}
	}
	refine := result.Step{Index: 6, Attempt: 1, Kind: result.KindRefine}
	ramp := result.Step{Index: 6, Attempt: 1, Kind: result.KindRamp}
	if a := AddrOf(refine); a.String() != "6.r1" || !a.Matches(refine) || a.Matches(ramp) {
		t.Errorf("AddrOf(refine) = %v: must match the refine attempt only", a)
	}
	if a := (StepAddr{Index: 6}); !a.Matches(refine) || !a.Matches(ramp) {
		t.Error("a step's address must match all its attempts")
	}
}

func newRunDir(t *testing.T, steps ...*result.Step) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "r")
	d, err := Create(dir, &Run{ID: "r", Plan: "p", Status: result.StatusRunning, Start: time.Now()}, []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if err := d.AppendStep(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestNotesBesideTheStepLog: notes are appended to notes.jsonl, private, in
// order; steps.jsonl is never touched; a note must name a recorded step
// unless the run is live.
func TestNotesBesideTheStepLog(t *testing.T) {
	dir := newRunDir(t,
		step(1, 1, result.KindRamp, result.VerdictPass, nil),
		step(2, 1, result.KindRamp, result.VerdictTargetFail, nil),
		step(2, 2, result.KindConfirm, result.VerdictTargetFail, nil),
		step(2, 1, result.KindRefine, result.VerdictPass, nil))
	before, err := os.ReadFile(filepath.Join(dir, StepsFile))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	for _, c := range []struct{ addr, text, want string }{
		{"", "kernel 6.1, BBR", "run"},
		{"2.2", "dmesg: possible SYN flooding", "2.2"},
		{"2.r1", "passes at 1500", "2.r1"},
		{"1", "baseline looks clean", "1"},
	} {
		a, err := Annotate(dir, c.addr, c.text, now)
		if err != nil || a.String() != c.want {
			t.Fatalf("Annotate(%q) = %v, %v; want %s", c.addr, a, err, c.want)
		}
	}
	for _, c := range []struct{ addr, want string }{
		{"3", "not in the run's steps.jsonl; its attempts are 1.1, 2.1, 2.2, 2.r1"},
		{"2.3", "not in the run's steps.jsonl"},
		{"1.r1", "not in the run's steps.jsonl"},
		{"x", "write INDEX (6)"},
	} {
		if _, err := Annotate(dir, c.addr, "text", now); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Annotate(%q) = %v; want an error with %q", c.addr, err, c.want)
		}
	}
	if _, err := Annotate(dir, "1", "  \n", now); err == nil {
		t.Error("an empty note was accepted")
	}
	if _, err := Annotate(dir, "1", strings.Repeat("x", MaxNoteBytes+1), now); err == nil {
		t.Error("an oversized note was accepted")
	}
	if _, err := Annotate(t.TempDir(), "", "no run here", now); err == nil {
		t.Error("a note on a directory without run.json was accepted")
	}

	notes, err := ReadNotes(dir)
	if err != nil || len(notes) != 4 {
		t.Fatalf("ReadNotes = %d notes, %v; want 4", len(notes), err)
	}
	if n := notes[1]; n.Step != "2.2" || n.Text != "dmesg: possible SYN flooding" || !n.Time.Equal(now) || n.Addr() != (StepAddr{Index: 2, Attempt: 2}) {
		t.Errorf("second note = %+v", n)
	}
	if !notes[0].Addr().IsRun() {
		t.Errorf("first note %+v is not on the run", notes[0])
	}
	after, _ := os.ReadFile(filepath.Join(dir, StepsFile))
	if !bytes.Equal(before, after) {
		t.Error("adding notes changed steps.jsonl")
	}
	st, err := os.Stat(filepath.Join(dir, NotesFile))
	if err != nil || st.Mode().Perm() != FileMode {
		t.Errorf("notes.jsonl mode = %v, %v; want %v", st.Mode().Perm(), err, FileMode)
	}

	// A live run (its owner holds the lock) may be noted on the step it is
	// running now, which the log does not hold yet.
	lock, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := Annotate(dir, "3.1", "latency climbing during the hold", now); err != nil || a.String() != "3.1" {
		t.Errorf("note on the running step of a live run = %v, %v", a, err)
	}
	lock.Release()

	// A note cut short by a crash is skipped, and the next append repairs
	// the file rather than gluing onto the broken line.
	f, _ := os.OpenFile(filepath.Join(dir, NotesFile), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"time":"2026-11-27T07:00:00Z","step":"1","te`)
	f.Close()
	if notes, err := ReadNotes(dir); err != nil || len(notes) != 5 {
		t.Errorf("with a torn last line: %d notes, %v; want 5", len(notes), err)
	}
	if _, err := Annotate(dir, "1", "after the crash", now); err != nil {
		t.Fatal(err)
	}
	if notes, _ := ReadNotes(dir); len(notes) != 6 || notes[5].Text != "after the crash" {
		t.Errorf("after repair: %+v", notes)
	}
}

// TestNotesConcurrentWriters: notes written at once by many writers all land
// whole.
func TestNotesConcurrentWriters(t *testing.T) {
	dir := newRunDir(t, step(1, 1, result.KindRamp, result.VerdictPass, nil))
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				text := fmt.Sprintf("writer %d note %d %s", w, i, strings.Repeat("x", 3000))
				if err := AppendNote(dir, Note{Time: time.Now(), Step: "1.1", Text: text}); err != nil {
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
	notes, err := ReadNotes(dir)
	if err != nil || len(notes) != writers*each {
		t.Fatalf("%d notes, %v; want %d", len(notes), err, writers*each)
	}
}

// FuzzParseStepAddr: an address either fails to parse or round-trips, and
// never names step 0 with an attempt.
func FuzzParseStepAddr(f *testing.F) {
	for _, s := range []string{"6", "6.2", "6.r1", "run", "0", "6.", "6.r", " 12.3 ", "1.r0", "-1.2", "9999999999999999999.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseStepAddr(s)
		if err != nil {
			if a != (StepAddr{}) {
				t.Fatalf("ParseStepAddr(%q) failed but returned %+v", s, a)
			}
			return
		}
		if a.IsRun() && (a.Attempt != 0 || a.Refine) {
			t.Fatalf("ParseStepAddr(%q) = %+v", s, a)
		}
		back, err := ParseStepAddr(a.String())
		if err != nil || back != a {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, a, a.String(), back, err)
		}
	})
}

// FuzzReadNotes: any notes.jsonl reads without panicking, keeping only whole
// notes with text.
func FuzzReadNotes(f *testing.F) {
	f.Add([]byte(`{"time":"2026-11-27T07:00:00Z","step":"6.2","text":"x"}` + "\n" + `{"step":"1","te`))
	f.Add([]byte("\n\n{}\n[]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		notes, err := readNotesFrom(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range notes {
			if n.Text == "" {
				t.Fatalf("a note without text: %+v", n)
			}
		}
	})
}
