package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/report"
)

// runCampaign runs a campaign (orchestrator.RunCampaign), printing each
// variant's summary as it ends and the variants side by side at the end.
func (a *app) runCampaign(parent context.Context, p *plan.Plan, opts orchestrator.Options, progress, upload string) error {
	ctx, obs, stop := a.interruptible(parent, progress)
	defer stop()
	cr, err := orchestrator.RunCampaign(ctx, p, a.deps(obs, progress, nil), opts, func(_ int, res *orchestrator.Result) {
		if res != nil && res.Report != nil {
			printSummary(a.io.Out, res)
		}
	})
	if err != nil {
		return withCode(ExitRuntime, err)
	}
	camp := cr.Report
	fmt.Fprintf(a.io.Out, "campaign %s: %d of %d variants\n", cr.ID, len(camp.Variants), len(p.Campaign.Variants))
	for _, v := range camp.Variants {
		fmt.Fprintf(a.io.Out, "  %d %-40s capacity %-28s %s req/s  bottleneck %s\n", v.Index, strings.Join(v.Changed, ","),
			report.ParamString(v.Capacity, p.ParamNames()), strconv.FormatFloat(v.Throughput, 'f', 0, 64), v.Bottleneck)
	}
	fmt.Fprintf(a.io.Out, "campaign report: %s\n", cr.Paths[len(cr.Paths)-1])
	a.uploadRun(upload, cr.Dir, cr.Secrets)
	switch {
	case cr.Interrupted:
		return &exitError{code: ExitInterrupted, err: fmt.Errorf("interrupted"), quiet: true}
	case cr.Failed != nil:
		return withCode(ExitRuntime, fmt.Errorf("a variant failed: %w", cr.Failed))
	}
	return nil
}
