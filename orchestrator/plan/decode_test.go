package plan

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseBasePlan(t *testing.T) {
	p := mustParse(t, basePlan)
	if errs := p.Validate(); len(errs) != 0 {
		t.Fatalf("base plan does not validate:\n%v", Errors(errs))
	}
	if got := p.Fleets["target"].Processes[0].Command[0]; got != "bin/eventbus" {
		t.Errorf("command[0] = %q", got)
	}
	if got := p.Static["nofile"]; got != 1024 {
		t.Errorf("static.nofile = %#v, want int 1024", got)
	}
	if got := p.Parameters[1]; got != (Parameter{Name: "connections", Start: 8, Max: 4096}) {
		t.Errorf("parameters[1] = %+v", got)
	}
	if got := p.Ramp.Hold.D(); got != 5*time.Second {
		t.Errorf("ramp.hold = %v", got)
	}
	if string(p.Raw()) != basePlan {
		t.Errorf("Raw without --set should be the file as written")
	}
}

func TestLine(t *testing.T) {
	p := mustParse(t, basePlan)
	for path, want := range map[string]int{
		"version":                               1,
		"fleets.target.processes[0].name":       7,
		"fleets.target.processes[0].command[4]": 8,
		"static.nofile":                         13,
		"parameters[1]":                         21,
		"parameters[1].max":                     21,
		"ramp.hold":                             23,
		"gates[0]":                              25,
		"ramp.nothing":                          0,
		"parameters.connections.max":            21,
		"parameters.nothing.max":                0,
		"fleets.target.processes.bus.ready":     9,
		"fleets.target.processes.bus":           7,
	} {
		if got := p.Line(path); got != want {
			t.Errorf("Line(%q) = %d, want %d", path, got, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // every error, in order
	}{
		{
			name: "unknown key with suggestion",
			src:  replace(t, "    processes:\n", "    procesess:\n"),
			want: []string{`fleets.target.procesess: unknown key (line 6); did you mean "processes"?`},
		},
		{
			name: "unknown key without a close match",
			src:  replace(t, "ramp:\n  hold: 5s\n", "ramp:\n  hold: 5s\n  zzzzzzzzz: 1\n"),
			want: []string{`ramp.zzzzzzzzz: unknown key (line 24)`},
		},
		{
			name: "bad duration",
			src:  replace(t, "hold: 5s", "hold: abc"),
			want: []string{`ramp.hold: "abc" is not a duration (line 23); use e.g. 5s, 250ms`},
		},
		{
			name: "bare number is not a duration",
			src:  replace(t, "hold: 5s", "hold: 5"),
			want: []string{`ramp.hold: "5" is not a duration (line 23); use e.g. 5s, 250ms`},
		},
		{
			name: "not a number",
			src:  replace(t, "start: 250", "start: lots"),
			want: []string{`parameters[0].start: "lots" is not a number (line 20)`},
		},
		{
			name: "not an integer",
			src:  replace(t, "hold: 5s", "hold: 5s\n  confirm: 1.5"),
			want: []string{`ramp.confirm: "1.5" is not an integer (line 24)`},
		},
		{
			name: "list where a mapping belongs",
			src:  replace(t, "ramp:\n  hold: 5s", "ramp: [1, 2]"),
			want: []string{`ramp: expected a mapping, found a list (line 22)`},
		},
		{
			name: "mapping where a string belongs",
			src:  replace(t, "name: base", "name: {a: 1}"),
			want: []string{`name: expected a string, found a mapping (line 2)`},
		},
		{
			name: "duplicate key",
			src:  replace(t, "name: base", "name: base\nname: again"),
			want: []string{`name: duplicate key (line 3)`},
		},
		{
			name: "several at once, in line order",
			src:  strings.NewReplacer("hold: 5s", "hold: x", "    processes:\n", "    procesess:\n", "max: 4096", "max: many").Replace(basePlan),
			want: []string{
				`fleets.target.procesess: unknown key (line 6); did you mean "processes"?`,
				`parameters[1].max: "many" is not a number (line 21)`,
				`ramp.hold: "x" is not a duration (line 23); use e.g. 5s, 250ms`,
			},
		},
		{
			name: "version 2",
			src:  replace(t, "version: 1", "version: 2"),
			want: []string{`version: unsupported version 2 (line 1); this loadramp reads version 1`},
		},
		{
			name: "version missing",
			src:  replace(t, "version: 1\n", ""),
			want: []string{`version: missing; add version: 1`},
		},
		{
			name: "not a mapping",
			src:  "- a\n- b\n",
			want: []string{`test.yaml: a plan must be a mapping of keys (version, name, fleets, ...), found a list (line 1)`},
		},
		{
			name: "empty",
			src:  "# nothing\n",
			want: []string{`test.yaml is empty`},
		},
		{
			name: "syntax error",
			src:  "version: 1\nname: a\n\tbad: tab\n",
			want: []string{`test.yaml is not valid YAML: yaml: line 2: found a tab character that violates indentation`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.src), "test.yaml", nil)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", p)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, want Errors", err)
			}
			if got := errStrings(es); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Errorf("errors.As(*DecodeError) failed")
			}
			if strings.Count(err.Error(), "\n") != len(tt.want)-1 {
				t.Errorf("Error() should list one problem a line: %q", err.Error())
			}
		})
	}
}

