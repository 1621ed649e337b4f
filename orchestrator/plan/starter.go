package plan

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

// SchemaURL is where an editor finds the plan's JSON Schema (the committed
// docs/plan.schema.json of the main branch); plans outside this repository
// name it in their yaml-language-server modeline.
const SchemaURL = "https://raw.githubusercontent.com/loadramp/loadramp/main/docs/plan.schema.json"

// Starter is what `loadramp init` knows of the service to ramp.
type Starter struct {
	// URL is the service's URL, http:// or https://: the endpoint loads and
	// probes go to.
	URL string
	// Name is the plan's name; empty: made from the URL's host and port.
	Name string
}

// StarterPlan writes a commented starter plan for the service at s.URL: a
// static target, a rate ramp, gates, generator health and a probe. The plan
// it returns passes Parse and Validate.
func StarterPlan(s Starter) ([]byte, error) {
	u, err := url.Parse(strings.TrimSpace(s.URL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("--url %q: give the service's http:// or https:// URL, with a host (for example http://10.0.0.5:8080/api/health)", s.URL)
	}
	if strings.Contains(s.URL, "{{") || strings.ContainsAny(s.URL, " \t\r\n") {
		return nil, fmt.Errorf("--url %q: a URL without spaces or template braces", s.URL)
	}
	name := s.Name
	if name == "" {
		name = starterName(u.Host)
	}
	if !planNameRe.MatchString(name) {
		return nil, fmt.Errorf("--name %q: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	path := u.EscapedPath()
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	data := map[string]string{
		"URL":      u.String(),
		"Name":     name,
		"Endpoint": u.Scheme + "://" + u.Host,
		"Path":     path,
		"Schema":   SchemaURL,
	}
	var buf bytes.Buffer
	if err := starterTmpl.Execute(&buf, data); err != nil {
		return nil, err
	}
	p, err := Parse(buf.Bytes(), "starter plan", nil)
	if err == nil {
		err = errors.Join(p.Validate()...)
	}
	if err != nil {
		return nil, fmt.Errorf("the starter plan for %s does not check out: %w", s.URL, err)
	}
	return buf.Bytes(), nil
}

var notNameRe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// starterName makes a plan name of a host ("api.example.com:8443" ->
// "api.example.com-8443").
func starterName(host string) string {
	n := strings.Trim(notNameRe.ReplaceAllString(host, "-"), "-._")
	if n == "" {
		n = "service"
	}
	if len(n) > 64 {
		n = strings.Trim(n[:64], "-._")
	}
	return n
}

// yamlString quotes s as a YAML double-quoted scalar.
func yamlString(s string) string { return strconv.Quote(s) }

var starterTmpl = template.Must(template.New("starter").Funcs(template.FuncMap{"q": yamlString}).Parse(
	`# yaml-language-server: $schema={{ .Schema }}
#
# A starter ramp plan for the service at {{ .URL }},
# written by 'loadramp init'. Check it and see its steps with
# 'loadramp plan FILE', then run it with 'loadramp run FILE'. Every key is described in docs/plan.md; an
# editor with the YAML language server completes keys from the schema named on
# the first line ('loadramp schema' prints it, to point that line at a local copy).
version: 1
name: {{ q .Name }}
description: {{ q (print "Ramp the request rate on " .URL " until a gate fails.") }}

fleets:
  target:                      # the system under test: already running, loadramp starts nothing
    provider: static
    outputs:
      endpoint: {{ q .Endpoint }}
  # No generators fleet: the builtin engine sends the load from this machine.

static:                        # static parameters: what you change between runs, on every report row
  target_url: {{ q .URL }}
  # instance_type: c6i.large   # for example; record what describes the system under test

workload:
  engine: builtin
  http:
    method: GET
    url: {{ q (print "{{ .fleets.target.endpoint }}" .Path) }}
    timeout: 5s                # a slower answer counts as a target error (timeout)

probe:                         # what one more user feels, measured beside the load
  kind: http
  url: {{ q (print "{{ .fleets.target.endpoint }}" .Path) }}
  rate: 5                      # probes/s

parameters:                    # doubled one at a time (ramp.factor) from start to max
  - { name: rate, start: 50, max: 6400 }            # offered requests/s
  - { name: connections, start: 16, max: 16 }       # connections kept open (start = max: fixed)

ramp:
  factor: 2
  warmup: 5s                   # load runs, nothing is judged
  hold: 20s                    # the steady-state window the gates judge
  cooldown: 2s
  confirm: 1                   # rerun a failing step once before it counts
  refine: 3                    # then bisect between the last pass and the first failure
  max_steps: 12

gates:                         # all must hold on the hold window for a step to pass
  - latency.p99 < 250ms
  - errors.ratio < 1%
  - throughput.ratio > 95%     # the service answered what was offered
  - probe.delay.p99 < 500ms

generator_health:              # a breach is the generator's failure, never the service's
  - generator.lag.p99 < 10ms   # requests sent late would inflate latency
  - generator.cpu < 0.9        # this machine's CPU share left to loadramp

abort:                         # checked every second: stop the step at once
  - errors.ratio > 50%

report:
  formats: [html, md, csv, json, junit, xlsx]
`))

// WriteStarter writes the starter plan for s to path, which must not exist:
// an existing file is never overwritten (the error wraps os.ErrExist).
func WriteStarter(path string, s Starter) error {
	body, err := StarterPlan(s)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists; init never overwrites a file: choose another --out, or remove it: %w", path, os.ErrExist)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
