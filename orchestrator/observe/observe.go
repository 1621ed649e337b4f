// Package observe watches one host during a run: for each step it samples the
// host and the watched processes every second, scans their logs and the
// kernel log for bottleneck signatures, and at the end of the step diagnoses
// the hold window into metrics and findings; once the fleets are up it audits
// the host's limits funnel.
//
// Its API is what a host observer offers whether it runs inside loadramp
// (the local host) or in an agent on a fleet host: Start a step window, Stop
// it for its metrics and findings, Audit the limits.
package observe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Proc is a process the observer watches.
type Proc struct {
	Name string
	Pid  int
	// LogPath is the process's output, scanned for signatures ("" for none).
	LogPath string
}

// Log is a log file of a fleet (an nginx error.log...), scanned for
// signatures on behalf of one side.
type Log struct {
	Path string
	Side string // result.SideTarget or result.SideGenerator
}

// Spec says what one step window watches.
type Spec struct {
	Target    []Proc
	Generator []Proc
	Logs      []Log
	// Warmup is excluded from the window the metrics describe.
	Warmup time.Duration
	// Sink, if set, receives every raw sample (for samples.jsonl).
	Sink func(sample any)
	// Side is the side this host serves when it serves one only (its role,
	// diagnose.Input.Side): "generator" on a host running load generators and
	// no target process, "target" on one running only the target, "" when it
	// runs both or the role is unknown. Host-wide findings take this side.
	Side string
	// NotGenerator says the process running the observer generates no load
	// in this run (agents on other hosts do): with no Generator named, the
	// window then watches no generator process instead of this one.
	NotGenerator bool
}

// Facts are what the engine saw during the step: the generator's own error
// classes (gen_emfile...), its metrics (the connections it held, its own
// starvation) and the step's load parameters. The diagnosis weighs the
// host's evidence against them.
type Facts struct {
	ErrorClasses map[string]int64
	Metrics      map[string]float64
	Params       map[string]float64
	// StarvedAt is diagnose.Input.StarvedAt: the plan's threshold of
	// generator.starved.ratio (0: the default, negative: none).
	StarvedAt float64
}

// Host observes one host. It is safe for one step window at a time.
type Host struct {
	name    string
	root    string
	self    Proc
	every   time.Duration
	log     zerolog.Logger
	scanner *diagnose.Scanner
}

// Option configures a Host.
type Option func(*Host)

// WithRoot reads procfs at root instead of hoststat.DefaultRoot (a fixture
// tree in tests).
func WithRoot(root string) Option { return func(h *Host) { h.root = root } }

// WithLogger sets the logger (default: zerolog.Nop()).
func WithLogger(l zerolog.Logger) Option { return func(h *Host) { h.log = l } }

// WithInterval sets how often a window samples (default: every second).
func WithInterval(d time.Duration) Option { return func(h *Host) { h.every = d } }

