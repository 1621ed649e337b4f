package report

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/loadramp/loadramp/orchestrator/result"
)

// codeSpan is a one-backtick Markdown code span, in which HTML is shown as
// text.
var codeSpan = regexp.MustCompile("`[^`\n]*`")

// rawHTML starts what a Markdown renderer passes through as HTML: a tag, a
// comment, a declaration or a processing instruction. (A character reference
// is shown as its character, never parsed again as HTML.)
var rawHTML = regexp.MustCompile(`<[A-Za-z/!?]`)

func TestMarkdownEscapesHTML(t *testing.T) {
	run, steps := fixtureRun()
	const evil = `<script>alert(1)</script><img src=x onerror="fetch('//e.vil')">&#60;b&#62;`
	run.Static["banner"] = evil
	run.Static[evil] = "key"
	last := &steps[len(steps)-1]
	last.FailedGates[0].Explain = "latency " + evil
	for i := range steps {
		for j := range steps[i].Findings {
			f := &steps[i].Findings[j]
			f.Evidence = []string{"GET /" + evil, "a `backtick` " + evil + "\nsecond line"}
			f.Observed = evil
			f.Fix = "do " + evil
			f.Setting = "nofile` " + evil
			f.Process = evil
		}
	}
	rep := Build(run, steps)
	rep.Summary += " " + evil
	rep.Policy = &result.Policy{Messages: []string{evil}}
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf, rep); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for i, line := range strings.Split(md, "\n") {
		outside := codeSpan.ReplaceAllString(line, "")
		if m := rawHTML.FindString(outside); m != "" {
			t.Errorf("line %d passes HTML (%q) outside a code span: %s", i+1, m, line)
		}
		if strings.Count(line, "`")%2 != 0 {
			t.Errorf("line %d leaves a code span open: %s", i+1, line)
		}
	}
	// Escaped, not dropped: the reader still sees what the log said.
	for _, want := range []string{"&lt;script>alert(1)&lt;/script>", "`GET /" + evil + "`", "`a 'backtick' " + evil + " second line`"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
}

func TestMarkdownListsWhatWasNotMeasured(t *testing.T) {
	run, steps := fixtureRun()
	steps[1].NotMeasured = []string{"prom.queue not measured: no data (max(q) from 10:00:05 to 10:00:10)", "http://h:9100/metrics was not read during the hold: <garbage>"}
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf, Build(run, steps)); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"## Not measured\n\n",
		"- step 2 attempt 1: prom.queue not measured: no data (max(q) from 10:00:05 to 10:00:10)\n",
		"- step 2 attempt 1: http://h:9100/metrics was not read during the hold: &lt;garbage>\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
}

// The report lists the checks every step was judged on, the defaults marked,
// and says which default sets the plan turned off.
func TestReportListsChecks(t *testing.T) {
	run, steps := fixtureRun()
	run.Checks = &result.Checks{
		Gates: []result.Check{{Expr: "latency.p99 < 100ms"}, {Expr: "connections.held.ratio > 0.9", Default: true, Param: "connections"}},
		Off:   []string{"generator_health"},
	}
	r := Build(run, steps)
	var md, html strings.Builder
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"- gates: latency.p99 &lt; 100ms · connections.held.ratio > 0.9 (default)",
		"- turned off: the default generator health checks, by the plan (default_checks.generator_health: false)",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if !strings.Contains(html.String(), "connections.held.ratio &gt; 0.9 (default)") || !strings.Contains(html.String(), "default_checks.generator_health: false") {
		t.Errorf("report.html does not list the checks")
	}
}
