package prom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Config is one rendered prometheus block of a plan (templates expanded).
type Config struct {
	// Scrape lists /metrics URLs (scrape mode).
	Scrape []string
	// Query is a Prometheus server's base URL (query mode).
	Query string
	// Metrics maps a name to a series selector (scrape) or PromQL (query).
	Metrics map[string]string
	// Settle, in query mode, is the wait after the hold before querying.
	Settle time.Duration
	// Side is the side of the processes the pages describe ("target" or
	// "generator"; plan.PromSource.Side).
	Side string
	// Interval is the scrape period (default DefaultInterval).
	Interval time.Duration
	// Client makes the requests (default: a client with a Timeout of
	// DefaultTimeout).
	Client *http.Client
}

// Defaults of Config.
const (
	DefaultInterval = time.Second
	DefaultTimeout  = 5 * time.Second
)

// Source reads one prometheus block for each step. Create it with New.
type Source struct {
	cfg       Config
	selectors map[string][]*labels.Matcher
	querier   *Querier
	limits    fdLimits
}

// fdLimits remembers each scraped process's open-file limit. A process's own
// collector (process_max_fds) reads /proc/self/limits, which takes a file: at
// its limit, the one moment that matters, it cannot, and its page has
// process_open_fds without process_max_fds. The limit last read for it (at
// Check, or at an earlier scrape) stands in.
type fdLimits struct {
	mu sync.Mutex
	m  map[[2]string]int64 // instance, process name
}

// fill remembers the limits procs (scraped from instance) give and gives the
// remembered one to those that count files without a limit.
func (l *fdLimits) fill(instance string, procs []hoststat.ProcSample) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range procs {
		p := &procs[i]
		k := [2]string{instance, p.Name}
		switch {
		case p.FDLimit > 0:
			if l.m == nil {
				l.m = map[[2]string]int64{}
			}
			l.m[k] = p.FDLimit
		case p.FDs > 0:
			p.FDLimit = l.m[k]
		}
	}
}

