package orchestrator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/report"
)

// CampaignResult says how a campaign ended.
type CampaignResult struct {
	ID  string
	Dir string
	// Report is campaign.json: every variant that produced a report.
	Report *report.Campaign
	// Paths are the campaign reports written (campaign.json, .md, the
	// workbook report.xlsx, and campaign.html last).
	Paths []string
	// Interrupted is true when ctx was cancelled: the variant in progress was
	// torn down and its partial report written, and no other variant ran.
	Interrupted bool
	// Failed is the error of the last variant that failed; the campaign went
	// on with the next one.
	Failed error
	// Secrets are every variant's Result.Secrets, for the upload.
	Secrets []string
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// RunCampaign runs plan p's full ramp once per campaign variant, in order,
// each variant overriding the static parameters (one change from the variant
// before). Each variant is an ordinary run directory inside the campaign
// directory (opts.OutDir/<id>), which also holds campaign.{json,md,html}.
// Terraform fleets are kept between variants and re-applied in place in the
// campaign's one workspace; local processes restart with each variant's
// arguments. A failed variant does not stop the campaign: the next one may be
// the change that fixes it. An interrupt stops the variant in progress and
// the campaign; every finished variant keeps its report. done, if set, is
// called after each variant.
func RunCampaign(ctx context.Context, p *plan.Plan, deps Deps, opts Options, done func(variant int, res *Result)) (*CampaignResult, error) {
	if p.Campaign == nil {
		return nil, fmt.Errorf("plan %s has no campaign", p.Name)
	}
	if deps.Observer == nil {
		deps.Observer = NopObserver{}
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	outDir := opts.OutDir
	if outDir == "" {
		outDir = "runs"
	}
	id := record.NewRunID(deps.Now().UTC(), p.Name) + "-campaign"
	cr := &CampaignResult{ID: id, Dir: filepath.Join(outDir, id)}
	if err := os.MkdirAll(cr.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating campaign directory: %w", err)
	}
	cr.Report = &report.Campaign{Schema: report.CampaignSchema, ID: id, Plan: p.Name, Variants: []report.Variant{}}
	obs := deps.Observer
	n := len(p.Campaign.Variants)
	var reports []*report.Report
	obs.Message("campaign %s: %d variants; campaign directory %s", id, n, cr.Dir)
	for i := 0; i < n; i++ {
		changed := p.VariantChange(i)
		static := p.VariantStatic(i)
		var parts []string
		for _, k := range changed {
			parts = append(parts, fmt.Sprintf("%s=%v", k, static[k]))
		}
		if len(parts) == 0 {
			obs.Message("variant %d/%d: the plan's static parameters", i+1, n)
		} else {
			obs.Message("variant %d/%d: %s", i+1, n, strings.Join(parts, " "))
		}
		pv := *p
		pv.Static = static
		pv.Campaign = nil
		vo := opts
		vo.OutDir = cr.Dir
		vo.CampaignID = id
		if i < n-1 {
			// Terraform fleets are re-applied in place by the next variant;
			// local processes restart with the variant's arguments.
			vo.KeepProviders = map[string]bool{plan.ProviderTerraform: true}
		}
		vo.RunID = fmt.Sprintf("v%d-%s", i+1, strings.Trim(unsafeName.ReplaceAllString(strings.Join(parts, "-"), "_"), "_"))
		if len(parts) == 0 {
			vo.RunID = fmt.Sprintf("v%d-base", i+1)
		}
		res, err := Run(ctx, &pv, deps, vo)
		if res != nil {
			cr.Secrets = append(cr.Secrets, res.Secrets...)
		}
		if res != nil && res.Report != nil {
			cr.Report.Variants = append(cr.Report.Variants, report.VariantOf(i+1, res.Report, changed, static, price(p, i)))
			reports = append(reports, res.Report)
		}
		if done != nil {
			done(i+1, res)
		}
		if res != nil && res.Interrupted {
			cr.Interrupted = true
			break
		}
		if err != nil {
			obs.Message("variant %d failed: %v", i+1, err)
			cr.Failed = err
		}
	}
	cr.Report.Partial = cr.Interrupted
	paths, err := report.WriteCampaign(cr.Dir, cr.Report, reports...)
	if err != nil {
		return cr, err
	}
	cr.Paths = paths
	return cr, nil
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
