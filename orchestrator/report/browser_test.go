package report

import (
	"bytes"
	"context"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/record"
)

// chromiumPath is Debian's chromium, installed by `make test`.
const chromiumPath = "/usr/bin/chromium"

// chromium runs headless chromium on a file with extra arguments, offline:
// a fresh profile, no background networking, bounded in time.
func chromium(ctx context.Context, t *testing.T, page string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	argv := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
	}, args...)
	argv = append(argv, "file://"+page)
	cmd := exec.CommandContext(ctx, chromiumPath, argv...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

var tags = regexp.MustCompile(`<[^>]*>`)

// elementText returns the text between the first open and the close after it,
// without tags and with entities decoded ("" when open is absent).
func elementText(dom, open, close string) string {
	i := strings.Index(dom, open)
	if i < 0 {
		return ""
	}
	rest := dom[i+len(open):]
	if j := strings.Index(rest, close); j >= 0 {
		rest = rest[:j]
	}
	return html.UnescapeString(tags.ReplaceAllString(rest, ""))
}

// TestHTMLInBrowser renders report.html of the full fixture in a real browser:
// the dumped DOM must hold the summary and every plot, and the screenshot must
// show something.
func TestHTMLInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("skipping the browser test: %s not found (`make test` installs Debian's chromium): %v", chromiumPath, err)
	}
	dir := t.TempDir()
	run, steps := fullFixture()
	r := Build(run, steps, WithNotes([]record.Note{
		{Time: t0, Step: "run", Text: "kernel 6.1, BBR; the bus on 2 CPUs"},
		{Time: t0, Step: "6.2", Text: "dmesg: too many open files in the bus"},
	}))
	paths, err := WriteAll(dir, r, []string{FormatHTML})
	if err != nil || len(paths) != 1 {
		t.Fatalf("WriteAll html = %v, %v", paths, err)
	}
	page := paths[0]

	dom := string(chromium(context.Background(), t, page, "--dump-dom"))
	// The DOM is what the browser parsed: compare the text of the summary
	// paragraph, tags stripped and entities decoded, with the report's.
	if got := elementText(dom, `<p class="summary" id="summary">`, "</p>"); got != r.Summary {
		t.Errorf("summary in the dumped DOM = %q, want %q", got, r.Summary)
	}
	for _, id := range []string{PlotLatency, PlotThroughput, PlotErrors, PlotProbe, PlotResources, PlotSeriesRPS, PlotSeriesP99} {
		if !strings.Contains(dom, `<svg id="`+id+`"`) || !strings.Contains(dom, `<title id="`+id+`-title">`) {
			t.Errorf("dumped DOM lacks plot %s", id)
		}
	}
	if !strings.Contains(dom, `<tr class="v-generator-fail"`) || !strings.Contains(dom, `class="n changed"`) {
		t.Error("dumped DOM lacks the colour-coded step table")
	}
	// One card per distinct cause (rule, host, process), however many
	// attempts showed it, each listing the attempts it was seen on.
	distinct := map[string]int{}
	for _, s := range r.Steps {
		for _, f := range s.Findings {
			distinct[f.Rule+"|"+f.Host+"|"+f.Process]++
		}
	}
	cards := regexp.MustCompile(`<div class="finding[^"]*">`).FindAllString(dom, -1)
	if len(cards) != len(distinct) || len(distinct) != 2 {
		t.Errorf("%d finding cards for %d distinct causes (%v), want one each", len(cards), len(distinct), distinct)
	}
	if n := strings.Count(dom, "<dt>seen on steps</dt>"); n != len(distinct) {
		t.Errorf("%d cards list the steps they were seen on, want %d", n, len(distinct))
	}
	for _, ref := range []string{"4.1", "5.1", "5.2", "6.1", "6.2"} {
		if !strings.Contains(dom, `">`+ref+`</span>`) {
			t.Errorf("no card lists step %s", ref)
		}
	}

	png := filepath.Join(dir, "report.png")
	chromium(context.Background(), t, page, "--screenshot="+png, "--window-size=1280,2400", "--hide-scrollbars")
	data, err := os.ReadFile(png)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG")
	}
	// A blank 1280x2400 page compresses to a few kB; text, tables and plots
	// take far more.
	if len(data) < 100_000 {
		t.Errorf("screenshot is %d bytes: the page looks empty", len(data))
	}
	if out := os.Getenv("LOADRAMP_REPORT_PNG"); out != "" {
		if err := os.WriteFile(out, data, 0o644); err != nil {
			t.Errorf("copy screenshot: %v", err)
		}
	}
	t.Logf("screenshot: %d bytes", len(data))
}
