package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/loadramp/loadramp/internal/wiring"
	"github.com/loadramp/loadramp/orchestrator/plan"
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
			wiring.DescribePlan(a.io.Out, p)
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
