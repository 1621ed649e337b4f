package infra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// Defaults of LocalProcess and LocalConfig.
const (
	DefaultReadyTimeout = 30 * time.Second
	DefaultStopTimeout  = 5 * time.Second
)

const (
	readyPollInterval   = 50 * time.Millisecond
	readyAttemptTimeout = time.Second
	stopPollInterval    = 20 * time.Millisecond
	// killWait bounds the wait for a process after SIGKILL; only a process
	// stuck in the kernel (state D) outlives it.
	killWait = 5 * time.Second
	// killGroupWait bounds the wait for the rest of a process group to die
	// after SIGKILL.
	killGroupWait = 500 * time.Millisecond
	// bindRetries is how often a process that exits during startup because
	// its address is in use is started again, after bindRetryDelay doubling
	// up to a second (about 3.5 s in all). A port the plan allocated is held
	// until its fleet starts (plan.Ports), but between its release and the
	// process's own bind another program may briefly take it.
	bindRetries    = 6
	bindRetryDelay = 100 * time.Millisecond
)

// addrInUse matches what programs print when bind fails with EADDRINUSE: Go
// ("bind: address already in use"), nginx ("(98: Address already in use)"),
// Python ("[Errno 98] Address already in use").
var addrInUse = regexp.MustCompile(`(?i)address already in use|\bEADDRINUSE\b`)

// LocalProcess is one process of a local fleet.
type LocalProcess struct {
	// Name names the process in logs, errors and its log file.
	Name string
	// Command is the argv, already templated. argv[0] is looked up in PATH if
	// it is a bare name; a relative path is relative to Dir (or to the working
	// directory when Dir is empty).
	Command []string
	// Env is added to the inherited environment (and wins over it).
	Env map[string]string
	// Dir is the working directory of the process ("" = loadramp's).
	Dir string
	// Ready says when the process is ready: "" as soon as it started,
	// http(s)://... when a GET answers 2xx, tcp://host:port when it accepts
	// connections. Polled every 50 ms.
	Ready string
	// ReadyTimeout bounds the wait for Ready (0 = DefaultReadyTimeout).
	ReadyTimeout time.Duration
	// Files are written before the process starts: path relative to the
	// fleet's LogDir -> content. Paths must stay inside LogDir.
	Files map[string]string
	// Replicas is how many copies of the process to start (0 or 1: one).
	// Copies of a process with Replicas > 1 or Scalable are named
	// Name-1..Name-N, each with its own log file.
	Replicas int
	// Scalable marks the process as the fleet's unit of growth (a load
	// generator worker): Scale multiplies its replica count. A replica of a
	// scalable process that exits on its own is not a fleet failure (Check
	// ignores it): losing one is a lost generator unit, which the engine sees
	// and reports, and Scale replaces it.
	Scalable bool
	// Address, if set, matches the line of the process's output that says
	// where it listens (its first group is the address): the process is
	// ready once it printed it (and Ready holds), and ProcessInfo.Address
	// holds it. For a server told to listen on port 0.
	Address *regexp.Regexp
}

// replicated reports whether the copies of p carry a -N suffix.
func (p LocalProcess) replicated() bool { return p.Replicas > 1 || p.Scalable }

// replicaCount is how many copies Up starts.
func (p LocalProcess) replicaCount() int { return max(p.Replicas, 1) }

// LocalConfig configures a local fleet.
type LocalConfig struct {
	// Fleet is the fleet name, e.g. "target".
	Fleet string
	// Processes are started in order (each ready before the next starts) and
	// stopped in reverse order.
	Processes []LocalProcess
	// Outputs are reported by Up as is (already templated). A fleet with
	// scalable processes also reports SizeOutput (unless Outputs defines
	// it): the fleet's Size, so templates rendered later follow a grown fleet.
	Outputs map[string]string
	// LogDir receives each process's stdout and stderr, appended to
	// LogDir/<fleet>-<process>.log, and the Files. Created if missing; the
	// logs stay after Down.
	LogDir string
	// StopTimeout is how long Down waits after SIGTERM before SIGKILL
	// (0 = DefaultStopTimeout).
	StopTimeout time.Duration
	// Log receives the provider's events.
	Log zerolog.Logger
}

