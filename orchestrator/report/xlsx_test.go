package report

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// sheetTable finds the header row of a sheet's table (the row whose first
// cell is first) and returns the header's column numbers by name and the
// rows below it.
func sheetTable(t *testing.T, f *excelize.File, sheet, first string) (map[string]int, [][]string, int) {
	t.Helper()
	rows, err := f.GetRows(sheet)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if len(r) > 0 && r[0] == first {
			col := map[string]int{}
			for j, h := range r {
				col[h] = j + 1
			}
			return col, rows[i+1:], i + 1
		}
	}
	t.Fatalf("sheet %s has no table headed %q", sheet, first)
	return nil, nil, 0
}

// fill is the fill colour of a cell ("" for none).
func fill(t *testing.T, f *excelize.File, sheet string, col, row int) string {
	t.Helper()
	id, err := f.GetCellStyle(sheet, cellName(col, row))
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.GetStyle(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Fill.Color) == 0 {
		return ""
	}
	return strings.TrimPrefix(strings.ToUpper(st.Fill.Color[0]), "#")
}

func openWorkbook(t *testing.T, write func(*bytes.Buffer) error) *excelize.File {
	t.Helper()
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatalf("the workbook does not open: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestWorkbook opens a run's report.xlsx with the library and checks the
// static parameters on top, a row per attempt coloured by verdict (target
// and generator failures apart), the notes column and the summary's formula.
func TestWorkbook(t *testing.T) {
	run, steps := fullFixture()
	notes := []record.Note{
		{Time: t0, Step: "run", Text: "kernel 6.1 with BBR"},
		{Time: t0, Step: "6.2", Text: "dmesg: possible SYN flooding"},
		{Time: t0, Step: "6.r1", Text: "passes at 1500"},
	}
	r := Build(run, steps, WithNotes(notes))
	f := openWorkbook(t, func(b *bytes.Buffer) error { return WriteXLSX(b, r) })
	if got := f.GetSheetList(); strings.Join(got, ",") != "Summary,run" {
		t.Fatalf("sheets = %v, want Summary,run", got)
	}

	// The header: static parameters, then the run's facts and notes.
	rows, _ := f.GetRows("run")
	header := map[string]string{}
	for _, row := range rows[:30] {
		if len(row) >= 2 {
			header[row[0]] += row[1]
		}
	}
	for k, want := range map[string]string{"eventbus_nofile": "1024", "kernel.somaxconn": "4096", "note": "kernel 6.1 with BBR", "plan": "local-eventbus"} {
		if header[k] != want {
			t.Errorf("header %s = %q, want %q", k, header[k], want)
		}
	}
	if !strings.Contains(header["finding"], "fd-process: target, host local, process eventbus: open files 1024 of 1024; seen on steps 6.1, 6.2") {
		t.Errorf("header findings = %q", header["finding"])
	}

	col, body, hr := sheetTable(t, f, "run", "step")
	if len(body) != len(steps) {
		t.Fatalf("%d step rows, want %d", len(body), len(steps))
	}
	for _, h := range []string{"kind", "rate", "connections", "p99 ms", "errors", "verdict", "why", "findings", "notes"} {
		if col[h] == 0 {
			t.Errorf("step table lacks column %q", h)
		}
	}
	at := map[string]int{} // step address -> sheet row
	for i, row := range body {
		at[row[0]] = hr + 1 + i
	}
	cell := func(ref, h string) string {
		v, _ := f.GetCellValue("run", cellName(col[h], at[ref]))
		return v
	}
	if v := cell("6.1", "p99 ms"); v != "812.3" {
		t.Errorf("6.1 p99 ms = %q, want 812.3", v)
	}
	if v, _ := f.GetCellValue("run", cellName(col["p99 ms"], at["6.1"]), excelize.Options{RawCellValue: true}); v != "812.3" {
		t.Errorf("6.1 p99 raw = %q: the figure must be a number, not text", v)
	}
	if v := cell("6.2", "notes"); v != "dmesg: possible SYN flooding" {
		t.Errorf("6.2 notes = %q", v)
	}
	if v := cell("6.r1", "notes"); v != "passes at 1500" {
		t.Errorf("6.r1 notes = %q", v)
	}
	if v := cell("6.1", "notes"); v != "" {
		t.Errorf("6.1 notes = %q, want none (6.r1's note is on the refine attempt)", v)
	}
	if v := cell("6.1", "findings"); v != "fd-process, cpu-saturation" {
		t.Errorf("6.1 findings = %q", v)
	}
	for ref, want := range map[string][2]string{
		"1.1": {xlPass, xlPassBG}, "5.1": {xlGFail, xlGFailBG}, "6.1": {xlTFail, xlTFailBG}, "6.r2": {xlTFail, xlTFailBG},
	} {
		if got := fill(t, f, "run", col["verdict"], at[ref]); got != want[0] {
			t.Errorf("%s verdict cell fill %s, want %s", ref, got, want[0])
		}
		if got := fill(t, f, "run", col["p99 ms"], at[ref]); got != want[1] {
			t.Errorf("%s p99 cell fill %s, want %s", ref, got, want[1])
		}
	}
	if fill(t, f, "run", col["verdict"], at["5.1"]) == fill(t, f, "run", col["verdict"], at["6.1"]) {
		t.Error("generator-fail and target-fail share a colour")
	}
	if got := fill(t, f, "run", col["rate"], at["6.1"]); got != xlChanged {
		t.Errorf("6.1 rate (the changed parameter) fill %s, want %s", got, xlChanged)
	}

	// Summary: the static parameters beside the capacity, and a formula.
	scol, srows, shr := sheetTable(t, f, SummarySheet, "run")
	if len(srows) != 1 || srows[0][0] != run.ID {
		t.Fatalf("summary rows = %v", srows)
	}
	if v, _ := f.GetCellValue(SummarySheet, cellName(scol["static.eventbus_nofile"], shr+1)); v != "1024" {
		t.Errorf("summary static.eventbus_nofile = %q", v)
	}
	if v, _ := f.GetCellValue(SummarySheet, cellName(scol["capacity rate"], shr+1)); v != "1,500" {
		t.Errorf("summary capacity rate = %q, want 1,500", v)
	}
	if got := fill(t, f, SummarySheet, scol["status"], shr+1); got != xlTFail {
		t.Errorf("status bottleneck fill %s, want %s", got, xlTFail)
	}
	if v, _ := f.GetCellValue(SummarySheet, cellName(scol["notes"], shr+1)); v != "kernel 6.1 with BBR" {
		t.Errorf("summary notes = %q", v)
	}
	vs := cellName(scol["vs first"], shr+1)
	if fm, _ := f.GetCellFormula(SummarySheet, vs); !strings.Contains(fm, "/") {
		t.Errorf("vs first formula = %q", fm)
	}
	if v, err := f.CalcCellValue(SummarySheet, vs, excelize.Options{RawCellValue: true}); err != nil || v != "1" {
		t.Errorf("vs first of the only run = %q, %v; want 1", v, err)
	}

	// The same report gives the same workbook.
	var a, b bytes.Buffer
	if err := WriteXLSX(&a, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteXLSX(&b, Build(run, steps, WithNotes(notes))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("report.xlsx is not deterministic")
	}
}

// campaignFixture is a campaign of three variants: the fixture run, one
// that doubled the bus's open-file limit and reached more, and one that
// ended generator-limited.
func campaignFixture() (*Campaign, []*Report) {
	c := &Campaign{Schema: CampaignSchema, ID: "20261127T063000Z-local-eventbus-campaign", Plan: "local-eventbus"}
	var reps []*Report
	for i, nofile := range []float64{1024, 2048, 4096} {
		run, steps := fixtureRun()
		run.ID = "v" + strconv.Itoa(i+1) + "-eventbus_nofile-" + strconv.Itoa(int(nofile))
		run.Static["eventbus_nofile"] = nofile
		run.Start = run.Start.Add(time.Duration(i) * time.Hour)
		for j := range steps {
			for k, v := range steps[j].Metrics {
				if k == "throughput.rps" {
					steps[j].Metrics[k] = v * float64(i+1)
				}
			}
		}
		if i == 2 {
			run.Status = result.StatusGeneratorLimited
			steps = steps[:5]
		}
		r := Build(run, steps, WithNotes([]record.Note{{Time: run.Start, Step: "run", Text: "variant " + strconv.Itoa(i+1)}}))
		reps = append(reps, r)
		changed := []string{"eventbus_nofile"}
		c.Variants = append(c.Variants, VariantOf(i+1, r, changed, r.Static, 0.17*float64(i+1)))
	}
	return c, reps
}

func TestCampaignWorkbook(t *testing.T) {
	c, reps := campaignFixture()
	f := openWorkbook(t, func(b *bytes.Buffer) error { return WriteCampaignXLSX(b, c, reps) })
	want := []string{"Summary", "v1 eventbus_nofile=1024", "v2 eventbus_nofile=2048", "v3 eventbus_nofile=4096"}
	if got := f.GetSheetList(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sheets = %v, want %v", got, want)
	}
	col, rows, hr := sheetTable(t, f, SummarySheet, "run")
	if len(rows) != 3 {
		t.Fatalf("summary has %d rows, want 3", len(rows))
	}
	for i, v := range []string{"1024", "2048", "4096"} {
		if got, _ := f.GetCellValue(SummarySheet, cellName(col["static.eventbus_nofile"], hr+1+i)); got != v {
			t.Errorf("variant %d eventbus_nofile = %q, want %s", i+1, got, v)
		}
		if got := fill(t, f, SummarySheet, col["static.eventbus_nofile"], hr+1+i); got != xlChanged {
			t.Errorf("variant %d: the changed static parameter is not highlighted (%s)", i+1, got)
		}
	}
	if got := fill(t, f, SummarySheet, col["status"], hr+3); got != xlGFail {
		t.Errorf("generator-limited variant's status fill %s, want %s", got, xlGFail)
	}
	// Formulas: capacity over the first variant's, and per dollar-hour.
	for i, want := range []string{"1", "2", "2.0002"} {
		cell := cellName(col["vs first"], hr+1+i)
		fm, _ := f.GetCellFormula(SummarySheet, cell)
		got, err := f.CalcCellValue(SummarySheet, cell, excelize.Options{RawCellValue: true})
		if err != nil || !strings.HasPrefix(got, want) {
			t.Errorf("variant %d vs first = %q (%s), %v; want %s", i+1, got, fm, err, want)
		}
	}
	if fm, _ := f.GetCellFormula(SummarySheet, cellName(col["req/s per $-hour"], hr+1)); !strings.Contains(fm, "/") {
		t.Errorf("per dollar-hour formula = %q", fm)
	}
	// Each variant's sheet links from the summary.
	if ok, link, _ := f.GetCellHyperLink(SummarySheet, cellName(col["sheet"], hr+2)); !ok || link != "'v2 eventbus_nofile=2048'!A1" {
		t.Errorf("variant 2 link = %v %q", ok, link)
	}
	if _, body, _ := sheetTable(t, f, "v3 eventbus_nofile=4096", "step"); len(body) != 5 {
		t.Errorf("variant 3 sheet has %d step rows, want 5", len(body))
	}
}

// TestWorkbookRendersInLibreOffice converts the campaign workbook to PDF and
// a PNG with LibreOffice and poppler, when they are installed (they are not
// test dependencies), so a person can look at it: set LOADRAMP_XLSX_PNG to
// keep the picture of the first run sheet.
func TestWorkbookRendersInLibreOffice(t *testing.T) {
	soffice, err := exec.LookPath("soffice")
	if err != nil {
		t.Skip("soffice not installed (apt-get install libreoffice-calc-nogui poppler-utils to render the workbook)")
	}
	pdftoppm, err := exec.LookPath("pdftoppm")
	if err != nil {
		t.Skip("pdftoppm not installed (poppler-utils)")
	}
	dir := t.TempDir()
	c, reps := campaignFixture()
	for _, r := range reps[:1] {
		r.Notes = append(r.Notes, record.Note{Time: t0, Step: "6.2", Text: "dmesg: possible SYN flooding"})
	}
	var buf bytes.Buffer
	if err := WriteCampaignXLSX(&buf, c, reps); err != nil {
		t.Fatal(err)
	}
	xlsx := filepath.Join(dir, "report.xlsx")
	if err := os.WriteFile(xlsx, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(soffice, "--headless", "-env:UserInstallation=file://"+filepath.Join(dir, "profile"), "--convert-to", "pdf", "--outdir", dir, xlsx)
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("soffice: %v\n%s", err, out)
	}
	if out, err := exec.Command(pdftoppm, "-png", "-r", "80", filepath.Join(dir, "report.pdf"), filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "page-*.png"))
	if len(pages) < 4 {
		t.Fatalf("%d pages rendered, want at least one per sheet (4)", len(pages))
	}
	if out := os.Getenv("LOADRAMP_XLSX_PNG"); out != "" {
		for i, p := range pages {
			data, _ := os.ReadFile(p)
			if err := os.WriteFile(strings.TrimSuffix(out, ".png")+"-"+strconv.Itoa(i+1)+".png", data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("rendered %d pages", len(pages))
}

// TestNoteReachesTheCampaignWorkbook: a note added to a variant's run
// directory after the campaign shows in the campaign's workbook once the
// variant's reports are refreshed (what `loadramp note` does).
func TestNoteReachesTheCampaignWorkbook(t *testing.T) {
	c, reps := campaignFixture()
	dir := t.TempDir()
	for _, r := range reps {
		run, steps := fixtureRun()
		run.ID, run.Static = r.RunID, r.Static
		d, err := record.Create(filepath.Join(dir, r.RunID), run, []byte("version: 1\n"))
		if err != nil {
			t.Fatal(err)
		}
		for i := range steps {
			if err := d.AppendStep(&steps[i]); err != nil {
				t.Fatal(err)
			}
		}
		d.Close()
		if _, err := WriteAll(filepath.Join(dir, r.RunID), r, []string{"json", "xlsx"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := WriteCampaign(dir, c, reps...); err != nil {
		t.Fatal(err)
	}
	variant := filepath.Join(dir, reps[1].RunID)
	if _, err := record.Annotate(variant, "6.2", "the bus logged EMFILE", t0); err != nil {
		t.Fatal(err)
	}
	written, err := Refresh(variant)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 6 { // the variant's json and xlsx, the campaign's four
		t.Errorf("refreshed %v", written)
	}
	for _, path := range []string{filepath.Join(variant, WorkbookFile), filepath.Join(dir, WorkbookFile)} {
		f, err := excelize.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, sh := range f.GetSheetList() {
			rows, _ := f.GetRows(sh)
			for _, row := range rows {
				for _, v := range row {
					found = found || v == "the bus logged EMFILE"
				}
			}
		}
		f.Close()
		if !found {
			t.Errorf("%s lacks the note", path)
		}
	}
}
