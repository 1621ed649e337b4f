package plan

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseRequestTemplate(t *testing.T) {
	tests := []struct {
		in   string
		want []RequestPart
	}{
		{"", nil},
		{"plain /x?y=1", []RequestPart{{Text: "plain /x?y=1"}}},
		{"{{ .fleets.target.endpoint }}/items", []RequestPart{{Text: "{{ .fleets.target.endpoint }}/items"}}},
		{`{{ .fleets.target.endpoint }}/items/{{ seq }}?u={{ feed "users" "id" }}&x=1`, []RequestPart{
			{Text: "{{.fleets.target.endpoint}}/items/"}, {Func: "seq"}, {Text: "?u="},
			{Func: "feed", Args: []string{"users", "id"}}, {Text: "&x=1"},
		}},
		{`{"id":"{{ uuid }}","n":{{ randInt -5 5 }},"s":"{{ randString 8 }}","t":"{{ now }}","d":"{{ now "2006-01-02" }}"}`, []RequestPart{
			{Text: `{"id":"`}, {Func: "uuid"}, {Text: `","n":`}, {Func: "randInt", Args: []string{"-5", "5"}},
			{Text: `,"s":"`}, {Func: "randString", Args: []string{"8"}}, {Text: `","t":"`}, {Func: "now"},
			{Text: `","d":"`}, {Func: "now", Args: []string{"2006-01-02"}}, {Text: `"}`},
		}},
		{`Bearer {{ env "API_TOKEN" }}`, []RequestPart{{Text: "Bearer "}, {Func: "env", Args: []string{"API_TOKEN"}}}},
		{`{{nowUnix}}{{nowUnixMilli}}`, []RequestPart{{Func: "nowUnix"}, {Func: "nowUnixMilli"}}},
		// Trim markers apply to the text around a call.
		{"a  {{- uuid -}}  b", []RequestPart{{Text: "a"}, {Func: "uuid"}, {Text: "b"}}},
		// The plan's own actions stay whole, even inside if, next to a call.
		{`{{ if .static.x }}y{{ end }}{{ seq }}`, []RequestPart{{Text: "{{if .static.x}}y{{end}}"}, {Func: "seq"}}},
	}
	for _, tt := range tests {
		got, err := ParseRequestTemplate(tt.in)
		if err != nil {
			t.Errorf("ParseRequestTemplate(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRequestTemplate(%q) =\n%#v\nwant\n%#v", tt.in, got, tt.want)
		}
	}
}

