// Package locust drives a distributed Locust swarm (one master, N workers)
// step by step through the master's web API, as the ramp's engine "locust".
//
// Per step it waits for the expected workers, POSTs /swarm with the step's
// users and spawn rate, waits until every user is spawned, runs the warmup,
// resets the master's statistics (they are cumulative) and samples the master
// every second during the hold. The step window is what the master counted
// between that reset and the end of the hold: Locust's users are a closed
// loop, so there is no offered rate and no throughput.ratio.
//
// Caveats of Locust, kept visible: workers report to the master every
// WORKER_REPORT_INTERVAL (3 s by default; plans/locustfiles/eventbus.py sets
// 1 s), so the window's edges, and throughput.rps over a short hold, are as
// sharp as that; Locust rounds response times
// (1 ms below 100 ms, 10 ms below 1 s, 100 ms above); /stats/requests is
// memoized by the master for about 2 s (the window itself comes from
// /stats/requests/csv, which is not).
//
// A worker that goes missing during a step (it leaves the master or is
// marked missing after 3 missed heartbeats), a shortfall of workers at the
// start of a step, or a worker at Locust's CPU warning (90% of its core) are
// generator failures: the engine reports them as generator.workers.missing
// and generator.workers.saturated, which the orchestrator judges as
// generator-fail, never as the target's bottleneck.
package locust

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Defaults of Config.
const (
	DefaultSpawnTimeout  = 60 * time.Second
	DefaultWorkerTimeout = 60 * time.Second
)

const pollInterval = 250 * time.Millisecond

// maxSkipped is how many seconds in a row the master may fail to answer
// before the step fails: a master starved of CPU answers late, and the
// window is read from its cumulative counts, so a skipped second loses
// nothing but a progress point.
const maxSkipped = 5

// Config configures an Engine.
type Config struct {
	// Master is the master's web URL, http://host:port.
	Master string
	// Host is sent with every /swarm as the users' target host ("" = the
	// locustfile's own).
	Host string
	// Workers returns the number of workers the master should have before a
	// step starts; it is called before every step, so it can follow a
	// generator fleet that grew. nil: the most live workers seen so far.
	Workers func() (int, error)
	// Apart are request types measured apart from requests (default
	// DefaultApart): reported as locust.<name>.*, not in latency.*.
	Apart []string
	// SpawnTimeout bounds the wait for all users to spawn
	// (0 = DefaultSpawnTimeout).
	SpawnTimeout time.Duration
	// WorkerTimeout bounds the wait for the expected workers
	// (0 = DefaultWorkerTimeout).
	WorkerTimeout time.Duration
	// HTTPClient calls the master (nil: a client of the engine's own).
	HTTPClient *http.Client
	Log        zerolog.Logger
}

// Step is one step's load.
type Step struct {
	Users     int
	SpawnRate float64
	Warmup    time.Duration
	Hold      time.Duration
	// OnSecond, if set, gets one point per second from the end of spawning
	// (warmup included), from the goroutine that called Step.
	OnSecond func(result.Second)
}

// Engine drives a Locust master. It is used by one goroutine at a time.
type Engine struct {
	cfg Config
	c   *Client
	log zerolog.Logger
	// most is the most live workers seen at the start of a step.
	most int
	// swarmed is true once users were started (Close stops them).
	swarmed bool
}

