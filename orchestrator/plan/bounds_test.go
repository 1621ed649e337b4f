package plan

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// problemsAt returns the problems of p reported at path.
func problemsAt(p *Plan, path string) []string {
	var out []string
	for _, e := range p.Validate() {
		if pr, ok := e.(*Problem); ok && pr.Path == path {
			out = append(out, pr.Error())
		}
	}
	return out
}

// boundCases says where each key of Bounds is written, in which plan, and
// what else that plan needs for the key to be read.
var boundCases = map[string]struct {
	src   string
	path  string
	extra []string
}{
	"Ramp.factor":              {basePlan, "ramp.factor", nil},
	"Ramp.warmup":              {basePlan, "ramp.warmup", nil},
	"Ramp.hold":                {basePlan, "ramp.hold", nil},
	"Ramp.cooldown":            {basePlan, "ramp.cooldown", nil},
	"Ramp.confirm":             {basePlan, "ramp.confirm", nil},
	"Ramp.refine":              {basePlan, "ramp.refine", nil},
	"Ramp.interference_reruns": {basePlan, "ramp.interference_reruns", nil},
	"Ramp.max_steps":           {basePlan, "ramp.max_steps", nil},
	"Process.ready_timeout":    {basePlan, "fleets.target.processes[0].ready_timeout", nil},
	"Process.replicas":         {basePlan, "fleets.target.processes[0].replicas", nil},
	"HTTP.timeout":             {basePlan, "workload.http.timeout", nil},
	"Request.weight": {basePlan, "workload.http.requests[0].weight",
		[]string{`workload.http={requests: [{name: a, url: "http://127.0.0.1:1/"}]}`}},
	"Check.status":            {basePlan, "workload.http.check.status[0]", []string{"workload.http.check={status: [200]}"}},
	"PubSubBus.settle":        {pubsubPlan, "workload.pubsub.settle", nil},
	"PubSub.body_bytes":       {pubsubPlan, "workload.pubsub.body_bytes", nil},
	"PubSub.timeout":          {pubsubPlan, "workload.pubsub.timeout", nil},
	"Probe.rate":              {pubsubPlan, "probe.rate", nil},
	"Probe.timeout":           {pubsubPlan, "probe.timeout", nil},
	"Prometheus.settle":       {basePlan, "prometheus.settle", []string{`prometheus={query: 'http://h:9090', metrics: {a: up}}`}},
	"Agents.local":            {basePlan, "fleets.target.agents.local", nil},
	"Agents.max_clock_offset": {basePlan, "fleets.target.agents.max_clock_offset", []string{"fleets.target.agents.local=1"}},
}

// TestBoundsAreWhatValidationChecks: every key of Bounds is refused just
// outside its range and accepted at its ends, so the table (what the docs
// and the schema state) and the checks agree.
func TestBoundsAreWhatValidationChecks(t *testing.T) {
	for key, b := range Bounds {
		tc, ok := boundCases[key]
		if !ok {
			t.Errorf("Bounds[%q] has no test case", key)
			continue
		}
		t.Run(key, func(t *testing.T) {
			step := 1.0
			if b.Duration {
				step = float64(time.Nanosecond)
			}
			check := func(x float64, valid bool) {
				t.Helper()
				sets := append(append([]string(nil), tc.extra...), tc.path+"="+b.Format(x))
				p := mustParse(t, tc.src, sets...)
				got := problemsAt(p, tc.path)
				if valid && len(got) > 0 {
					t.Errorf("%s=%s refused: %s", tc.path, b.Format(x), strings.Join(got, "; "))
				}
				if !valid && len(got) == 0 {
					t.Errorf("%s=%s accepted; the bound is %s", tc.path, b.Format(x), b)
				}
				if !valid && x > b.Max && !strings.Contains(strings.Join(got, "; "), b.Format(b.Max)) {
					t.Errorf("%s=%s: %s; want the bound %s named", tc.path, b.Format(x), strings.Join(got, "; "), b.Format(b.Max))
				}
			}
			check(b.Max, true)
			check(b.Max+step, false)
			check(b.Min, !b.MinExclusive)
			if !b.MinExclusive {
				check(b.Min-step, false)
			}
		})
	}
}

