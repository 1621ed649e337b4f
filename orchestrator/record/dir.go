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
	"strings"
	"sync"
	"time"

	"github.com/loadramp/loadramp/orchestrator/result"
)

// File names inside a run directory (DESIGN.md, "Run directory").
const (
	PlanFile    = "plan.yaml"
	RunFile     = "run.json"
	StepsFile   = "steps.jsonl"
	SamplesFile = "samples.jsonl"
	EventsFile  = "events.log"
)

// NewRunID returns the id of a run started at now for the named plan:
// "20261127T063000Z-local-eventbus". The time is UTC, so ids sort by start time.
// The plan name is lowercased and reduced to a-z, 0-9, '.', '_' and '-' so the id
// is a safe directory name; an empty result becomes "run".
func NewRunID(now time.Time, planName string) string {
	return now.UTC().Format("20060102T150405Z") + "-" + sanitize(planName)
}

// sanitize keeps a name usable as one path element on every file system.
func sanitize(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		ok := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '.'
		if ok {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.Trim(b.String(), "-.")
	if len(s) > 64 {
		s = strings.Trim(s[:64], "-.")
	}
	if s == "" {
		return "run"
	}
	return s
}

// Dir is an open run directory. Its methods are safe for concurrent use.
//
// Steps are appended to steps.jsonl one JSON line per attempt, each with a
// single write followed by fsync, so after a crash the log holds every attempt
// that ended, plus at most one truncated line, which ReadSteps skips and the
// next AppendStep cuts off.
type Dir struct {
	path string
	red  *redactor

	mu       sync.Mutex // guards everything below
	steps    *os.File
	samples  *os.File
	samplesW *bufio.Writer
	// flushTimer writes buffered samples out SampleFlushInterval after the
	// first one buffered since the last write; flushArmed says it is pending.
	flushTimer *time.Timer
	flushArmed bool
	sampleErr  error // a timed flush that failed, reported by the next call
	events     []*eventsLog
	lock       *RunLock
	truncated  bool // the last ReadSteps skipped a truncated final line
	closed     bool
}

// Modes of what loadramp writes into a run directory: it may hold a plan's
// parameters, process logs and infrastructure references, so only the user
// who ran loadramp can read it.
const (
	DirMode  os.FileMode = 0o700
	FileMode os.FileMode = 0o600
)

// SampleFlushInterval bounds how long a sample stays buffered in memory: a
// process killed outright (kill -9, OOM) loses at most this much of
// samples.jsonl. AppendStep writes and fsyncs every buffered sample first.
const SampleFlushInterval = time.Second

// Create makes the run directory dir (its parent is created if needed; dir
// itself must not exist, so two runs never share one), takes its lock (held
// until Close) and writes plan.yaml and run.json into it.
func Create(dir string, run *Run, planYAML []byte) (*Dir, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("create runs directory: %w", err)
	}
	if err := os.Mkdir(dir, DirMode); err != nil {
		return nil, fmt.Errorf("create run directory (each run needs a new one): %w", err)
	}
	// The lock comes before run.json: `loadramp runs` never sees a run
	// marked running whose owner has not locked it yet.
	lock, err := Lock(dir)
	if err != nil {
		return nil, err
	}
	d := &Dir{path: dir, red: &redactor{}, lock: lock}
	if err := writeFileSync(filepath.Join(dir, PlanFile), planYAML); err != nil {
		lock.Release()
		return nil, fmt.Errorf("write the resolved plan: %w", err)
	}
	if err := d.WriteRun(run); err != nil {
		lock.Release()
		return nil, err
	}
	return d, nil
}

// Open opens an existing run directory, for a report or a comparison. It
// fails if dir has no run.json. It takes no lock (see OpenLocked); nothing is
// written until an Append method is called.
func Open(dir string) (*Dir, error) {
	if _, err := os.Stat(filepath.Join(dir, RunFile)); err != nil {
		return nil, fmt.Errorf("open run directory %s: %w", dir, err)
	}
	return &Dir{path: dir, red: &redactor{}}, nil
}

// OpenLocked opens an existing run directory to carry it on (a resume) and
// holds its lock until Close. A run directory another live process owns is a
// *LockedError. A directory an older loadramp made readable by others is
// made private.
func OpenLocked(dir string) (*Dir, error) {
	d, err := Open(dir)
	if err != nil {
		return nil, err
	}
	if d.lock, err = Lock(dir); err != nil {
		return nil, err
	}
	_ = os.Chmod(dir, DirMode)
	return d, nil
}

// Path returns the run directory's path.
func (d *Dir) Path() string { return d.path }

