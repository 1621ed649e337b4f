package plan

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestRender(t *testing.T) {
	data := TemplateData{
		Static: map[string]any{"nofile": 1024, "ratio": 0.5, "big": 1e6, "name": "bus"},
		Params: map[string]float64{"rate": 8000, "big": 1e6, "frac": 12.5},
		Fleets: map[string]map[string]string{"target": {"endpoint": "http://127.0.0.1:9"}},
		Run:    RunInfo{ID: "20261127T063000Z-x", Dir: "runs/20261127T063000Z-x"},
	}
	tests := []struct {
		in, want, err string
	}{
		{"plain text", "plain text", ""},
		{"{{ .static.nofile }}", "1024", ""},
		{"{{ .static.ratio }} {{ .static.big }}", "0.5 1000000", ""},
		{"rate={{ .params.rate }}", "rate=8000", ""},
		{"{{ .params.big }} {{ .params.frac }}", "1000000 12.5", ""},
		{"{{ .fleets.target.endpoint }}/publish", "http://127.0.0.1:9/publish", ""},
		{"{{ .run.id }} {{ .run.dir }}", "20261127T063000Z-x runs/20261127T063000Z-x", ""},
		{"{{ .static.nope }}", "", `map has no entry for key "nope"`},
		{"{{ .params.nope }}", "", `map has no entry for key "nope"`},
		{"{{ .fleets.target.nope }}", "", `map has no entry for key "nope"`},
		{"{{ .fleets.nope.x }}", "", `map has no entry for key "nope"`},
		{"{{ .static.nofile ", "", "unclosed action"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Render(tt.in, data, NewPorts())
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Render = %q, %v; want error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Render = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestRenderPorts(t *testing.T) {
	ports := NewPorts()
	a, err := Render(`127.0.0.1:{{ port "bus" }}`, TemplateData{}, ports)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Render(`http://127.0.0.1:{{ port "bus" }}/healthz`, TemplateData{}, ports)
	if err != nil {
		t.Fatal(err)
	}
	port := ports.All()["bus"]
	if port == 0 || a != fmt.Sprintf("127.0.0.1:%d", port) || b != fmt.Sprintf("http://127.0.0.1:%d/healthz", port) {
		t.Errorf("same name must give the same port: %q %q %v", a, b, ports.All())
	}
	if _, err := Render(`{{ port "bus" }}`, TemplateData{}, nil); err == nil || !strings.Contains(err.Error(), "no port allocator") {
		t.Errorf("port without allocator: %v", err)
	}
}

func TestPorts(t *testing.T) {
	ports := NewPorts()
	const n = 20
	var wg sync.WaitGroup
	got := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Names repeat: i and i+10 share a name.
			got[i], errs[i] = ports.Get(fmt.Sprintf("p%d", i%10))
		}()
	}
	wg.Wait()
	seen := map[int]string{}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		name := fmt.Sprintf("p%d", i%10)
		if other, ok := seen[got[i]]; ok && other != name {
			t.Errorf("port %d given to %s and %s", got[i], other, name)
		}
		seen[got[i]] = name
	}
	all := ports.All()
	if len(all) != 10 {
		t.Errorf("All() has %d names, want 10: %v", len(all), all)
	}
	all["p0"] = -1 // a copy: must not change the allocator
	if p, _ := ports.Get("p0"); p == -1 {
		t.Error("All() returned the internal map")
	}
	// The port is free to bind on loopback right after allocation.
	p, err := ports.Get("bind-me")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatalf("allocated port %d is not free: %v", p, err)
	}
	l.Close()
}

func TestCheckTemplate(t *testing.T) {
	sc := refScope{
		static: map[string]any{"nofile": 1024},
		params: map[string]bool{"rate": true},
		fleets: map[string]*Fleet{
			"target": {Provider: ProviderLocal, Outputs: map[string]string{"endpoint": "x"}},
			"gens":   {Provider: ProviderTerraform},
		},
	}
	tests := []struct {
		in   string
		want []string
	}{
		{"no template", nil},
		{`{{ port "bus" }} {{ .static.nofile }} {{ .params.rate }} {{ .fleets.target.endpoint }} {{ .run.id }}`, nil},
		{"{{ .fleets.gens.whatever }}", nil},
		{"{{ .fleets.tagret.endpoint }}", []string{`.fleets.tagret.endpoint: no fleet "tagret"; did you mean "target"?`}},
		{"{{ .fleets.target }}", []string{`.fleets.target: name a fleet and an output, e.g. .fleets.target.endpoint`}},
		{"{{ .static.nofile }}{{ .static.x }}{{ .static.x }}", []string{`.static.x: no static parameter "x"`}},
		{"{{ range .static.nofile }}{{ .anything }}{{ end }}", nil},
		{"{{ with .params.rat }}{{ . }}{{ end }}", []string{`.params.rat: no parameter "rat" is declared; did you mean "rate"?`}},
		{"{{ . }}", nil},
		{"{{ .Static.nofile }}", []string{`.Static.nofile: unknown reference; templates see .static, .params, .fleets, .run; did you mean "static"?`}},
		{"{{ .static.nofile", []string{"template does not parse: unclosed action"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := checkTemplate(tt.in, sc)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestPortsHeldUntilRelease(t *testing.T) {
	ports := NewPorts()
	bindable := func(port int) bool {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
	ports.Hold()
	a, err := ports.Get("a")
	if err != nil {
		t.Fatal(err)
	}
	// Held: another program asking the kernel for a free port cannot get it,
	// and binding it fails.
	if bindable(a) {
		t.Fatalf("port %d of a held allocation could be bound by another socket", a)
	}
	ports.Release()
	if !bindable(a) {
		t.Errorf("port %d still taken after Release", a)
	}
	if again, _ := ports.Get("a"); again != a {
		t.Errorf("Get after Release = %d, want %d", again, a)
	}
	// After Release, allocations are not held (listen-then-close).
	b, err := ports.Get("b")
	if err != nil {
		t.Fatal(err)
	}
	if b == a || !bindable(b) {
		t.Errorf("port %d allocated after Release is held or reused (a=%d)", b, a)
	}
	// Render allocates through the same allocator.
	ports.Hold()
	out, err := Render(`{{ port "c" }}`, TemplateData{}, ports)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := strconv.Atoi(out)
	if bindable(c) {
		t.Errorf("port %d rendered while holding is not held", c)
	}
	ports.Release()
}
