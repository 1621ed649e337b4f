package record

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/loadramp/loadramp/orchestrator/result"
)

// NotesFile holds an engineer's notes on a run and its steps, one JSON line
// each. It is kept apart from steps.jsonl so that the measured record is
// never rewritten: a note is only ever appended here.
const NotesFile = "notes.jsonl"

// MaxNoteBytes bounds one note's text.
const MaxNoteBytes = 8 << 10

// StepAddr names one step, or one attempt of a step, the way an engineer
// writes it on the command line and reads it in the reports:
//
//	6      step 6 (the note belongs to the step: its first attempt's row shows it)
//	6.2    attempt 2 of step 6 (a ramp attempt, its confirm or its rerun)
//	6.r1   refine attempt 1 of step 6 (bisection attempts count their own)
//
// The zero StepAddr (Index 0) is the run itself.
type StepAddr struct {
	Index int
	// Attempt is 0 for the whole step.
	Attempt int
	// Refine: Attempt counts the step's refine attempts.
	Refine bool
}

// IsRun reports whether a is the run itself rather than a step.
func (a StepAddr) IsRun() bool { return a.Index == 0 }

// String is the address as ParseStepAddr reads it ("6", "6.2", "6.r1"; "run"
// for the run).
func (a StepAddr) String() string {
	switch {
	case a.Index == 0:
		return "run"
	case a.Attempt == 0:
		return strconv.Itoa(a.Index)
	case a.Refine:
		return fmt.Sprintf("%d.r%d", a.Index, a.Attempt)
	}
	return fmt.Sprintf("%d.%d", a.Index, a.Attempt)
}

// AddrOf is the address of step attempt s ("6.2", "6.r1").
func AddrOf(s result.Step) StepAddr {
	return StepAddr{Index: s.Index, Attempt: s.Attempt, Refine: s.Kind == result.KindRefine}
}

// Matches reports whether step attempt s is what a names: the attempt
// itself, or any attempt of the step when a has no attempt.
func (a StepAddr) Matches(s result.Step) bool {
	if a.Index == 0 || a.Index != s.Index {
		return false
	}
	if a.Attempt == 0 {
		return true
	}
	return a.Attempt == s.Attempt && a.Refine == (s.Kind == result.KindRefine)
}

// ParseStepAddr reads a step address: INDEX, INDEX.ATTEMPT or
// INDEX.rATTEMPT, all numbers from 1, or "run" for the run itself.
func ParseStepAddr(s string) (StepAddr, error) {
	if strings.TrimSpace(s) == "run" {
		return StepAddr{}, nil
	}
	bad := func(why string) (StepAddr, error) {
		return StepAddr{}, fmt.Errorf("step %q: %s; write INDEX (6), INDEX.ATTEMPT (6.2) or INDEX.rATTEMPT for a refine attempt (6.r1), as the reports' step column shows them", s, why)
	}
	idx, att, hasAtt := strings.Cut(strings.TrimSpace(s), ".")
	i, err := strconv.Atoi(idx)
	if err != nil || i < 1 {
		return bad("the index is not a number >= 1")
	}
	a := StepAddr{Index: i}
	if !hasAtt {
		return a, nil
	}
	if rest, ok := strings.CutPrefix(att, "r"); ok {
		a.Refine, att = true, rest
	}
	n, err := strconv.Atoi(att)
	if err != nil || n < 1 {
		return bad("the attempt is not a number >= 1")
	}
	a.Attempt = n
	return a, nil
}

// Note is an engineer's observation: on the run (Step "run") or on a step
// ("6", "6.2", "6.r1"). It is a line of notes.jsonl.
type Note struct {
	Time time.Time `json:"time"`
	// Step is the StepAddr as a string; "run" for the run.
	Step string `json:"step"`
	Text string `json:"text"`
}

// Addr is the note's parsed address (the run for "run" or an unreadable one).
func (n Note) Addr() StepAddr {
	a, _ := ParseStepAddr(n.Step)
	return a
}

// CheckNoteText refuses an empty or oversized note.
func CheckNoteText(text string) error {
	if strings.TrimSpace(text) == "" {
		return errors.New("the note is empty")
	}
	if len(text) > MaxNoteBytes {
		return fmt.Errorf("the note is %d bytes; keep it under %d", len(text), MaxNoteBytes)
	}
	return nil
}

