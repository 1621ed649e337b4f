package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"regexp"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Plot ids: each plot of report.html is an inline <svg> with one of these ids
// (and a <title> saying what it shows). Tests and readers find plots by them.
const (
	PlotLatency    = "plot-latency"
	PlotThroughput = "plot-throughput"
	PlotErrors     = "plot-errors"
	PlotProbe      = "plot-probe"
	PlotResources  = "plot-resources"
	PlotSeriesRPS  = "plot-series-rps"
	PlotSeriesP99  = "plot-series-p99"
	// PlotPromPrefix + <name> is the plot of the Prometheus metric
	// prom.<name> (its mean, peak and min of each attempt), with the name's
	// "_" written "-" (PlotProm).
	PlotPromPrefix = "plot-prom-"
)

// PlotProm is the id of the plot of the Prometheus metric prom.<name>.
func PlotProm(name string) string { return PlotPromPrefix + strings.ReplaceAll(name, "_", "-") }

// maxPromPlots bounds the Prometheus metrics plotted, in name order.
const maxPromPlots = 8

// Size of one plot in points; the SVG carries a viewBox, so the page scales it.
const (
	plotWidth  = 6.4 * vg.Inch
	plotHeight = 3.4 * vg.Inch
)

// svgPlot is one rendered plot, or why it could not be rendered.
type svgPlot struct {
	ID      string
	Title   string
	Caption string
	SVG     template.HTML
	Err     string
}

// Colours. Red, amber and purple are kept for failing points, as in the step
// table; measured series use blues, teal and brown.
var (
	colTargetFail = color.RGBA{R: 0xc6, G: 0x28, B: 0x28, A: 0xff}
	colGenFail    = color.RGBA{R: 0xef, G: 0x6c, B: 0x00, A: 0xff}
	colError      = color.RGBA{R: 0x6a, G: 0x1b, B: 0x9a, A: 0xff}
	colLight      = color.RGBA{R: 0x6b, G: 0xae, B: 0xd6, A: 0xff}
	colMid        = color.RGBA{R: 0x21, G: 0x71, B: 0xb5, A: 0xff}
	colDark       = color.RGBA{R: 0x08, G: 0x30, B: 0x6b, A: 0xff}
	colGrey       = color.RGBA{R: 0x75, G: 0x75, B: 0x75, A: 0xff}
	colTeal       = color.RGBA{R: 0x00, G: 0x89, B: 0x7b, A: 0xff}
	colBrown      = color.RGBA{R: 0x8d, G: 0x6e, B: 0x63, A: 0xff}
)

// curve is one measured line of a plot.
type curve struct {
	label  string
	metric string // for steps: the metric plotted
	scale  float64
	color  color.Color
	dashed bool
}

// loadAxis is the x axis of the per-step plots: the offered rate when every
// attempt measured it, else the step index.
type loadAxis struct {
	label string
	x     []float64 // one per r.Steps
}

