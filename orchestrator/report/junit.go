package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/result"
)

// JUnit XML, as CI systems read it (the de facto Ant/Surefire schema).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Hostname   string          `xml:"hostname,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitProblem `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

type junitProblem struct {
	Message string `xml:"message,attr,omitempty"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",cdata"`
}

// WriteJUnit writes junit.xml: one testsuite for the run and one testcase per
// step attempt, named like "step 3 attempt 1: rate=1000 connections=8".
//
// A target-fail attempt is a <failure> listing its failed gates and findings;
// an error attempt is an <error>. A generator-fail attempt is <skipped>: it
// says nothing about the target (the load could not be generated, and the
// step is rerun, on the same generators or after scaling, or the run stops
// as generator-limited), so it
// is neither a pass nor a failure of the system under test.
func WriteJUnit(w io.Writer, r *Report) error {
	suite := junitSuite{
		Name:      "loadramp: " + r.Plan,
		Tests:     len(r.Steps),
		Time:      "0.000",
		Hostname:  r.Host.Hostname,
		Cases:     make([]junitCase, 0, len(r.Steps)),
		Timestamp: "",
	}
	if !r.Start.IsZero() {
		suite.Timestamp = r.Start.UTC().Format("2006-01-02T15:04:05")
	}
	props := []junitProperty{
		{Name: "run_id", Value: r.RunID},
		{Name: "status", Value: r.Status},
		{Name: "summary", Value: r.Summary},
	}
	if r.Partial {
		props = append(props, junitProperty{Name: "partial", Value: "true"})
	}
	static := flatten(r.Static)
	for _, k := range sortedKeys(static) {
		props = append(props, junitProperty{Name: "static." + k, Value: static[k]})
	}
	for _, n := range r.NotesOf(nil) {
		props = append(props, junitProperty{Name: "note", Value: n.Text})
	}
	for _, c := range r.Findings {
		props = append(props, junitProperty{Name: "finding." + c.Rule, Value: causeLine(c)})
	}
	suite.Properties = props

	var total float64
	classname := "loadramp." + r.Plan
	for i, s := range r.Steps {
		secs := 0.0
		if !s.Start.IsZero() && s.End.After(s.Start) {
			secs = s.End.Sub(s.Start).Seconds()
		}
		total += secs
		c := junitCase{Name: StepName(s, r.Parameters), Classname: classname, Time: fmt.Sprintf("%.3f", secs)}
		switch s.Verdict {
		case result.VerdictPass:
		case result.VerdictTargetFail:
			suite.Failures++
			c.Failure = &junitProblem{Type: s.Verdict, Message: firstLine(why(s)), Body: failureBody(s)}
		case result.VerdictGeneratorFail:
			suite.Skipped++
			c.Skipped = &junitProblem{Message: "generator-fail: " + firstLine(s.Reason)}
		default: // error, or a verdict this version does not know
			suite.Errors++
			body := s.Error
			if body == "" {
				body = s.Reason
			}
			c.Error = &junitProblem{Type: s.Verdict, Message: firstLine(s.Reason), Body: body}
		}
		out := metricsText(s)
		for _, n := range r.NotesOf(&r.Steps[i]) {
			out += "note: " + n.Text + "\n"
		}
		if out != "" {
			c.SystemOut = &junitText{Text: out}
		}
		suite.Cases = append(suite.Cases, c)
	}
	if pol := r.Policy; pol != nil {
		suite.Tests++
		c := junitCase{Name: "capacity policy", Classname: classname, Time: "0.000"}
		text := strings.Join(pol.Messages, "\n")
		if pol.Passed {
			c.SystemOut = &junitText{Text: text}
		} else {
			suite.Failures++
			c.Failure = &junitProblem{Type: "capacity-regression", Message: firstLine(text), Body: text}
		}
		suite.Cases = append(suite.Cases, c)
	}
	suite.Time = fmt.Sprintf("%.3f", total)
	doc := junitSuites{Name: "loadramp", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors,
		Skipped: suite.Skipped, Time: suite.Time, Suites: []junitSuite{suite}}

	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit.xml: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode junit.xml: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write junit.xml: %w", err)
	}
	return nil
}

func failureBody(s result.Step) string {
	var b strings.Builder
	for _, g := range s.FailedGates {
		fmt.Fprintf(&b, "gate %s: %s\n", g.Gate, g.Explain)
	}
	if len(s.FailedGates) == 0 && s.Reason != "" {
		fmt.Fprintf(&b, "%s\n", s.Reason)
	}
	for _, f := range s.Findings {
		fmt.Fprintf(&b, "finding %s: %s %s (setting: %s; fix: %s)\n", f.Rule, f.Resource, f.Observed, f.Setting, f.Fix)
		for _, e := range f.Evidence {
			fmt.Fprintf(&b, "  evidence: %s\n", e)
		}
	}
	return b.String()
}

// metricsText lists a step's metrics, one per line, for <system-out>.
func metricsText(s result.Step) string {
	var b strings.Builder
	for _, m := range sortedKeys(s.Metrics) {
		fmt.Fprintf(&b, "%s=%s\n", m, num(s.Metrics[m]))
	}
	return b.String()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// causeLine says where a cause was seen, for a junit property:
// "target, host local, process eventbus: open files 1024 of 1024; seen on steps 6.1, 6.2".
func causeLine(c Cause) string {
	var b strings.Builder
	if c.Side != "" {
		b.WriteString(c.Side + ", ")
	}
	b.WriteString("host " + c.Host)
	if c.Process != "" {
		b.WriteString(", process " + c.Process)
	}
	fmt.Fprintf(&b, ": %s %s", c.Resource, c.Observed)
	if len(c.Steps) > 0 {
		b.WriteString("; seen on steps " + strings.Join(refs(c.Steps), ", "))
	}
	return b.String()
}
