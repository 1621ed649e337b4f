package delivery

import (
	"testing"
	"time"
)

func TestMessageRoundTrip(t *testing.T) {
	for _, size := range []int{0, 10, 64, 1000} {
		b := AppendMessage(nil, Message{Src: "load-1-2", Seq: 42, Sent: 1234567 * time.Microsecond}, size)
		if size > 60 && len(b) != size {
			t.Errorf("size %d: got %d bytes", size, len(b))
		}
		m, ok := ParseMessage(b)
		if !ok || m.Src != "load-1-2" || m.Seq != 42 || m.Sent != 1234567*time.Microsecond {
			t.Errorf("size %d: ParseMessage(%s) = %+v, %v", size, b, m, ok)
		}
		if seq, sent, ok := ParseFrom(b, "load-1-2"); !ok || seq != 42 || sent != m.Sent {
			t.Errorf("ParseFrom = %d %v %v", seq, sent, ok)
		}
		if _, _, ok := ParseFrom(b, "load-1"); ok {
			t.Errorf("ParseFrom matched a prefix of the source")
		}
	}
	for _, bad := range []string{"", "hello", `{"src":"a"}`, `{"src":"a","seq":x}`} {
		if _, ok := ParseMessage([]byte(bad)); ok {
			t.Errorf("ParseMessage(%q) ok", bad)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, size := range []int{0, 80} {
		f.Add(AppendMessage(nil, Message{Src: "load-1-2", Seq: 42, Sent: time.Second}, size))
	}
	f.Add([]byte(`{"src":"a","seq":1,"t":`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := ParseMessage(b)
		if !ok {
			return
		}
		again, ok := ParseMessage(AppendMessage(nil, m, 0))
		if !ok || again != m {
			t.Fatalf("%q parsed as %+v, which round-trips to %+v, %v", b, m, again, ok)
		}
	})
}