func TestParseRequestTemplateRefuses(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{{ uuid | printf "%s" }}`, "uuid is evaluated per request: write it alone in its action"},
		{`{{ printf "%s" uuid }}`, "uuid is evaluated per request: write it alone"},
		{`{{ $x := seq }}{{ $x }}`, "seq is evaluated per request: write it alone"},
		{`{{ if .static.a }}{{ seq }}{{ end }}`, "seq is evaluated per request: it cannot be inside if, range or with"},
		{`{{ range .static.a }}{{ feed "u" "id" }}{{ end }}`, "feed is evaluated per request: it cannot be inside"},
		{`{{ uuid 1 }}`, "uuid takes no arguments"},
		{`{{ randInt 1 }}`, "randInt takes 2 argument(s)"},
		{`{{ randInt 1 "9" }}`, "randInt: argument 2 must be a whole number"},
		{`{{ randInt 1.5 9 }}`, "randInt: argument 1 must be a whole number"},
		{`{{ randInt 9 1 }}`, "randInt 9 1: MIN must be <= MAX"},
		{`{{ randString 0 }}`, "randString 0: the length must be from 1 to 4096"},
		{`{{ feed users id }}`, "function \"users\" not defined"},
		{`{{ feed "users" }}`, "feed takes 2 argument(s)"},
		{`{{ env "1X" }}`, `env "1X": not an environment variable name`},
		{`{{ env .static.x }}`, "env: argument 1 must be a quoted string"},
		{`{{ now "" }}`, `now "": give a Go time layout`},
		{`{{ now "a" "b" }}`, "now takes at most 1 argument(s)"},
		{`{{ define "x" }}{{ seq }}{{ end }}`, "cannot define templates"},
		{`{{ seq `, "template does not parse"},
	}
	for _, tt := range tests {
		_, err := ParseRequestTemplate(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRequestTemplate(%q) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}

// The parts written back as source parse to the same parts.
func TestRequestPartString(t *testing.T) {
	in := `x{{ feed "a b" "c\"d" }}y{{ randInt -1 2 }}{{ now "15:04" }}{{ uuid }}`
	parts, err := ParseRequestTemplate(in)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.String())
	}
	again, err := ParseRequestTemplate(b.String())
	if err != nil || !reflect.DeepEqual(parts, again) {
		t.Fatalf("%q -> %q -> %#v, %v", in, b.String(), again, err)
	}
}

// mixPlan is basePlan with a three-request mix and a feeder (its file set by
// writeFeeder).
const mixPlan = `version: 1
name: mix
fleets:
  target:
    provider: local
    processes:
      - name: bus
        command: [bin/eventbus, --listen, '127.0.0.1:{{ port "bus" }}']
        ready: 'http://127.0.0.1:{{ port "bus" }}/healthz'
    outputs:
      endpoint: 'http://127.0.0.1:{{ port "bus" }}'
workload:
  engine: builtin
  http:
    timeout: 2s
    feeders:
      users: { file: users.csv, mode: unique }
    requests:
      - name: publish
        weight: 6
        url: "{{ .fleets.target.endpoint }}/publish?topic=orders"
        headers:
          Authorization: 'Bearer {{ env "LR_TEST_TOKEN" }}'
          Content-Type: application/json
        body: '{"id":"{{ uuid }}","seq":{{ seq }},"user":"{{ feed "users" "name" }}"}'
        check: { status: [200], json: { path: receivers, equals: 0 } }
      - name: read
        weight: 3
        url: '{{ .fleets.target.endpoint }}/stats?u={{ feed "users" "id" }}'
        check: { json: { path: published } }
      - name: health
        url: "{{ .fleets.target.endpoint }}/healthz"
        check: { body_contains: ok }
parameters:
  - { name: rate, start: 100, max: 1000 }
gates:
  - latency.p99 < 100ms
  - request.publish.latency.p99 < 50ms
`

// writeFeeder writes content as name in a new directory and returns its path.
func writeFeeder(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidateMix(t *testing.T) {
	users := writeFeeder(t, "users.csv", "id,name\n1,ann\n2,bob\n")
	feeder := "workload.http.feeders.users.file=" + users
	p := mustParse(t, mixPlan, feeder)
	if errs := p.Validate(); len(errs) > 0 {
		t.Fatalf("Validate:\n%v", Errors(errs))
	}
	h := p.Workload.HTTP
	if h.Requests[0].Method != "POST" || h.Requests[1].Method != "GET" || h.Requests[2].Weight != 1 || h.Method != "" {
		t.Errorf("defaults: %+v", h.Requests)
	}
	refs := p.EnvRefs()
	if len(refs) != 1 || refs[0].Name != "LR_TEST_TOKEN" || refs[0].Path != "workload.http.requests[0].headers.Authorization" || !refs[0].Header {
		t.Errorf("EnvRefs = %+v", refs)
	}
	errs := p.CheckEnv(func(string) (string, bool) { return "", false })
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `workload.http.requests[0].headers.Authorization (line 23): env "LR_TEST_TOKEN" is not set`) {
		t.Errorf("CheckEnv unset = %v", errs)
	}
	errs = p.CheckEnv(func(string) (string, bool) { return "se\ncret", true })
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "control character") || strings.Contains(errs[0].Error(), "se\ncret") {
		t.Errorf("CheckEnv with a newline = %v", errs)
	}
	if errs := p.CheckEnv(func(string) (string, bool) { return "tok", true }); len(errs) != 0 {
		t.Errorf("CheckEnv set = %v", errs)
	}

	dir := t.TempDir()
	ragged := writeFeeder(t, "ragged.csv", "id,name\n1,ann\n2\n")
	empty := writeFeeder(t, "empty.csv", "")
	headerOnly := writeFeeder(t, "header.csv", "id,name\n")
	raggedJSON := writeFeeder(t, "ragged.jsonl", `{"id":1,"name":"ann"}`+"\n"+`{"id":2}`+"\n")
	noExt := writeFeeder(t, "users.txt", "id\n1\n")
	newline := writeFeeder(t, "nl.csv", "id,name\n1,\"a\nb\"\n")
	tests := []struct {
		name string
		sets []string
		want string
	}{
		{"missing file", []string{"workload.http.feeders.users.file=" + filepath.Join(dir, "nope.csv")},
			"workload.http.feeders.users.file: " + filepath.Join(dir, "nope.csv") + ": no such file"},
		{"empty file", []string{"workload.http.feeders.users.file=" + empty},
			"workload.http.feeders.users.file: " + empty + ": empty: a CSV feeder needs a header line"},
		{"header only", []string{"workload.http.feeders.users.file=" + headerOnly},
			"workload.http.feeders.users.file: " + headerOnly + ": no rows after the header line (id, name)"},
		{"ragged csv", []string{"workload.http.feeders.users.file=" + ragged},
			"workload.http.feeders.users.file: " + ragged + ": line 3: a ragged row: the header has 2 columns (id, name)"},
		{"ragged jsonl", []string{"workload.http.feeders.users.file=" + raggedJSON},
			"workload.http.feeders.users.file: " + raggedJSON + `: line 2: a ragged row: no "name"`},
		{"unknown format", []string{"workload.http.feeders.users.file=" + noExt},
			`workload.http.feeders.users.format (line 17): cannot tell from`},
		{"unknown column", []string{feeder, `workload.http.requests[1].url={{ .fleets.target.endpoint }}/stats?u={{ feed "users" "ids" }}`},
			`workload.http.requests[1].url: feed "users" "ids": feeder "users" has no column "ids" (its columns: id, name); did you mean "id"?`},
		{"unknown feeder", []string{feeder, `workload.http.requests[1].url={{ .fleets.target.endpoint }}/stats?u={{ feed "user" "id" }}`},
			`workload.http.requests[1].url: feed "user": no feeder "user" in workload.http.feeders; did you mean "users"?`},
		{"line break into a header", []string{"workload.http.feeders.users.file=" + newline, `workload.http.requests[0].headers.X-User={{ feed "users" "name" }}`},
			`workload.http.requests[0].headers.X-User: feed "users" "name": row 1 holds a control character`},
		{"bad mode", []string{feeder, "workload.http.feeders.users.mode=once"},
			`workload.http.feeders.users.mode: unknown mode "once"; use circular, random or unique`},
		{"url per request host", []string{feeder, `workload.http.requests[2].url={{ feed "users" "id" }}/healthz`},
			`workload.http.requests[2].url: starts with {{ feed }}; the scheme, host and port are the same for every request`},
		{"single form beside requests", []string{feeder, "workload.http.url=http://x/"},
			"workload.http.url: give url per request: with workload.http.requests, each request has its own"},
		{"weight 0", []string{feeder, "workload.http.requests[1].weight=0"},
			"workload.http.requests[1].weight: must be a whole number from 1 to 1000000 (got 0)"},
		{"bad name", []string{feeder, "workload.http.requests[1].name=Read-All"},
			`workload.http.requests[1].name: "Read-All": use 1-40 lower-case letters, digits and _`},
		{"duplicate name", []string{feeder, "workload.http.requests[1].name=publish"},
			`workload.http.requests[1].name: "publish" is also the name of requests[0]`},
		{"missing name", []string{feeder, "workload.http.requests[1].name="},
			"workload.http.requests[1].name: missing"},
		{"bad status", []string{feeder, "workload.http.requests[0].check.status=[200, 700]"},
			"workload.http.requests[0].check.status[1]: 700 is not an HTTP status code"},
		{"empty check", []string{feeder, "workload.http.requests[0].check={}"},
			"workload.http.requests[0].check: empty; give status"},
		{"json path", []string{feeder, "workload.http.requests[0].check.json.path=a..b"},
			`workload.http.requests[0].check.json.path: "a..b": an empty segment`},
		{"json equals list", []string{feeder, "workload.http.requests[0].check.json.equals=[1]"},
			"workload.http.requests[0].check.json.equals: a string, number, boolean or null"},
		{"managed header", []string{feeder, "workload.http.requests[2].headers={Connection: close}"},
			"workload.http.requests[2].headers.Connection: Connection is managed by the generator"},
		{"content-length with a varying body", []string{feeder, "workload.http.requests[0].headers.Content-Length=10"},
			"workload.http.requests[0].headers.Content-Length: the body varies per request"},
		{"per-request function elsewhere", []string{feeder, `fleets.target.processes[0].env={ID: '{{ uuid }}'}`},
			"fleets.target.processes[0].env.ID: uuid is evaluated per request: only workload.http's url, headers and body"},
		{"env elsewhere", []string{feeder, `fleets.target.outputs.token={{ env "HOME" }}`},
			"fleets.target.outputs.token: env is evaluated per request"},
		{"call in a pipeline", []string{feeder, `workload.http.requests[2].url={{ .fleets.target.endpoint }}/{{ seq | printf "%d" }}`},
			"workload.http.requests[2].url: seq is evaluated per request: write it alone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, mixPlan, tt.sets...)
			got := errStrings(p.Validate())
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Errorf("got:\n%s\nwant one problem starting %q", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

// The single request takes per-request templates and a check too.
func TestValidateSingleRequestTemplates(t *testing.T) {
	p := mustParse(t, basePlan, `workload.http.body=id={{ uuid }}`, "workload.http.check={status: [200, 201]}")
	if errs := p.Validate(); len(errs) > 0 {
		t.Fatalf("Validate:\n%v", Errors(errs))
	}
	p = mustParse(t, basePlan, `workload.http.body={{ feed "x" "y" }}`)
	got := errStrings(p.Validate())
	if len(got) != 1 || !strings.Contains(got[0], `no feeder "x"`) {
		t.Errorf("got %v", got)
	}
}

// A feeder's path is relative to the plan file's directory.
func TestFeederPathRelativeToPlan(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "users.csv"), []byte("id,name\n1,ann\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plan := strings.Replace(mixPlan, "file: users.csv", "file: data/users.csv", 1)
	path := filepath.Join(dir, "mix.yaml")
	if err := os.WriteFile(path, []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if errs := p.Validate(); len(errs) > 0 {
		t.Fatalf("Validate:\n%v", Errors(errs))
	}
	if got := p.FeederPath("users"); got != filepath.Join(dir, "data", "users.csv") {
		t.Errorf("FeederPath = %q", got)
	}
	d, err := p.LoadFeeder("users")
	if err != nil || len(d.Rows) != 1 || d.Rows[0][1] != "ann" {
		t.Errorf("LoadFeeder = %+v, %v", d, err)
	}
}

func TestParseCSVFeeder(t *testing.T) {
	d, err := ParseCSVFeeder(strings.NewReader("\xef\xbb\xbfid,\"full name\",note\n1,\"Doe, Ann\",\"say \"\"hi\"\"\"\n2,Bob,\"two\nlines\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &FeederData{Columns: []string{"id", "full name", "note"}, Rows: [][]string{{"1", "Doe, Ann", `say "hi"`}, {"2", "Bob", "two\nlines"}}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got %#v", d)
	}
	for in, msg := range map[string]string{
		"":                  "empty",
		"id,id\n1,2\n":      `line 1: column "id" appears twice`,
		"id,\n1,2\n":        "line 1: column 2 has no name",
		"a,b\n1,2\n3,4,5\n": "line 3: a ragged row: the header has 2 columns (a, b)",
		"a,b\n1,\"2\n":      "line 2: extraneous or missing \" in quoted-field",
		"a\n":               "no rows after the header line (a)",
	} {
		if _, err := ParseCSVFeeder(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseCSVFeeder(%q) = %v, want %q", in, err, msg)
		}
	}
}

func TestParseJSONLFeeder(t *testing.T) {
	d, err := ParseJSONLFeeder(strings.NewReader(`{"name":"ann","id":1,"tags":["a"],"vip":true,"note":null}` + "\n\n" +
		`{"id":2.50,"name":"bob \"b\"","tags":{},"vip":false,"note":"x"}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &FeederData{Columns: []string{"id", "name", "note", "tags", "vip"}, Rows: [][]string{
		{"1", "ann", "", `["a"]`, "true"}, {"2.50", `bob "b"`, "x", "{}", "false"}}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got %#v", d)
	}
	for in, msg := range map[string]string{
		"":                                 "empty",
		"\n\n":                             "empty",
		"[1,2]\n":                          "line 1: not a JSON object",
		"{}\n":                             "line 1: an object without keys",
		`{"a":1} {"a":2}` + "\n":           "line 1: more than one JSON value",
		`{"a":1}` + "\n" + `{"b":1}`:       `line 2: a ragged row: no "a"`,
		`{"a":1}` + "\n" + `{"a":1,"b":2}`: `line 2: a ragged row: "b" is not a key of the first object`,
		`{"a":1` + "\n":                    "line 1: not a JSON object",
	} {
		if _, err := ParseJSONLFeeder(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseJSONLFeeder(%q) = %v, want %q", in, err, msg)
		}
	}
}

func TestMixCycle(t *testing.T) {
	for _, tt := range []struct {
		w    []int
		want int
	}{{[]int{6, 3, 1}, 10}, {[]int{60, 30, 10}, 10}, {[]int{1}, 1}, {[]int{4, 6}, 5}, {nil, 0}} {
		if got := MixCycle(tt.w); got != tt.want {
			t.Errorf("MixCycle(%v) = %d, want %d", tt.w, got, tt.want)
		}
	}
}

// FuzzRequestTemplate: parsing never panics; what parses writes back as
// source that parses to the same parts, and its calls have valid arguments.
func FuzzRequestTemplate(f *testing.F) {
	for _, s := range []string{
		"", "x", `{{ .fleets.target.endpoint }}/a/{{ seq }}?u={{ feed "u" "id" }}`,
		`{"id":"{{ uuid }}","n":{{ randInt -5 5 }},"s":"{{ randString 8 }}","t":"{{ now "15:04" }}"}`,
		`Bearer {{ env "TOKEN" }}`, `{{ if .static.a }}{{ seq }}{{ end }}`, `{{ uuid | printf "%s" }}`,
		"{{- nowUnix -}} {{nowUnixMilli}}", `{{ "{{" }}{{ seq }}`, "{{ seq ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		parts, err := ParseRequestTemplate(in)
		if err != nil {
			return
		}
		var b strings.Builder
		for i, p := range parts {
			if p.IsText() {
				if p.Text == "" {
					t.Fatalf("empty text part in %q", in)
				}
				if i > 0 && parts[i-1].IsText() {
					t.Fatalf("two text parts in a row in %q: %#v", in, parts)
				}
			} else if err := checkCallArgs(p); err != nil {
				t.Fatalf("call %#v accepted with bad arguments: %v", p, err)
			}
			b.WriteString(p.String())
		}
		again, err := ParseRequestTemplate(b.String())
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", in, b.String(), err)
		}
		// Calls survive the round trip exactly; text may be re-split only
		// where a text part's source is itself re-parsed.
		var calls, callsAgain []RequestPart
		for _, p := range parts {
			if !p.IsText() {
				calls = append(calls, p)
			}
		}
		for _, p := range again {
			if !p.IsText() {
				callsAgain = append(callsAgain, p)
			}
		}
		if !reflect.DeepEqual(calls, callsAgain) {
			t.Fatalf("%q -> %q: calls %#v, then %#v", in, b.String(), calls, callsAgain)
		}
	})
}