// AppendNote appends n to dir's notes.jsonl (created 0600) and fsyncs it.
//
// It does not take the run directory's lock: a note may be written while the
// run is going (an observation made during a step is the point), and the
// process that owns the run never writes notes.jsonl except through this
// function. Writers of notes serialize on an exclusive flock of notes.jsonl
// itself, held for one append, so two notes never interleave.
func AppendNote(dir string, n Note) error {
	if err := CheckNoteText(n.Text); err != nil {
		return err
	}
	if n.Step == "" {
		n.Step = StepAddr{}.String()
	}
	line, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode note: %w", err)
	}
	line = append(line, '\n')
	f, err := openAppendRepairedLocked(filepath.Join(dir, NotesFile))
	if err != nil {
		return err
	}
	defer f.Close() // releases the flock
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("append to %s: %w", NotesFile, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", NotesFile, err)
	}
	return nil
}

// openAppendRepairedLocked opens a JSON-lines file for appending under an
// exclusive flock, cutting off a truncated last line first.
func openAppendRepairedLocked(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, FileMode)
	if err != nil {
		return nil, fmt.Errorf("open %s for appending: %w", filepath.Base(path), err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", filepath.Base(path), err)
	}
	return repairTail(f, path)
}

// ReadNotes reads dir's notes.jsonl in the order the notes were written. A
// missing file is no notes; a broken line (a crash mid-write) is skipped.
func ReadNotes(dir string) ([]Note, error) {
	f, err := os.Open(filepath.Join(dir, NotesFile))
	if errors.Is(err, os.ErrNotExist) {
		return []Note{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read notes: %w", err)
	}
	defer f.Close()
	return readNotesFrom(f)
}

func readNotesFrom(r io.Reader) ([]Note, error) {
	notes := []Note{}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var n Note
			if json.Unmarshal(line, &n) == nil && n.Text != "" {
				notes = append(notes, n)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return notes, nil
			}
			return nil, fmt.Errorf("read %s: %w", NotesFile, err)
		}
	}
}

// ReadNotes reads the run directory's notes (see the package function).
func (d *Dir) ReadNotes() ([]Note, error) { return ReadNotes(d.path) }

// AddNote appends a note to the run directory d (see AppendNote).
func (d *Dir) AddNote(n Note) error { return AppendNote(d.path, n) }

// NoteTarget checks a note's address against the run's recorded steps and
// returns it. A step the log does not hold yet is accepted only while the
// run is live (its owner holds the lock): the step may be the one running
// now. Otherwise the error lists the steps there are.
func NoteTarget(dir, addr string, steps []result.Step) (StepAddr, error) {
	a, err := ParseStepAddr(addr)
	if err != nil || a.IsRun() {
		return a, err
	}
	for _, s := range steps {
		if a.Matches(s) {
			return a, nil
		}
	}
	if held, _ := LockHolder(dir); held {
		return a, nil
	}
	var have []string
	for _, s := range steps {
		have = append(have, AddrOf(s).String())
	}
	if len(have) == 0 {
		return a, fmt.Errorf("step %s: the run recorded no step; a note on the run needs no step", a)
	}
	return a, fmt.Errorf("step %s is not in the run's steps.jsonl; its attempts are %s", a, strings.Join(have, ", "))
}

// Annotate adds a note to the run directory dir: on the run for addr "run"
// (or ""), else on the step addr names (see NoteTarget). It returns the
// address the note was stored under.
func Annotate(dir, addr, text string, now time.Time) (StepAddr, error) {
	if err := CheckNoteText(text); err != nil {
		return StepAddr{}, err
	}
	d, err := Open(dir)
	if err != nil {
		return StepAddr{}, err
	}
	steps, err := d.ReadSteps()
	if err != nil {
		return StepAddr{}, err
	}
	if addr == "" {
		addr = StepAddr{}.String()
	}
	a, err := NoteTarget(dir, addr, steps)
	if err != nil {
		return a, err
	}
	return a, AppendNote(dir, Note{Time: now.UTC(), Step: a.String(), Text: text})
}

// StepAddrs lists the addresses a note on the run directory dir may take,
// each with a tab and a few words (for shell completion): "run", then every
// recorded attempt ("6.2\tconfirm target-fail").
func StepAddrs(dir string) []string {
	out := []string{StepAddr{}.String() + "\tthe run itself"}
	d, err := Open(dir)
	if err != nil {
		return nil
	}
	steps, _ := d.ReadSteps()
	for _, s := range steps {
		out = append(out, AddrOf(s).String()+"\t"+s.Kind+" "+s.Verdict)
	}
	return out
}
