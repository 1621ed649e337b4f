package prom

import (
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/loadramp/loadramp/orchestrator/plan"
)

// CheckPlan checks the PromQL of every prometheus block of p with
// Prometheus's own parser, as `loadramp plan` does: each problem is a
// *plan.Problem with the metric's YAML path and line
// (prometheus.metrics.db_cpu (line 7): bad PromQL ...). An expression with a
// template is checked once rendered, by New. Package plan validates the rest
// of the blocks (modes, URLs, names) and does not import the parser.
func CheckPlan(p *plan.Plan) []error {
	var errs []error
	for _, s := range p.PromSources() {
		mode := s.Mode()
		if mode == "" {
			continue // plan.Validate says the block has no mode
		}
		for _, name := range sortedKeys(s.Metrics) {
			expr := s.Metrics[name]
			if strings.TrimSpace(expr) == "" || strings.Contains(expr, "{{") {
				continue
			}
			if err := CheckPromQL(mode, expr); err != nil {
				path := s.Path + ".metrics." + name
				errs = append(errs, &plan.Problem{Path: path, Line: p.Line(path), Msg: err.Error()})
			}
		}
	}
	return errs
}

// CheckPromQL checks a Prometheus metric's expression for its mode
// (plan.PromScrape or plan.PromQuery): in query mode a PromQL expression a
// range query can evaluate (an instant vector or a scalar); in scrape mode a
// series selector. It never panics.
func CheckPromQL(mode, expr string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("PromQL %q could not be parsed (%v)", expr, r)
		}
	}()
	switch mode {
	case plan.PromScrape:
		_, err := Selector(expr)
		return err
	case plan.PromQuery:
		e, err := parser.ParseExpr(expr)
		if err != nil {
			return fmt.Errorf("bad PromQL %q: %v", expr, err)
		}
		switch t := e.Type(); t {
		case parser.ValueTypeVector, parser.ValueTypeScalar:
			return nil
		case parser.ValueTypeMatrix:
			return fmt.Errorf("PromQL %q is a range vector; a range query needs an instant vector or a scalar: wrap it in a function, e.g. rate(%s)", expr, expr)
		default:
			return fmt.Errorf("PromQL %q is a %s; a gate needs an instant vector or a scalar", expr, t)
		}
	}
	return fmt.Errorf("unknown prometheus mode %q", mode)
}

// Selector parses a scrape-mode metric: a PromQL series selector
// (name{label="value"}), without offset or @. It returns the selector's label
// matchers (the name is the __name__ matcher).
func Selector(expr string) (m []*labels.Matcher, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("PromQL %q could not be parsed (%v)", expr, r)
		}
	}()
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("%q is not a series selector: %v", expr, err)
	}
	vs, ok := e.(*parser.VectorSelector)
	if !ok {
		return nil, fmt.Errorf("%q: scrape mode takes a series selector (name{label=\"value\"}) and summarises it itself (counters as a rate, gauges as mean, peak and min); PromQL functions and operators need query mode (a Prometheus server)", expr)
	}
	if vs.OriginalOffset != 0 || vs.Timestamp != nil || vs.StartOrEnd != 0 {
		return nil, fmt.Errorf("%q: offset and @ need query mode (a Prometheus server); scrape mode reads the present", expr)
	}
	return vs.LabelMatchers, nil
}