// New returns the observer of the host named name ("local", an instance
// id): the name findings carry. The process running it is the generator when
// a step names none (the builtin engine generates load inside loadramp).
func New(name string, opts ...Option) *Host {
	h := &Host{
		name: name, root: hoststat.DefaultRoot, every: time.Second, log: zerolog.Nop(),
		self:    Proc{Name: "loadramp", Pid: os.Getpid()},
		scanner: diagnose.NewScanner(),
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Window is one step's observation in progress.
type Window struct {
	h       *Host
	spec    Spec
	target  []hoststat.Proc
	gen     []hoststat.Proc
	sources []diagnose.Source
	sampler *hoststat.Sampler
	cancel  context.CancelFunc
	done    chan struct{}
	// nginx is the configuration of a watched nginx master (nil: none).
	nginx    *diagnose.NginxConf
	nginxPid int

	// warmDone closes once the warmup's log lines were read (warm).
	warmDone chan struct{}
	holdFrom time.Time // the hold starts: samples before it are the baseline (hoststat.WindowFrom)

	mu      sync.Mutex
	samples []hoststat.Sample
	warm    []diagnose.LogMatch
	stopped bool
}

// Start begins a step window: it marks where every log ends, so the window's
// scan reads only what the step appends, and samples every second until
// Stop. Samples of the warmup are left out of the window but the last one,
// which gives the first second of the hold its counter baseline and no gauge
// (hoststat.WindowFrom).
func (h *Host) Start(ctx context.Context, spec Spec) (*Window, error) {
	spec.Target, spec.Generator = h.Resolve(spec.Target), h.Resolve(spec.Generator)
	w := &Window{
		h: h, spec: spec,
		target:  h.withChildren(procs(spec.Target)),
		gen:     procs(spec.Generator),
		sampler: hoststat.New(h.root, hoststat.WithLogger(h.log)),
		done:    make(chan struct{}),
	}
	if len(w.gen) == 0 && !spec.NotGenerator {
		w.gen = procs([]Proc{h.self})
	}
	w.sources = sources(spec)
	h.scanner.Mark(ctx, w.sources)
	w.nginx, w.nginxPid = h.nginxConf(spec.Target)

	w.holdFrom = time.Now().Add(spec.Warmup)
	var last *hoststat.Sample
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	// The warmup's log lines are read when the hold starts: they explain the
	// step, but what they show was reached before the hold (diagnose.LogMatch
	// Warmup).
	w.warmDone = make(chan struct{})
	go func() {
		defer close(w.warmDone)
		if spec.Warmup <= 0 {
			return
		}
		t := time.NewTimer(spec.Warmup)
		defer t.Stop()
		select {
		case <-runCtx.Done():
			return
		case <-t.C:
		}
		matches, _ := h.scanner.Scan(runCtx, w.sources)
		for i := range matches {
			matches[i].Warmup = true
		}
		w.mu.Lock()
		w.warm = matches
		w.mu.Unlock()
	}()
	go func() {
		defer close(w.done)
		w.sampler.Run(runCtx, h.every, w.target, w.gen, func(smp hoststat.Sample) {
			w.sink(smp)
			w.mu.Lock()
			defer w.mu.Unlock()
			if smp.Time.Before(w.holdFrom) {
				c := smp
				last = &c
				return
			}
			if last != nil {
				w.samples = append(w.samples, *last)
				last = nil
			}
			w.samples = append(w.samples, smp)
		})
	}()
	return w, nil
}

func (w *Window) sink(smp hoststat.Sample) {
	if w.spec.Sink != nil {
		w.spec.Sink(smp)
	}
}

// Stop is StopWith with the engine's error classes only.
func (w *Window) Stop(errorClasses map[string]int64) (map[string]float64, []result.Finding) {
	return w.StopWith(Facts{ErrorClasses: errorClasses})
}

// StopWith ends the window with one last sample, scans the logs, and
// diagnoses the hold: its host metrics (target.*, generator.*, host figures)
// and the findings the evidence supports, weighed against what the engine saw
// (f). Stop, StopWith or StopDetail may be called once.
func (w *Window) StopWith(f Facts) (map[string]float64, []result.Finding) {
	d, ok := w.StopDetail(f, nil)
	if !ok {
		return nil, nil
	}
	return d.Metrics, d.Findings
}

// Detail is a window's whole observation: what StopWith returns, and what
// it was made from.
type Detail struct {
	Summary  hoststat.Summary
	Metrics  map[string]float64
	Findings []result.Finding
	// Logs are the signature matches of the window's log lines (the
	// warmup's marked), with their lines as evidence; Skipped the logs that
	// could not be read.
	Logs    []diagnose.LogMatch
	Skipped []string
}

// StopDetail is StopWith with the whole observation; netdev are the host's
// network devices' counter deltas over the window (ethtool statistics, nil
// for none), for the rules that read them (ena-allowance). ok is false when
// the window was already stopped.
func (w *Window) StopDetail(f Facts, netdev []hoststat.NetDevDelta) (d Detail, ok bool) {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return Detail{}, false
	}
	w.stopped = true
	w.mu.Unlock()
	w.cancel()
	<-w.done
	<-w.warmDone
	// One last sample closes the window at the end of the hold.
	if smp, err := w.sampler.Sample(context.Background(), w.target, w.gen); err == nil {
		w.samples = append(w.samples, smp)
		w.sink(smp)
	}
	d.Summary = hoststat.WindowFrom(w.samples, w.holdFrom)
	var matches []diagnose.LogMatch
	matches, d.Skipped = w.h.scanner.Scan(context.Background(), w.sources)
	d.Logs = append(w.warm, matches...)
	d.Findings = diagnose.Diagnose(diagnose.Input{
		Host:            w.h.name,
		Summary:         d.Summary,
		Settings:        hoststat.Settings(w.h.root),
		Logs:            d.Logs,
		GeneratorErrors: f.ErrorClasses,
		Side:            w.spec.Side,
		Nginx:           w.nginx,
		NginxPid:        w.nginxPid,
		Engine:          f.Metrics,
		Params:          f.Params,
		StarvedAt:       f.StarvedAt,
		NetDev:          netdev,
	})
	d.Metrics = d.Summary.Metrics()
	return d, true
}

// Discard ends the window without diagnosing it (its step was abandoned).
func (w *Window) Discard() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.mu.Unlock()
	w.cancel()
	<-w.done
}

