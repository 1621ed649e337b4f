package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// The workbook (report.xlsx) is the seed's spreadsheet, made from the record:
// a Summary sheet with a row per run (per campaign variant), its static
// parameters beside its capacity, and one sheet per run with the static
// parameters on top and a row per step attempt, coloured by verdict, with
// the dynamic figures and the engineers' notes.

// WorkbookFile is the workbook's file name, in a run directory and in a
// campaign directory.
const WorkbookFile = "report.xlsx"

// SummarySheet is the name of the workbook's first sheet.
const SummarySheet = "Summary"

// Colours of the workbook, the same as report.html's.
const (
	xlPassBG  = "E8F5E9"
	xlPass    = "2E7D32"
	xlTFailBG = "FDECEA"
	xlTFail   = "C62828"
	xlGFailBG = "FFF3E0"
	xlGFail   = "EF6C00"
	xlErrBG   = "F3E5F5"
	xlErr     = "6A1B9A"
	xlMuted   = "616161"
	xlChanged = "FFF176"
	xlHeadBG  = "ECEFF1"
)

// VerdictColors are the fill colours of a verdict's cell in the workbook
// (strong) and of the rest of its row (light): target failure and generator
// failure are told apart at a glance, as in the seed's spreadsheet.
var VerdictColors = map[string][2]string{
	result.VerdictPass:          {xlPass, xlPassBG},
	result.VerdictTargetFail:    {xlTFail, xlTFailBG},
	result.VerdictGeneratorFail: {xlGFail, xlGFailBG},
	result.VerdictError:         {xlErr, xlErrBG},
}

// statusVerdict maps a run's status onto the verdict whose colour it takes.
var statusVerdict = map[string]string{
	result.StatusMaxReached:       result.VerdictPass,
	result.StatusBottleneck:       result.VerdictTargetFail,
	result.StatusGeneratorLimited: result.VerdictGeneratorFail,
	result.StatusError:            result.VerdictError,
}

// xlColumns are the dynamic figures of a run sheet, shown when any attempt
// measured them: durations in milliseconds, ratios as percentages.
var xlColumns = []struct{ metric, label string }{
	{metrics.ThroughputOffered, "offered req/s"},
	{metrics.ThroughputRPS, "achieved req/s"},
	{metrics.LatencyP50, "p50 ms"},
	{metrics.LatencyP99, "p99 ms"},
	{metrics.LatencyMax, "max ms"},
	{metrics.ErrorsRatio, "errors"},
	{metrics.ProbeDelayP99, "probe p99 ms"},
	{metrics.TargetCPU, "target cpu"},
	{metrics.TargetFDRatio, "target fds"},
	{metrics.GeneratorCPU, "generator cpu"},
	{metrics.GeneratorLagP99, "generator lag p99 ms"},
}

// WriteXLSX writes report.xlsx of one run: the Summary sheet (one row) and
// the run's sheet.
func WriteXLSX(w io.Writer, r *Report) error {
	return writeWorkbook(w, "loadramp: "+r.Plan+" "+r.RunID, []workbookRun{{Sheet: "run", R: r}}, r.Start)
}

// WriteCampaignXLSX writes a campaign's report.xlsx: the Summary sheet with
// a row per variant (static parameters x capacity, with ratios to the first
// variant as formulas) and one sheet per variant's run. runs are the
// variants' reports; a variant without one gets a summary row only.
func WriteCampaignXLSX(w io.Writer, c *Campaign, runs []*Report) error {
	byID := map[string]*Report{}
	for _, r := range runs {
		if r != nil {
			byID[r.RunID] = r
		}
	}
	var wr []workbookRun
	var start time.Time
	for _, v := range c.Variants {
		v := v
		r := byID[v.RunID]
		if r != nil && (start.IsZero() || r.Start.Before(start)) {
			start = r.Start
		}
		wr = append(wr, workbookRun{Sheet: sheetName(v), R: r, V: &v})
	}
	return writeWorkbook(w, "loadramp campaign: "+c.Plan+" "+c.ID, wr, start)
}