func newLoadAxis(steps []result.Step) loadAxis {
	offered := len(steps) > 0
	for _, s := range steps {
		if v, ok := s.Metrics[metrics.ThroughputOffered]; !ok || !finite(v) {
			offered = false
			break
		}
	}
	a := loadAxis{x: make([]float64, len(steps))}
	if offered {
		a.label = "offered load (req/s)"
		for i, s := range steps {
			a.x[i] = s.Metrics[metrics.ThroughputOffered]
		}
		return a
	}
	a.label = "step"
	for i, s := range steps {
		a.x[i] = float64(s.Index)
	}
	return a
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// buildPlots renders every plot the report has data for, in page order.
func buildPlots(r *Report) []svgPlot {
	if len(r.Steps) == 0 {
		return nil
	}
	ax := newLoadAxis(r.Steps)
	var out []svgPlot
	add := func(id, title, caption string, p *plot.Plot, err error) {
		if p == nil && err == nil {
			return // nothing measured
		}
		sp := svgPlot{ID: id, Title: title, Caption: caption}
		if err == nil {
			sp.SVG, err = renderSVG(p, id, title)
		}
		if err != nil {
			sp.Err = err.Error()
		}
		out = append(out, sp)
	}
	vs := "vs " + strings.TrimSuffix(ax.label, " (req/s)")

	ms := func(label, m string, c color.Color, dashed bool) curve {
		return curve{label: label, metric: m, scale: 1000, color: c, dashed: dashed}
	}
	pct := func(label, m string, c color.Color, dashed bool) curve {
		return curve{label: label, metric: m, scale: 100, color: c, dashed: dashed}
	}

	p, err := stepPlot(r.Steps, ax, "latency (ms)", true, []curve{
		ms("p50", metrics.LatencyP50, colLight, false),
		ms("p90", metrics.LatencyP90, colMid, false),
		ms("p99", metrics.LatencyP99, colDark, false),
		ms("max", metrics.LatencyMax, colGrey, true),
	})
	add(PlotLatency, "Latency percentiles "+vs, "Corrected latency (from the intended send time) of each step attempt; log scale when it spans decades.", p, err)

	tput := []curve{{label: "achieved", metric: metrics.ThroughputRPS, scale: 1, color: colDark}}
	if ax.label != "step" || anyMetric(r.Steps, metrics.ThroughputOffered) {
		tput = append(tput, curve{label: "offered", metric: metrics.ThroughputOffered, scale: 1, color: colGrey, dashed: true})
	}
	p, err = stepPlot(r.Steps, ax, "throughput (req/s)", false, tput)
	add(PlotThroughput, "Achieved vs offered throughput "+vs, "Where achieved falls below offered, the target (or the generator) could not keep up.", p, err)

	p, err = stepPlot(r.Steps, ax, "errors (% of requests)", false, []curve{
		pct("errors", metrics.ErrorsRatio, colDark, false),
	})
	add(PlotErrors, "Error ratio "+vs, "", p, err)

	p, err = stepPlot(r.Steps, ax, "probe delay (ms)", true, []curve{
		ms("p50", metrics.ProbeDelayP50, colLight, false),
		ms("p95", metrics.ProbeDelayP95, colMid, false),
		ms("p99", metrics.ProbeDelayP99, colDark, false),
		ms("max", metrics.ProbeDelayMax, colGrey, true),
	})
	add(PlotProbe, "Probe delay "+vs, "End-to-end delay of the probe messages.", p, err)

	p, err = stepPlot(r.Steps, ax, "peak (% of capacity)", false, []curve{
		pct("target cpu", metrics.TargetCPU, colDark, false),
		pct("target open files", metrics.TargetFDRatio, colBrown, false),
		pct("generator cpu", metrics.GeneratorCPU, colTeal, true),
	})
	add(PlotResources, "Host resource peaks per step "+vs, "Peak CPU share and open-file share of the limit during each step attempt.", p, err)

	for _, name := range promNames(r.Steps, maxPromPlots) {
		m := "prom." + name
		p, err = stepPlot(r.Steps, ax, m, false, []curve{
			{label: "peak", metric: m + ".peak", scale: 1, color: colDark, dashed: true},
			{label: "mean", metric: m, scale: 1, color: colMid},
			{label: "min", metric: m + ".min", scale: 1, color: colLight, dashed: true},
		})
		add(PlotProm(name), "Prometheus: "+m+" "+vs, "The plan's Prometheus metric over each step attempt's hold: its mean, peak and min.", p, err)
	}

	if s := failingStep(r); s != nil && len(s.Series) > 0 {
		name := stepLabel(*s)
		p, err = seriesPlot(s.Series, "requests per second", []seriesCurve{
			{label: "requests/s", color: colDark, y: func(x result.Second) float64 { return float64(x.Requests) }},
			{label: "offered/s", color: colGrey, dashed: true, y: func(x result.Second) float64 { return float64(x.Offered) }},
			{label: "errors/s", color: colTargetFail, y: func(x result.Second) float64 { return float64(x.Errors) }},
		})
		add(PlotSeriesRPS, "Requests per second during the failing step ("+name+")", "Each second of the step, warmup included.", p, err)
		p, err = seriesPlot(s.Series, "latency (ms)", []seriesCurve{
			{label: "p50", color: colLight, y: func(x result.Second) float64 { return x.P50 * 1000 }},
			{label: "p99", color: colDark, y: func(x result.Second) float64 { return x.P99 * 1000 }},
		})
		add(PlotSeriesP99, "p99 latency per second during the failing step ("+name+")", "", p, err)
	}
	return out
}

// promNames lists, in order and at most limit, the names of the Prometheus
// metrics some attempt measured (prom.<name>).
func promNames(steps []result.Step, limit int) []string {
	seen := map[string]bool{}
	for _, s := range steps {
		for k := range s.Metrics {
			rest, ok := strings.CutPrefix(k, "prom.")
			if ok && !strings.Contains(rest, ".") {
				seen[rest] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > limit {
		names = names[:limit]
	}
	return names
}

func anyMetric(steps []result.Step, m string) bool {
	for _, s := range steps {
		if _, ok := s.Metrics[m]; ok {
			return true
		}
	}
	return false
}

// failingStep is the step whose per-second series is plotted: the bottleneck's
// confirmed attempt, else the last attempt that did not pass.
func failingStep(r *Report) *result.Step {
	if b := r.Bottleneck; b != nil {
		for i := range r.Steps {
			s := &r.Steps[i]
			if s.Index == b.Step && s.Attempt == b.Attempt && s.Kind != result.KindRefine {
				return s
			}
		}
	}
	for i := len(r.Steps) - 1; i >= 0; i-- {
		if r.Steps[i].Verdict != result.VerdictPass {
			return &r.Steps[i]
		}
	}
	return nil
}

// stepLabel names an attempt in a few words: "step 6 attempt 2, confirm".
func stepLabel(s result.Step) string {
	l := fmt.Sprintf("step %d attempt %d", s.Index, s.Attempt)
	if s.Kind != "" && s.Kind != result.KindRamp {
		l += ", " + s.Kind
	}
	return l
}

// newPlot returns an empty plot in the report's style: sans-serif text, grid,
// legend at the top left.
func newPlot(xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	sans := func(f *font.Font) { f.Typeface, f.Variant = "Liberation", "Sans" }
	sans(&p.Title.TextStyle.Font)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		sans(&a.Label.TextStyle.Font)
		sans(&a.Tick.Label.Font)
		a.Label.TextStyle.Font.Size = vg.Points(11)
		a.Tick.Label.Font.Size = vg.Points(10)
	}
	sans(&p.Legend.TextStyle.Font)
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(6), vg.Points(-4)
	p.Legend.Padding = vg.Points(2)
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	p.X.Tick.Marker = niceTicks{}
	p.Y.Tick.Marker = niceTicks{}
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 0xe0}
	g.Horizontal.Color = color.Gray{Y: 0xe0}
	p.Add(g)
	return p
}

// niceTicks puts four to seven labelled ticks on a linear axis, at 1, 2, 2.5
// or 5 times a power of ten, with an unlabelled tick between each two.
type niceTicks struct{}

// Ticks implements plot.Ticker.
func (niceTicks) Ticks(min, max float64) []plot.Tick {
	span := max - min
	if !finite(span) || span <= 0 {
		return []plot.Tick{{Value: min, Label: metrics.FormatNumber(min)}}
	}
	mag := math.Pow(10, math.Floor(math.Log10(span/5)))
	step := 10 * mag
	for _, f := range []float64{1, 2, 2.5, 5} {
		if span/(f*mag) <= 7 {
			step = f * mag
			break
		}
	}
	var ticks []plot.Tick
	first := math.Ceil(min/step*2-1e-9) / 2 // in steps, on a half step
	for i := 0; ; i++ {
		k := first + float64(i)/2
		v := k * step
		if v > max+step*1e-9 {
			break
		}
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		t := plot.Tick{Value: v}
		if math.Abs(k-math.Round(k)) < 1e-9 {
			t.Label = metrics.FormatNumber(v)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// humanTicks labels ticks with thousands separators and no exponents.
type humanTicks struct{ plot.Ticker }

// Ticks implements plot.Ticker.
func (h humanTicks) Ticks(min, max float64) []plot.Tick {
	ts := h.Ticker.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = metrics.FormatNumber(ts[i].Value)
		}
	}
	return ts
}

// stepPlot plots curves of step metrics against the load axis: a line through
// each curve's points sorted by load, a marker on every attempt, and failing
// attempts marked by verdict. It returns nil, nil when no curve has a point.
func stepPlot(steps []result.Step, ax loadAxis, yLabel string, logWhenWide bool, curves []curve) (*plot.Plot, error) {
	type pt struct {
		x, y    float64
		verdict string
	}
	var all [][]pt
	var used []curve
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range curves {
		var pts []pt
		for i, s := range steps {
			v, ok := s.Metrics[c.metric]
			if !ok || !finite(v) || !finite(ax.x[i]) {
				continue
			}
			y := v * c.scale
			pts = append(pts, pt{x: ax.x[i], y: y, verdict: s.Verdict})
			lo, hi = math.Min(lo, y), math.Max(hi, y)
		}
		if len(pts) == 0 {
			continue
		}
		all = append(all, pts)
		used = append(used, c)
	}
	if len(all) == 0 {
		return nil, nil
	}
	p := newPlot(ax.label, yLabel)
	logY := logWhenWide && lo > 0 && hi/lo >= 30
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = humanTicks{plot.LogTicks{Prec: -1}}
		p.Y.Label.Text += ", log scale"
	}
	fails := map[string]plotter.XYs{}
	for i, pts := range all {
		c := used[i]
		sorted := make([]pt, len(pts))
		copy(sorted, pts)
		sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].x < sorted[b].x })
		xys := make(plotter.XYs, len(sorted))
		for j, q := range sorted {
			xys[j] = plotter.XY{X: q.x, Y: q.y}
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", c.metric, err)
		}
		line.Color = c.color
		line.Width = vg.Points(1.6)
		if c.dashed {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		points.Color = c.color
		points.Shape = draw.CircleGlyph{}
		points.Radius = vg.Points(2.2)
		p.Add(line, points)
		p.Legend.Add(c.label, line, points)
		for _, q := range pts {
			if q.verdict != result.VerdictPass {
				fails[q.verdict] = append(fails[q.verdict], plotter.XY{X: q.x, Y: q.y})
			}
		}
	}
	if err := addFailMarkers(p, fails); err != nil {
		return nil, err
	}
	if !logY {
		p.Y.Min = math.Min(p.Y.Min, 0)
	}
	padRange(&p.Y, logY)
	return p, nil
}

