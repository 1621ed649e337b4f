package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/report"
)

func (a *app) compareCmd() *cobra.Command {
	var maxReg string
	cmd := &cobra.Command{
		Use:   "compare BASE_RUN NEW_RUN",
		Short: "Compare two runs' capacities; exit 3 on a regression beyond the tolerance",
		Long: `compare puts two run directories side by side: capacity per load parameter and in achieved
req/s, latency at capacity, the bottleneck (same or changed), and the static parameters
that differ. A capacity of NEW_RUN lower than BASE_RUN's by more than --max-regression is
a regression: compare then exits 3, so a scheduler can act on it.`,
		Example: `  loadramp compare runs/20261126T020000Z-local-eventbus runs/20261127T020000Z-local-eventbus
  loadramp compare BASE NEW --max-regression 5%`,
		Args: exactArgs(2, "BASE_RUN and NEW_RUN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			tol, err := parsePercent(maxReg)
			if err != nil {
				return usageErr(fmt.Errorf("--max-regression: %w", err))
			}
			base, err := loadReport(args[0])
			if err != nil {
				return err
			}
			nu, err := loadReport(args[1])
			if err != nil {
				return err
			}
			c := report.Compare(base, nu, tol)
			if err := c.WriteText(a.io.Out); err != nil {
				return withCode(ExitRuntime, err)
			}
			if c.Regressed {
				return &exitError{code: ExitPolicy, err: fmt.Errorf("capacity regressed"), quiet: true}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&maxReg, "max-regression", "10%", "tolerated capacity loss against the baseline, e.g. 10% or 0.1")
	return cmd
}

// loadReport builds the report of a run directory.
func loadReport(path string) (*report.Report, error) {
	if _, err := record.Open(path); err != nil {
		return nil, usageErr(fmt.Errorf("%s is not a run directory: %w", path, err))
	}
	rep, _, err := report.Load(path)
	if err != nil {
		return nil, withCode(ExitRuntime, err)
	}
	return rep, nil
}

// parsePercent reads "10%", "10 %" or "0.1" as 0.1.
func parsePercent(s string) (float64, error) {
	t := strings.TrimSpace(s)
	div := 1.0
	if strings.HasSuffix(t, "%") {
		t, div = strings.TrimSpace(strings.TrimSuffix(t, "%")), 100
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f/div >= 1 {
		return 0, fmt.Errorf("%q: want a percentage from 0%% to 99%%, e.g. 10%%", s)
	}
	return f / div, nil
}

// parseMinCapacity reads key=value pairs (load parameter or throughput.rps).
func parseMinCapacity(pairs []string) (map[string]float64, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	out := map[string]float64{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !ok || strings.TrimSpace(k) == "" || err != nil || f <= 0 {
			return nil, fmt.Errorf("--min-capacity %q: want parameter=value with a positive number, e.g. rate=8000 or throughput.rps=7500", p)
		}
		out[strings.TrimSpace(k)] = f
	}
	return out, nil
}

// findBaseline resolves --baseline: a run directory, or "latest", the newest
// finished run of the same plan in runsDir.
func findBaseline(spec, planName, runsDir string) (*report.Report, error) {
	if spec != "latest" {
		return loadReport(spec)
	}
	s, ok, err := record.LatestFinished(runsDir, planName)
	if err != nil {
		return nil, withCode(ExitRuntime, err)
	}
	if !ok {
		return nil, nil
	}
	return loadReport(s.Dir)
}