// SizeOutput is the output through which a local fleet with scalable
// processes reports its Size (e.g. `{{ .fleets.generators.size }}`).
const SizeOutput = "size"

// Local is a Provider running a fleet as local processes.
//
// Each process runs in its own process group (so Down signals its children
// too) with Pdeathsig SIGKILL, so that if loadramp is killed outright its
// direct children die with it. Grandchildren that a process leaves behind
// are only reached by Down's signal to the process group.
//
// While the fleet is up, Check reports a process that exited on its own.
type Local struct {
	cfg LocalConfig
	log zerolog.Logger

	opMu sync.Mutex // serializes Up and Down
	mu   sync.Mutex // guards sess
	sess *localSession
}

var _ Provider = (*Local)(nil)

// NewLocal returns a provider for a local fleet. Nothing starts until Up.
func NewLocal(cfg LocalConfig) *Local {
	cfg.Processes = slices.Clone(cfg.Processes)
	cfg.Outputs = maps.Clone(cfg.Outputs)
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	return &Local{cfg: cfg, log: cfg.Log.With().Str("fleet", cfg.Fleet).Logger()}
}

// ExitError reports a fleet process that exited on its own: while the fleet
// was up (from Check), or while Up waited for it to become ready.
type ExitError struct {
	Fleet   string
	Process string
	Pid     int
	// Status is how it ended: "exit status 3", "signal: killed".
	Status string
	// ExitCode is the exit code, or -1 if a signal ended the process.
	ExitCode int
	LogPath  string
	// LogTail holds the last lines of the process log.
	LogTail []string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("process %s of fleet %s (pid %d) exited: %s; %s",
		e.Process, e.Fleet, e.Pid, e.Status, formatTail(e.LogPath, e.LogTail))
}

// Up writes the Files, starts the processes in order and waits for each to be
// ready. If any step fails, the processes already started are stopped before
// Up returns; the error names the process, and for a readiness failure the
// ready URL, the timeout and the last lines of the process log. A process that
// exits while Up waits for it fails Up at once with an *ExitError in the chain.
func (l *Local) Up(ctx context.Context) (*Fleet, error) {
	l.opMu.Lock()
	defer l.opMu.Unlock()
	if l.session() != nil {
		return nil, fmt.Errorf("infra: local fleet %q is already up", l.cfg.Fleet)
	}
	checks, err := l.cfg.validate()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(l.cfg.LogDir, 0o700); err != nil {
		return nil, fmt.Errorf("infra: local fleet %q: create log directory: %w", l.cfg.Fleet, err)
	}
	if err := l.writeFiles(); err != nil {
		return nil, err
	}
	s := &localSession{fleet: l.cfg.Fleet, log: l.log, forker: newForker(), client: newReadyClient(), grace: l.cfg.StopTimeout,
		checks: checks, replicas: make([]int, len(l.cfg.Processes)), next: make([]int, len(l.cfg.Processes))}
	var procs []*localProc
	for i, spec := range l.cfg.Processes {
		for range spec.replicaCount() {
			p, err := l.newProc(s, i)
			if err != nil {
				return nil, err
			}
			procs = append(procs, p)
		}
		s.replicas[i] = spec.replicaCount()
	}

	fail := func(err error) (*Fleet, error) {
		// Roll back with our own grace even if ctx is done: stopping is bounded
		// by StopTimeout and must not leave processes behind.
		if stopErr := s.stop(context.WithoutCancel(ctx)); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, err
	}
	for _, p := range procs {
		if err := s.startReady(ctx, p); err != nil {
			return fail(err)
		}
	}
	// A process that became ready and then died while a later one started.
	if err := s.check(); err != nil {
		return fail(fmt.Errorf("infra: fleet %s did not come up: %w", l.cfg.Fleet, err))
	}
	l.mu.Lock()
	l.sess = s
	l.mu.Unlock()

	f := l.fleet(s)
	l.log.Info().Int("processes", len(procs)).Msg("local fleet up")
	return f, nil
}

