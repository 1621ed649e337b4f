package prom

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// nodePage is a real node_exporter 1.5 page (hoststat's fixture).
func nodePage(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../hoststat/testdata/node_exporter.txt")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// textServer serves body with the given Content-Type on every path, like an
// exporter that speaks only the text format.
func textServer(t *testing.T, ct string, status int, body []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestScrapeNegotiatesProtobuf(t *testing.T) {
	// A real client_golang registry behind promhttp answers protobuf when
	// asked for it, with a histogram and a labelled counter.
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jobs_total", Help: "h"}, []string{"kind"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wait_seconds", Help: "h", Buckets: []float64{0.1, 1}})
	reg.MustRegister(c, h)
	c.WithLabelValues("a").Add(3)
	h.Observe(0.05)
	h.Observe(0.5)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	p, err := Scrape(context.Background(), http.DefaultClient, srv.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if p.Format != "protobuf" {
		t.Errorf("format %s, want protobuf", p.Format)
	}
	inst := strings.TrimPrefix(srv.URL, "http://")
	if p.Instance != inst {
		t.Errorf("instance %q, want %q", p.Instance, inst)
	}
	got := map[string]series{}
	for _, s := range flatten(p.Families, p.Instance) {
		got[s.labels.String()] = s
	}
	for k, want := range map[string]series{
		`{__name__="jobs_total", instance="` + inst + `", kind="a"}`:           {value: 3, counter: true},
		`{__name__="wait_seconds_bucket", instance="` + inst + `", le="0.1"}`:  {value: 1, counter: true},
		`{__name__="wait_seconds_bucket", instance="` + inst + `", le="1"}`:    {value: 2, counter: true},
		`{__name__="wait_seconds_bucket", instance="` + inst + `", le="+Inf"}`: {value: 2, counter: true},
		`{__name__="wait_seconds_count", instance="` + inst + `"}`:             {value: 2, counter: true},
	} {
		if s, ok := got[k]; !ok || s.value != want.value || s.counter != want.counter {
			t.Errorf("%s = %+v (%v), want %v counter %v", k, s, ok, want.value, want.counter)
		}
	}
}

func TestScrapeText(t *testing.T) {
	u := textServer(t, string(expfmt.NewFormat(expfmt.TypeTextPlain)), 200, nodePage(t))
	p, err := Scrape(context.Background(), http.DefaultClient, u+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if p.Format != "text" || pageKind(p.Families) != "node_exporter" {
		t.Errorf("format %s, kind %s", p.Format, pageKind(p.Families))
	}
	s := hoststat.NodeExporterSample(p.Families)
	if s.Host[hoststat.HostListenOverflows] != 12 {
		t.Errorf("ListenOverflows = %v", s.Host[hoststat.HostListenOverflows])
	}
}

func TestScrapeErrors(t *testing.T) {
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr + "/metrics"
	}()
	for _, tt := range []struct {
		name, url, want string
	}{
		{"not found", textServer(t, "text/plain", 404, []byte("404 page not found\n")), "status 404 Not Found"},
		{"html page", textServer(t, "text/html; charset=utf-8", 200, []byte("<html><body>Node Exporter</body></html>")), "answered text/html, not Prometheus metrics (is this the /metrics path?)"},
		{"json", textServer(t, "application/json", 200, []byte(`{"status":"success"}`)), "answered application/json, not Prometheus metrics"},
		{"garbage", textServer(t, "text/plain", 200, []byte("hello world, this is no metrics page\n")), "did not answer Prometheus metrics (text"},
		{"garbage protobuf", textServer(t, string(expfmt.NewFormat(expfmt.TypeProtoDelim)), 200, []byte("\x05hello")), "did not answer Prometheus metrics (protobuf"},
		{"huge protobuf length", textServer(t, string(expfmt.NewFormat(expfmt.TypeProtoDelim)), 200, []byte("\xfe\xdc\xe1\xdcsa")), "length prefix exceeds the page size limit"},
		{"empty", textServer(t, "text/plain; version=0.0.4", 200, nil), "answered an empty page"},
		{"refused", closed, "connection refused"},
		{"no host", "http:///metrics", "has no host"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Scrape(context.Background(), &http.Client{Timeout: 2 * time.Second}, tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to say %q", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), "scrape ") {
				t.Errorf("err = %v does not name the URL", err)
			}
		})
	}
}

func TestScrapeTooLarge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		// One endless comment: the parser skips it cheaply, the limit ends it.
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		_, _ = w.Write([]byte("# "))
		for n := 0; n <= 2<<20; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	_, err := scrape(context.Background(), http.DefaultClient, srv.URL, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("err = %v", err)
	}
}

func TestInstance(t *testing.T) {
	for u, want := range map[string]string{
		"http://10.0.0.5:9100/metrics": "10.0.0.5:9100",
		"http://node/metrics":          "node:80",
		"https://node/metrics":         "node:443",
		"http://[::1]:9100/metrics":    "[::1]:9100",
	} {
		if got, err := Instance(u); err != nil || got != want {
			t.Errorf("Instance(%q) = %q, %v; want %q", u, got, err, want)
		}
	}
}

// FuzzDecode feeds arbitrary pages, as text and as protobuf, through
// everything a scrape does with them: decoding, flattening, selector
// matching, the node_exporter and process mappings. None may panic.
func FuzzDecode(f *testing.F) {
	f.Add(nodePage(f), false)
	f.Add([]byte("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 4\nh_count 3\n"), false)
	f.Add([]byte("# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\nnamedprocess_namegroup_worst_fd_ratio{groupname=\"x\"} NaN\n"), false)
	f.Add([]byte("\x05hello"), true)
	sel, err := selectorsOf(map[string]string{"a": `node_netstat_TcpExt_ListenOverflows`, "b": `{__name__=~"h.*",le!="1"}`})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, page []byte, proto bool) {
		format := expfmt.NewFormat(expfmt.TypeTextPlain)
		if proto {
			format = expfmt.NewFormat(expfmt.TypeProtoDelim)
		}
		fams, err := Decode(bytes.NewReader(page), format)
		if err != nil {
			return
		}
		p := &Page{URL: "http://h:1/metrics", Instance: "h:1", Time: time.Unix(1, 0), Families: fams}
		r := recordPage(p, sel, hoststat.SideTarget)
		q := r
		q.t = r.t.Add(time.Second)
		_, _, _ = figuresOf("a", map[string][]scrapeRec{p.URL: {r, q}})
		_, _, _ = figuresOf("b", map[string][]scrapeRec{p.URL: {r, q}})
		_, _ = hostOf(p.URL, hoststat.SideTarget, []scrapeRec{r, q})
	})
}
