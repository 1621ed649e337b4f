package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/record"
)

// WriteCSV writes steps.csv: one row per step attempt, ready for a spreadsheet.
// Columns: index, attempt, kind, changed, from, to, every static parameter
// (static.<name>; nested values flattened with dots), every load parameter,
// every metric seen in any step (sorted; durations in milliseconds with an
// "_ms" suffix, ratios 0..1 and counts as they are), verdict, reason,
// failed_gates, findings (the attempt's rule ids), notes (the engineers'
// notes on the attempt, "; "-separated) and ref (the attempt's address for
// `loadramp note`: 6.2, 6.r1). A metric a step did not measure is an empty
// cell.
func WriteCSV(w io.Writer, r *Report) error {
	static := flatten(r.Static)
	staticKeys := sortedKeys(static)

	metricSet := map[string]bool{}
	for _, s := range r.Steps {
		for m := range s.Metrics {
			metricSet[m] = true
		}
	}
	metricNames := make([]string, 0, len(metricSet))
	for m := range metricSet {
		metricNames = append(metricNames, m)
	}
	sort.Strings(metricNames)

	header := []string{"index", "attempt", "kind", "changed", "from", "to"}
	for _, k := range staticKeys {
		header = append(header, "static."+k)
	}
	header = append(header, r.Parameters...)
	for _, m := range metricNames {
		if metrics.IsDuration(m) {
			header = append(header, m+"_ms")
		} else {
			header = append(header, m)
		}
	}
	header = append(header, "verdict", "reason", "failed_gates", "findings", "notes", "ref")

	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("write steps.csv header: %w", err)
	}
	for i, s := range r.Steps {
		row := []string{strconv.Itoa(s.Index), strconv.Itoa(s.Attempt), s.Kind, s.Changed, num(s.From), num(s.To)}
		if s.Changed == "" {
			row[4], row[5] = "", ""
		}
		for _, k := range staticKeys {
			row = append(row, static[k])
		}
		for _, p := range r.Parameters {
			if v, ok := s.Parameters[p]; ok {
				row = append(row, num(v))
			} else {
				row = append(row, "")
			}
		}
		for _, m := range metricNames {
			v, ok := s.Metrics[m]
			switch {
			case !ok:
				row = append(row, "")
			case metrics.IsDuration(m):
				// Rounded to the nanosecond: 0.0123 s is 12.3, not 12.299999999999999.
				row = append(row, num(math.Round(v*1e9)/1e6))
			default:
				row = append(row, num(v))
			}
		}
		var failed []string
		for _, g := range s.FailedGates {
			failed = append(failed, g.Gate)
		}
		var rules, notes []string
		for _, f := range s.Findings {
			rules = append(rules, f.Rule)
		}
		for _, n := range r.NotesOf(&r.Steps[i]) {
			notes = append(notes, n.Text)
		}
		row = append(row, s.Verdict, s.Reason, strings.Join(failed, "; "), strings.Join(rules, "; "), strings.Join(notes, "; "), record.AddrOf(s).String())
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write steps.csv row: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write steps.csv: %w", err)
	}
	return nil
}

// num formats a number exactly and without an exponent, as spreadsheets like.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// flatten turns nested static parameters into dotted keys with text values.
func flatten(m map[string]any) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 {
				out[prefix] = ""
			}
			for k, vv := range x {
				walk(prefix+"."+k, vv)
			}
		default:
			out[prefix] = scalar(x)
		}
	}
	for k, v := range m {
		walk(k, v)
	}
	return out
}

// scalar formats a static parameter value.
func scalar(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return num(x)
	case float32:
		return num(float64(x))
	case bool, int, int64, int32, uint, uint64, uint32:
		return fmt.Sprint(x)
	default:
		// Lists and other structures: JSON keeps them in one readable cell.
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