// newProc builds (not starts) the next replica of process i.
func (l *Local) newProc(s *localSession, i int) (*localProc, error) {
	spec := l.cfg.Processes[i]
	cmd, err := buildCmd(spec)
	if err != nil {
		return nil, fmt.Errorf("infra: fleet %s: process %s: %w", l.cfg.Fleet, spec.Name, err)
	}
	name := spec.Name
	if spec.replicated() {
		s.next[i]++
		name = fmt.Sprintf("%s-%d", spec.Name, s.next[i])
	}
	return &localProc{
		spec:     spec,
		index:    i,
		name:     name,
		ready:    s.checks[i],
		cmd:      cmd,
		logPath:  filepath.Join(l.cfg.LogDir, l.cfg.Fleet+"-"+name+".log"),
		done:     make(chan struct{}),
		scalable: spec.Scalable,
	}, nil
}

// fleet describes the session's running processes. Size is the number of
// running replicas of scalable processes, or 1 for a fleet without any.
func (l *Local) fleet(s *localSession) *Fleet {
	f := &Fleet{Name: l.cfg.Fleet, Outputs: maps.Clone(l.cfg.Outputs), Size: 1}
	if f.Outputs == nil {
		f.Outputs = map[string]string{}
	}
	scalable, size := false, 0
	for _, p := range s.started() {
		if p.exited() {
			continue
		}
		s.mu.Lock()
		addr := p.addr
		s.mu.Unlock()
		f.Processes = append(f.Processes, ProcessInfo{Name: p.name, Pid: p.pid, Identity: p.id, LogPath: p.logPath, Address: addr})
		if p.scalable {
			size++
		}
	}
	for _, spec := range l.cfg.Processes {
		scalable = scalable || spec.Scalable
	}
	if scalable {
		f.Size = size
		if _, ok := f.Outputs[SizeOutput]; !ok {
			f.Outputs[SizeOutput] = strconv.Itoa(size)
		}
	}
	return f
}

// Scale grows the fleet's scalable processes: each one's replica count
// becomes ceil(count x factor), and as many new replicas start (each ready
// before the next) as it takes for that many to run, so replicas that died
// are replaced too. A fleet without scalable processes returns
// ErrCannotScale. If a new replica fails to start or become ready, Scale
// returns the error and the replicas it did start run until Down.
func (l *Local) Scale(ctx context.Context, factor float64) (*Fleet, error) {
	l.opMu.Lock()
	defer l.opMu.Unlock()
	if !slices.ContainsFunc(l.cfg.Processes, func(p LocalProcess) bool { return p.Scalable }) {
		return nil, fmt.Errorf("%w: local fleet %q has no scalable process (set scalable on the generator workers)", ErrCannotScale, l.cfg.Fleet)
	}
	if !(factor > 1) || math.IsInf(factor, 0) {
		return nil, fmt.Errorf("infra: local fleet %q: scale factor %g must be a finite number > 1", l.cfg.Fleet, factor)
	}
	s := l.session()
	if s == nil {
		return nil, fmt.Errorf("infra: local fleet %q is not up", l.cfg.Fleet)
	}
	for i, spec := range l.cfg.Processes {
		if !spec.Scalable {
			continue
		}
		want := max(int(math.Ceil(float64(s.replicas[i])*factor)), s.replicas[i]+1)
		live := 0
		for _, p := range s.started() {
			if p.index == i && !p.exited() {
				live++
			}
		}
		s.replicas[i] = want
		for range want - live {
			p, err := l.newProc(s, i)
			if err != nil {
				return nil, err
			}
			if err := s.startReady(ctx, p); err != nil {
				return nil, err
			}
		}
		l.log.Info().Str("process", spec.Name).Int("replicas", want).Int("started", max(want-live, 0)).Msg("local fleet scaled")
	}
	return l.fleet(s), nil
}