// New checks a rendered block and returns its Source. Its errors name the
// metric and say what is wrong (a templated expression is checked here,
// once rendered).
func New(cfg Config) (*Source, error) {
	switch {
	case cfg.Query == "" && len(cfg.Scrape) == 0:
		return nil, errors.New("prometheus: give scrape URLs or a query server")
	case cfg.Query != "" && len(cfg.Scrape) > 0:
		return nil, errors.New("prometheus: scrape and query exclude each other")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: DefaultTimeout}
	}
	s := &Source{cfg: cfg, selectors: map[string][]*labels.Matcher{}}
	var errs []error
	for _, u := range cfg.Scrape {
		if _, err := Instance(u); err != nil {
			errs = append(errs, fmt.Errorf("prometheus scrape URL %q: %w", u, err))
		}
	}
	if cfg.Query != "" {
		for _, name := range sortedKeys(cfg.Metrics) {
			if err := CheckPromQL(plan.PromQuery, cfg.Metrics[name]); err != nil {
				errs = append(errs, fmt.Errorf("prom.%s: %w", name, err))
			}
		}
	} else {
		sel, err := selectorsOf(cfg.Metrics)
		if err != nil {
			errs = append(errs, err)
		}
		s.selectors = sel
	}
	if cfg.Query != "" {
		q, err := NewQuerier(cfg.Query, cfg.Client)
		if err != nil {
			errs = append(errs, err)
		}
		s.querier = q
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// selectorsOf parses scrape-mode metrics into their label matchers.
func selectorsOf(exprs map[string]string) (map[string][]*labels.Matcher, error) {
	out := map[string][]*labels.Matcher{}
	var errs []error
	for _, name := range sortedKeys(exprs) {
		ms, err := Selector(exprs[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("prom.%s: %w", name, err))
			continue
		}
		out[name] = ms
	}
	return out, errors.Join(errs...)
}

// Mode is plan.PromScrape or plan.PromQuery.
func (s *Source) Mode() string {
	if s.querier != nil {
		return plan.PromQuery
	}
	return plan.PromScrape
}

// Describe says what the source reads, for the run's progress: "scrapes 2
// pages every 1s, 3 metrics" or "queries the Prometheus server at
// http://prom:9090, 2 metrics, settle 15s".
func (s *Source) Describe() string {
	n := len(s.cfg.Metrics)
	if s.querier != nil {
		d := fmt.Sprintf("queries the Prometheus server at %s, %d metric(s)", s.cfg.Query, n)
		if s.cfg.Settle > 0 {
			d += fmt.Sprintf(", settle %v", s.cfg.Settle)
		}
		return d
	}
	return fmt.Sprintf("scrapes %s every %v, %d metric(s)", strings.Join(s.cfg.Scrape, ", "), s.cfg.Interval, n)
}

// Check reads the source once before the first step: every scrape URL must
// answer metrics, and the query server must answer every query (PromQL it
// rejects is an error naming the metric). A server that has just started is
// then given time for its first scrape (Querier.WaitFirstScrape). Call it
// once the fleets are up.
func (s *Source) Check(ctx context.Context) error {
	if s.querier != nil {
		if err := s.querier.Check(ctx, s.cfg.Metrics); err != nil {
			return err
		}
		s.querier.WaitFirstScrape(ctx)
		return nil
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, u := range s.cfg.Scrape {
		wg.Go(func() {
			p, err := Scrape(ctx, s.cfg.Client, u)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			s.limits.fill(p.Instance, recordPage(p, s.selectors, s.cfg.Side).host.Procs)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// StepSpec says when a step's hold begins and where raw samples go.
type StepSpec struct {
	// Warmup is the time from Start to the beginning of the hold.
	Warmup time.Duration
	// Sink, if set, receives every Sample as it is taken (samples.jsonl).
	Sink func(any)
}

// Sample is one reading of the source as samples.jsonl records it: a scrape
// of a page, or (query mode) one point of a query's range.
type Sample struct {
	Source string    `json:"source"` // "prometheus"
	Time   time.Time `json:"time"`
	// URL is the scraped page or the query server.
	URL      string `json:"url"`
	Instance string `json:"instance,omitempty"`
	// Metrics are the named metrics' values at this time: the sum of the
	// series a selector matched (scrape), or the query's value (query).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Host and Procs are the page's node_exporter figures and processes
	// (hoststat keys).
	Host  map[string]float64    `json:"host,omitempty"`
	Procs []hoststat.ProcSample `json:"procs,omitempty"`
	Err   string                `json:"err,omitempty"`
}

// SampleSource is Sample.Source.
const SampleSource = "prometheus"

// Step is one step's reading of the source; Stop ends it.
type Step struct {
	s        *Source
	spec     StepSpec
	start    time.Time
	holdFrom time.Time
	cancel   context.CancelFunc
	done     chan struct{}

	mu   sync.Mutex
	recs map[string][]scrapeRec // by URL
}

// Start begins reading the source for one step: in scrape mode every page is
// scraped now and then every Interval until Stop; query mode reads nothing
// until Stop. ctx bounds the scrapes.
func (s *Source) Start(ctx context.Context, spec StepSpec) *Step {
	now := time.Now()
	st := &Step{s: s, spec: spec, start: now, holdFrom: now.Add(spec.Warmup), done: make(chan struct{}), recs: map[string][]scrapeRec{}}
	runCtx, cancel := context.WithCancel(ctx)
	st.cancel = cancel
	if s.querier != nil {
		close(st.done)
		return st
	}
	var wg sync.WaitGroup
	for _, u := range s.cfg.Scrape {
		wg.Go(func() {
			t := time.NewTicker(s.cfg.Interval)
			defer t.Stop()
			for {
				st.scrape(runCtx, u)
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(st.done)
	}()
	return st
}

// scrape reads one page and records it.
func (st *Step) scrape(ctx context.Context, u string) {
	p, err := Scrape(ctx, st.s.cfg.Client, u)
	if err != nil && ctx.Err() != nil {
		return // stopped mid-scrape: not the page's fault
	}
	var r scrapeRec
	if err != nil {
		r = scrapeRec{t: time.Now(), err: err}
	} else {
		r = recordPage(p, st.s.selectors, st.s.cfg.Side)
		st.s.limits.fill(p.Instance, r.host.Procs)
	}
	st.mu.Lock()
	st.recs[u] = append(st.recs[u], r)
	st.mu.Unlock()
	if st.spec.Sink != nil {
		st.spec.Sink(sampleOf(u, r))
	}
}

func sampleOf(u string, r scrapeRec) Sample {
	inst, _ := Instance(u)
	smp := Sample{Source: SampleSource, Time: r.t, URL: u, Instance: inst}
	if r.err != nil {
		smp.Err = r.err.Error()
		return smp
	}
	for name, ss := range r.sel {
		if smp.Metrics == nil {
			smp.Metrics = map[string]float64{}
		}
		var v float64
		for _, s := range ss {
			v += s.value
		}
		smp.Metrics[name] = v
	}
	if len(r.host.Host) > 0 {
		smp.Host = r.host.Host
	}
	smp.Procs = r.host.Procs
	return smp
}

// Result is what a step read from the source.
type Result struct {
	// Metrics are prom.<name>, prom.<name>.peak and prom.<name>.min of the
	// metrics that were measured.
	Metrics metrics.Metrics
	// Hosts are the scraped instances with host figures or processes
	// (scrape mode), each ready for diagnosis.
	Hosts []Host
	// Problems say why a metric was not measured or a page not read.
	Problems []string
}

// Inputs are the diagnosis inputs of the step's hosts: one per instance,
// named by it, with evidence naming the exporter.
func (r Result) Inputs() []diagnose.Input {
	out := make([]diagnose.Input, 0, len(r.Hosts))
	for _, h := range r.Hosts {
		out = append(out, diagnose.Input{Host: h.Instance, Summary: h.Summary, Settings: h.Settings, Source: h.Source, Side: h.Side})
	}
	return out
}

// Findings diagnoses every host of the result (see Inputs). Each finding
// names its host (the instance) and its side: the rules' own on a
// target-side host; the generator's, whatever the rule, on a generator-side
// one (a block on the generators fleet), whose host serves only load.
func (r Result) Findings() []result.Finding {
	var out []result.Finding
	for i, in := range r.Inputs() {
		for _, f := range diagnose.Diagnose(in) {
			if r.Hosts[i].Side == hoststat.SideGenerator {
				f.Side = hoststat.SideGenerator
			}
			out = append(out, f)
		}
	}
	return out
}

// Stop ends the step at the end of its hold and summarises the hold window:
// scrape mode takes one last scrape of every page; query mode waits
// Config.Settle, then range-queries the hold. ctx bounds that work.
func (st *Step) Stop(ctx context.Context) Result {
	end := time.Now()
	s := st.s
	if s.querier != nil {
		st.cancel()
		return st.stopQuery(ctx, end)
	}
	// One last scrape closes the window at the end of the hold.
	var wg sync.WaitGroup
	for _, u := range s.cfg.Scrape {
		wg.Go(func() { st.scrape(ctx, u) })
	}
	wg.Wait()
	st.cancel()
	<-st.done

	st.mu.Lock()
	defer st.mu.Unlock()
	res := Result{Metrics: metrics.Metrics{}}
	windows := map[string][]scrapeRec{}
	var unread []string
	for _, u := range s.cfg.Scrape {
		w := holdWindow(st.recs[u], st.holdFrom)
		if len(w) == 0 {
			why := "no scrape succeeded"
			for _, r := range st.recs[u] {
				if r.err != nil {
					why = r.err.Error()
				}
			}
			msg := fmt.Sprintf("%s was not read during the hold: %s", u, why)
			res.Problems = append(res.Problems, msg)
			unread = append(unread, msg)
			continue
		}
		windows[u] = w
		if h, ok := hostOf(u, s.cfg.Side, w); ok {
			res.Hosts = append(res.Hosts, h)
		}
	}
	for _, name := range sortedKeys(s.selectors) {
		f, ok, why := figuresOf(name, windows)
		if !ok {
			why = fmt.Sprintf("%s (%s)", why, s.cfg.Metrics[name])
			if len(unread) > 0 {
				// The series may be on a page that failed: say so.
				why += "; " + strings.Join(unread, "; ")
			}
			res.Problems = append(res.Problems, problem(name, why))
			continue
		}
		f.put(res.Metrics, name)
	}
	return res
}

func (st *Step) stopQuery(ctx context.Context, end time.Time) Result {
	res := Result{Metrics: metrics.Metrics{}}
	if d := st.s.cfg.Settle; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	start := st.holdFrom
	if !start.Before(end) {
		start = st.start
	}
	got, problems := st.s.querier.Range(ctx, st.s.cfg.Metrics, start, end)
	res.Problems = problems
	byTime := map[time.Time]map[string]float64{}
	for _, name := range sortedKeys(got) {
		got[name].Figures.put(res.Metrics, name)
		for _, p := range got[name].Points {
			if byTime[p.T] == nil {
				byTime[p.T] = map[string]float64{}
			}
			byTime[p.T][name] = p.V
		}
	}
	if st.spec.Sink != nil {
		times := make([]time.Time, 0, len(byTime))
		for t := range byTime {
			times = append(times, t)
		}
		slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
		for _, t := range times {
			st.spec.Sink(Sample{Source: SampleSource, Time: t, URL: st.s.cfg.Query, Metrics: byTime[t]})
		}
	}
	return res
}
