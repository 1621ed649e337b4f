package eventbus

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// scrapeMetrics reads ts's /metrics with the given Accept header and decodes
// it with expfmt, as a Prometheus server would.
func scrapeMetrics(t *testing.T, ts *testServer, accept string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s: %s", resp.Status, b)
	}
	format := expfmt.ResponseFormat(resp.Header)
	dec := expfmt.NewDecoder(resp.Body, format)
	fams := map[string]*dto.MetricFamily{}
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			if err == io.EOF {
				break
			}
			t.Fatalf("decode /metrics (%s): %v", format, err)
		}
		fams[mf.GetName()] = &mf
	}
	return fams, resp.Header.Get("Content-Type")
}

// value is the value of the family's series whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	mf, ok := fams[name]
	if !ok {
		t.Fatalf("/metrics has no %s", name)
	}
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(want); i += 2 {
			match = match && labels[want[i]] == want[i+1]
		}
		if !match {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetUntyped() != nil:
			return m.GetUntyped().GetValue()
		}
	}
	t.Fatalf("%s has no series with labels %v", name, want)
	return 0
}

func TestMetricsCountRequestsAndDeliveries(t *testing.T) {
	ts := start(t, Config{MaxBody: 16})
	sub := ts.subscribe(t, "m")
	defer sub.cancel()
	for range 3 {
		if code := ts.publish(t, "m", "hello"); code != http.StatusOK {
			t.Fatalf("publish: %d", code)
		}
	}
	if code := ts.publish(t, "m", strings.Repeat("x", 17)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("large publish: %d", code)
	}
	for range 3 {
		select {
		case <-sub.events:
		case <-time.After(5 * time.Second):
			t.Fatal("no delivery")
		}
	}
	waitFor(t, "3 deliveries counted", func() bool { return ts.Stats().Delivered == 3 })

	for _, accept := range []string{
		"",                               // text by default
		"text/plain;version=0.0.4;q=1.0", // text, asked
		"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3",
	} {
		fams, ct := scrapeMetrics(t, ts, accept)
		wantProto := strings.Contains(accept, "protobuf")
		if gotProto := strings.HasPrefix(ct, "application/vnd.google.protobuf"); gotProto != wantProto {
			t.Errorf("Accept %q: Content-Type %q", accept, ct)
		}
		for _, c := range []struct {
			name   string
			labels []string
			want   float64
		}{
			{MetricRequests, []string{"handler", "publish"}, 4},
			{MetricRequests, []string{"handler", "subscribe"}, 1},
			{MetricPublished, nil, 3},
			{MetricDelivered, nil, 3},
			{MetricTooLarge, nil, 1},
			{MetricRejected, nil, 0},
			{MetricSubscribers, nil, 1},
			{MetricTopics, nil, 1},
			{MetricQueueDepth, nil, 0},
			{MetricCapacity, nil, 0},
		} {
			if got := value(t, fams, c.name, c.labels...); got != c.want {
				t.Errorf("Accept %q: %s%v = %v, want %v", accept, c.name, c.labels, got, c.want)
			}
		}
		if got := fams[MetricRequests].GetType(); got != dto.MetricType_COUNTER {
			t.Errorf("%s is a %v", MetricRequests, got)
		}
		if got := fams[MetricQueueDepth].GetType(); got != dto.MetricType_GAUGE {
			t.Errorf("%s is a %v", MetricQueueDepth, got)
		}
		// The standard collectors: open files against their limit, and Go's.
		if fds, max := value(t, fams, "process_open_fds"), value(t, fams, "process_max_fds"); fds < 1 || max < fds {
			t.Errorf("process_open_fds %v, process_max_fds %v", fds, max)
		}
		value(t, fams, "go_goroutines")
	}
}

// TestMetricsQueueDepthGrowsWhenSaturated publishes faster than --capacity:
// the queue gauge and the wait ahead show the saturation while it lasts, and
// /metrics still answers though every publish is waiting.
func TestMetricsQueueDepthGrowsWhenSaturated(t *testing.T) {
	// 20 publishes/s; 30 at once take 1.5 s to drain.
	ts := start(t, Config{Capacity: 20})
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			resp, err := http.Post(ts.url+"/publish?topic=q", "text/plain", strings.NewReader("m"))
			if err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	waitFor(t, "publishes to queue", func() bool { return ts.Stats().Queued >= 20 })
	fams, _ := scrapeMetrics(t, ts, "")
	if q := value(t, fams, MetricQueueDepth); q < 10 {
		t.Errorf("%s = %v while the bus is saturated", MetricQueueDepth, q)
	}
	if d := value(t, fams, MetricQueueDelay); d < 0.3 {
		t.Errorf("%s = %v while about 1 s of publishes wait", MetricQueueDelay, d)
	}
	if c := value(t, fams, MetricCapacity); c != 20 {
		t.Errorf("%s = %v", MetricCapacity, c)
	}
	wg.Wait()
	fams, _ = scrapeMetrics(t, ts, "")
	if q := value(t, fams, MetricQueueDepth); q != 0 {
		t.Errorf("%s = %v after the queue drained", MetricQueueDepth, q)
	}
	if n := value(t, fams, MetricPublished); n != 30 {
		t.Errorf("%s = %v, want 30", MetricPublished, n)
	}
}