// Down stops the processes in reverse order: SIGTERM to each process group,
// up to StopTimeout for the group to exit, then SIGKILL. A cancelled ctx cuts
// the grace short (SIGKILL at once) but Down still stops and reaps everything.
// Every exit status is appended to the process log. Down is idempotent and
// does nothing if the fleet is not up (also after a failed Up).
func (l *Local) Down(ctx context.Context) error {
	l.opMu.Lock()
	defer l.opMu.Unlock()
	l.mu.Lock()
	s := l.sess
	l.sess = nil
	l.mu.Unlock()
	if s == nil {
		return nil
	}
	err := s.stop(ctx)
	l.log.Info().Err(err).Msg("local fleet down")
	return err
}

// Check returns an *ExitError for the first process that exited on its own
// while the fleet was up, and nil if all are running or the fleet is not up.
// It does not block; the orchestrator calls it during and after each step
// and marks the step "error" if it fails.
func (l *Local) Check() error {
	s := l.session()
	if s == nil {
		return nil
	}
	return s.check()
}

func (l *Local) session() *localSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sess
}

// validate checks the config and parses the ready checks, one per process.
func (c *LocalConfig) validate() ([]readyCheck, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Fleet == "" {
		bad("fleet name is empty")
	} else if !validFileName(c.Fleet) {
		bad("fleet name %q cannot be part of a file name", c.Fleet)
	}
	if c.LogDir == "" {
		bad("log directory is empty")
	}
	checks := make([]readyCheck, len(c.Processes))
	seen := map[string]bool{}
	for i, p := range c.Processes {
		where := fmt.Sprintf("processes[%d]", i)
		switch {
		case p.Name == "":
			bad("%s: name is empty", where)
		case !validFileName(p.Name):
			bad("%s: name %q cannot be part of a file name", where, p.Name)
		case seen[p.Name]:
			bad("%s: name %q is used twice", where, p.Name)
		}
		seen[p.Name] = true
		if len(p.Command) == 0 || p.Command[0] == "" {
			bad("%s: command is empty", where)
		}
		rc, err := parseReady(p.Ready)
		if err != nil {
			bad("%s: %w", where, err)
		}
		checks[i] = rc
		if p.Replicas < 0 {
			bad("%s: replicas %d is negative", where, p.Replicas)
		}
		if p.ReadyTimeout < 0 {
			bad("%s: ready timeout %s is negative", where, p.ReadyTimeout)
		}
		for _, name := range slices.Sorted(maps.Keys(p.Files)) {
			if !filepath.IsLocal(name) {
				bad("%s: file %q must be a relative path inside the log directory", where, name)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("infra: local fleet %q: invalid config: %w", c.Fleet, err)
	}
	return checks, nil
}

func validFileName(s string) bool {
	return s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}

func (l *Local) writeFiles() error {
	for _, p := range l.cfg.Processes {
		for _, name := range slices.Sorted(maps.Keys(p.Files)) {
			path := filepath.Join(l.cfg.LogDir, name)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return fmt.Errorf("infra: fleet %s: process %s: file %s: %w", l.cfg.Fleet, p.Name, name, err)
			}
			if err := os.WriteFile(path, []byte(p.Files[name]), 0o600); err != nil {
				return fmt.Errorf("infra: fleet %s: process %s: file %s: %w", l.cfg.Fleet, p.Name, name, err)
			}
		}
	}
	return nil
}

// buildCmd resolves argv[0] and builds the command, not yet started.
func buildCmd(p LocalProcess) (*exec.Cmd, error) {
	path, err := resolveCommand(p.Command[0], p.Dir)
	if err != nil {
		return nil, err
	}
	env := os.Environ()
	for _, k := range slices.Sorted(maps.Keys(p.Env)) {
		env = append(env, k+"="+p.Env[k])
	}
	return &exec.Cmd{
		Path: path,
		Args: slices.Clone(p.Command),
		Env:  env,
		Dir:  p.Dir,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true, // own group: Down signals the process and its children
			Pdeathsig: syscall.SIGKILL,
		},
	}, nil
}

