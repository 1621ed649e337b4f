package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/loadramp/loadramp/internal/wiring"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/report"
)

func (a *app) reportCmd() *cobra.Command {
	var formats []string
	cmd := &cobra.Command{
		Use:   "report RUN_DIR|CAMPAIGN_DIR",
		Short: "Regenerate a run's reports from its run.json, steps.jsonl and notes.jsonl",
		Long: `report rebuilds every report of a run directory from run.json, steps.jsonl and notes.jsonl
alone, so a run that was interrupted or killed still gets its report (marked partial
when the run never finished). Regenerating gives identical files. Given a campaign
directory, it rewrites the campaign's reports from its variants' run directories.

Formats: html (report.html), md (report.md), csv (steps.csv), json (report.json),
junit (junit.xml), xlsx (report.xlsx, the workbook).`,
		Example: `  loadramp report runs/20261127T063000Z-local-eventbus
  loadramp report runs/20261127T063000Z-local-eventbus --format html,md`,
		Args:              exactArgs(1, "RUN_DIR"),
		ValidArgsFunction: completeRunDirs,
		RunE: func(cmd *cobra.Command, args []string) error {
			known := report.Builtin()
			for _, f := range formats {
				if _, ok := known[f]; !ok {
					return usageErr(fmt.Errorf("--format %q: allowed values are %s", f, strings.Join(known.Names(), ", ")))
				}
			}
			if _, err := record.Open(args[0]); err != nil && report.IsCampaign(args[0]) {
				return a.wrote(report.RefreshCampaign(args[0]))
			} else if err != nil {
				return usageErr(fmt.Errorf("%s is not a run directory: %w", args[0], err))
			}
			rep, truncated, err := report.Load(args[0])
			if err != nil {
				return withCode(ExitRuntime, err)
			}
			if truncated {
				fmt.Fprintln(a.io.ErrOut, "note: the last line of steps.jsonl was cut short (the run was killed while writing it); it is left out")
			}
			for _, l := range report.SummaryLines(rep) {
				fmt.Fprintln(a.io.Out, l)
			}
			return a.wrote(report.WriteAll(args[0], rep, formats))
		},
	}
	cmd.Flags().StringSliceVar(&formats, "format", plan.ReportFormats, "formats to write, comma-separated: "+strings.Join(plan.ReportFormats, ", "))
	return cmd
}

func (a *app) runsCmd() *cobra.Command {
	var dirFlag string
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List the history of runs: id, plan, start, status, capacity, bottleneck",
		Long: `runs lists every run directory under the runs directory (--dir, default the configured
runs_dir, "runs"), newest first, with its plan, start time, status, capacity and bottleneck.`,
		Example: `  loadramp runs
  loadramp runs --dir /var/lib/loadramp/runs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := dirFlag
			if dir == "" {
				dir = a.v.GetString(keyRunsDir)
			}
			if _, err := os.Stat(dir); err != nil {
				return usageErr(fmt.Errorf("runs directory %s: %w", dir, err))
			}
			list, err := record.List(dir)
			if err != nil {
				return withCode(ExitRuntime, err)
			}
			if len(list) == 0 {
				fmt.Fprintf(a.io.Out, "no runs in %s\n", dir)
				return nil
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPLAN\tSTART\tSTATUS\tCAPACITY\tBOTTLENECK")
			for _, s := range list {
				capacity := "-"
				if s.Capacity != nil {
					capacity = report.ParamString(s.Capacity, s.Params)
				}
				bn := "-"
				if b := s.Bottleneck; b != nil {
					bn = fmt.Sprintf("step %d %s %s -> %s", b.Index, b.Changed, wiring.ParamValue(b.From), wiring.ParamValue(b.To))
				}
				status := s.StatusText()
				if s.Err != nil {
					status += " (damaged: " + s.Err.Error() + ")"
				}
				start := "-"
				if !s.Start.IsZero() {
					start = s.Start.UTC().Format("2006-01-02 15:04:05Z")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", filepath.Base(s.Dir), s.Plan, start, status, capacity, bn)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dirFlag, "dir", "", "runs directory (default: runs_dir from the configuration, \"runs\")")
	return cmd
}
