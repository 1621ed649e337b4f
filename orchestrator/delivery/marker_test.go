package delivery

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestMarkerRoundTrip(t *testing.T) {
	m := Message{Src: "load-1-2", Pub: 7, Seq: 42, Sent: 1234567 * time.Microsecond}
	b := AppendMarker(nil, m)
	if want := "loadramp:load-1-2:7:0000000042:000001234567;"; string(b) != want {
		t.Fatalf("marker %q, want %q", b, want)
	}
	if len(b) != MarkerLen(m.Src, m.Pub) {
		t.Errorf("MarkerLen %d, marker %d bytes", MarkerLen(m.Src, m.Pub), len(b))
	}
	// Every marker of one source and publisher has the same length.
	if n := len(AppendMarker(nil, Message{Src: m.Src, Pub: 7, Seq: 9_999_999_999, Sent: 10 * time.Hour})); n != len(b) {
		t.Errorf("a later marker has %d bytes, want %d", n, len(b))
	}
	got, kind := Find(b)
	if kind != Ours || got != m {
		t.Errorf("Find = %+v, %v", got, kind)
	}
	if p, q, s, k, _ := FindFrom(b, "load-1-2"); k != Ours || p != 7 || q != 42 || s != m.Sent {
		t.Errorf("FindFrom = %d %d %v %v", p, q, s, k)
	}
	if _, _, _, k, _ := FindFrom(b, "load-1"); k != Other {
		t.Errorf("FindFrom of a prefix of the source: %v, want Other", k)
	}
}

// The marker is found whatever surrounds it: an envelope, a bus's own
// wrapping, JSON escaping, a NATS MSG frame.
func TestFindInEnvelopes(t *testing.T) {
	m := Message{Src: "probe-ab12-3", Pub: 0, Seq: 5, Sent: 2 * time.Second}
	mk := string(AppendMarker(nil, m))
	inner, _ := json.Marshal(map[string]string{"data": mk, "x": `"quoted" \ back`})
	wrapped, _ := json.Marshal(map[string]any{"channel": "t", "payload": string(inner)}) // escaped twice
	for name, data := range map[string]string{
		"alone":       mk,
		"padded":      mk + "xxxxxxxxxxxx",
		"json field":  `{"data":"` + mk + `"}`,
		"json escape": string(wrapped),
		"nats msg":    "MSG load 1 " + "47" + "\r\n" + mk + "\r\n",
		"after noise": "loadramp: hello loadramp:x:1: " + mk,
		"multi-line":  "id: 1\n" + mk + "\nend",
	} {
		got, kind := Find([]byte(data))
		if kind != Ours || got != m {
			t.Errorf("%s: Find(%q) = %+v, %v", name, data, got, kind)
		}
		if _, q, _, k, _ := FindFrom([]byte(data), m.Src); k != Ours || q != 5 {
			t.Errorf("%s: FindFrom = %d, %v", name, q, k)
		}
	}
}

func TestFindForeignAndMangled(t *testing.T) {
	mk := string(AppendMarker(nil, Message{Src: "s", Pub: 1, Seq: 2, Sent: time.Millisecond}))
	for data, want := range map[string]Kind{
		"":                                   Foreign,
		"hello":                              Foreign,
		`{"src":"a","seq":1,"t":2}`:          Foreign,
		"loadramp":                           Foreign,
		"loadramp:":                          Mangled,
		mk[:len(mk)-1]:                       Mangled, // truncated: no ';'
		mk[:len(mk)-5]:                       Mangled,
		strings.Replace(mk, ":1:", ":x:", 1): Mangled,
		"loadramp:s:1:2:" + strings.Repeat("9", 30) + ";": Mangled,
		"loadramp:" + strings.Repeat("a", 65) + ":1:2:3;": Mangled,
		"loadramp:other:1:2:3;":                           Other,
		"loadramp:broken " + mk:                           Ours,
	} {
		_, _, _, k, _ := FindFrom([]byte(data), "s")
		if k != want {
			t.Errorf("FindFrom(%q) = %v, want %v", data, k, want)
		}
	}
}