var errClosed = errors.New("run directory is closed")

// AppendStep appends s to steps.jsonl as one line and fsyncs it, so the attempt
// survives a crash of loadramp or the machine.
func (d *Dir) AppendStep(s *result.Step) error {
	line, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode step %d attempt %d: %w", s.Index, s.Attempt, err)
	}
	line = append(line, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	// The attempt's samples reach the disk before the attempt does: a step
	// in steps.jsonl always has its samples.
	if err := d.syncSamples(); err != nil {
		return err
	}
	if d.steps == nil {
		f, err := openAppendRepaired(filepath.Join(d.path, StepsFile))
		if err != nil {
			return err
		}
		d.steps = f
	}
	// One write call per line: with O_APPEND the line lands whole or, on a
	// crash, as a truncated tail that readers skip.
	if _, err := d.steps.Write(line); err != nil {
		return fmt.Errorf("append step %d attempt %d to %s: %w", s.Index, s.Attempt, StepsFile, err)
	}
	if err := d.steps.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", StepsFile, err)
	}
	return nil
}

// openAppendRepaired opens a JSON-lines file for appending. If an earlier
// process died mid-line, the partial line is cut off first: appending after it
// would glue a good record onto a broken one.
func openAppendRepaired(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, FileMode)
	if err != nil {
		return nil, fmt.Errorf("open %s for appending: %w", filepath.Base(path), err)
	}
	return repairTail(f, path)
}

// repairTail cuts a truncated last line off f (opened on path), closing f
// if it cannot.
func repairTail(f *os.File, path string) (*os.File, error) {
	keep, err := completeLength(f)
	if err == nil {
		var st os.FileInfo
		if st, err = f.Stat(); err == nil && st.Size() != keep {
			err = f.Truncate(keep)
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cut the truncated last line of %s: %w", filepath.Base(path), err)
	}
	return f, nil
}

// completeLength returns the length of f up to and including its last newline.
func completeLength(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	for end := size; end > 0; {
		start := max(end-chunk, 0)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// AppendSample appends v to samples.jsonl as one JSON line. Samples are
// buffered (they are many): each is written out within SampleFlushInterval,
// and fsynced by the next AppendStep or by Close.
func (d *Dir) AppendSample(v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode sample: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	if err := d.sampleErr; err != nil {
		d.sampleErr = nil
		return err
	}
	if d.samples == nil {
		f, err := openAppendRepaired(filepath.Join(d.path, SamplesFile))
		if err != nil {
			return err
		}
		d.samples, d.samplesW = f, bufio.NewWriterSize(f, 64<<10)
	}
	d.samplesW.Write(line)
	if err := d.samplesW.WriteByte('\n'); err != nil {
		return fmt.Errorf("append to %s: %w", SamplesFile, err)
	}
	if !d.flushArmed {
		d.flushArmed = true
		if d.flushTimer == nil {
			d.flushTimer = time.AfterFunc(SampleFlushInterval, d.timedFlush)
		} else {
			d.flushTimer.Reset(SampleFlushInterval)
		}
	}
	return nil
}

// timedFlush writes the buffered samples out (no fsync: the kernel has them,
// which is what survives a killed process).
func (d *Dir) timedFlush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flushArmed = false
	if d.closed || d.samplesW == nil {
		return
	}
	if err := d.samplesW.Flush(); err != nil && d.sampleErr == nil {
		d.sampleErr = fmt.Errorf("write %s: %w", SamplesFile, err)
	}
}

// syncSamples writes the buffered samples out and fsyncs them; d.mu is held.
func (d *Dir) syncSamples() error {
	if d.samplesW == nil {
		return nil
	}
	if err := d.sampleErr; err != nil {
		d.sampleErr = nil
		return err
	}
	if d.samplesW.Buffered() == 0 {
		return nil
	}
	if err := d.samplesW.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", SamplesFile, err)
	}
	if err := d.samples.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", SamplesFile, err)
	}
	return nil
}