// sources are the logs a window scans: every watched process's output, the
// fleets' extra logs and the kernel log.
func sources(spec Spec) []diagnose.Source {
	var out []diagnose.Source
	for _, side := range []struct {
		name  string
		procs []Proc
	}{{result.SideTarget, spec.Target}, {result.SideGenerator, spec.Generator}} {
		for _, p := range side.procs {
			if p.LogPath != "" {
				out = append(out, diagnose.Source{Name: p.Name + " output", Path: p.LogPath, Process: p.Name, Side: side.name})
			}
		}
	}
	for _, l := range spec.Logs {
		out = append(out, diagnose.Source{Name: l.Path, Path: l.Path, Side: l.Side})
	}
	return append(out, diagnose.Source{Name: "kernel", Path: diagnose.KernelLog})
}

func procs(ps []Proc) []hoststat.Proc {
	out := make([]hoststat.Proc, 0, len(ps))
	for _, p := range ps {
		out = append(out, hoststat.Proc{Name: p.Name, Pid: p.Pid})
	}
	return out
}

// withChildren adds the direct children of every process of ps under its
// name: nginx's workers (worker_rlimit_nofile and worker_connections are
// theirs, the master's counts say nothing about them), or the real server
// behind a shell wrapper.
func (h *Host) withChildren(ps []hoststat.Proc) []hoststat.Proc {
	out := append([]hoststat.Proc(nil), ps...)
	seen := map[int]bool{}
	for _, p := range ps {
		seen[p.Pid] = true
	}
	for _, p := range ps {
		if p.Pid <= 0 {
			continue
		}
		for _, c := range hoststat.Children(h.root, p.Pid) {
			if !seen[c] {
				seen[c] = true
				out = append(out, hoststat.Proc{Name: p.Name, Pid: c})
			}
		}
	}
	return out
}

// Audit reads the host's limits funnel once the fleets are up: the kernel's
// accept queues, connection tracking, the target processes' open files and,
// when the target runs nginx, its configuration (found from the nginx
// master's command line). nginx workers are watched beside their master,
// since worker_rlimit_nofile applies to them only. It returns the audit as
// static parameters (run.json "limits") and its warnings.
func (h *Host) Audit(ctx context.Context, target []Proc) (limits map[string]any, warnings []string, err error) {
	audit, err := h.AuditDetail(ctx, target, "")
	if err != nil {
		return nil, nil, err
	}
	return audit.Static(), audit.Warnings, nil
}

// AuditDetail is Audit's whole audit. A process given by name only (Pid 0)
// is every process of that command name on the host (hoststat.PidsByComm).
// nginxConf, when set, is the nginx configuration to audit; else it is found
// from the nginx master among the processes.
func (h *Host) AuditDetail(ctx context.Context, target []Proc, nginxConf string) (diagnose.Audit, error) {
	var watched []hoststat.Proc
	seen := map[int]bool{}
	for _, p := range h.Resolve(target) {
		if p.Pid <= 0 || seen[p.Pid] {
			continue
		}
		seen[p.Pid] = true
		watched = append(watched, hoststat.Proc{Name: p.Name, Pid: p.Pid})
		if _, ok, _ := hoststat.NginxConf(h.root, p.Pid); ok {
			for _, w := range hoststat.Children(h.root, p.Pid) {
				if !seen[w] {
					seen[w] = true
					watched = append(watched, hoststat.Proc{Name: p.Name + " worker", Pid: w})
				}
			}
		}
	}
	conf := nginxConf
	if conf == "" {
		var err error
		if conf, _, err = FindNginxConf(h.root, watched); err != nil {
			h.log.Warn().Err(err).Msg("limits audit: nginx configuration not readable; auditing without it")
		}
	}
	audit, err := diagnose.AuditLimits(ctx, h.root, watched, conf)
	if err != nil {
		return diagnose.Audit{}, fmt.Errorf("limits audit: %w", err)
	}
	return audit, nil
}