// TestLoadParamBounds: every load parameter's start and max have a bound,
// named when a plan goes over it.
func TestLoadParamBounds(t *testing.T) {
	plans := map[string]string{WorkloadHTTP: basePlan, WorkloadPubSub: pubsubPlan}
	for _, lp := range LoadParams {
		if !(lp.Max > 0) {
			t.Errorf("%s (%s) has no bound", lp.Name, lp.Workload)
			continue
		}
		src, ok := plans[lp.Workload]
		if !ok {
			continue // locust: checked below
		}
		idx := -1
		p := mustParse(t, src)
		for i, par := range p.Parameters {
			if par.Name == lp.Name {
				idx = i
			}
		}
		if idx < 0 {
			t.Fatalf("the %s test plan does not ramp %s", lp.Workload, lp.Name)
		}
		path := "parameters[" + itoa(idx) + "]"
		at := mustParse(t, src, path+".start=1", path+".max="+formatNumber(lp.Max))
		if got := problemsAt(at, path+".max"); len(got) > 0 {
			t.Errorf("%s max at its bound refused: %v", lp.Name, got)
		}
		over := mustParse(t, src, path+".start="+formatNumber(lp.Max*10), path+".max="+formatNumber(lp.Max*10))
		for _, k := range []string{".start", ".max"} {
			got := strings.Join(problemsAt(over, path+k), "; ")
			if !strings.Contains(got, "at most "+formatNumber(lp.Max)) {
				t.Errorf("%s%s over its bound: %q, want the bound %s", lp.Name, k, got, formatNumber(lp.Max))
			}
		}
	}
	locust := mustParse(t, basePlan, "workload.engine=locust", "workload.http=null", "workload.locust={locustfile: x.py}",
		"workload.arrival=", "parameters[0]={name: users, start: 1e7, max: 1e7}", "parameters[1]={name: spawn_rate, start: 1e6, max: 1e6}")
	for path, want := range map[string]string{"parameters[0].max": "at most 1000000", "parameters[1].max": "at most 100000 users/s"} {
		if got := strings.Join(problemsAt(locust, path), "; "); !strings.Contains(got, want) {
			t.Errorf("locust %s: %q, want %q", path, got, want)
		}
	}
}

// TestAbsurdValuesAreRefusedAtPlanTime: the values issue 19 found running
// (a rate that hung the pacer, a hold that ran out of memory, a billion
// connections) are refused with their bound.
func TestAbsurdValuesAreRefusedAtPlanTime(t *testing.T) {
	for _, tc := range []struct{ set, path, want string }{
		{"parameters.rate.max=1e20", "parameters[0].max", "1e+20 is over the bound of rate: at most 100000000 requests/s"},
		{"ramp.hold=2000000h", "ramp.hold", "2000000h0m0s is over the bound: at most 24h0m0s"},
		{"parameters.connections.max=1e9", "parameters[1].max", "1000000000 is over the bound of connections: at most 1000000"},
	} {
		p := mustParse(t, basePlan, tc.set)
		if got := strings.Join(problemsAt(p, tc.path), "; "); !strings.Contains(got, tc.want) {
			t.Errorf("--set %s: %q, want %q", tc.set, got, tc.want)
		}
	}
	// Written in the file too.
	src := strings.Replace(basePlan, "  - { name: rate, start: 250, max: 64000 }", "  - { name: rate, start: 1e20, max: 1e20 }", 1)
	p := mustParse(t, src)
	if got := strings.Join(problemsAt(p, "parameters[0].start"), "; "); !strings.Contains(got, "(line ") || !strings.Contains(got, "at most 100000000") {
		t.Errorf("rate 1e20 in the file: %q", got)
	}
}