// addFailMarkers marks failing attempts by verdict, in a fixed order.
func addFailMarkers(p *plot.Plot, fails map[string]plotter.XYs) error {
	for _, v := range []struct {
		verdict string
		color   color.Color
		shape   draw.GlyphDrawer
	}{
		{result.VerdictTargetFail, colTargetFail, draw.CrossGlyph{}},
		{result.VerdictGeneratorFail, colGenFail, draw.TriangleGlyph{}},
		{result.VerdictError, colError, draw.SquareGlyph{}},
	} {
		xys := fails[v.verdict]
		if len(xys) == 0 {
			continue
		}
		s, err := plotter.NewScatter(xys)
		if err != nil {
			return fmt.Errorf("plot %s markers: %w", v.verdict, err)
		}
		s.Color, s.Shape, s.Radius = v.color, v.shape, vg.Points(5)
		ring, err := plotter.NewScatter(xys)
		if err != nil {
			return fmt.Errorf("plot %s markers: %w", v.verdict, err)
		}
		ring.Color, ring.Shape, ring.Radius = v.color, draw.RingGlyph{}, vg.Points(6.5)
		p.Add(s, ring)
		p.Legend.Add(v.verdict, s, ring)
	}
	return nil
}

// padRange leaves room above the data for the legend.
func padRange(a *plot.Axis, log bool) {
	if a.Max <= a.Min {
		a.Max = a.Min + 1
		return
	}
	if log {
		a.Max *= math.Pow(a.Max/a.Min, 0.2)
		return
	}
	a.Max += (a.Max - a.Min) * 0.35
}

