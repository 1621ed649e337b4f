package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/loadramp/loadramp/internal/wiring"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/report"
)

func (a *app) planCmd() *cobra.Command {
	var sets []string
	cmd := &cobra.Command{
		Use:   "plan PLAN",
		Short: "Validate a ramp plan and print it resolved, with its step schedule",
		Long: `plan loads a ramp plan, applies --set overrides, checks everything that can be checked
before a run (every problem is listed at once, with its YAML path and line), and prints
the resolved plan and the step schedule: one row per step, every load parameter, and
the one parameter that changed from the step before. Nothing is started.

Exit status: 0 when the plan is valid, 2 when it is not.`,
		Example: `  loadramp plan plans/local-eventbus.yaml
  loadramp plan plans/local-eventbus.yaml --set parameters.rate.max=8000 --set ramp.hold=10s
  loadramp plan plans/local-eventbus.yaml --set static.eventbus_nofile=4096`,
		Args:              exactArgs(1, "PLAN"),
		ValidArgsFunction: completePlans,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPlan(args[0], sets)
			if err != nil {
				return err
			}
			printPlan(a.io.Out, p)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&sets, "set", nil, "override a plan value: key=value, e.g. static.eventbus_nofile=4096, ramp.hold=10s, parameters.rate.max=8000 (repeatable)")
	return cmd
}

// exactArgs is cobra.ExactArgs with a message naming the missing argument.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr(fmt.Errorf("%s takes %s (got %d argument(s)); see 'loadramp %s --help'", cmd.Name(), names, len(args), cmd.Name()))
		}
		return nil
	}
}

// loadPlan loads, overrides and checks a plan. An invalid plan prints every
// problem and returns an exit-2 error.
func (a *app) loadPlan(path string, sets []string) (*plan.Plan, error) {
	p, err := plan.Load(path, sets)
	var problems []error
	failed := map[string]bool{}
	if err != nil {
		var errs plan.Errors
		if !errors.As(err, &errs) {
			return nil, usageErr(err)
		}
		problems = append(problems, errs...)
		for _, e := range errs {
			var de *plan.DecodeError
			if errors.As(e, &de) && de.Path != "" {
				failed[de.Path] = true
			}
		}
	}
	if p != nil {
		// Validate what decoded, leaving out what a decoding problem already names.
		for _, e := range wiring.Check(p, a.ceilings()) {
			var pr *plan.Problem
			if errors.As(e, &pr) && coveredBy(pr.Path, failed) {
				continue
			}
			problems = append(problems, e)
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(a.io.ErrOut, "%s: %d problem(s):\n", path, len(problems))
		for _, e := range problems {
			fmt.Fprintf(a.io.ErrOut, "  - %v\n", e)
		}
		return nil, &exitError{code: ExitUsage, err: fmt.Errorf("invalid plan %s", path), quiet: true}
	}
	return p, nil
}

// coveredBy reports whether path is, or lies under, one of the failed paths.
func coveredBy(path string, failed map[string]bool) bool {
	for f := range failed {
		if path == f || strings.HasPrefix(path, f+".") || strings.HasPrefix(path, f+"[") {
			return true
		}
	}
	return false
}

func (a *app) ceilings() plan.Ceilings {
	c := plan.Ceilings{}
	for _, k := range plan.CeilingKeys() {
		c[k], _ = toFloat(a.v.Get(k))
	}
	return c
}

func fmtNum(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func printPlan(w io.Writer, p *plan.Plan) {
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
	fmt.Fprintf(w, "ramp:        factor %g, %s, warmup %s, hold %s, cooldown %s, confirm %d, refine %d, max %d steps\n",
		rp.Factor, rp.Order, rp.Warmup.D(), rp.Hold.D(), rp.Cooldown.D(), rp.Confirm, rp.Refine, rp.MaxSteps)
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
			cell := fmtNum(s.Values[prm.Name])
			if prm.Name == s.Changed {
				cell = "*" + cell
			}
			row = append(row, cell)
		}
		ch := "-"
		if s.Changed != "" {
			ch = fmt.Sprintf("%s %s -> %s", s.Changed, fmtNum(s.From), fmtNum(s.To))
		}
		row = append(row, ch)
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
}