// New returns an engine for the master at cfg.Master. Nothing is sent until
// Step.
func New(cfg Config) (*Engine, error) {
	c, err := NewClient(cfg.Master, cfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	if cfg.SpawnTimeout <= 0 {
		cfg.SpawnTimeout = DefaultSpawnTimeout
	}
	if cfg.WorkerTimeout <= 0 {
		cfg.WorkerTimeout = DefaultWorkerTimeout
	}
	if cfg.Apart == nil {
		cfg.Apart = DefaultApart
	}
	return &Engine{cfg: cfg, c: c, log: cfg.Log}, nil
}

// stepState follows the workers through a step.
type stepState struct {
	start    map[string]bool // live worker ids at the start
	short    int             // expected minus live at the start
	lost     map[string]bool // of start, gone or missing since
	cpuSum   map[string]float64
	cpuN     map[string]int
	live     int
	users    int
	lastErrs []StatusError
	// asked is the users the step asks for; usersSum and usersN the users
	// the master ran at each look during the hold.
	asked    int
	usersSum float64
	usersN   int
}

func (s *stepState) observe(st *Status, hold bool) {
	live := map[string]bool{}
	for _, w := range st.Live() {
		live[w.ID] = true
		if hold {
			s.cpuSum[w.ID] += w.CPUUsage
			s.cpuN[w.ID]++
		}
	}
	for id := range s.start {
		if !live[id] {
			s.lost[id] = true
		}
	}
	s.live = len(live)
	s.users = st.UserCount
	s.lastErrs = st.Errors
	if hold {
		s.usersSum += float64(st.UserCount)
		s.usersN++
	}
}

func (s *stepState) missing() int { return s.short + len(s.lost) }

// Step runs one step: users at the given spawn rate, warmup, then hold. When
// ctx is cancelled it returns what the hold measured so far with ctx.Err().
// A worker lost or short makes the result carry generator.workers.missing > 0
// rather than an error; an error means the master itself failed.
func (e *Engine) Step(ctx context.Context, s Step) (*result.EngineResult, error) {
	if s.Users < 1 {
		return nil, fmt.Errorf("locust: users %d: must be >= 1", s.Users)
	}
	if !(s.SpawnRate > 0) {
		return nil, fmt.Errorf("locust: spawn rate %g: must be > 0", s.SpawnRate)
	}
	ss := &stepState{start: map[string]bool{}, lost: map[string]bool{}, cpuSum: map[string]float64{}, cpuN: map[string]int{}, asked: s.Users}
	if err := e.waitWorkers(ctx, ss); err != nil {
		return nil, err
	}
	if err := e.c.Swarm(ctx, s.Users, s.SpawnRate, e.cfg.Host); err != nil {
		return nil, err
	}
	e.swarmed = true
	if err := e.waitSpawned(ctx, s, ss); err != nil {
		if ss.missing() > 0 && ctx.Err() == nil {
			// The swarm cannot complete without its workers: a generator failure.
			e.log.Warn().Err(err).Int("missing", ss.missing()).Msg("spawning stalled with workers missing")
			return &result.EngineResult{Metrics: e.workerMetrics(ss), ErrorClasses: map[string]int64{}}, nil
		}
		return nil, err
	}
	res := &result.EngineResult{ErrorClasses: map[string]int64{}}
	t, skipped := 0, 0
	var prev []Row
	second := func(hold bool) error {
		st, err := e.c.Status(ctx)
		var rows []Row
		if err == nil {
			rows, err = e.c.RequestsCSV(ctx)
		}
		if err != nil {
			t++
			if skipped++; skipped >= maxSkipped || ctx.Err() != nil {
				return err
			}
			e.log.Warn().Err(err).Int("second", t).Msg("locust: master did not answer; second skipped")
			return nil
		}
		skipped = 0
		ss.observe(st, hold)
		sec := e.second(t, st, rows)
		prev = rows
		res.Series = append(res.Series, sec)
		if s.OnSecond != nil {
			s.OnSecond(sec)
		}
		t++
		return nil
	}
	// Warmup: its measurements are not the window's.
	if err := e.tick(ctx, s.Warmup, func() error { return second(false) }); err != nil {
		return e.partial(res, ss, nil, 0, err)
	}
	if err := e.c.Reset(ctx); err != nil {
		return e.partial(res, ss, nil, 0, err)
	}
	holdStart := time.Now()
	prev = nil
	err := e.tick(ctx, s.Hold, func() error { return second(true) })
	secs := time.Since(holdStart).Seconds()
	if err != nil {
		return e.partial(res, ss, prev, secs, err)
	}
	rows, err := e.c.RequestsCSV(ctx)
	if err != nil {
		return e.partial(res, ss, prev, secs, err)
	}
	if st, err := e.c.Status(ctx); err == nil {
		ss.observe(st, true)
	}
	return e.partial(res, ss, rows, secs, nil)
}

// partial completes res with the window of rows (nil: none) and the worker
// metrics, and returns it with err.
func (e *Engine) partial(res *result.EngineResult, ss *stepState, rows []Row, secs float64, err error) (*result.EngineResult, error) {
	res.Metrics = metrics.Metrics{}
	if rows != nil {
		res.Metrics = windowMetrics(rows, secs, e.cfg.Apart)
	}
	metrics.Metrics(res.Metrics).Merge(e.workerMetrics(ss))
	for _, er := range ss.lastErrs {
		res.ErrorClasses[fmt.Sprintf("%s %s: %s", er.Method, er.Name, er.Error)] += er.Occurrences
	}
	return res, err
}

func (e *Engine) workerMetrics(ss *stepState) metrics.Metrics {
	m := metrics.Metrics{
		WorkersMissing: float64(ss.missing()),
		Workers:        float64(ss.live),
		Users:          float64(ss.users),
	}
	if ss.asked > 0 && ss.usersN > 0 {
		// What was achieved: the users the master ran, on average over the
		// hold, against those asked for.
		m[metrics.LocustUsersRatio] = ss.usersSum / float64(ss.usersN) / float64(ss.asked)
	}
	// generator.cpu: each worker is one single-threaded (gevent) process, so
	// it saturates at one core whatever the host has. The busiest worker's
	// mean CPU over the hold, as a share of its one core, is the generator's
	// CPU share (0..1).
	busiest, saturated := 0.0, 0
	for id, sum := range ss.cpuSum {
		mean := sum / float64(ss.cpuN[id]) / 100
		busiest = math.Max(busiest, mean)
		if mean >= CPUWarning {
			saturated++
		}
	}
	if len(ss.cpuSum) > 0 {
		m[metrics.GeneratorCPU] = busiest
		// Kept apart too: a host sampler measuring the generator processes
		// replaces generator.cpu with its own figure.
		m[WorkersCPU] = busiest
	}
	m[WorkersSaturated] = float64(saturated)
	return m
}

// second makes the progress point of second t: Locust's own current rates
// (its smoothed requests/s and failures/s, from the memoized status) and the
// window-so-far median and 99th percentile.
func (e *Engine) second(t int, st *Status, rows []Row) result.Second {
	sec := result.Second{T: t}
	var rps, fps float64
	for _, r := range st.Stats {
		if r.Name == Aggregated && (r.Method == nil || *r.Method == "") {
			continue
		}
		if r.Method != nil && isApart(*r.Method, e.cfg.Apart) {
			continue
		}
		rps += r.CurrentRPS
		fps += r.CurrentFailRate
	}
	sec.Requests = int64(math.Round(rps))
	sec.Errors = int64(math.Round(fps))
	var reqRows []Row
	for _, r := range rows {
		if (r.Name == Aggregated && r.Type == "") || isApart(r.Type, e.cfg.Apart) {
			continue
		}
		reqRows = append(reqRows, r)
	}
	if p := merged(reqRows, 0.5); !math.IsNaN(p) {
		sec.P50 = ms(p)
	}
	if p := merged(reqRows, 0.99); !math.IsNaN(p) {
		sec.P99 = ms(p)
	}
	return sec
}

// tick calls f once a second for d (rounded up to whole seconds).
func (e *Engine) tick(ctx context.Context, d time.Duration, f func() error) error {
	if d <= 0 {
		return nil
	}
	start := time.Now()
	n := int((d + time.Second - 1) / time.Second)
	for i := 1; i <= n; i++ {
		next := start.Add(time.Duration(i) * time.Second)
		if end := start.Add(d); next.After(end) {
			next = end
		}
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// waitWorkers waits until the master has the expected live workers. A
// shortfall left when WorkerTimeout passes is counted as missing workers
// (the step then fails on the generator side), not as an error.
func (e *Engine) waitWorkers(ctx context.Context, ss *stepState) error {
	want := e.most
	if e.cfg.Workers != nil {
		n, err := e.cfg.Workers()
		if err != nil {
			return fmt.Errorf("locust: expected worker count: %w", err)
		}
		want = n
	}
	want = max(want, 1)
	deadline := time.Now().Add(e.cfg.WorkerTimeout)
	for {
		st, err := e.c.Status(ctx)
		if err != nil {
			if ctx.Err() != nil || !time.Now().Before(deadline) {
				return err
			}
			_ = sleep(ctx, pollInterval)
			continue
		}
		live := st.Live()
		if len(live) >= want || !time.Now().Before(deadline) {
			for _, w := range live {
				ss.start[w.ID] = true
			}
			ss.live = len(live)
			ss.short = max(want-len(live), 0)
			e.most = max(e.most, len(live))
			if ss.short > 0 {
				e.log.Warn().Int("live", len(live)).Int("expected", want).Dur("waited", e.cfg.WorkerTimeout).Msg("locust: workers missing at the start of the step")
			}
			if len(live) == 0 {
				return fmt.Errorf("locust: the master at %s has no worker after %s (expected %d)", e.cfg.Master, e.cfg.WorkerTimeout, want)
			}
			return nil
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// waitSpawned waits until the master runs s.Users users.
func (e *Engine) waitSpawned(ctx context.Context, s Step, ss *stepState) error {
	deadline := time.Now().Add(e.cfg.SpawnTimeout)
	for {
		st, err := e.c.Status(ctx)
		if err != nil {
			if ctx.Err() != nil || !time.Now().Before(deadline) {
				return err
			}
			_ = sleep(ctx, pollInterval)
			continue
		}
		ss.observe(st, false)
		if st.State == StateRunning && st.UserCount == s.Users {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("locust: %d users not spawned within %s (state %q, %d users, %d live workers)",
				s.Users, e.cfg.SpawnTimeout, st.State, st.UserCount, len(st.Live()))
		}
		if ss.missing() > 0 && st.State != StateSpawning {
			return fmt.Errorf("locust: %d workers missing while spawning (state %q, %d of %d users)", ss.missing(), st.State, st.UserCount, s.Users)
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Close stops the users the engine started. The master and workers are the
// generator fleet's: their provider stops them.
func (e *Engine) Close() error {
	defer e.c.CloseIdle()
	if !e.swarmed {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if err := e.c.Stop(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
