package agents

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []Endpoint
		err  string
	}{
		{"", nil, ""},
		{"http://10.0.0.5:7070", []Endpoint{{Name: "10.0.0.5:7070", URL: "http://10.0.0.5:7070"}}, ""},
		{"http://10.0.0.5:7070/, https://gen-2:7070\n http://[::1]:7070", []Endpoint{
			{Name: "10.0.0.5:7070", URL: "http://10.0.0.5:7070"}, {Name: "gen-2:7070", URL: "https://gen-2:7070"}, {Name: "[::1]:7070", URL: "http://[::1]:7070"}}, ""},
		{`["http://a:1", {"name": "b", "url": "http://b:2"}]`, []Endpoint{{Name: "a:1", URL: "http://a:1"}, {Name: "b", URL: "http://b:2"}}, ""},
		{`{"worker-1": "http://a:1", "worker-0": "http://b:2"}`, []Endpoint{{Name: "worker-1", URL: "http://a:1"}, {Name: "worker-0", URL: "http://b:2"}}, ""},
		{"http://a", nil, `agent "http://a": an agent's address is http://HOST:PORT`},
		{"ftp://a:1", nil, "an agent's address is"},
		{"http://u:p@a:1", nil, "an agent's address is"},
		{"http://a:1/path", nil, "an agent's address is"},
		{`[1]`, nil, `agent list [0]: want a URL`},
		{`{"a": 1}`, nil, "want a URL"},
		{`[`, nil, "agent list"},
	} {
		got, err := ParseList(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func FuzzParseList(f *testing.F) {
	for _, s := range []string{"http://a:1", `["http://a:1"]`, `{"w": "https://b:2"}`, "a b,c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		eps, err := ParseList(s)
		if err != nil {
			return
		}
		for _, e := range eps {
			if e.Name == "" || !(strings.HasPrefix(e.URL, "http://") || strings.HasPrefix(e.URL, "https://")) {
				t.Fatalf("%q: endpoint %+v", s, e)
			}
		}
	})
}
