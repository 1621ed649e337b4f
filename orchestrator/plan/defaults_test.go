package plan

import (
	"reflect"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	p := mustParse(t, basePlan)
	want := Ramp{Factor: 2, Order: OrderRoundRobin, Warmup: Duration(5 * time.Second), Hold: Duration(5 * time.Second),
		Cooldown: Duration(2 * time.Second), Confirm: 1, Refine: 3, MaxSteps: 40, InterferenceReruns: 2}
	if p.Ramp != want {
		t.Errorf("ramp = %+v\nwant   %+v", p.Ramp, want)
	}
	if p.Workload.HTTP.Method != "POST" {
		t.Errorf("method with a body = %q, want POST", p.Workload.HTTP.Method)
	}
	if p.Workload.HTTP.Timeout.D() != 5*time.Second || p.Workload.Arrival != ArrivalConstant {
		t.Errorf("workload = %+v / %+v", p.Workload, p.Workload.HTTP)
	}
	if !reflect.DeepEqual(p.Report.Formats, []string{"html", "md", "csv", "json", "junit", "xlsx"}) {
		t.Errorf("formats = %q", p.Report.Formats)
	}
	if got := p.Fleets["target"].Processes[0].ReadyTimeout.D(); got != 30*time.Second {
		t.Errorf("ready_timeout = %v", got)
	}

	// Without a body the method is GET; a fleet with processes is local.
	q := mustParse(t, replace(t, "    provider: local\n", ""), "workload.http.body=")
	if q.Workload.HTTP.Method != "GET" {
		t.Errorf("method without a body = %q, want GET", q.Workload.HTTP.Method)
	}
	if q.Fleets["target"].Provider != ProviderLocal {
		t.Errorf("provider = %q, want local", q.Fleets["target"].Provider)
	}

	// Explicit zeros are kept; ApplyDefaults is idempotent.
	r := mustParse(t, replace(t, "  hold: 5s\n", "  hold: 5s\n  warmup: 0s\n  confirm: 0\n  refine: 0\n  cooldown: 0s\n"))
	if r.Ramp.Warmup != 0 || r.Ramp.Confirm != 0 || r.Ramp.Refine != 0 || r.Ramp.Cooldown != 0 {
		t.Errorf("explicit zeros replaced by defaults: %+v", r.Ramp)
	}
	before := r.Ramp
	r.ApplyDefaults()
	if r.Ramp != before {
		t.Errorf("second ApplyDefaults changed %+v to %+v", before, r.Ramp)
	}

	// A plan built in code: zero values are left out, so they get defaults.
	var c Plan
	c.ApplyDefaults()
	if c.Ramp.Confirm != 1 || c.Ramp.Hold.D() != 20*time.Second || c.Workload.Engine != EngineBuiltin {
		t.Errorf("code-built plan defaults: %+v %+v", c.Ramp, c.Workload)
	}
}