// WriteRun replaces run.json atomically: a temporary file is written and
// fsynced, renamed over run.json, and the directory is fsynced, so a reader
// sees the old or the new run, never a torn one.
func (d *Dir) WriteRun(r *Run) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode run.json: %w", err)
	}
	data = append(data, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := WriteFileAtomic(filepath.Join(d.path, RunFile), data); err != nil {
		return fmt.Errorf("write run.json: %w", err)
	}
	return nil
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, fsyncs it, renames it into place and fsyncs the directory.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename this is a no-op
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(FileMode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, FileMode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// ReadRun reads run.json.
func (d *Dir) ReadRun() (*Run, error) {
	return readRun(d.path)
}

func readRun(dir string) (*Run, error) {
	data, err := os.ReadFile(filepath.Join(dir, RunFile))
	if err != nil {
		return nil, fmt.Errorf("read run.json: %w", err)
	}
	var r Run
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode %s: %w", filepath.Join(dir, RunFile), err)
	}
	return &r, nil
}

// ReadSteps reads every step attempt in steps.jsonl, in the order they were
// appended. A missing file is an empty log. A broken final line (a crash
// mid-write) is skipped and TruncatedTail reports it; a broken line anywhere
// else is an error, since the log is then not the one loadramp wrote.
func (d *Dir) ReadSteps() ([]result.Step, error) {
	f, err := os.Open(filepath.Join(d.path, StepsFile))
	if errors.Is(err, os.ErrNotExist) {
		return []result.Step{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read steps: %w", err)
	}
	defer f.Close()
	steps, truncated, err := ReadStepsFrom(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(d.path, StepsFile), err)
	}
	d.mu.Lock()
	d.truncated = truncated
	d.mu.Unlock()
	return steps, nil
}

// TruncatedTail reports whether the last ReadSteps skipped a broken final line:
// the run was killed while an attempt was being written.
func (d *Dir) TruncatedTail() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.truncated
}

// ReadStepsFrom decodes a steps.jsonl stream. truncated is true when the final
// line was broken and skipped; a broken line followed by a good one is an error
// naming its line number. Blank lines are ignored.
func ReadStepsFrom(r io.Reader) (steps []result.Step, truncated bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	steps = []result.Step{}
	var bad error // the last broken line, fatal once a good line follows it
	for lineNo := 1; ; lineNo++ {
		line, rerr := br.ReadBytes('\n')
		if len(bytes.Trim(line, " \t\r\n")) > 0 {
			var s result.Step
			if jerr := json.Unmarshal(line, &s); jerr != nil {
				if bad != nil {
					return nil, false, bad
				}
				bad = fmt.Errorf("line %d: %w", lineNo, jerr)
			} else {
				if bad != nil {
					return nil, false, bad
				}
				steps = append(steps, s)
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				break
			}
			return nil, false, fmt.Errorf("read line %d: %w", lineNo, rerr)
		}
	}
	return steps, bad != nil, nil
}

// eventsLog is events.log opened for one writer; Close is idempotent so both
// its owner and Dir.Close may call it.
type eventsLog struct {
	f    *os.File
	red  *redactor
	once sync.Once
	err  error
}

// Write appends p with every secret given to Dir.Redact replaced. zerolog
// writes one whole event per call, so a secret is never split between calls.
func (e *eventsLog) Write(p []byte) (int, error) {
	if _, err := e.f.Write(e.red.scrub(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (e *eventsLog) Close() error {
	e.once.Do(func() {
		if err := e.f.Sync(); err != nil {
			e.err = err
		}
		if err := e.f.Close(); err != nil && e.err == nil {
			e.err = err
		}
	})
	return e.err
}

// EventsLog opens events.log for appending, for zerolog's JSON lines
// (zerolog.New(w)). Each Write is one append; it is safe for concurrent use.
// Close it when done; Dir.Close closes it too if it is still open.
func (d *Dir) EventsLog() (io.WriteCloser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errClosed
	}
	f, err := os.OpenFile(filepath.Join(d.path, EventsFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, FileMode)
	if err != nil {
		return nil, fmt.Errorf("open events.log: %w", err)
	}
	e := &eventsLog{f: f, red: d.red}
	d.events = append(d.events, e)
	return e, nil
}

// Close flushes and fsyncs the samples, closes every file the Dir opened and
// releases the run directory's lock. Calling it again does nothing.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	if d.flushTimer != nil {
		d.flushTimer.Stop()
	}
	if d.sampleErr != nil {
		errs = append(errs, d.sampleErr)
	}
	if d.samplesW != nil {
		if err := d.samplesW.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("flush %s: %w", SamplesFile, err))
		}
		if err := d.samples.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("fsync %s: %w", SamplesFile, err))
		}
		if err := d.samples.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", SamplesFile, err))
		}
	}
	if d.steps != nil {
		if err := d.steps.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", StepsFile, err))
		}
	}
	for _, e := range d.events {
		if err := e.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", EventsFile, err))
		}
	}
	// Last: the directory is consistent before another process may take it.
	if err := d.lock.Release(); err != nil {
		errs = append(errs, fmt.Errorf("release the run directory's lock: %w", err))
	}
	return errors.Join(errs...)
}
