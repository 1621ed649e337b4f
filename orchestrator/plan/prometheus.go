package plan

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Prometheus is a Prometheus source, on a fleet or on the plan. It is one of
// two modes:
//
//   - Scrape: /metrics pages (node_exporter, process-exporter, the service's
//     own) that loadramp scrapes itself every second of each step. Each of
//     Metrics is then a series selector (`eventbus_queue_depth`,
//     `http_requests_total{code="500"}`).
//   - Query: the URL of a Prometheus server, read over its HTTP API with
//     range queries over each step's hold window. Each of Metrics is then a
//     PromQL expression.
//
// Each of Metrics becomes the step metric prom.<name> that gates can judge.
type Prometheus struct {
	// Scrape lists /metrics URLs (templates).
	Scrape []string `yaml:"scrape,omitempty" json:"scrape,omitempty"`
	// Query is a Prometheus server's base URL, e.g. http://prom:9090 (template).
	Query string `yaml:"query,omitempty" json:"query,omitempty"`
	// Metrics maps a name to a selector (scrape) or a PromQL expression
	// (query); templates are allowed.
	Metrics map[string]string `yaml:"metrics,omitempty" json:"metrics,omitempty"`
	// Settle, in query mode, is how long after a step's hold loadramp waits
	// before it queries, so the server has scraped the hold's last seconds
	// (set it to the server's scrape interval). Default 0.
	Settle Duration `yaml:"settle,omitempty" json:"settle,omitempty"`
}

// Modes of a Prometheus source.
const (
	PromScrape = "scrape"
	PromQuery  = "query"
)

// Mode is PromScrape or PromQuery ("" when the block says neither).
func (p *Prometheus) Mode() string {
	switch {
	case p == nil:
		return ""
	case p.Query != "":
		return PromQuery
	case len(p.Scrape) > 0:
		return PromScrape
	}
	return ""
}

// Limits of a Prometheus block.
const (
	MaxPromScrapeURLs = 64
	MaxPromMetrics    = 64
	MaxPromSettle     = 5 * time.Minute
	// PromMetricPrefix prefixes the step metrics of Prometheus metrics.
	PromMetricPrefix = "prom."
)

// promNameRe is a Prometheus metric's name as gates write it after "prom.":
// one lowercase segment, so prom.<name>.peak stays unambiguous.
var promNameRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// PromSource is one prometheus block of a plan with where it was written.
type PromSource struct {
	// Path is "prometheus" or "fleets.<fleet>.prometheus".
	Path string
	// Fleet is the fleet the block is on ("" for the plan's).
	Fleet string
	*Prometheus
}

// Side is the side whose processes the block's process series describe: the
// generator side on the generators fleet, the target's anywhere else.
func (s PromSource) Side() string {
	if s.Fleet == "generators" {
		return "generator"
	}
	return "target"
}

// PromSources lists the plan's prometheus blocks: the plan's own first, then
// the fleets' in name order.
func (p *Plan) PromSources() []PromSource {
	var out []PromSource
	if p.Prometheus != nil {
		out = append(out, PromSource{Path: "prometheus", Prometheus: p.Prometheus})
	}
	for _, name := range mapKeys(p.Fleets) {
		if f := p.Fleets[name]; f != nil && f.Prometheus != nil {
			out = append(out, PromSource{Path: "fleets." + name + ".prometheus", Fleet: name, Prometheus: f.Prometheus})
		}
	}
	return out
}

// PromMetrics maps every Prometheus metric name of the plan to the path that
// defines it (fleets.target.prometheus.metrics.db_cpu).
func (p *Plan) PromMetrics() map[string]string {
	out := map[string]string{}
	for _, s := range p.PromSources() {
		for name := range s.Metrics {
			if _, dup := out[name]; !dup {
				out[name] = s.Path + ".metrics." + name
			}
		}
	}
	return out
}

// PromMetricSuffixes are the figures a Prometheus metric adds besides its
// mean: prom.<name>.peak and prom.<name>.min over the hold.
var PromMetricSuffixes = []string{"peak", "min"}

