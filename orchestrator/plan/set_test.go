package plan

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	tests := []struct {
		name  string
		sets  []string
		check func(t *testing.T, p *Plan)
		path  string // a path written by the sets: its line must be 0
	}{
		{
			name: "static int", sets: []string{"static.nofile=4096"}, path: "static.nofile",
			check: func(t *testing.T, p *Plan) {
				if p.Static["nofile"] != 4096 {
					t.Errorf("static.nofile = %#v, want int 4096", p.Static["nofile"])
				}
			},
		},
		{
			name: "new static key", sets: []string{"static.extra=on"}, path: "static.extra",
			check: func(t *testing.T, p *Plan) {
				if p.Static["extra"] != "on" {
					t.Errorf("static.extra = %#v", p.Static["extra"])
				}
			},
		},
		{
			name: "duration", sets: []string{"ramp.hold=3s"}, path: "ramp.hold",
			check: func(t *testing.T, p *Plan) {
				if p.Ramp.Hold.D() != 3*time.Second {
					t.Errorf("ramp.hold = %v", p.Ramp.Hold)
				}
			},
		},
		{
			name: "missing key in a struct is created", sets: []string{"workload.http.timeout=2s", "ramp.confirm=0"}, path: "ramp.confirm",
			check: func(t *testing.T, p *Plan) {
				if p.Workload.HTTP.Timeout.D() != 2*time.Second {
					t.Errorf("timeout = %v", p.Workload.HTTP.Timeout)
				}
				if p.Ramp.Confirm != 0 {
					t.Errorf("confirm = %d, want the explicit 0 kept over the default", p.Ramp.Confirm)
				}
			},
		},
		{
			name: "list index", sets: []string{"parameters[0].max=8000"}, path: "parameters[0].max",
			check: func(t *testing.T, p *Plan) {
				if p.Parameters[0].Max != 8000 {
					t.Errorf("parameters[0].max = %v", p.Parameters[0].Max)
				}
			},
		},
		{
			name: "parameter by name", sets: []string{"parameters.connections.max=16"}, path: "parameters[1].max",
			check: func(t *testing.T, p *Plan) {
				if p.Parameters[1].Max != 16 {
					t.Errorf("parameters[1].max = %v", p.Parameters[1].Max)
				}
			},
		},
		{
			name: "process by name, command element", sets: []string{"fleets.target.processes.bus.command[0]=/usr/bin/eventbus"},
			path: "fleets.target.processes[0].command[0]",
			check: func(t *testing.T, p *Plan) {
				if got := p.Fleets["target"].Processes[0].Command[0]; got != "/usr/bin/eventbus" {
					t.Errorf("command[0] = %q", got)
				}
			},
		},
		{
			name: "flow list value", sets: []string{"report.formats=[json, md]"}, path: "report.formats",
			check: func(t *testing.T, p *Plan) {
				if !reflect.DeepEqual(p.Report.Formats, []string{"json", "md"}) {
					t.Errorf("formats = %q", p.Report.Formats)
				}
			},
		},
		{
			name: "later set wins", sets: []string{"ramp.hold=3s", "ramp.hold=4s"}, path: "ramp.hold",
			check: func(t *testing.T, p *Plan) {
				if p.Ramp.Hold.D() != 4*time.Second {
					t.Errorf("ramp.hold = %v", p.Ramp.Hold)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, basePlan, tt.sets...)
			tt.check(t, p)
			if !p.given(tt.path) || p.Line(tt.path) != 0 {
				t.Errorf("%s: given=%v line=%d; want given with line 0", tt.path, p.given(tt.path), p.Line(tt.path))
			}
			// Raw holds the overrides and parses back to the same plan.
			q := mustParse(t, string(p.Raw()))
			if !reflect.DeepEqual(q.Parameters, p.Parameters) || !reflect.DeepEqual(q.Static, p.Static) ||
				q.Ramp != p.Ramp || !reflect.DeepEqual(q.Report, p.Report) {
				t.Errorf("Raw does not reproduce the plan:\n%s", p.Raw())
			}
		})
	}
}

func TestSetErrors(t *testing.T) {
	tests := []struct {
		set  string
		want string
	}{
		{"ramp.hodl=3s", `--set ramp.hodl=3s: unknown key ramp.hodl; did you mean "hold"?`},
		{"rmap.hold=3s", `--set rmap.hold=3s: unknown key rmap; did you mean "ramp"?`},
		{"fleets.tagret.provider=local", `--set fleets.tagret.provider=local: unknown key fleets.tagret; did you mean "target"?`},
		{"parameters.rtae.max=1", `--set parameters.rtae.max=1: no element of parameters is named "rtae"; did you mean "rate"?`},
		{"parameters[5].max=1", `--set parameters[5].max=1: parameters[5]: no such element, the list has 2`},
		{"gates.first=x", `--set gates.first=x: gates is a list: choose an element by index, e.g. gates[0]`},
		{"ramp.hold.x=1", `--set ramp.hold.x=1: ramp.hold is a value, it has no key "x"`},
		{"ramp.hold", `--set ramp.hold: expected key=value`},
		{"=3", `--set =3: empty key`},
		{"parameters[x].max=1", `--set parameters[x].max=1: bad list index in "parameters[x].max": use name[0]`},
		{"ramp.hold=[", `--set ramp.hold=[: value is not valid YAML: yaml: line 1: did not find expected node content`},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			_, err := Parse([]byte(basePlan), "test.yaml", []string{tt.set})
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if err.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestSetTypeErrorsNameTheSet(t *testing.T) {
	_, err := Parse([]byte(basePlan), "test.yaml", []string{"ramp.hold=abc", "parameters.rate.start=many"})
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	for _, want := range []string{
		`ramp.hold: "abc" is not a duration (from --set ramp.hold=abc); use e.g. 5s, 250ms`,
		`parameters[0].start: "many" is not a number (from --set parameters.rate.start=many)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
}