// FuzzCSVFeeder: parsing never panics, and what parses is rectangular with
// named, distinct columns and at least one row.
func FuzzCSVFeeder(f *testing.F) {
	for _, s := range []string{"id,name\n1,ann\n", "\xef\xbb\xbfa\n1\n", "a,b\n1,\"x\ny\"\n", "a,b\n1\n", "", "a\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := ParseCSVFeeder(strings.NewReader(string(in)))
		if err != nil {
			return
		}
		checkFeederData(t, d)
	})
}

// FuzzJSONLFeeder: as FuzzCSVFeeder, for JSON Lines.
func FuzzJSONLFeeder(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":"x"}` + "\n" + `{"a":2,"b":null}`, `{"a":{"b":[1]}}`, "{}", "[1]", `{"a":1}{"a":2}`, "\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := ParseJSONLFeeder(strings.NewReader(string(in)))
		if err != nil {
			return
		}
		checkFeederData(t, d)
	})
}

func checkFeederData(t *testing.T, d *FeederData) {
	t.Helper()
	if len(d.Columns) == 0 || len(d.Rows) == 0 {
		t.Fatalf("accepted %d columns, %d rows", len(d.Columns), len(d.Rows))
	}
	if err := checkColumns(d.Columns, "x"); err != nil {
		t.Fatalf("accepted columns %q: %v", d.Columns, err)
	}
	for i, r := range d.Rows {
		if len(r) != len(d.Columns) {
			t.Fatalf("row %d has %d values for %d columns", i, len(r), len(d.Columns))
		}
	}
}

// A plan with a mix marshals (as plan.yaml) to YAML that parses back to the
// same plan.
func TestMixPlanMarshalRoundTrip(t *testing.T) {
	users := writeFeeder(t, "users.csv", "id,name\n1,ann\n")
	p := mustParse(t, mixPlan, "workload.http.feeders.users.file="+users)
	if errs := p.Validate(); len(errs) > 0 {
		t.Fatal(Errors(errs))
	}
	out, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	q := mustParse(t, string(out))
	if errs := q.Validate(); len(errs) > 0 {
		t.Fatalf("%v\n%s", Errors(errs), out)
	}
	if !reflect.DeepEqual(p.Workload, q.Workload) {
		t.Errorf("workload differs after a round trip:\n%#v\n%#v", p.Workload.HTTP, q.Workload.HTTP)
	}
	if !strings.Contains(string(out), `{{ env "LR_TEST_TOKEN" }}`) {
		t.Errorf("plan.yaml lost the env reference:\n%s", out)
	}
}