type workbookRun struct {
	Sheet string
	R     *Report
	// V is the campaign variant, nil for a single run.
	V *Variant
}

// sheetName names a variant's sheet: "v2 eventbus_nofile=4096", within
// the 31 characters a sheet name may have and without the characters it
// may not.
func sheetName(v Variant) string {
	name := fmt.Sprintf("v%d %s", v.Index, v.changedText())
	name = strings.Map(func(r rune) rune {
		if strings.ContainsRune(`:\/?*[]'`, r) {
			return '_'
		}
		return r
	}, name)
	if r := []rune(name); len(r) > 31 {
		name = string(r[:31])
	}
	return name
}

// xl writes cells with a cache of styles.
type xl struct {
	f      *excelize.File
	styles map[xlStyle]int
	err    error
	// widths are the current sheet's column widths; lines the most lines a
	// wrapped cell of a row needs, so the row is made tall enough for it.
	widths []float64
	lines  map[int]int
}

// xlStyle is a cell's look.
type xlStyle struct {
	fill, font   string
	bold, italic bool
	wrap         bool
	numFmt       string
	size         float64
}

func (x *xl) style(s xlStyle) int {
	if id, ok := x.styles[s]; ok {
		return id
	}
	st := &excelize.Style{
		Font:      &excelize.Font{Bold: s.bold, Italic: s.italic, Color: s.font, Size: s.size, Family: "Liberation Sans"},
		Alignment: &excelize.Alignment{Vertical: "top", WrapText: s.wrap},
	}
	if st.Font.Size == 0 {
		st.Font.Size = 10
	}
	if s.fill != "" {
		st.Fill = excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{s.fill}}
		for _, side := range []string{"left", "right", "top", "bottom"} {
			st.Border = append(st.Border, excelize.Border{Type: side, Color: "D0D0D0", Style: 1})
		}
	}
	if s.numFmt != "" {
		f := s.numFmt
		st.CustomNumFmt = &f
	}
	id, err := x.f.NewStyle(st)
	if err != nil && x.err == nil {
		x.err = err
	}
	x.styles[s] = id
	return id
}

// set writes value into sheet at (col, row), both from 1, in style s.
func (x *xl) set(sheet string, col, row int, value any, s xlStyle) {
	cell, err := excelize.CoordinatesToCellName(col, row)
	if err == nil {
		err = x.f.SetCellValue(sheet, cell, value)
	}
	if err == nil {
		err = x.f.SetCellStyle(sheet, cell, cell, x.style(s))
	}
	if err != nil && x.err == nil {
		x.err = err
	}
	if text, ok := value.(string); ok && s.wrap && col <= len(x.widths) {
		n := 0
		for _, para := range strings.Split(text, "\n") {
			n += max(1, (len([]rune(para))+int(x.widths[col-1])-1)/int(x.widths[col-1]))
		}
		x.lines[row] = max(x.lines[row], n)
	}
}

// fitRows makes the rows whose wrapped cells need more than one line tall
// enough to show them (a spreadsheet does not grow a row by itself when it
// opens a file).
func (x *xl) fitRows(sheet string) {
	for row, n := range x.lines {
		if n > 1 {
			if err := x.f.SetRowHeight(sheet, row, 13*float64(min(n, 12))); err != nil && x.err == nil {
				x.err = err
			}
		}
	}
	x.lines = map[int]int{}
}

// formula writes formula into sheet at (col, row) in style s.
func (x *xl) formula(sheet string, col, row int, formula string, s xlStyle) {
	cell, err := excelize.CoordinatesToCellName(col, row)
	if err == nil {
		err = x.f.SetCellFormula(sheet, cell, formula)
	}
	if err == nil {
		err = x.f.SetCellStyle(sheet, cell, cell, x.style(s))
	}
	if err != nil && x.err == nil {
		x.err = err
	}
}

func (x *xl) setWidths(sheet string, widths []float64) {
	x.widths = widths
	for i, wd := range widths {
		col, err := excelize.ColumnNumberToName(i + 1)
		if err == nil {
			err = x.f.SetColWidth(sheet, col, col, wd)
		}
		if err != nil && x.err == nil {
			x.err = err
		}
	}
}

