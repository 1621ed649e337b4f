package plan

import (
	"strings"
	"testing"
	"text/template"
)

// stage2 renders a client template as package delivery does.
func stage2(t *testing.T, text string, client map[string]any) string {
	t.Helper()
	tm, err := template.New("c").Option("missingkey=error").Funcs(ClientFuncs()).Parse(text)
	if err != nil {
		t.Fatalf("client template %q: %v", text, err)
	}
	var b strings.Builder
	if err := tm.Execute(&b, client); err != nil {
		t.Fatalf("client template %q: %v", text, err)
	}
	return b.String()
}

func TestDeferClient(t *testing.T) {
	data := TemplateData{
		Static: map[string]any{"topics": float64(4), "tricky": `{{ .topic }} "quoted"`, "rooms": []any{"a", "b"}},
		Fleets: map[string]map[string]string{"target": {"endpoint": "http://10.0.0.5:8080"}},
		Run:    RunInfo{ID: "r1"},
	}
	client := map[string]any{ClientIndex: 6, ClientTopic: "room-2", ClientMarker: "loadramp:s:0:1:2;"}
	for _, tt := range []struct{ text, want string }{
		{"plain text", "plain text"},
		{"{{ .fleets.target.endpoint }}/sub/{{ .topic }}", "http://10.0.0.5:8080/sub/room-2"},
		{"room-{{ mod .index .static.topics }}", "room-2"},
		{"{{ .static.tricky }}|{{ .topic }}", `{{ .topic }} "quoted"|room-2`}, // a plan value is never read as a template
		{`{"run":{{ json .run.id }},"m":"{{ .marker }}","t":{{ json .topic }}}`, `{"run":"r1","m":"loadramp:s:0:1:2;","t":"room-2"}`},
		{"PUB {{ .topic }} {{ len .marker }}\r\n{{ .marker }}\r\n", "PUB room-2 17\r\nloadramp:s:0:1:2;\r\n"},
		{"{{ if eq .index 6 }}six{{ else }}{{ .run.id }}{{ end }}", "six"},
		{"{{ if .static.topics }}{{ .topic }}{{ end }}", "room-2"},
		{"{{ range .static.rooms }}{{ . }}-{{ $.topic }};{{ end }}", "a-room-2;b-room-2;"},
		{"{{ with .topic }}[{{ . }}@{{ $.fleets.target.endpoint }}]{{ end }}", "[room-2@http://10.0.0.5:8080]"},
		{"{{- .topic -}} {{/* a comment */}} {{ add .index 1 }}", "room-2 7"},
		{"{{ if eq (mod .index .static.topics) 2 }}two{{ end }}", "two"},
		{`{{ printf "%s/%s" .fleets.target.endpoint .topic }}`, "http://10.0.0.5:8080/room-2"},
		{`{{ .topic | printf "%s-%s" .run.id }}`, "r1-room-2"},
	} {
		d, err := DeferClient(tt.text)
		if err != nil {
			t.Errorf("DeferClient(%q): %v", tt.text, err)
			continue
		}
		s1, err := Render(d, data, nil)
		if err != nil {
			t.Errorf("%q: render %q: %v", tt.text, d, err)
			continue
		}
		if got := stage2(t, s1, client); got != tt.want {
			t.Errorf("%q: got %q, want %q (deferred %q, then %q)", tt.text, got, tt.want, d, s1)
		}
	}
	for text, want := range map[string]string{
		"{{ port .topic }}":          "port takes the plan's values",
		"{{ $x := .topic }}{{ $x }}": "variables are not available",
		"{{ . }}":                    "refers to the whole context",
		`{{ define "x" }}a{{ end }}{{ template "x" }}`: "define and block are not available",
		"{{ .topic ": "template does not parse",
	} {
		if _, err := DeferClient(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DeferClient(%q) = %v, want %q", text, err, want)
		}
	}
}

// FuzzDeferClient: no template crashes the rewrite, and what it rewrites is a
// plan template that parses.
func FuzzDeferClient(f *testing.F) {
	for _, s := range []string{"{{ .fleets.target.endpoint }}/sub/{{ .topic }}", "room-{{ mod .index .static.topics }}",
		`{"m":"{{ .marker }}","t":{{ json .topic }}}`, "{{ if eq .index 6 }}six{{ else }}{{ .run.id }}{{ end }}",
		"{{ range .static.rooms }}{{ . }}-{{ $.topic }};{{ end }}", `{{ .topic | printf "%s-%s" .run.id }}`, "{{ with .topic }}[{{ . }}]{{ end }}",
		"{{{{", "}}{{", `{{ "{{" }}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		d, err := DeferClient(text)
		if err != nil {
			return
		}
		if _, err := template.New("p").Funcs(funcs(nil)).Parse(d); err != nil {
			t.Fatalf("DeferClient(%q) = %q, which does not parse: %v", text, d, err)
		}
	})
}
