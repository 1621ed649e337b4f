package delivery

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func mustTemplate(t *testing.T, text string) *Template {
	t.Helper()
	tm, err := ParseTemplate("body", text)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestBodyEnvelopes(t *testing.T) {
	v := Vars{Index: 3, Topic: "load-3", HasTopic: true}
	for _, tt := range []struct {
		name, tmpl string
		size       int
		check      func(string) bool
	}{
		{"default", DefaultBody, 0, func(s string) bool {
			return strings.HasPrefix(s, `{"loadramp":"loadramp:src-1:3:`) && strings.HasSuffix(s, `;"}`)
		}},
		{"whole body", "{{ .marker }}", 0, func(s string) bool { return strings.HasPrefix(s, "loadramp:") }},
		{"json field with the topic", `{"channel":{{ json .topic }},"data":{"m":"{{ .marker }}"}}`, 0,
			func(s string) bool { return strings.HasPrefix(s, `{"channel":"load-3","data":{"m":"loadramp:`) }},
		{"nats pub: the marker's length", "PUB {{ .topic }} {{ len .marker }}\r\n{{ .marker }}\r\n", 0, func(s string) bool {
			var topic string
			var n int
			if _, err := fmt.Sscanf(s, "PUB %s %d\r\n", &topic, &n); err != nil {
				return false
			}
			_, payload, _ := strings.Cut(s, "\r\n")
			return topic == "load-3" && len(strings.TrimSuffix(payload, "\r\n")) == n
		}},
		{"twice", "{{ .marker }}|{{ .marker }}", 0, func(s string) bool { a, b, _ := strings.Cut(s, "|"); return a == b }},
		{"padded", DefaultBody, 300, func(s string) bool { return len(s) == 300 && strings.Contains(s, ";xxxx") }},
		{"padded nats", "PUB t {{ len .marker }}\r\n{{ .marker }}\r\n", 1000, func(s string) bool {
			var n int
			_, _ = fmt.Sscanf(s, "PUB t %d\r\n", &n)
			_, payload, _ := strings.Cut(s, "\r\n")
			return len(s) >= 1000 && len(s) <= 1002 && len(strings.TrimSuffix(payload, "\r\n")) == n
		}},
	} {
		b, err := NewBody(mustTemplate(t, tt.tmpl), v, "src-1", 3, tt.size)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		for _, seq := range []uint64{1, 77, 1 << 40} {
			sent := time.Duration(seq%100000) * time.Millisecond
			msg := b.Append(nil, seq, sent)
			if len(msg) != b.Len() {
				t.Errorf("%s: message of %d bytes, Len %d", tt.name, len(msg), b.Len())
			}
			if !tt.check(string(msg)) {
				t.Errorf("%s: message %q", tt.name, msg)
			}
			p, q, s, k, _ := FindFrom(msg, "src-1")
			if k != Ours || p != 3 || q != seq%1e10 || s != sent {
				t.Errorf("%s: FindFrom(%q) = %d %d %v %v", tt.name, msg, p, q, s, k)
			}
		}
	}
}

func TestBodyRefusals(t *testing.T) {
	v := Vars{Index: 0, Topic: "t", HasTopic: true}
	for tmpl, want := range map[string]string{
		`{"data":"hello"}`:             "the body must print {{ .marker }} unchanged",
		`{{ urlquery .marker }}`:       "the body must print {{ .marker }} unchanged",
		`{{ slice .marker 0 20 }}`:     "the body must print",
		`{{ printf "%.30s" .marker }}`: "the body must print",
		`{{ .nope }}`:                  `map has no entry for key "nope"`,
	} {
		if _, err := NewBody(mustTemplate(t, tmpl), v, "s", 0, 0); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", tmpl, err, want)
		}
	}
	if _, err := NewBody(mustTemplate(t, DefaultBody), v, "bad:src", 0, 0); err == nil {
		t.Error("a source with ':' was accepted")
	}
}

func TestParseConfirm(t *testing.T) {
	for in, want := range map[string]Confirm{
		"":                       {Mode: ConfirmNone},
		"none":                   {Mode: ConfirmNone},
		"first-event":            {Mode: ConfirmFirstEvent},
		`comment ": subscribed"`: {Mode: ConfirmComment, Prefix: ": subscribed"},
		"comment : subscribed":   {Mode: ConfirmComment, Prefix: ": subscribed"},
		"comment PONG":           {Mode: ConfirmComment, Prefix: "PONG"},
		`comment "+OK\r\n"`:      {Mode: ConfirmComment, Prefix: "+OK\r\n"},
	} {
		got, err := ParseConfirm(in)
		if err != nil || got != want {
			t.Errorf("ParseConfirm(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if again, err := ParseConfirm(got.String()); err != nil || again != got {
			t.Errorf("%+v writes as %q, which reads as %+v, %v", got, got.String(), again, err)
		}
	}
	for _, in := range []string{"comment", "comments x", "first", `comment "x`, "on"} {
		if _, err := ParseConfirm(in); err == nil {
			t.Errorf("ParseConfirm(%q) accepted", in)
		}
	}
}