// seriesCurve is one line of a per-second plot.
type seriesCurve struct {
	label  string
	color  color.Color
	dashed bool
	y      func(result.Second) float64
}

// seriesPlot plots a step's per-second series over time; curves that are zero
// throughout (offered rate of a closed-loop engine) are left out.
func seriesPlot(series []result.Second, yLabel string, curves []seriesCurve) (*plot.Plot, error) {
	p := newPlot("time in step (s)", yLabel)
	any := false
	for _, c := range curves {
		xys := make(plotter.XYs, 0, len(series))
		nonzero := false
		for _, s := range series {
			y := c.y(s)
			if !finite(y) {
				continue
			}
			nonzero = nonzero || y != 0
			xys = append(xys, plotter.XY{X: float64(s.T), Y: y})
		}
		if !nonzero && c.label != "requests/s" && c.label != "p99" {
			continue
		}
		if len(xys) == 0 {
			continue
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", c.label, err)
		}
		line.Color = c.color
		line.Width = vg.Points(1.6)
		if c.dashed {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(line)
		p.Legend.Add(c.label, line)
		any = true
	}
	if !any {
		return nil, nil
	}
	p.Y.Min = math.Min(p.Y.Min, 0)
	padRange(&p.Y, false)
	return p, nil
}

// svgOpen matches the root element's opening tag of vgsvg's output.
var svgOpen = regexp.MustCompile(`(?s)<svg\s[^>]*>`)

// renderSVG draws p as an SVG element for inline use in HTML: no XML prolog or
// comment, an id, a <title>, and the viewBox that lets CSS scale it.
func renderSVG(p *plot.Plot, id, title string) (out template.HTML, err error) {
	defer func() {
		// gonum/plot panics on some degenerate data; a report must still
		// render, with the plot replaced by the reason.
		if v := recover(); v != nil {
			err = fmt.Errorf("render plot %s: %v", id, v)
		}
	}()
	c := vgsvg.New(plotWidth, plotHeight)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("render plot %s: %w", id, err)
	}
	s := buf.String()
	loc := svgOpen.FindStringIndex(s)
	if loc == nil {
		return "", fmt.Errorf("render plot %s: no <svg> element in the output of vgsvg", id)
	}
	open := s[loc[0]:loc[1]]
	if !strings.Contains(open, "viewBox=") {
		return "", fmt.Errorf("render plot %s: vgsvg wrote no viewBox, the plot would not scale", id)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="%s" class="plot" role="img" aria-labelledby="%s-title"`, id, id)
	b.WriteString(strings.TrimPrefix(open, "<svg"))
	fmt.Fprintf(&b, "\n<title id=\"%s-title\">%s</title>", id, template.HTMLEscapeString(title))
	b.WriteString(strings.TrimRight(s[loc[1]:], "\n"))
	return template.HTML(b.String()), nil
}
