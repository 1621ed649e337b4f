package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// CampaignSchema is the value of campaign.json's "schema" key.
const CampaignSchema = "loadramp.campaign/v1"

// Campaign puts the ramps of a campaign's variants side by side: one static
// parameter changed at a time, the capacity each variant reached.
type Campaign struct {
	Schema   string    `json:"schema"`
	ID       string    `json:"id"`
	Plan     string    `json:"plan"`
	Partial  bool      `json:"partial,omitempty"`
	Variants []Variant `json:"variants"`
}

// Variant is one ramp of a campaign.
type Variant struct {
	Index int    `json:"index"`
	RunID string `json:"run_id"`
	// Changed names the static parameters this variant changed from the one
	// before (from the plan's own for the first), Static their values.
	Changed    []string           `json:"changed"`
	Static     map[string]any     `json:"static"`
	Status     string             `json:"status"`
	Partial    bool               `json:"partial,omitempty"`
	Capacity   map[string]float64 `json:"capacity"`
	Throughput float64            `json:"throughput_rps"`
	LatencyP99 float64            `json:"latency_p99"`
	Bottleneck string             `json:"bottleneck"`
	// Instances is the variant's instance count (a static parameter named
	// *count), PerInstance the throughput per instance.
	Instances   float64 `json:"instances,omitempty"`
	PerInstance float64 `json:"per_instance_rps,omitempty"`
	// PricePerHour comes from campaign.cost; PerDollarHour is throughput per
	// dollar-hour.
	PricePerHour  float64 `json:"price_per_hour,omitempty"`
	PerDollarHour float64 `json:"rps_per_dollar_hour,omitempty"`
}

// VariantOf summarises a variant's finished (or partial) report.
func VariantOf(index int, r *Report, changed []string, static map[string]any, pricePerHour float64) Variant {
	v := Variant{Index: index, RunID: r.RunID, Changed: changed, Static: static, Status: r.Status, Partial: r.Partial,
		Capacity: map[string]float64{}, Bottleneck: runCause(r), PricePerHour: pricePerHour}
	if v.Changed == nil {
		v.Changed = []string{}
	}
	if c := r.Capacity; c != nil {
		v.Capacity = nonNilParams(c.Parameters)
		v.Throughput = c.Metrics[metrics.ThroughputRPS]
		v.LatencyP99 = c.Metrics[metrics.LatencyP99]
	}
	keys := make([]string, 0, len(static))
	for k := range static {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasSuffix(k, "count") {
			if n, err := strconv.ParseFloat(fmt.Sprint(static[k]), 64); err == nil && n > 0 {
				v.Instances = n
				v.PerInstance = v.Throughput / n
				break
			}
		}
	}
	if pricePerHour > 0 {
		v.PerDollarHour = v.Throughput / pricePerHour
	}
	return v
}