// FuzzFind: no input crashes the finder; a marker it finds writes back to
// itself; and a marker put anywhere in arbitrary data is found, unless the
// data before it holds a marker of its own.
func FuzzFind(f *testing.F) {
	mk := AppendMarker(nil, Message{Src: "load-4-1", Pub: 3, Seq: 11, Sent: 5 * time.Second})
	f.Add([]byte(""), []byte(""))
	f.Add([]byte(`{"data":"`), []byte(`"}`))
	f.Add([]byte("loadramp:"), []byte(";"))
	f.Add([]byte("loadramp:x:1:2:"), []byte("xxxx"))
	f.Add(mk[:20], mk[20:])
	f.Add([]byte("MSG t 1 47\r\n"), []byte("\r\n"))
	f.Fuzz(func(t *testing.T, before, after []byte) {
		for _, data := range [][]byte{before, after, append(append([]byte(nil), before...), after...)} {
			m, kind := Find(data)
			p, q, s, k, _ := FindFrom(data, "load-4-1")
			if kind == Ours {
				again, k2 := Find(AppendMarker(nil, m))
				if k2 != Ours || again.Src != m.Src || again.Pub != m.Pub || again.Seq%1e10 != m.Seq%1e10 {
					t.Fatalf("%q: found %+v, which writes back as %+v, %v", data, m, again, k2)
				}
			}
			if k == Ours && (kind != Ours || p < 0 || s < 0) {
				t.Fatalf("%q: FindFrom found %d %d %v, Find %v", data, p, q, s, kind)
			}
			if kind == Foreign && bytes.Contains(data, prefix) {
				t.Fatalf("%q: holds the prefix, yet Foreign", data)
			}
		}
		// Put anywhere, the marker is found, with its values, unless the data
		// before it holds a marker of the same source (found first).
		data := append(append(append([]byte(nil), before...), mk...), after...)
		if _, kind := Find(data); kind != Ours {
			t.Fatalf("%q: no marker found (%v)", data, kind)
		}
		if _, _, _, k, _ := FindFrom(before, "load-4-1"); k != Ours {
			if p, q, s, k, _ := FindFrom(data, "load-4-1"); k != Ours || p != 3 || q != 11 || s != 5*time.Second {
				t.Fatalf("%q: FindFrom = %d %d %v %v, want the marker put in", data, p, q, s, k)
			}
		}
		// JSON-escaped inside a string, it is found just the same.
		esc, _ := json.Marshal(string(data))
		if _, kind := Find(esc); kind != Ours {
			t.Fatalf("%s: the JSON-escaped marker was not found", esc)
		}
	})
}

func TestEachFromSeveralInOneEvent(t *testing.T) {
	var frame []byte
	for i := uint64(1); i <= 3; i++ {
		mk := AppendMarker(nil, Message{Src: "s", Pub: int(i), Seq: i, Sent: time.Duration(i) * time.Second})
		frame = append(frame, "MSG t 1 42\r\n"...)
		frame = append(frame, mk...)
		frame = append(frame, mk...) // printed twice by its body: one message
		frame = append(frame, "\r\n"...)
	}
	frame = append(frame, "PING\r\n"...)
	var got []uint64
	if k := EachFrom(frame, "s", func(p int, q uint64, s time.Duration) {
		if uint64(p) != q || s != time.Duration(q)*time.Second {
			t.Errorf("marker %d %d %v", p, q, s)
		}
		got = append(got, q)
	}); k != Ours || len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Errorf("EachFrom = %v, %v", k, got)
	}
	if k := EachFrom([]byte("INFO {}"), "s", func(int, uint64, time.Duration) { t.Error("called") }); k != Foreign {
		t.Errorf("EachFrom(foreign) = %v", k)
	}
}

// The cost of a message on each side: writing one through an envelope, and
// finding the marker in a delivered event.
func BenchmarkBodyAppend(b *testing.B) {
	tm, err := ParseTemplate("body", `{"room":{{ json .topic }},"text":"{{ .marker }}"}`)
	if err != nil {
		b.Fatal(err)
	}
	body, err := NewBody(tm, Vars{Index: 3, Topic: "room3", HasTopic: true}, "load-123-456789-7", 3, 256)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, body.Len())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = body.Append(buf[:0], uint64(i), time.Duration(i)*time.Microsecond)
	}
}

func BenchmarkFindFrom(b *testing.B) {
	event := []byte(`{"channel":"room3","payload":"{\"room\":\"room3\",\"text\":\"` +
		string(AppendMarker(nil, Message{Src: "load-123-456789-7", Pub: 3, Seq: 42, Sent: time.Second})) + `xxxxxxxx\"}"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, k, _ := FindFrom(event, "load-123-456789-7"); k != Ours {
			b.Fatal(k)
		}
	}
}
