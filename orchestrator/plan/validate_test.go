package plan

import (
	"errors"
	"strings"
	"testing"
)

// TestValidateManyMistakes checks that one plan with many mistakes gets every
// one reported at once, each with its path and line.
func TestValidateManyMistakes(t *testing.T) {
	p, err := Load("testdata/many-mistakes.yaml", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	errs := p.Validate()
	got := errStrings(errs)
	want := []string{
		`name (line 2): "many mistakes/here" cannot name a run directory`,
		`fleets.target.provider (line 5): unknown provider "lcoal"; use local, terraform or static; did you mean "local"?`,
		`fleets.target.processes[0].ready (line 9): "127.0.0.1:{{ port \"bus\" }}": use an http://, https:// or tcp://host:port address`,
		`fleets.target.processes (line 6): only the local provider starts processes (provider is "lcoal")`,
		`fleets.db.terraform.dir (line 12): missing; a terraform fleet needs the module directory`,
		`workload.http.url (line 19): .fleets.tagret.endpoint: no fleet "tagret"; did you mean "target"?`,
		`workload.http.url (line 19): .static.nofiles: no static parameter "nofiles"; did you mean "nofile"?`,
		`workload.http.method (line 20): "GET POST" is not an HTTP method`,
		`parameters[0].start (line 22): must be > 0 (got -5)`,
		`parameters[1].max (line 23): must be >= start (100), got 10`,
		`parameters[2].name (line 24): unknown parameter "users" for the builtin engine; use rate or connections`,
		`ramp.factor (line 26): must be > 1 (got 1)`,
		`ramp.order (line 27): unknown order "shuffled"; use round-robin or sequential`,
		`ramp.hold (line 28): must be > 0`,
		`ramp.max_steps (line 29): must be between 1 and 10000 (got 0)`,
		`gates (line 30): missing; without a gate every step passes`,
		`probe.subscribe (line 31): missing`,
		`probe.rate (line 31): must be > 0 probes/s`,
		`report.formats[1] (line 35): unknown format "pdf"; use html, md, csv, json, junit or xlsx`,
		`report.upload (line 36): "gs://bucket": use s3://bucket/prefix, or leave it empty`,
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			if strings.HasPrefix(g, w) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("missing problem %q", w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for _, e := range errs {
		var pr *Problem
		if !errors.As(e, &pr) || pr.Path == "" || pr.Line == 0 {
			t.Errorf("problem without path or line: %#v", e)
		}
	}
}

func TestValidateOne(t *testing.T) {
	withGen := replace(t, "static:\n", "  gen:\n    provider: terraform\n    terraform: {dir: infra/x}\nstatic:\n")
	tests := []struct {
		name string
		src  string
		sets []string
		want string // "" means valid
	}{
		{"valid", basePlan, nil, ""},
		{"name empty", basePlan, []string{"name="}, "name: missing"},
		{"no target fleet", strings.NewReplacer("  target:", "  tagret:", ".fleets.target.", ".fleets.tagret.").Replace(basePlan), nil,
			`fleets (line 3): no target fleet; name the system under test fleets.target; did you mean "tagret"?`},
		{"local without processes", basePlan, []string{"fleets.target.processes=[]"},
			"fleets.target.processes: missing; a local fleet needs processes to start"},
		{"empty command", basePlan, []string{"fleets.target.processes[0].command=[]"},
			"fleets.target.processes[0].command: missing"},
		{"duplicate process", replace(t, "    outputs:", "      - { name: bus, command: [x] }\n    outputs:"), nil,
			`fleets.target.processes[1].name (line 10): duplicate process name "bus" (also fleets.target.processes[0])`},
		{"file outside run dir", basePlan, []string{"fleets.target.processes[0].files={../etc/x: y}"},
			`fleets.target.processes[0].files.../etc/x: file name "../etc/x" must be a plain path inside the run directory`},
		{"static fleet needs outputs", basePlan, []string{"fleets.target.provider=static", "fleets.target.processes=[]", "fleets.target.outputs={}", "workload.http.url=http://127.0.0.1:1/"},
			"fleets.target.outputs: missing; a static fleet is its outputs"},
		{"missing output", basePlan, []string{"workload.http.url={{ .fleets.target.endpiont }}/x"},
			`workload.http.url: .fleets.target.endpiont: fleet "target" has no output "endpiont"; did you mean "endpoint"?`},
		{"terraform outputs unknown until apply", withGen,
			[]string{"workload.http.url={{ .fleets.gen.anything }}/x"}, ""},
		{"undeclared param", basePlan, []string{"workload.http.body={{ .params.rte }}"},
			`workload.http.body: .params.rte: no parameter "rte" is declared; did you mean "rate"?`},
		{"declared param and run", basePlan, []string{"workload.http.body={{ .params.rate }} {{ .run.id }} {{ .run.dir }}"}, ""},
		{"bad run field", basePlan, []string{"workload.http.body={{ .run.name }}"},
			`workload.http.body: .run.name: .run has only .run.id and .run.dir`},
		{"unknown root", basePlan, []string{"workload.http.body={{ .statc.nofile }}"},
			`workload.http.body: .statc.nofile: unknown reference; templates see .static, .params, .fleets, .run; did you mean "static"?`},
		{"template does not parse", basePlan, []string{"workload.http.body={{ .static.nofile "},
			`workload.http.body: template does not parse: unclosed action`},
		{"unknown function", basePlan, []string{"workload.http.body={{ quote .static.nofile }}"},
			`workload.http.body: template does not parse: function "quote" not defined`},
		{"ref via $ and inside if", basePlan, []string{`workload.http.body={{ if $.static.nofle }}x{{ end }}`},
			`workload.http.body: .static.nofle: no static parameter "nofle"; did you mean "nofile"?`},
		{"terraform var template", withGen,
			[]string{"fleets.gen.terraform.vars={n: 1, m: {k: [a, '{{ .static.nofil }}']}}"},
			`fleets.gen.terraform.vars.m.k[1]: .static.nofil: no static parameter "nofil"`},
		{"env template", basePlan, []string{"fleets.target.processes[0].env={A: '{{ .fleets.target.nope }}'}"},
			`fleets.target.processes[0].env.A: .fleets.target.nope: fleet "target" has no output "nope"`},
		{"fractional connections", basePlan, []string{"parameters.connections.start=8.5"},
			`parameters[1].start: connections takes whole numbers, got 8.5`},
		{"duplicate parameter", basePlan, []string{"parameters[1].name=rate"},
			`parameters[1].name: duplicate parameter "rate" (also parameters[0])`},
		{"locust params", basePlan, []string{"workload.engine=locust", "workload.http=null", "workload.locust={locustfile: plans/x.py}", "parameters[0].name=users", "parameters[1].name=spawn_rate", "parameters[1].start=8", "workload.arrival="}, ""},
		{"locust needs locustfile", basePlan, []string{"workload.engine=locust", "workload.http=null", "parameters[0].name=users", "parameters[1].name=spawn_rate", "workload.arrival="},
			"workload.locust.locustfile (line 14): missing; the locust engine needs a locustfile"},
		{"builtin needs url", basePlan, []string{"workload.http.url="}, "workload.http.url: missing"},
		{"missing key points at its block", basePlan, []string{"workload.http=null", "workload.http.body=x"}, "workload.http.url: missing"},
		{"missing key points at its block in the file", replace(t, `    url: "{{ .fleets.target.endpoint }}/publish?topic=load"`+"\n", ""), nil, "workload.http.url (line 16): missing"},
		{"literal url", basePlan, []string{"workload.http.url=ftp://x/"}, `workload.http.url: "ftp://x/": use an http:// or https:// URL with a host`},
		{"bad arrival", basePlan, []string{"workload.arrival=poison"}, `workload.arrival: unknown arrival "poison"; use constant or poisson; did you mean "poisson"?`},
		{"negative warmup", basePlan, []string{"ramp.warmup=-1s"}, "ramp.warmup: must be >= 0"},
		{"negative confirm", basePlan, []string{"ramp.confirm=-1"}, "ramp.confirm: must be >= 0"},
		{"probe http needs url", basePlan, []string{"probe={kind: http, rate: 5}"}, "probe.url: missing"},
		{"probe kind", basePlan, []string{"probe={kind: ping, rate: 5}"}, `probe.kind: unknown probe kind "ping"; use http or pubsub`},
		{"empty gate", basePlan, []string{"gates[0]=''"}, "gates[0]: empty expression"},
		{"campaign unknown static", basePlan, []string{"campaign={variants: [{nofiel: 2}]}"},
			`campaign.variants[0].nofiel: no static parameter "nofiel" to vary; did you mean "nofile"?`},
		{"campaign two changes", basePlan, []string{"static.cap=1", "campaign={variants: [{nofile: 1, cap: 1}, {nofile: 2, cap: 2}]}"},
			"campaign.variants[1]: changes 2 static parameters from the variant before (cap, nofile)"},
		{"campaign two changes allowed", basePlan, []string{"static.cap=1", "campaign={allow_multiple_changes: true, variants: [{nofile: 1, cap: 1}, {nofile: 2, cap: 2}]}"}, ""},
		{"campaign one change", basePlan, []string{"campaign={variants: [{nofile: 1024}, {nofile: 4096}]}"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.src, tt.sets...)
			got := errStrings(p.Validate())
			if tt.want == "" {
				if len(got) != 0 {
					t.Fatalf("want valid, got:\n%s", strings.Join(got, "\n"))
				}
				return
			}
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Errorf("got:\n%s\nwant one problem starting %q", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

func TestExpressions(t *testing.T) {
	p := mustParse(t, basePlan, "generator_health=[generator.cpu < 0.9]", "abort=[errors.ratio > 0.5]")
	got := p.Expressions()
	want := []Expr{
		{Kind: "gates", Path: "gates[0]", Line: 25, Text: "latency.p99 < 100ms"},
		{Kind: "generator_health", Path: "generator_health[0]", Text: "generator.cpu < 0.9"},
		{Kind: "abort", Path: "abort[0]", Text: "errors.ratio > 0.5"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestProblemError(t *testing.T) {
	for _, tt := range []struct {
		p    Problem
		want string
	}{
		{Problem{Path: "ramp.hold", Line: 30, Msg: "must be > 0"}, "ramp.hold (line 30): must be > 0"},
		{Problem{Path: "ramp.hold", Msg: "must be > 0"}, "ramp.hold: must be > 0"},
		{Problem{Msg: "plan is empty"}, "plan is empty"},
	} {
		if got := tt.p.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