// resolveCommand finds the executable: a bare name in PATH, a relative path
// under dir (or the working directory).
func resolveCommand(name, dir string) (string, error) {
	if !strings.ContainsRune(name, filepath.Separator) {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("command %q: %w", name, err)
		}
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		return p, nil
	}
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("command %q: %w", name, err)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("command %q: %s is not an executable file", name, p)
	}
	return p, nil
}

// localSession is one Up..Down lifetime of a local fleet.
type localSession struct {
	fleet  string
	log    zerolog.Logger
	forker *forker
	client *http.Client
	grace  time.Duration
	checks []readyCheck // by process spec
	// replicas is the replica count each process spec should run (what Scale
	// multiplies); next numbers the replicas started so far. Guarded by
	// Local.opMu.
	replicas []int
	next     []int

	mu       sync.Mutex
	procs    []*localProc // started, in order
	stopping bool
	exitErr  *ExitError // first process that exited on its own
	waiters  sync.WaitGroup
}

type localProc struct {
	spec     LocalProcess
	index    int    // of spec in LocalConfig.Processes
	name     string // spec.Name, or spec.Name-N for a replica
	scalable bool
	ready    readyCheck
	cmd      *exec.Cmd
	logPath  string
	pid      int
	// id is the process's identity, read as soon as it started (it cannot
	// have been reaped yet): what run.json records for `loadramp destroy`.
	id   hoststat.Identity
	done chan struct{} // closed once the process is reaped
	exit *ExitError    // how it ended; set before done closes
	addr string        // where it listens (LocalProcess.Address); guarded by the session's mu
}

func (s *localSession) start(ctx context.Context, p *localProc) error {
	f, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("infra: fleet %s: process %s: open log: %w", s.fleet, p.name, err)
	}
	appendLogLine(p.logPath, "starting %s/%s: %q", s.fleet, p.name, p.spec.Command)
	// An *os.File is handed to the child as is: it writes straight to the
	// log with no copying goroutine in loadramp.
	p.cmd.Stdout, p.cmd.Stderr = f, f
	err = s.forker.start(ctx, p.cmd)
	_ = f.Close()
	if err != nil {
		appendLogLine(p.logPath, "could not start: %v", err)
		return fmt.Errorf("infra: fleet %s: start process %s: %w", s.fleet, p.name, err)
	}
	p.pid = p.cmd.Process.Pid
	// Read before wait reaps it: until then the pid is this process's.
	if p.id, err = hoststat.ReadIdentity(hoststat.DefaultRoot, p.pid); err != nil {
		s.log.Warn().Err(err).Str("process", p.name).Int("pid", p.pid).Msg("cannot read the process's identity; `loadramp destroy` will not signal it")
	}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	s.waiters.Add(1)
	go s.wait(p)
	s.log.Info().Str("process", p.name).Int("pid", p.pid).Str("log", p.logPath).Msg("process started")
	return nil
}

// startReady starts p and waits until it is ready. A process that exits
// before it is ready, having logged that its address is in use, is started
// again (bindRetries times at most): the port is then taken by a program
// that is often only passing through (another run's port probe, a client
// socket). A process without a ready check is never retried: it counts as
// ready as soon as it starts.
func (s *localSession) startReady(ctx context.Context, p *localProc) error {
	delay := bindRetryDelay
	for attempt := 1; ; attempt++ {
		offset := fileSize(p.logPath)
		if err := s.start(ctx, p); err != nil {
			return err
		}
		err := s.waitReady(ctx, p)
		if err == nil && p.spec.Address != nil {
			err = s.waitAddress(ctx, p, offset)
		}
		if err == nil || attempt > bindRetries || !p.exited() || ctx.Err() != nil || !logMatches(p.logPath, offset, addrInUse) {
			return err
		}
		s.forget(p)
		s.log.Warn().Str("process", p.name).Int("attempt", attempt).Dur("retry_in", delay).Msg("process could not bind its address (in use); starting it again")
		appendLogLine(p.logPath, "%s/%s: address in use; starting it again in %s (retry %d of %d)", s.fleet, p.name, delay, attempt, bindRetries)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
		cmd, berr := buildCmd(p.spec)
		if berr != nil {
			return fmt.Errorf("infra: fleet %s: process %s: %w", s.fleet, p.name, berr)
		}
		p = &localProc{spec: p.spec, index: p.index, name: p.name, scalable: p.scalable, ready: p.ready,
			cmd: cmd, logPath: p.logPath, done: make(chan struct{})}
	}
}