// TestOverflowingNumbersSaySo: a number too large for its field is told so,
// with the field's bound, not called "not an integer".
func TestOverflowingNumbersSaySo(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"ramp.max_steps=99999999999999999999", `ramp.max_steps: "99999999999999999999" is too large for an integer (at most 9223372036854775807); allowed here: 1 … 10000`},
		{"ramp.confirm=9223372036854775808", `ramp.confirm: "9223372036854775808" is too large for an integer`},
		{"ramp.refine=0x1ffffffffffffffff", `ramp.refine: "0x1ffffffffffffffff" is too large for an integer`},
		{"ramp.max_steps=-99999999999999999999", `ramp.max_steps: "-99999999999999999999" is too large for an integer`},
		{"fleets.target.processes[0].replicas=1e30", `fleets.target.processes[0].replicas: "1e30" is too large for an integer`},
		{"ramp.hold=3000000h", `ramp.hold: "3000000h" is too long for a duration (at most 2562047h47m16.854775807s); allowed here: > 0s and at most 24h0m0s`},
		{"ramp.factor=1e400", `ramp.factor: "1e400" is too large for a number`},
		{"parameters.rate.max=1e999", `parameters[0].max: "1e999" is too large for a number`},
	} {
		_, err := Parse([]byte(basePlan), "test.yaml", []string{tc.set})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--set %s: %v\nwant %q", tc.set, err, tc.want)
		}
	}
	// Not numbers at all keep their message.
	for _, tc := range []struct{ set, want string }{
		{"ramp.max_steps=lots", `"lots" is not an integer`},
		{"ramp.max_steps=2.5", `"2.5" is not an integer`},
		{"ramp.hold=5 s", `"5 s" is not a duration`},
		{"ramp.factor=two", `"two" is not a number`},
	} {
		_, err := Parse([]byte(basePlan), "test.yaml", []string{tc.set})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "too") {
			t.Errorf("--set %s: %v\nwant %q", tc.set, err, tc.want)
		}
	}
}

// TestSchemaStatesTheBounds: the generated schema carries every bound, as
// minimum/maximum for numbers and in the description of durations and load
// parameters.
func TestSchemaStatesTheBounds(t *testing.T) {
	b, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Definitions map[string]struct {
			Properties map[string]map[string]any `json:"properties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	for key, bd := range Bounds {
		typ, name, _ := strings.Cut(key, ".")
		if typ == "PubSubBus" {
			typ = "PubSub" // inline in PubSub and Probe
		}
		prop := s.Definitions[typ].Properties[name]
		if prop == nil {
			t.Errorf("schema has no %s", key)
			continue
		}
		if desc, _ := prop["description"].(string); !strings.Contains(desc, "allowed: "+bd.String()) {
			t.Errorf("schema %s description %q does not state %s", key, desc, bd)
		}
		num := prop
		if items, ok := prop["items"].(map[string]any); ok {
			num = items // a list of numbers: each is bounded
		}
		if !bd.Duration && num["maximum"] != bd.Max {
			t.Errorf("schema %s maximum %v, want %g", key, num["maximum"], bd.Max)
		}
	}
	if desc, _ := s.Definitions["Parameter"].Properties["max"]["description"].(string); !strings.Contains(desc, "rate 100000000 requests/s (builtin/http)") {
		t.Errorf("schema parameters max: %q", desc)
	}
}

// TestEveryNumberHasABound: every number a plan's types hold (an integer, a
// float or a duration) has a bound in Bounds, or is a load parameter's
// start and max (LoadParams): a key added without one fails here.
func TestEveryNumberHasABound(t *testing.T) {
	loadParams := map[string]bool{"Parameter.start": true, "Parameter.max": true, "Plan.version": true}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == durationType || seen[typ] {
			return
		}
		seen[typ] = true
		idx, names := fieldsOf(typ)
		for _, name := range names {
			owner := typ // the type declaring the field (an inline one's)
			for _, i := range idx[name][:len(idx[name])-1] {
				owner = owner.Field(i).Type
			}
			f := typ.FieldByIndex(idx[name])
			key := owner.Name() + "." + name
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			switch {
			case ft == durationType, ft.Kind() == reflect.Int, ft.Kind() == reflect.Int64, ft.Kind() == reflect.Float64:
				if _, ok := Bounds[key]; !ok && !loadParams[key] {
					t.Errorf("%s is a number without a bound: add it to plan.Bounds (and docs/plan.md)", key)
				}
			default:
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeOf(Plan{}))
}
