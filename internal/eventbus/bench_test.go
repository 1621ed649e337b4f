package eventbus

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkPublishHandler measures the publish path without the network:
// one topic with one subscriber whose buffer is drained, as under load.
func BenchmarkPublishHandler(b *testing.B) {
	for _, subscribers := range []int{0, 1} {
		b.Run(map[int]string{0: "no-subscriber", 1: "one-subscriber"}[subscribers], func(b *testing.B) {
			srv, err := New(Config{SubscriberBuffer: 1 << 16})
			if err != nil {
				b.Fatal(err)
			}
			h := srv.Handler()
			if subscribers > 0 {
				sub, err := srv.bus.subscribe("load", "bench")
				if err != nil {
					b.Fatal(err)
				}
				done := make(chan struct{})
				defer close(done)
				go func() {
					for {
						select {
						case <-sub.ch:
						case <-done:
							return
						}
					}
				}()
			}
			body := `{"msg":"hello"}`
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				// One request a goroutine, its body rewound each time, so
				// the benchmark measures the handler, not request parsing.
				rd := strings.NewReader(body)
				req := httptest.NewRequest(http.MethodPost, "/publish?topic=load", rd)
				for pb.Next() {
					rd.Reset(body)
					req.Body = io.NopCloser(rd)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d", w.Code)
					}
				}
			})
		})
	}
}