// waitAddress waits, within the process's ready timeout, for the line of
// its output (from offset on) that says where it listens.
func (s *localSession) waitAddress(ctx context.Context, p *localProc, offset int64) error {
	timeout := p.spec.ReadyTimeout
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(readyPollInterval)
	defer tick.Stop()
	for {
		if m := logSubmatch(p.logPath, offset, p.spec.Address); m != "" {
			s.mu.Lock()
			p.addr = m
			s.mu.Unlock()
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("infra: fleet %s: process %s (pid %d) did not say where it listens within %s (a line matching %s); %s",
				s.fleet, p.name, p.pid, timeout, p.spec.Address, formatTail(p.logPath, readLogTail(p.logPath, logTailLines)))
		}
		select {
		case <-p.done:
			return fmt.Errorf("infra: fleet %s: process %s exited before it said where it listens: %w", s.fleet, p.name, p.exit)
		case <-ctx.Done():
			return fmt.Errorf("infra: fleet %s: process %s: waiting for its address: %w", s.fleet, p.name, ctx.Err())
		case <-tick.C:
		}
	}
}

// logSubmatch returns the first group of re's first match in the log at
// path from offset on, or "".
func logSubmatch(path string, offset int64, re *regexp.Regexp) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	if m := re.FindSubmatch(b); len(m) > 1 {
		return string(m[1])
	}
	return ""
}

// forget drops a process that exited during startup and will be started
// again: it is not a fleet process that died.
func (s *localSession) forget(p *localProc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procs = slices.DeleteFunc(s.procs, func(q *localProc) bool { return q == p })
	if s.exitErr == p.exit {
		s.exitErr = nil
	}
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logMatches reports whether the log at path, from offset on, matches re.
func logMatches(path string, offset int64, re *regexp.Regexp) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return false
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return re.Match(b)
}

// exited reports whether p has been reaped.
func (p *localProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// started returns the processes started so far, in order.
func (s *localSession) started() []*localProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.procs)
}

// wait reaps p and records how it ended.
func (s *localSession) wait(p *localProc) {
	defer s.waiters.Done()
	err := p.cmd.Wait()
	status, code := "", -1
	if st := p.cmd.ProcessState; st != nil {
		status, code = st.String(), st.ExitCode()
	} else if err != nil {
		status = err.Error()
	}
	s.mu.Lock()
	unexpected := !s.stopping
	s.mu.Unlock()
	if unexpected {
		appendLogLine(p.logPath, "%s/%s pid %d exited on its own: %s", s.fleet, p.name, p.pid, status)
	} else {
		appendLogLine(p.logPath, "%s/%s pid %d stopped: %s", s.fleet, p.name, p.pid, status)
	}
	p.exit = &ExitError{
		Fleet: s.fleet, Process: p.name, Pid: p.pid, Status: status, ExitCode: code,
		LogPath: p.logPath, LogTail: readLogTail(p.logPath, logTailLines),
	}
	if unexpected && p.scalable {
		// A lost generator unit: the engine reports it, Scale replaces it.
		s.log.Warn().Str("process", p.name).Int("pid", p.pid).Str("status", status).Msg("replica of a scalable process exited on its own")
	} else if unexpected {
		s.log.Warn().Str("process", p.name).Int("pid", p.pid).Str("status", status).Msg("process exited on its own")
		s.mu.Lock()
		if s.exitErr == nil {
			s.exitErr = p.exit
		}
		s.mu.Unlock()
	}
	close(p.done)
}

