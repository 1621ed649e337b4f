package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/report"
)

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// runCampaign runs the plan's full ramp once per campaign variant, in order,
// each variant overriding the static parameters (one change from the variant
// before). Each variant is an ordinary run directory inside the campaign
// directory, which also holds campaign.{json,md,html}. An interrupt stops the
// variant in progress (its fleets are torn down and its partial report is
// written) and the campaign; every finished variant keeps its report.
func (a *app) runCampaign(parent context.Context, p *plan.Plan, opts orchestrator.Options, progress string) error {
	ctx, obs, stop := a.interruptible(parent, progress)
	defer stop()

	id := record.NewRunID(time.Now().UTC(), p.Name) + "-campaign"
	cdir := filepath.Join(opts.OutDir, id)
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return withCode(ExitRuntime, fmt.Errorf("creating campaign directory: %w", err))
	}
	a.campaignID = id
	defer func() { a.campaignID = "" }()
	camp := &report.Campaign{Schema: report.CampaignSchema, ID: id, Plan: p.Name, Variants: []report.Variant{}}
	n := len(p.Campaign.Variants)
	obs.Message("campaign %s: %d variants; campaign directory %s", id, n, cdir)
	var failed error
	interrupted := false
	for i := 0; i < n; i++ {
		changed := p.VariantChange(i)
		static := p.VariantStatic(i)
		var parts []string
		for _, k := range changed {
			parts = append(parts, fmt.Sprintf("%s=%v", k, static[k]))
		}
		obs.Message("variant %d/%d: %s", i+1, n, orDefault(strings.Join(parts, " "), "the plan's static parameters"))
		pv := *p
		pv.Static = static
		pv.Campaign = nil
		vo := opts
		vo.OutDir = cdir
		if i < n-1 {
			// Terraform fleets are re-applied in place by the next variant;
			// local processes restart with the variant's arguments.
			vo.KeepProviders = map[string]bool{plan.ProviderTerraform: true}
		}
		vo.RunID = fmt.Sprintf("v%d-%s", i+1, strings.Trim(unsafeName.ReplaceAllString(strings.Join(parts, "-"), "_"), "_"))
		if len(parts) == 0 {
			vo.RunID = fmt.Sprintf("v%d-base", i+1)
		}
		res, err := orchestrator.Run(ctx, &pv, a.deps(obs, progress, nil), vo)
		if res != nil && res.Report != nil {
			printSummary(a.io.Out, res)
			camp.Variants = append(camp.Variants, report.VariantOf(i+1, res.Report, changed, static, price(p, i)))
		}
		if res != nil && res.Interrupted {
			interrupted = true
			break
		}
		if err != nil {
			// A failed variant does not stop the campaign: the next one may
			// be the change that fixes it. It is reported and the exit is 1.
			obs.Message("variant %d failed: %v", i+1, err)
			failed = err
		}
	}
	camp.Partial = interrupted
	paths, err := report.WriteCampaign(cdir, camp)
	if err != nil {
		return withCode(ExitRuntime, err)
	}
	fmt.Fprintf(a.io.Out, "campaign %s: %d of %d variants\n", id, len(camp.Variants), n)
	for _, v := range camp.Variants {
		fmt.Fprintf(a.io.Out, "  %d %-40s capacity %-28s %s req/s  bottleneck %s\n", v.Index, strings.Join(v.Changed, ","),
			report.ParamString(v.Capacity, p.ParamNames()), strconv.FormatFloat(v.Throughput, 'f', 0, 64), v.Bottleneck)
	}
	fmt.Fprintf(a.io.Out, "campaign report: %s\n", paths[len(paths)-1])
	a.uploadRun(cdir)
	switch {
	case interrupted:
		return &exitError{code: ExitInterrupted, err: fmt.Errorf("interrupted"), quiet: true}
	case failed != nil:
		return withCode(ExitRuntime, fmt.Errorf("a variant failed: %w", failed))
	}
	return nil
}

// price is campaign.cost[i].per_hour, when the plan gives prices.
func price(p *plan.Plan, i int) float64 {
	if p.Campaign == nil || i >= len(p.Campaign.Cost) {
		return 0
	}
	v, err := strconv.ParseFloat(fmt.Sprint(p.Campaign.Cost[i]["per_hour"]), 64)
	if err != nil {
		return 0
	}
	return v
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