func TestAliasesAndBillionLaughs(t *testing.T) {
	src := replace(t, "static:\n  nofile: 1024\n", "static:\n  nofile: &n 1024\n  again: *n\n")
	p := mustParse(t, src)
	if p.Static["again"] != 1024 {
		t.Errorf("alias: static.again = %#v", p.Static["again"])
	}

	// Nine levels of nine aliases: 387 million nodes if expanded.
	var b strings.Builder
	b.WriteString("version: 1\nname: lol\nstatic:\n  a0: &a0 [x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		b.WriteString("  a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	start := time.Now()
	_, err := Parse([]byte(b.String()), "lol.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "plan too large") {
		t.Fatalf("alias bomb: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("alias bomb took %v", d)
	}

	// An alias inside its own anchor would nest forever.
	start = time.Now()
	_, err = Parse([]byte("version: 1\nname: x\nstatic: &a {k: *a}\n"), "loop.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "nested more than 64 levels deep") {
		t.Fatalf("self-referential alias: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("self-referential alias took %v", d)
	}
}

func TestDurationCodec(t *testing.T) {
	tests := []struct {
		in   string
		want Duration
		err  bool
	}{
		{"5s", Duration(5 * time.Second), false},
		{"250ms", Duration(250 * time.Millisecond), false},
		{"1m30s", Duration(90 * time.Second), false},
		{"0", 0, false},
		{"0s", 0, false},
		{"5", 0, true},
		{"abc", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v", tt.in, got, err)
		}
		if tt.err {
			continue
		}
		// YAML and JSON both write the duration as a string and read it back.
		y, err := yaml.Marshal(map[string]Duration{"d": got})
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]Duration
		if err := yaml.Unmarshal(y, &back); err != nil || back["d"] != got {
			t.Errorf("YAML round trip of %v: %s -> %v, %v", got, y, back["d"], err)
		}
		j, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if j[0] != '"' {
			t.Errorf("JSON of %v = %s, want a string", got, j)
		}
		var jb Duration
		if err := json.Unmarshal(j, &jb); err != nil || jb != got {
			t.Errorf("JSON round trip of %v: %s -> %v, %v", got, j, jb, err)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`5`), &d); err == nil {
		t.Error("JSON number accepted as a duration")
	}
	if err := yaml.Unmarshal([]byte(`[1]`), &d); err == nil {
		t.Error("YAML list accepted as a duration")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	src := replace(t, "ramp:\n  hold: 5s", "ramp:\n  hold: 5s\n  warmup: 0s\n  confirm: 0\n  refine: 0")
	p := mustParse(t, src)
	out, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	q := mustParse(t, string(out))
	if q.Ramp != p.Ramp {
		t.Errorf("ramp changed in round trip: %+v -> %+v\n%s", p.Ramp, q.Ramp, out)
	}
	if q.Ramp.Confirm != 0 || q.Ramp.Warmup != 0 {
		t.Errorf("explicit zeros lost: %+v", q.Ramp)
	}
	out2, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(out2) {
		t.Errorf("Marshal is not stable:\n%s\n---\n%s", out, out2)
	}
}