func (s *localSession) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exitErr == nil {
		return nil
	}
	return s.exitErr
}

// waitReady polls p's ready check every 50 ms until it passes, the process
// exits, the ready timeout passes or ctx is done.
func (s *localSession) waitReady(ctx context.Context, p *localProc) error {
	if p.ready.kind == "" {
		return nil
	}
	timeout := p.spec.ReadyTimeout
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	start := time.Now()
	deadline := start.Add(timeout)
	tick := time.NewTicker(readyPollInterval)
	defer tick.Stop()
	exited := func() error {
		return fmt.Errorf("infra: fleet %s: process %s never became ready at %s: %w", s.fleet, p.name, p.ready.raw, p.exit)
	}
	var last error
	for {
		select {
		case <-p.done:
			return exited()
		default:
		}
		// Each attempt gets its full second even near the deadline, so that
		// a timeout reports the last real answer (say, HTTP 503), not our
		// own cut-off. A hanging server can stretch the timeout by a second.
		actx, cancel := context.WithTimeout(ctx, readyAttemptTimeout)
		last = p.ready.probe(actx, s.client)
		cancel()
		if last == nil {
			select {
			case <-p.done:
				// Something else answered at the ready address (a port clash?).
				return exited()
			default:
			}
			s.log.Info().Str("process", p.name).Dur("after", time.Since(start)).Msg("process ready")
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("infra: fleet %s: process %s: waiting for ready at %s: %w", s.fleet, p.name, p.ready.raw, ctx.Err())
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("infra: fleet %s: process %s (pid %d) not ready at %s after %s (last attempt: %v); %s",
				s.fleet, p.name, p.pid, p.ready.raw, timeout, last, formatTail(p.logPath, readLogTail(p.logPath, logTailLines)))
		}
		select {
		case <-p.done:
			return exited()
		case <-ctx.Done():
			return fmt.Errorf("infra: fleet %s: process %s: waiting for ready at %s: %w", s.fleet, p.name, p.ready.raw, ctx.Err())
		case <-tick.C:
		}
	}
}

// stop stops every started process in reverse order, then ends the forker.
func (s *localSession) stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	procs := slices.Clone(s.procs)
	s.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := s.stopProc(ctx, procs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		s.waiters.Wait()
	}
	// Only now may the forking thread end: its children are gone (or, if
	// one is stuck, it gets one more SIGKILL through Pdeathsig).
	s.forker.close()
	return errors.Join(errs...)
}

// stopProc stops p's process group (StopGroup): SIGTERM, up to the grace
// for the process to exit, then SIGKILL. Once the process is gone, any live
// member left in its group is an orphan and is killed.
func (s *localSession) stopProc(ctx context.Context, p *localProc) error {
	log := s.log.With().Str("process", p.name).Int("pid", p.pid).Logger()
	o := StopOptions{
		Exited: p.done,
		Signal: func(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }, // a no-op once reaped: the Process is pidfd-backed
		Log:    log,
	}
	if p.id.Known() {
		o.Identity = &p.id
	}
	st, err := StopGroup(ctx, p.pid, s.grace, o)
	if err != nil {
		return fmt.Errorf("infra: fleet %s: process %s (pid %d): %w", s.fleet, p.name, p.pid, err)
	}
	switch st.How {
	case GroupAlreadyGone:
		log.Debug().Str("status", p.exit.Status).Msg("process had already exited")
	case GroupStopped:
		log.Info().Str("status", p.exit.Status).Msg("process stopped")
	}
	if st.Leftovers {
		appendLogLine(p.logPath, "%s/%s: killed processes left in group %d", s.fleet, p.name, p.pid)
	}
	return nil
}
