package record

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/loadramp/loadramp/orchestrator/result"
)

// Summary is one run in the history (`loadramp runs`).
type Summary struct {
	ID    string
	Plan  string
	Dir   string
	Start time.Time
	End   time.Time
	// Status is run.json's, except that a run marked running whose owner
	// is gone is result.StatusInterrupted.
	Status string
	// Owner is the pid of the live process that owns a running run (0 when
	// none, or unknown).
	Owner int
	// Crash is the first line of the crash output of an interrupted run
	// whose process crashed (CrashFile), "" otherwise.
	Crash string
	// Attempts is the number of step attempts logged.
	Attempts int
	// Capacity is the highest passing attempt's load parameters (nil when no
	// attempt passed), CapacityStep its step index.
	Capacity     map[string]float64
	CapacityStep int
	// Params are the load parameter names in plan order.
	Params []string
	// Bottleneck is the first confirmed target-fail step, nil if none.
	Bottleneck *result.Step
	// Err is set when the run directory could not be read whole; the other
	// fields then hold what could be read.
	Err error
}

// List returns a Summary of every run directory under runsDir (a directory with
// a run.json), newest first by start time, then by id. A missing runsDir is an
// empty history. A run whose step log cannot be read is listed with Err set,
// so one damaged run does not hide the others.
func List(runsDir string) ([]Summary, error) {
	entries, err := os.ReadDir(runsDir)
	if errors.Is(err, os.ErrNotExist) {
		return []Summary{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list runs in %s: %w", runsDir, err)
	}
	out := []Summary{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(runsDir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, RunFile)); err != nil {
			continue
		}
		out = append(out, summarize(dir, e.Name()))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.After(out[j].Start)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}

func summarize(dir, name string) Summary {
	s := Summary{ID: name, Dir: dir}
	run, err := readRun(dir)
	if err != nil {
		s.Err = err
		return s
	}
	if run.ID != "" {
		s.ID = run.ID
	}
	s.Plan, s.Start, s.End, s.Status = run.Plan, run.Start, run.End, run.Status
	if s.Status == result.StatusRunning {
		held, pid := LockHolder(dir)
		if held {
			s.Owner = pid
		} else {
			s.Status = result.StatusInterrupted
			s.Crash = Crash(dir)
		}
	}
	d := &Dir{path: dir}
	steps, err := d.ReadSteps()
	if err != nil {
		s.Err = err
		return s
	}
	s.Attempts = len(steps)
	s.Params = ParameterNames(run, steps)
	if c, ok := CapacityStep(steps); ok {
		s.Capacity, s.CapacityStep = c.Parameters, c.Index
	}
	if b, ok := Bottleneck(steps); ok {
		st := b.Step
		s.Bottleneck = &st
	}
	return s
}

// LatestFinished returns the newest run of plan under runsDir that finished
// (bottleneck, max-reached or generator-limited) and can be read whole; ok is
// false when there is none.
func LatestFinished(runsDir, plan string) (s Summary, ok bool, err error) {
	list, err := List(runsDir)
	if err != nil {
		return Summary{}, false, err
	}
	for _, s := range list { // newest first
		if s.Plan != plan || s.Err != nil {
			continue
		}
		switch s.Status {
		case result.StatusBottleneck, result.StatusMaxReached, result.StatusGeneratorLimited:
			return s, true, nil
		}
	}
	return Summary{}, false, nil
}

// StatusText is the run's status as loadramp runs shows it: Status, and
// for a run whose process crashed, the first line of its crash output.
func (s Summary) StatusText() string {
	if s.Crash != "" {
		return s.Status + " (crashed: " + s.Crash + ")"
	}
	return s.Status
}
