package prom

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
)

// Figures are a named metric over a step's hold window.
type Figures struct {
	Mean, Peak, Min float64
}

// put adds prom.<name>, prom.<name>.peak and prom.<name>.min to m.
func (f Figures) put(m metrics.Metrics, name string) {
	m[plan.PromMetricPrefix+name] = f.Mean
	m[plan.PromMetricPrefix+name+".peak"] = f.Peak
	m[plan.PromMetricPrefix+name+".min"] = f.Min
}

// scrapeRec is one scrape of one page during a step: the series the named
// selectors match and the page's host and process figures.
type scrapeRec struct {
	t   time.Time
	err error
	// sel holds, by metric name, the series the metric's selector matched.
	sel  map[string][]series
	host hoststat.Sample
	kind string // pageKind
	// settings are the kernel settings of node_exporter's sysctl collector.
	settings map[string]any
	// baseline marks the warmup's last record at the head of a hold window:
	// counters start from it, gauges leave it out.
	baseline bool
}

// recordPage turns a page into what a step keeps of it.
func recordPage(p *Page, selectors map[string][]*labels.Matcher, side string) scrapeRec {
	r := scrapeRec{t: p.Time, sel: map[string][]series{}, kind: pageKind(p.Families)}
	if len(selectors) > 0 {
		for _, s := range flatten(p.Families, p.Instance) {
			for name, ms := range selectors {
				if matches(ms, s.labels) {
					r.sel[name] = append(r.sel[name], s)
				}
			}
		}
	}
	r.host = hoststat.NodeExporterSample(p.Families)
	r.host.Unavailable = nil // a page of another exporter lacks node_* series by nature
	r.host.Time = p.Time
	r.host.Procs = hoststat.ExporterProcs(p.Families, p.Instance, side)
	r.settings = hoststat.NodeExporterSettings(p.Families)
	return r
}

// holdWindow returns the records of the hold: those at or after from, led by
// the last good one before it (marked baseline), so the first hold second has
// a counter baseline (as the procfs sampler's window). Gauges leave the
// baseline out: what the warmup reached is not the hold's.
func holdWindow(recs []scrapeRec, from time.Time) []scrapeRec {
	var out []scrapeRec
	var base *scrapeRec
	for i := range recs {
		r := recs[i]
		if r.err != nil {
			continue
		}
		if r.t.Before(from) {
			base = &recs[i]
			continue
		}
		if base != nil {
			b := *base
			b.baseline = true
			out = append(out, b)
			base = nil
		}
		out = append(out, r)
	}
	return out
}

// figuresOf summarises one named metric over the windows of every page. On
// one page, counters give the per-second rate of the summed series (mean:
// over the whole window; peak and min: of the intervals between scrapes),
// gauges the sum of the matched series at each scrape (mean, peak, min of
// the scrapes). Several pages add up. ok is false, with the reason, when the
// selector matched nothing or matched counters and gauges at once.
func figuresOf(name string, windows map[string][]scrapeRec) (f Figures, ok bool, why string) {
	urls := make([]string, 0, len(windows))
	for u := range windows {
		urls = append(urls, u)
	}
	sort.Strings(urls)
	var counters, gauges int
	for _, u := range urls {
		for _, r := range windows[u] {
			for _, s := range r.sel[name] {
				if s.counter {
					counters++
				} else {
					gauges++
				}
			}
		}
	}
	if counters > 0 && gauges > 0 {
		return Figures{}, false, "the selector matches counters and gauges at once; narrow it to one metric name"
	}
	for _, u := range urls {
		var pf Figures
		var got bool
		if counters > 0 {
			pf, got = counterFigures(name, windows[u])
		} else {
			pf, got = gaugeFigures(name, windows[u])
		}
		if got {
			f.Mean += pf.Mean
			f.Peak += pf.Peak
			f.Min += pf.Min
			ok = true
		}
	}
	switch {
	case ok:
		return f, true, ""
	case counters > 0:
		return Figures{}, false, "its counters were read in fewer than two scrapes of the hold"
	}
	return Figures{}, false, "no series matches the selector in the hold"
}