// Resolve returns ps with every process given by name only (Pid 0) replaced
// by the processes of that command name on the host (/proc/PID/comm, at
// most 15 characters, compared in full), each with the name and log path it
// was given; a name no process has is left out. Processes given by pid stay
// as they are.
func (h *Host) Resolve(ps []Proc) []Proc {
	out := make([]Proc, 0, len(ps))
	for _, p := range ps {
		if p.Pid > 0 || p.Name == "" {
			out = append(out, p)
			continue
		}
		comm := p.Name
		if len(comm) > 15 {
			comm = comm[:15] // the kernel keeps 15 characters of a command name
		}
		pids, err := hoststat.PidsByComm(h.root, comm)
		if err != nil {
			h.log.Debug().Err(err).Str("process", p.Name).Msg("finding processes by name")
			continue
		}
		for _, pid := range pids {
			out = append(out, Proc{Name: p.Name, Pid: pid, LogPath: p.LogPath})
		}
	}
	return out
}

// nginxConf reads the configuration of the first nginx master among the
// target processes (nil when none, or it cannot be read): the window judges
// the connections the client could hold against its worker_connections.
func (h *Host) nginxConf(target []Proc) (*diagnose.NginxConf, int) {
	conf, pid, err := FindNginxConf(h.root, procs(target))
	if err != nil || conf == "" {
		if err != nil {
			h.log.Debug().Err(err).Msg("nginx configuration not readable")
		}
		return nil, 0
	}
	b, err := os.ReadFile(conf)
	if err != nil {
		return nil, 0
	}
	c := diagnose.ParseNginxConf(string(b))
	c.Path = conf
	if c.WorkerProcessesAuto {
		c.WorkerProcesses = max(len(hoststat.Children(h.root, pid)), 1)
	}
	return &c, pid
}

// FindNginxConf returns the configuration file of the first nginx master
// among procs whose file can be read, and that master's pid. conf is "" when
// no nginx master is watched; err says which configuration could not be read
// when none could.
func FindNginxConf(root string, procs []hoststat.Proc) (conf string, pid int, err error) {
	var errs []error
	for _, p := range procs {
		c, ok, cerr := hoststat.NginxConf(root, p.Pid)
		if !ok || c == "" {
			continue
		}
		if cerr == nil {
			_, cerr = os.Stat(c)
		}
		if cerr != nil {
			errs = append(errs, cerr)
			continue
		}
		return c, p.Pid, nil
	}
	return "", 0, errors.Join(errs...)
}

// Locate finds the processes of this host that listen on a target's
// endpoints ("host:port"), for a target fleet that names none (a static
// endpoint): the limits audit then reads their limits and, for nginx, its
// configuration, and the step windows watch them. Each is the server that
// holds the listening socket, not the workers it forked (those are watched
// as its children). local reports whether an endpoint's address is one of
// this host's own (loopback, or an address of its interfaces in this network
// namespace): when none is, the target runs elsewhere, and this host serves
// the generator only.
func (h *Host) Locate(ctx context.Context, endpoints []string) (found []Proc, local bool, err error) {
	own := ownAddrs()
	seen := map[int]bool{}
	var errs []error
	for _, ep := range endpoints {
		host, portStr, err := net.SplitHostPort(ep)
		if err != nil {
			errs = append(errs, fmt.Errorf("endpoint %q: %w", ep, err))
			continue
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port <= 0 || port > 65535 {
			errs = append(errs, fmt.Errorf("endpoint %q: port %q", ep, portStr))
			continue
		}
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			errs = append(errs, fmt.Errorf("endpoint %q: %w", ep, err))
			continue
		}
		for _, ip := range ips {
			if !ip.IP.IsLoopback() && !own[ip.IP.String()] {
				continue
			}
			local = true
			ls, err := hoststat.Listeners(h.root, ip.IP, port)
			if err != nil {
				errs = append(errs, fmt.Errorf("endpoint %q: %w", ep, err))
				continue
			}
			for _, pid := range hoststat.ListenerOwners(h.root, ls) {
				if seen[pid] || pid == h.self.Pid {
					continue
				}
				seen[pid] = true
				name, err := hoststat.Comm(h.root, pid)
				if err != nil {
					name = "pid " + strconv.Itoa(pid)
				}
				found = append(found, Proc{Name: name, Pid: pid})
			}
		}
	}
	return found, local, errors.Join(errs...)
}

// ownAddrs are the addresses of this host's interfaces (in this network
// namespace).
func ownAddrs() map[string]bool {
	out := map[string]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out[n.IP.String()] = true
		}
	}
	return out
}