// WriteCampaign writes campaign.json, campaign.md, the campaign's workbook
// (report.xlsx: a Summary sheet and a sheet per variant's run, from runs,
// the variants' reports) and campaign.html, last, into dir.
func WriteCampaign(dir string, c *Campaign, runs ...*Report) ([]string, error) {
	var paths []string
	workbook := func(w io.Writer, c *Campaign) error { return WriteCampaignXLSX(w, c, runs) }
	for _, f := range []struct {
		name  string
		write func(io.Writer, *Campaign) error
	}{{"campaign.json", writeCampaignJSON}, {"campaign.md", writeCampaignMD}, {WorkbookFile, workbook}, {"campaign.html", writeCampaignHTML}} {
		path := filepath.Join(dir, f.name)
		var b strings.Builder
		if err := f.write(&b, c); err != nil {
			return paths, err
		}
		if err := writeFileAtomic(path, []byte(b.String())); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func writeCampaignJSON(w io.Writer, c *Campaign) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

func (v Variant) changedText() string {
	if len(v.Changed) == 0 {
		return "(baseline)"
	}
	parts := make([]string, 0, len(v.Changed))
	for _, k := range v.Changed {
		parts = append(parts, fmt.Sprintf("%s=%v", k, v.Static[k]))
	}
	return strings.Join(parts, ", ")
}

func writeCampaignMD(w io.Writer, c *Campaign) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# loadramp campaign: %s\n\n", mdText(c.Plan))
	if c.Partial {
		fmt.Fprintf(bw, "**Partial:** the campaign was interrupted; the variants below finished or stopped.\n\n")
	}
	fmt.Fprintf(bw, "| variant | changed | status | capacity | req/s | p99 | per instance | per $-hour | bottleneck |\n|---|---|---|---|---:|---:|---:|---:|---|\n")
	for _, v := range c.Variants {
		fmt.Fprintf(bw, "| %d `%s` | %s | %s | %s | %s | %s | %s | %s | %s |\n", v.Index, v.RunID, mdText(v.changedText()), v.Status,
			ParamString(v.Capacity, nil), metrics.FormatNumber(v.Throughput), metrics.FormatValue(metrics.LatencyP99, v.LatencyP99),
			optNum(v.PerInstance), optNum(v.PerDollarHour), mdText(v.Bottleneck))
	}
	return bw.Flush()
}

func optNum(v float64) string {
	if v == 0 {
		return "-"
	}
	return metrics.FormatNumber(v)
}

var campaignTmpl = template.Must(template.New("campaign").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>loadramp campaign {{.C.Plan}}</title>
<style>
body{font-family:"Liberation Sans",Arial,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px} .partial{background:#c62828;color:#fff;padding:8px 12px;font-weight:bold}
table{border-collapse:collapse;margin:12px 0} th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
td.num{text-align:right} tr.pass td{background:#e8f5e9} tr.fail td{background:#ffebee} tr.gen td{background:#fff3e0}
.changed{background:#fff59d;font-weight:bold} svg.plot{width:100%;max-width:720px;height:auto}
</style></head><body>
<h1>Campaign {{.C.ID}}: {{.C.Plan}}</h1>
{{if .C.Partial}}<p class="partial">PARTIAL: the campaign was interrupted.</p>{{end}}
<p>{{len .C.Variants}} variant(s), each changing one static parameter from the one before; capacity is the highest passing step of each ramp.</p>
<table><thead><tr><th>variant</th><th>changed</th><th>status</th><th>capacity</th><th>req/s</th><th>p99</th><th>per instance</th><th>req/s per $-hour</th><th>bottleneck</th></tr></thead><tbody>
{{range .Rows}}<tr class="{{.Class}}"><td>{{.V.Index}} <code>{{.V.RunID}}</code></td><td class="changed">{{.Changed}}</td><td>{{.V.Status}}</td><td>{{.Capacity}}</td><td class="num">{{.RPS}}</td><td class="num">{{.P99}}</td><td class="num">{{.PerInstance}}</td><td class="num">{{.PerDollar}}</td><td>{{.V.Bottleneck}}</td></tr>
{{end}}</tbody></table>
{{.Plot}}
</body></html>
`))

func writeCampaignHTML(w io.Writer, c *Campaign) error {
	type row struct {
		V                                                          Variant
		Class, Changed, Capacity, RPS, P99, PerInstance, PerDollar string
	}
	var rows []row
	values := make(plotter.Values, 0, len(c.Variants))
	for _, v := range c.Variants {
		class := "pass"
		switch v.Status {
		case "generator-limited":
			class = "gen"
		case "error", "aborted":
			class = "fail"
		}
		rows = append(rows, row{V: v, Class: class, Changed: v.changedText(), Capacity: ParamString(v.Capacity, nil),
			RPS: metrics.FormatNumber(v.Throughput), P99: metrics.FormatValue(metrics.LatencyP99, v.LatencyP99),
			PerInstance: optNum(v.PerInstance), PerDollar: optNum(v.PerDollarHour)})
		values = append(values, v.Throughput)
	}
	var plotHTML template.HTML
	if len(values) > 0 {
		p := newPlot("variant", "capacity (req/s)")
		bars, err := plotter.NewBarChart(values, vg.Points(28))
		if err == nil {
			bars.Color = colMid
			p.Add(bars)
			names := make([]string, len(c.Variants))
			for i, v := range c.Variants {
				names[i] = fmt.Sprintf("%d: %s", v.Index, v.changedText())
			}
			p.NominalX(names...)
			if svg, err := renderSVG(p, "plot-campaign-capacity", "Capacity per variant"); err == nil {
				plotHTML = svg
			} else {
				plotHTML = template.HTML("<p>" + template.HTMLEscapeString(err.Error()) + "</p>")
			}
		}
	}
	return campaignTmpl.Execute(w, struct {
		C    *Campaign
		Rows []row
		Plot template.HTML
	}{c, rows, plotHTML})
}

// ReadCampaign reads a campaign.json.
func ReadCampaign(dir string) (*Campaign, error) {
	b, err := os.ReadFile(filepath.Join(dir, "campaign.json"))
	if err != nil {
		return nil, err
	}
	var c Campaign
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("campaign.json: %w", err)
	}
	return &c, nil
}