// printable makes a sheet print (and convert to PDF) landscape, one page
// wide, its title row tall enough for the title.
func (x *xl) printable(sheet string) {
	landscape, wide, tall, fit := "landscape", 1, 0, true
	a3 := 8
	err := x.f.SetPageLayout(sheet, &excelize.PageLayoutOptions{Size: &a3, Orientation: &landscape, FitToWidth: &wide, FitToHeight: &tall})
	if err == nil {
		err = x.f.SetSheetProps(sheet, &excelize.SheetPropsOptions{FitToPage: &fit})
	}
	if err == nil {
		err = x.f.SetRowHeight(sheet, 1, 22)
	}
	if err != nil && x.err == nil {
		x.err = err
	}
}

func cellName(col, row int) string {
	s, _ := excelize.CoordinatesToCellName(col, row)
	return s
}

var (
	xlTitle  = xlStyle{bold: true, size: 14}
	xlBold   = xlStyle{bold: true}
	xlHead   = xlStyle{bold: true, fill: xlHeadBG, wrap: true}
	xlPlain  = xlStyle{}
	xlWrap   = xlStyle{wrap: true}
	xlMutedS = xlStyle{italic: true, font: xlMuted}
)

// numFmt is the number format of a metric's cells.
func numFmt(m string) string {
	switch {
	case metrics.IsDuration(m):
		return "#,##0.0"
	case metrics.IsRatio(m):
		return "0.0%"
	}
	return "#,##0"
}

// xlValue is a metric's value as its cell holds it: durations in ms.
func xlValue(m string, v float64) float64 {
	if metrics.IsDuration(m) {
		return v * 1000
	}
	return v
}

// staticValue is a static parameter as a cell: a number when it is one.
func staticValue(s string) any {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	return s
}

func writeWorkbook(w io.Writer, title string, runs []workbookRun, start time.Time) error {
	f := excelize.NewFile()
	defer f.Close()
	x := &xl{f: f, styles: map[xlStyle]int{}, lines: map[int]int{}}
	if err := f.SetSheetName("Sheet1", SummarySheet); err != nil {
		return err
	}
	stamp := start.UTC().Format(time.RFC3339)
	if start.IsZero() {
		stamp = "2000-01-01T00:00:00Z"
	}
	// Fixed properties: the same report gives the same workbook.
	if err := f.SetDocProps(&excelize.DocProperties{Creator: "loadramp", LastModifiedBy: "loadramp", Title: title,
		Created: stamp, Modified: stamp}); err != nil {
		return err
	}
	seen := map[string]bool{SummarySheet: true}
	for i := range runs {
		name := runs[i].Sheet
		for n := 2; seen[name]; n++ {
			name = fmt.Sprintf("%.28s %d", runs[i].Sheet, n)
		}
		seen[name] = true
		runs[i].Sheet = name
	}
	x.summary(title, runs)
	x.fitRows(SummarySheet)
	x.printable(SummarySheet)
	for _, wr := range runs {
		if wr.R == nil {
			continue
		}
		if _, err := f.NewSheet(wr.Sheet); err != nil {
			return err
		}
		x.runSheet(wr)
		x.fitRows(wr.Sheet)
		x.printable(wr.Sheet)
	}
	if x.err != nil {
		return fmt.Errorf("build %s: %w", WorkbookFile, x.err)
	}
	f.SetActiveSheet(0)
	if err := f.Write(w); err != nil {
		return fmt.Errorf("write %s: %w", WorkbookFile, err)
	}
	return nil
}

