package wiring

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/report"
)

// ParamValue formats a load parameter's value: an integer without a
// fraction, anything else as short as it parses back.
func ParamValue(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// DescribePlan writes what `loadramp plan` prints: the plan's fleets, engine,
// requests, secrets, static parameters, Prometheus sources, ramp, checks,
// campaign and the schedule of its steps.
func DescribePlan(w io.Writer, p *plan.Plan) {
	fmt.Fprintf(w, "plan:        %s\n", p.Name)
	if p.Description != "" {
		fmt.Fprintf(w, "description: %s\n", strings.TrimSpace(p.Description))
	}
	var fleets []string
	for n, f := range p.Fleets {
		fleets = append(fleets, fmt.Sprintf("%s (%s)", n, f.Provider))
	}
	sort.Strings(fleets)
	fmt.Fprintf(w, "fleets:      %s\n", strings.Join(fleets, ", "))
	eng := p.Workload.Engine
	h := p.Workload.HTTP
	switch {
	case h != nil && len(h.Requests) > 0:
		eng += fmt.Sprintf(": a mix of %d requests", len(h.Requests))
	case h != nil:
		eng += fmt.Sprintf(": %s %s", h.Method, h.URL)
	}
	fmt.Fprintf(w, "engine:      %s\n", eng)
	if line := agentsLine(p); line != "" {
		fmt.Fprintf(w, "agents:      %s\n", line)
	}
	if h != nil && len(h.Requests) > 0 {
		total := 0
		for _, r := range h.Requests {
			total += r.Weight
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, r := range h.Requests {
			fmt.Fprintf(tw, "  %s\tweight %d (%.3g%%)\t%s %s\t\n", r.Name, r.Weight,
				100*float64(r.Weight)/float64(total), r.Method, r.URL)
		}
		tw.Flush()
	}
	if refs := p.EnvRefs(); len(refs) > 0 {
		var names []string
		for _, r := range refs {
			state := "set"
			if _, ok := os.LookupEnv(r.Name); !ok {
				state = "NOT SET: loadramp run refuses the plan until it is"
			}
			if s := r.Name + " (" + state + ")"; !slices.Contains(names, s) {
				names = append(names, s)
			}
		}
		fmt.Fprintf(w, "secrets:     from the environment, kept out of the run directory: %s\n", strings.Join(names, ", "))
	}
	if len(p.Static) > 0 {
		var keys []string
		for k := range p.Static {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var kv []string
		for _, k := range keys {
			kv = append(kv, fmt.Sprintf("%s=%v", k, p.Static[k]))
		}
		fmt.Fprintf(w, "static:      %s\n", strings.Join(kv, " "))
	}
	for _, ps := range p.PromSources() {
		names := make([]string, 0, len(ps.Metrics))
		for n := range ps.Metrics {
			names = append(names, "prom."+n)
		}
		sort.Strings(names)
		what := "query " + ps.Query
		if ps.Mode() == plan.PromScrape {
			what = "scrape " + strings.Join(ps.Scrape, ", ")
		}
		if len(names) > 0 {
			what += ": " + strings.Join(names, ", ")
		}
		fmt.Fprintf(w, "%-12s %s (%s)\n", "prometheus:", what, ps.Path)
	}
	rp := p.Ramp
	fmt.Fprintf(w, "ramp:        factor %g, %s, warmup %s, hold %s, cooldown %s, confirm %d, refine %d, max %d steps, %d reruns when the generator's CPU is taken\n",
		rp.Factor, rp.Order, rp.Warmup.D(), rp.Hold.D(), rp.Cooldown.D(), rp.Confirm, rp.Refine, rp.MaxSteps, rp.InterferenceReruns)
	checks := orchestrator.Checks(p)
	for _, l := range report.CheckLines(&checks) {
		fmt.Fprintf(w, "%-12s %s\n", l.Label+":", l.Text)
	}
	if len(p.Abort) > 0 {
		fmt.Fprintf(w, "%-12s %s\n", "abort:", strings.Join(p.Abort, ", "))
	}
	if c := p.Campaign; c != nil {
		fmt.Fprintf(w, "campaign:    %d variants, each a full ramp:\n", len(c.Variants))
		for i := range c.Variants {
			static := p.VariantStatic(i)
			var parts []string
			for _, k := range p.VariantChange(i) {
				parts = append(parts, fmt.Sprintf("%s=%v", k, static[k]))
			}
			if len(parts) == 0 {
				parts = []string{"(the plan's static parameters)"}
			}
			fmt.Fprintf(w, "  variant %d: %s\n", i+1, strings.Join(parts, " "))
		}
	}
	sched := p.Schedule()
	per := rp.Warmup.D() + rp.Hold.D() + rp.Cooldown.D()
	fmt.Fprintf(w, "\nschedule: %d steps, at most %s of load before confirm and refine steps\n\n", len(sched), per*time.Duration(len(sched)))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	hdr := []string{"step"}
	for _, prm := range p.Parameters {
		hdr = append(hdr, prm.Name)
	}
	hdr = append(hdr, "changed")
	fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
	for _, s := range sched {
		row := []string{strconv.Itoa(s.Index)}
		for _, prm := range p.Parameters {
			cell := ParamValue(s.Values[prm.Name])
			if prm.Name == s.Changed {
				cell = "*" + cell
			}
			row = append(row, cell)
		}
		ch := "-"
		if s.Changed != "" {
			ch = fmt.Sprintf("%s %s -> %s", s.Changed, ParamValue(s.From), ParamValue(s.To))
		}
		row = append(row, ch)
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
}

// agentsLine says which fleets' agents a run calls, and what for.
func agentsLine(p *plan.Plan) string {
	var parts []string
	names := make([]string, 0, len(p.Fleets))
	for n := range p.Fleets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := p.Fleets[n]
		if !f.HasAgents() {
			continue
		}
		a := f.Agents
		var where []string
		if a.Output != "" {
			where = append(where, "output "+a.Output)
		}
		if len(a.Endpoints) > 0 {
			where = append(where, fmt.Sprintf("%d listed", len(a.Endpoints)))
		}
		if a.Local > 0 {
			where = append(where, fmt.Sprintf("%d started here", a.Local))
		}
		role := "observe their hosts"
		if n == "generators" && p.BuiltinOnAgents() {
			role = "run the builtin engine and observe their hosts"
		}
		parts = append(parts, fmt.Sprintf("fleet %s: %s, to %s", n, strings.Join(where, ", "), role))
	}
	return strings.Join(parts, "; ")
}