func counterFigures(name string, recs []scrapeRec) (Figures, bool) {
	type point struct {
		t time.Time
		v map[string]float64
	}
	var pts []point
	for _, r := range recs {
		if len(r.sel[name]) == 0 {
			continue
		}
		p := point{t: r.t, v: map[string]float64{}}
		for _, s := range r.sel[name] {
			p.v[s.labels.String()] = s.value
		}
		pts = append(pts, p)
	}
	if len(pts) < 2 {
		return Figures{}, false
	}
	var total float64
	f := Figures{Peak: math.Inf(-1), Min: math.Inf(1)}
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		dt := b.t.Sub(a.t).Seconds()
		if dt <= 0 {
			continue
		}
		var inc float64
		for k, v := range b.v {
			prev, ok := a.v[k]
			switch {
			case !ok:
				// A series new in this interval has no baseline yet.
			case v < prev:
				inc += v // reset: counts from 0
			default:
				inc += v - prev
			}
		}
		total += inc
		f.Peak = math.Max(f.Peak, inc/dt)
		f.Min = math.Min(f.Min, inc/dt)
	}
	wall := pts[len(pts)-1].t.Sub(pts[0].t).Seconds()
	if wall <= 0 || math.IsInf(f.Peak, -1) {
		return Figures{}, false
	}
	f.Mean = total / wall
	return f, true
}

func gaugeFigures(name string, recs []scrapeRec) (Figures, bool) {
	f := Figures{Peak: math.Inf(-1), Min: math.Inf(1)}
	var sum float64
	n := 0
	for _, r := range recs {
		ss := r.sel[name]
		if len(ss) == 0 || r.baseline {
			continue
		}
		var v float64
		for _, s := range ss {
			v += s.value
		}
		if math.IsNaN(v) {
			continue
		}
		sum += v
		n++
		f.Peak = math.Max(f.Peak, v)
		f.Min = math.Min(f.Min, v)
	}
	if n == 0 {
		return Figures{}, false
	}
	f.Mean = sum / float64(n)
	return f, true
}

// Host is one scraped instance over a step's hold window: its node_exporter
// host figures and its processes (process-exporter's groups, the serving
// process's process_* series), ready for diagnose.Diagnose.
type Host struct {
	// Instance is the page's host:port; findings name it as their host.
	Instance string
	URL      string
	// Source says what observed the host, for evidence:
	// "node_exporter at 10.0.0.5:9100".
	Source  string
	Summary hoststat.Summary
	// Settings are the kernel settings node_exporter's sysctl collector
	// exported (hoststat.Settings' names), so findings say their values.
	Settings map[string]any
	// Side is the side the host serves (Config.Side): on a generator-side
	// host every finding is the generator's.
	Side string
}

// hostOf summarises one page's window, or ok false when the page has neither
// host figures nor processes.
func hostOf(u, side string, recs []scrapeRec) (Host, bool) {
	if len(recs) == 0 {
		return Host{}, false
	}
	samples := make([]hoststat.Sample, 0, len(recs))
	useful := false
	var from time.Time // the hold's first record: gauges start there
	for _, r := range recs {
		if !r.baseline && from.IsZero() {
			from = r.host.Time
		}
		samples = append(samples, r.host)
		useful = useful || len(r.host.Host) > 0 || len(r.host.Procs) > 0
	}
	if !useful {
		return Host{}, false
	}
	inst, _ := Instance(u)
	last := recs[len(recs)-1]
	return Host{Instance: inst, URL: u, Source: fmt.Sprintf("%s at %s", last.kind, inst), Summary: hoststat.WindowFrom(samples, from), Settings: last.settings, Side: side}, true
}

// problem joins a metric name and why it was not measured.
func problem(name, why string) string {
	return fmt.Sprintf("prom.%s not measured: %s", name, strings.TrimSuffix(why, "."))
}
