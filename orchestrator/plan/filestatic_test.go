package plan

import (
	"strings"
	"testing"
)

func TestStaticValuesInGeneratedFiles(t *testing.T) {
	const nginx = "../../plans/local-nginx.yaml"
	const conf = "fleets.target.processes[1].files.nginx.conf"
	tests := []struct {
		name string
		sets []string
		want string // "" means valid; else "path: message start"
	}{
		{"plain values", []string{"static.nginx_worker_connections=4096"}, ""},
		{"directive injected", []string{`static.nginx_worker_connections=1; } http { server { listen 9; } } events {`},
			conf + `: static.nginx_worker_connections = "1; } http { server { listen 9; } } events {" holds ';'`},
		{"newline", []string{`static.nginx_nofile="1024\nuser nobody"`},
			conf + `: static.nginx_nofile = "1024\nuser nobody" holds '\n'`},
		{"quote", []string{`static.nginx_nofile=1024"`}, conf + `: static.nginx_nofile = "1024\"" holds '"'`},
		{"brace", []string{`static.nginx_nofile=x}`}, conf + `: static.nginx_nofile = "x}" holds '}'`},
		{"a variant", []string{"campaign={variants: [{nginx_nofile: 1024}, {nginx_nofile: '2048;'}]}"},
			conf + `: campaign.variants[1]: static.nginx_nofile = "2048;" holds ';'`},
		{"not used in a file", []string{"static.note=a; b", "workload.http.body={{ .static.note }}"}, ""},
		{"marked raw", []string{`static.extra=gzip on; gzip_types text/plain;`,
			"fleets.target.processes[1].files.extra={{ raw .static.extra }}\n{{ .static.extra | raw }}"}, ""},
		{"raw marks only its own use", []string{`static.extra=gzip on;`,
			"fleets.target.processes[1].files.extra={{ raw .static.extra }} {{ .static.extra }}"},
			`fleets.target.processes[1].files.extra: static.extra = "gzip on;" holds ';'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Load(nginx, tt.sets)
			if err != nil {
				t.Fatal(err)
			}
			got := errStrings(p.Validate())
			if tt.want == "" {
				if len(got) != 0 {
					t.Fatalf("want valid, got:\n%s", strings.Join(got, "\n"))
				}
				return
			}
			path, msg, _ := strings.Cut(tt.want, ": ")
			if len(got) != 1 || !strings.HasPrefix(got[0], path) || !strings.Contains(got[0], msg) || !strings.Contains(got[0], "mark the use raw") {
				t.Errorf("got:\n%s\nwant one problem starting %q and naming the raw marker", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}