// summary writes the Summary sheet: a row per run, its static parameters
// (a changed one highlighted) and its capacity, with the capacity relative
// to the first row's as a formula.
func (x *xl) summary(title string, runs []workbookRun) {
	const sh = SummarySheet
	x.set(sh, 1, 1, title, xlTitle)
	x.set(sh, 1, 2, "One row per run: its static parameters (a changed one is highlighted), how it ended and the capacity it reached. \"vs first\" is a formula: this row's capacity over the first row's.", xlMutedS)
	statics := map[string]bool{}
	var params []string
	seenParam := map[string]bool{}
	priced := false
	for _, wr := range runs {
		for k := range flatten(runStatic(wr)) {
			statics[k] = true
		}
		if wr.R != nil {
			for _, p := range wr.R.Parameters {
				if !seenParam[p] {
					seenParam[p] = true
					params = append(params, p)
				}
			}
		}
		if wr.V != nil && wr.V.PricePerHour > 0 {
			priced = true
		}
	}
	staticKeys := sortedKeys(statics)
	head := []string{"run", "sheet"}
	for _, k := range staticKeys {
		head = append(head, "static."+k)
	}
	head = append(head, "status")
	for _, p := range params {
		head = append(head, "capacity "+p)
	}
	head = append(head, "capacity req/s", "p99 ms at capacity", "vs first")
	colRPS := len(head) - 2
	colPrice := 0
	if priced {
		head = append(head, "price per hour", "req/s per $-hour")
		colPrice = len(head) - 1
	}
	head = append(head, "bottleneck", "notes")
	const hr = 4
	widths := []float64{30, 20}
	for range staticKeys {
		widths = append(widths, 14)
	}
	widths = append(widths, 16)
	for range params {
		widths = append(widths, 12)
	}
	widths = append(widths, 12, 12, 10)
	if priced {
		widths = append(widths, 10, 12)
	}
	widths = append(widths, 48, 40)
	x.setWidths(sh, widths)
	for i, h := range head {
		x.set(sh, i+1, hr, h, xlHead)
	}

	for i, wr := range runs {
		row := hr + 1 + i
		col := 1
		id, status := "", ""
		var capacity map[string]float64
		var rps, p99 float64
		cause := ""
		if wr.R != nil {
			id, status, cause = wr.R.RunID, wr.R.Status, runCause(wr.R)
			if c := wr.R.Capacity; c != nil {
				capacity, rps, p99 = c.Parameters, c.Metrics[metrics.ThroughputRPS], c.Metrics[metrics.LatencyP99]
			}
		}
		changed := map[string]bool{}
		if v := wr.V; v != nil {
			id, status, cause = v.RunID, v.Status, v.Bottleneck
			capacity, rps, p99 = v.Capacity, v.Throughput, v.LatencyP99
			for _, k := range v.Changed {
				changed[k] = true
			}
		}
		if id == "" {
			id = wr.Sheet
		}
		x.set(sh, col, row, id, xlPlain)
		col++
		if wr.R != nil {
			x.set(sh, col, row, wr.Sheet, xlStyle{font: "0D47A1"})
			_ = x.f.SetCellHyperLink(sh, cellName(col, row), fmt.Sprintf("'%s'!A1", wr.Sheet), "Location")
		}
		col++
		static := flatten(runStatic(wr))
		for _, k := range staticKeys {
			st := xlPlain
			top, _, _ := strings.Cut(k, ".")
			if changed[k] || changed[top] {
				st = xlStyle{fill: xlChanged, bold: true}
			}
			if v, ok := static[k]; ok {
				x.set(sh, col, row, staticValue(v), st)
			}
			col++
		}
		fill := VerdictColors[statusVerdict[status]]
		x.set(sh, col, row, status, xlStyle{fill: fill[0], font: "FFFFFF", bold: true})
		col++
		for _, p := range params {
			if v, ok := capacity[p]; ok {
				x.set(sh, col, row, v, xlStyle{numFmt: "#,##0.##"})
			}
			col++
		}
		if capacity != nil {
			x.set(sh, col, row, rps, xlStyle{numFmt: "#,##0"})
			x.set(sh, col+1, row, p99*1000, xlStyle{numFmt: "#,##0.0"})
		}
		this := cellName(colRPS, row)
		colName, _ := excelize.ColumnNumberToName(colRPS)
		abs := fmt.Sprintf("$%s$%d", colName, hr+1)
		x.formula(sh, col+2, row, fmt.Sprintf(`IF(AND(ISNUMBER(%s),%s>0,ISNUMBER(%s)),%s/%s,"")`, abs, abs, this, this, abs), xlStyle{numFmt: "0%"})
		col += 3
		if priced {
			if wr.V != nil && wr.V.PricePerHour > 0 {
				x.set(sh, col, row, wr.V.PricePerHour, xlStyle{numFmt: "0.00"})
			}
			price := cellName(colPrice-1, row)
			x.formula(sh, col+1, row, fmt.Sprintf(`IF(AND(ISNUMBER(%s),%s>0),%s/%s,"")`, price, price, this, price), xlStyle{numFmt: "#,##0"})
			col += 2
		}
		x.set(sh, col, row, cause, xlWrap)
		col++
		if wr.R != nil {
			var texts []string
			for _, n := range wr.R.NotesOf(nil) {
				texts = append(texts, n.Text)
			}
			x.set(sh, col, row, strings.Join(texts, "\n"), xlStyle{wrap: true, italic: true})
		}
	}
	if err := x.f.SetPanes(sh, &excelize.Panes{Freeze: true, YSplit: hr, XSplit: 1, TopLeftCell: cellName(2, hr+1), ActivePane: "bottomRight"}); err != nil && x.err == nil {
		x.err = err
	}
}

