package plan

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestExamplePlans loads and validates every plan shipped in plans/.
func TestExamplePlans(t *testing.T) {
	files, err := filepath.Glob("../../plans/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if ext := filepath.Ext(f); ext != ".yaml" && ext != ".yml" {
			continue // locustfiles and other companions
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, err := Load(f, nil)
			if err != nil {
				t.Fatalf("Load:\n%v", err)
			}
			if errs := p.Validate(); len(errs) > 0 {
				t.Fatalf("Validate:\n%v", Errors(errs))
			}
			if want := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)); p.Name != want {
				t.Errorf("name %q; name a plan after its file (%q) so runs are easy to find", p.Name, want)
			}
			if len(p.Schedule()) < 2 {
				t.Errorf("schedule has %d steps", len(p.Schedule()))
			}
		})
	}
	if n == 0 {
		t.Fatal("no plans found in ../../plans")
	}
}

// TestLocalEventbusPlan pins what the bundled example promises: the schedule,
// the ramp settings and a rendered command line.
func TestLocalEventbusPlan(t *testing.T) {
	p, err := Load("../../plans/local-eventbus.yaml", []string{"static.eventbus_nofile=4096"})
	if err != nil {
		t.Fatal(err)
	}
	if errs := p.Validate(); len(errs) > 0 {
		t.Fatalf("Validate:\n%v", Errors(errs))
	}
	r := p.Ramp
	if r.Warmup.String() != "2s" || r.Hold.String() != "5s" || r.Cooldown.String() != "1s" || r.Confirm != 1 || r.Refine != 2 {
		t.Errorf("ramp = %+v", r)
	}
	steps := p.Schedule()
	if len(steps) != 18 || steps[1].Changed != "rate" || steps[2].Changed != "connections" {
		t.Errorf("schedule: %d steps, starting %+v %+v", len(steps), steps[1], steps[2])
	}
	ports := NewPorts()
	data := TemplateData{Static: p.Static}
	var argv []string
	for _, a := range p.Fleets["target"].Processes[0].Command {
		s, err := Render(a, data, ports)
		if err != nil {
			t.Fatal(err)
		}
		argv = append(argv, s)
	}
	got := strings.Join(argv, " ")
	bus := ports.All()["bus"]
	want := "bin/eventbus --listen 127.0.0.1:" + itoa(bus) + " --nofile 4096 --capacity 20000"
	if got != want {
		t.Errorf("command = %q, want %q", got, want)
	}
	endpoint, err := Render(p.Fleets["target"].Outputs["endpoint"], data, ports)
	if err != nil {
		t.Fatal(err)
	}
	data.Fleets = map[string]map[string]string{"target": {"endpoint": endpoint}}
	url, err := Render(p.Workload.HTTP.URL, data, ports)
	if err != nil {
		t.Fatal(err)
	}
	if url != "http://127.0.0.1:"+itoa(bus)+"/publish?topic=load" {
		t.Errorf("url = %q", url)
	}
	if !strings.Contains(string(p.Raw()), "eventbus_nofile: 4096") {
		t.Errorf("Raw does not carry the --set:\n%s", p.Raw())
	}
}

func itoa(i int) string { return formatNumber(float64(i)) }