// PromMetricName returns the Prometheus metric name a step metric refers to
// (prom.db_cpu, prom.db_cpu.peak -> db_cpu), or ok false when metric is not
// a prom.* metric.
func PromMetricName(metric string) (name string, ok bool) {
	rest, ok := strings.CutPrefix(metric, PromMetricPrefix)
	if !ok {
		return "", false
	}
	name, suffix, _ := strings.Cut(rest, ".")
	if suffix != "" && !contains(PromMetricSuffixes, suffix) {
		return name, false
	}
	return name, true
}

func (v *validator) prometheus() {
	defined := map[string]string{}
	for _, s := range v.p.PromSources() {
		pr := s.Prometheus
		switch {
		case pr.Query == "" && len(pr.Scrape) == 0:
			v.add(s.Path, "give scrape (a list of /metrics URLs) or query (a Prometheus server's URL)")
		case pr.Query != "" && len(pr.Scrape) > 0:
			v.add(s.Path, "scrape and query exclude each other: put a scraped source and a queried server in two blocks (one on a fleet, one on the plan)")
		}
		if len(pr.Scrape) > MaxPromScrapeURLs {
			v.add(s.Path+".scrape", "%d URLs; at most %d", len(pr.Scrape), MaxPromScrapeURLs)
		}
		seen := map[string]int{}
		for i, u := range pr.Scrape {
			p := fmt.Sprintf("%s.scrape[%d]", s.Path, i)
			v.checkURL(p, u)
			if j, dup := seen[u]; dup && u != "" {
				v.add(p, "%q is also scrape[%d]", u, j)
			}
			seen[u] = i
		}
		if pr.Query != "" {
			v.checkURL(s.Path+".query", pr.Query)
			if len(pr.Metrics) == 0 && len(pr.Scrape) == 0 {
				v.add(s.Path+".metrics", "missing; query mode reads only the named queries (metrics: {name: 'PromQL'})")
			}
		}
		switch {
		case pr.Settle < 0:
			v.add(s.Path+".settle", "must be >= 0")
		case pr.Settle.D() > MaxPromSettle:
			v.add(s.Path+".settle", "%v: at most %v", pr.Settle.D(), MaxPromSettle)
		case pr.Settle > 0 && pr.Query == "":
			v.add(s.Path+".settle", "only query mode waits for a server's scrape; scrape mode reads the pages itself")
		}
		if len(pr.Metrics) > MaxPromMetrics {
			v.add(s.Path+".metrics", "%d metrics; at most %d", len(pr.Metrics), MaxPromMetrics)
		}
		for _, name := range mapKeys(pr.Metrics) {
			p := s.Path + ".metrics." + name
			if !promNameRe.MatchString(name) {
				v.add(p, "metric name %q: use 1-64 lowercase letters, digits and _, starting with a letter (gates read it as prom.%s)", name, strings.ToLower(name))
			} else if other, dup := defined[name]; dup {
				v.add(p, "prom.%s is also defined at %s; names are shared by every prometheus block", name, other)
			} else {
				defined[name] = p
			}
			// The expression itself is PromQL: package prom checks it
			// (prom.CheckPlan) with Prometheus's own parser, which this
			// package does not import.
			if strings.TrimSpace(pr.Metrics[name]) == "" {
				v.add(p, "empty; give a %s", map[string]string{PromQuery: "PromQL expression", PromScrape: "series selector"}[pr.Mode()])
			}
		}
	}
}

// promTemplated lists the templated strings of the prometheus blocks.
func (p *Plan) promTemplated(add func(path, s string)) {
	for _, s := range p.PromSources() {
		for i, u := range s.Scrape {
			add(fmt.Sprintf("%s.scrape[%d]", s.Path, i), u)
		}
		add(s.Path+".query", s.Query)
		for _, name := range mapKeys(s.Metrics) {
			add(s.Path+".metrics."+name, s.Metrics[name])
		}
	}
}