// runStatic is a run's static parameters: the report's, else the variant's.
func runStatic(wr workbookRun) map[string]any {
	if wr.R != nil {
		return wr.R.Static
	}
	if wr.V != nil {
		return wr.V.Static
	}
	return nil
}

// runSheet writes one run: a header with the summary, static parameters,
// run facts, the run's notes and its findings; then a row per step attempt.
func (x *xl) runSheet(wr workbookRun) {
	sh, r := wr.Sheet, wr.R
	x.widths = nil
	row := 1
	x.set(sh, 1, row, "loadramp: "+r.Plan+"  "+r.RunID, xlTitle)
	row++
	fill := VerdictColors[statusVerdict[r.Status]]
	status := r.Status
	if r.Partial {
		status += " (partial)"
	}
	x.set(sh, 1, row, status, xlStyle{fill: fill[0], font: "FFFFFF", bold: true})
	x.set(sh, 2, row, r.Summary, xlBold)
	row++
	x.set(sh, 1, row, "Colours: green pass · red target-fail (the system under test failed) · orange generator-fail (the load generator failed, not the target) · purple error · yellow: the parameter changed from the step before", xlMutedS)
	row += 2

	x.set(sh, 1, row, "Static parameters", xlBold)
	row++
	static := flatten(r.Static)
	for _, k := range sortedKeys(static) {
		x.set(sh, 1, row, k, xlPlain)
		x.set(sh, 2, row, staticValue(static[k]), xlStyle{numFmt: "General"})
		row++
	}
	if len(static) == 0 {
		x.set(sh, 1, row, "none recorded", xlMutedS)
		row++
	}
	facts := [][2]string{{"plan", r.Plan}, {"run", r.RunID}}
	if !r.Start.IsZero() {
		facts = append(facts, [2]string{"start", r.Start.UTC().Format(time.RFC3339)})
	}
	if r.End != nil {
		facts = append(facts, [2]string{"end", r.End.UTC().Format(time.RFC3339)})
	}
	if r.Host.Hostname != "" {
		facts = append(facts, [2]string{"host", fmt.Sprintf("%s, %d CPUs", r.Host.Hostname, r.Host.CPUs)})
	}
	if len(r.Gates) > 0 {
		facts = append(facts, [2]string{"gates", strings.Join(r.Gates, " · ")})
	}
	for _, n := range r.NotesOf(nil) {
		facts = append(facts, [2]string{"note", n.Text})
	}
	for _, c := range r.Findings {
		facts = append(facts, [2]string{"finding", findingText(c)})
	}
	for _, fct := range facts {
		st := xlPlain
		if fct[0] == "note" {
			st = xlStyle{italic: true}
		}
		x.set(sh, 1, row, fct[0], xlBold)
		x.set(sh, 2, row, fct[1], st)
		row++
	}
	row++

	// The step table.
	var cols []struct{ metric, label string }
	for _, c := range xlColumns {
		if anyMetric(r.Steps, c.metric) {
			cols = append(cols, c)
		}
	}
	params := paramColumns(r)
	head := []string{"step", "kind"}
	head = append(head, params...)
	head = append(head, "generators")
	for _, c := range cols {
		head = append(head, c.label)
	}
	head = append(head, "verdict", "why", "findings", "notes")
	hr := row
	widths := []float64{24, 9}
	for range params {
		widths = append(widths, 11)
	}
	widths = append(widths, 10)
	for range cols {
		widths = append(widths, 11)
	}
	widths = append(widths, 14, 56, 24, 40)
	x.setWidths(sh, widths)
	for i, h := range head {
		x.set(sh, i+1, hr, h, xlHead)
	}
	for i := range r.Steps {
		s := &r.Steps[i]
		row++
		vc := VerdictColors[s.Verdict]
		bg := xlStyle{fill: vc[1]}
		col := 1
		x.set(sh, col, row, record.AddrOf(*s).String(), xlStyle{fill: vc[1], bold: true})
		col++
		x.set(sh, col, row, s.Kind, bg)
		col++
		for _, p := range params {
			st := xlStyle{fill: vc[1], numFmt: "#,##0.##"}
			if p == s.Changed {
				st = xlStyle{fill: xlChanged, bold: true, numFmt: "#,##0.##"}
			}
			if v, ok := s.Parameters[p]; ok {
				x.set(sh, col, row, v, st)
			} else {
				x.set(sh, col, row, "", st)
			}
			col++
		}
		if s.Generators > 0 {
			x.set(sh, col, row, s.Generators, bg)
		} else {
			x.set(sh, col, row, "", bg)
		}
		col++
		for _, c := range cols {
			st := xlStyle{fill: vc[1], numFmt: numFmt(c.metric)}
			if v, ok := s.Metrics[c.metric]; ok && !isNaNOrInf(v) {
				x.set(sh, col, row, xlValue(c.metric, v), st)
			} else {
				x.set(sh, col, row, "", st)
			}
			col++
		}
		x.set(sh, col, row, s.Verdict, xlStyle{fill: vc[0], font: "FFFFFF", bold: true})
		col++
		w := why(*s)
		if w == "" && s.Error != "" {
			w = s.Error
		}
		x.set(sh, col, row, w, xlStyle{fill: vc[1], wrap: true})
		col++
		var rules []string
		for _, f := range s.Findings {
			rules = append(rules, f.Rule)
		}
		x.set(sh, col, row, strings.Join(rules, ", "), xlStyle{fill: vc[1], wrap: true})
		col++
		var texts []string
		for _, n := range r.NotesOf(s) {
			texts = append(texts, n.Text)
		}
		x.set(sh, col, row, strings.Join(texts, "\n"), xlStyle{fill: vc[1], wrap: true, italic: true})
	}
	if len(r.Steps) > 0 {
		last, _ := excelize.ColumnNumberToName(len(head))
		if err := x.f.AutoFilter(sh, fmt.Sprintf("A%d:%s%d", hr, last, row), nil); err != nil && x.err == nil {
			x.err = err
		}
	}
	if err := x.f.SetPanes(sh, &excelize.Panes{Freeze: true, YSplit: hr, TopLeftCell: cellName(1, hr+1), ActivePane: "bottomLeft"}); err != nil && x.err == nil {
		x.err = err
	}
}

// findingText is a cause on one line: "fd-process: target, host local,
// process eventbus: open files 1024 of 1024; seen on steps 6.1, 6.2".
func findingText(c Cause) string {
	s := c.Rule + ": " + causeLine(c)
	if c.Setting != "" {
		s += "; change " + c.Setting
	}
	return s
}

func isNaNOrInf(v float64) bool { return v != v || v > 1e308 || v < -1e308 }
