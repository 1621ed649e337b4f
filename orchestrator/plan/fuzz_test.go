package plan

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that decoding never panics, that every decoding error is
// reported as Errors, and that a plan that parses and validates marshals to
// YAML that parses back to the same plan.
func FuzzParse(f *testing.F) {
	f.Add([]byte(basePlan))
	f.Add([]byte(basePlan + "prometheus: {query: 'http://h:9090', settle: 2s, metrics: {q: 'max(x)'}}\n"))
	if seeds, err := filepath.Glob("../../plans/*.yaml"); err == nil {
		for _, s := range seeds {
			if b, err := os.ReadFile(s); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("version: 1\nname: x\nstatic: &a {k: *a}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.yaml", nil)
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("error is %T, not Errors: %v", err, err)
			}
			return
		}
		_ = p.Schedule()
		if len(p.Validate()) > 0 {
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("valid plan does not marshal: %v", err)
		}
		q, err := Parse(out, "remarshalled.yaml", nil)
		if err != nil {
			t.Fatalf("re-marshalled plan does not parse: %v\n%s", err, out)
		}
		if errs := q.Validate(); len(errs) > 0 {
			t.Fatalf("re-marshalled plan does not validate: %v\n%s", Errors(errs), out)
		}
		out2, err := q.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("marshal round trip differs:\n%s\n---\n%s", out, out2)
		}
	})
}

// FuzzSet checks that a --set expression never panics and that, when it is
// accepted, Raw parses back to the same plan.
func FuzzSet(f *testing.F) {
	for _, s := range []string{"static.nofile=4096", "ramp.hold=3s", "parameters[0].max=8000",
		"parameters.rate.max=8000", "workload.http.timeout=2s", "ramp.hodl=3s", "report.formats=[json]",
		"fleets.target.processes.bus.env={A: b}", "gates[0]=x", "static.a.b.c=1", "probe={kind: http}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, set string) {
		p, err := Parse([]byte(basePlan), "base.yaml", []string{set})
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("error is %T, not Errors: %v", err, err)
			}
			return
		}
		_ = p.Validate()
		q, err := Parse(p.Raw(), "raw.yaml", nil)
		if err != nil {
			t.Fatalf("Raw after --set %q does not parse: %v\n%s", set, err, p.Raw())
		}
		a, err1 := p.Marshal()
		b, err2 := q.Marshal()
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Fatalf("Raw after --set %q is not the same plan (%v, %v):\n%s\n---\n%s", set, err1, err2, a, b)
		}
	})
}
