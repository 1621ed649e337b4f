// Package prom reads Prometheus metrics for a load step, in one of two modes
// (plan.Prometheus):
//
//   - scrape: /metrics pages (node_exporter, process-exporter, a service's
//     own) scraped every second of the step and decoded with expfmt (text or
//     delimited protobuf, negotiated). Named series selectors become step
//     metrics (counters as per-second rates, gauges as mean, peak and min over
//     the hold), and each page's node_exporter and process series become a
//     hoststat window per instance, diagnosed like a host read from /proc.
//   - query: a Prometheus server read over its HTTP API (client_golang's
//     api/prometheus/v1), one range query per named PromQL expression over the
//     step's hold window.
//
// Either way a named metric becomes prom.<name> (its mean over the hold),
// prom.<name>.peak and prom.<name>.min. A metric without data is left out
// ("not measured") and Result.Problems says why.
package prom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Accept is the Accept header of a scrape: delimited protobuf first, then the
// text format (both decoded by expfmt).
const Accept = `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1`

// MaxPage bounds the size of a metrics page (and of a query answer) read into
// memory.
const MaxPage = 32 << 20

// Page is one scrape of a /metrics URL.
type Page struct {
	URL string
	// Instance is the page's host:port, as Prometheus labels it.
	Instance string
	Time     time.Time
	// Format is "protobuf" or "text": what the page answered.
	Format   string
	Families map[string]*dto.MetricFamily
}

// Instance returns the host:port of a URL, with the scheme's port when the URL
// has none (as Prometheus's instance label).
func Instance(u string) (string, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return "", err
	}
	if pu.Host == "" {
		return "", fmt.Errorf("%q has no host", u)
	}
	if pu.Port() != "" {
		return pu.Host, nil
	}
	port := "80"
	if pu.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(pu.Hostname(), port), nil
}

// Scrape reads the metrics page at u once. Its errors say what the URL
// answered instead of metrics: an error status, an HTML page, an empty page
// or text that does not parse.
func Scrape(ctx context.Context, client *http.Client, u string) (*Page, error) {
	return scrape(ctx, client, u, MaxPage)
}

func scrape(ctx context.Context, client *http.Client, u string, limit int64) (*Page, error) {
	inst, err := Instance(u)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", u, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", u, err)
	}
	req.Header.Set("Accept", Accept)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("scrape %s: status %s", u, resp.Status)
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); mt == "text/html" || mt == "application/json" {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("scrape %s: answered %s, not Prometheus metrics (is this the /metrics path?)", u, mt)
	}
	format := expfmt.ResponseFormat(resp.Header)
	kind := "text"
	if format.FormatType() == expfmt.TypeProtoDelim {
		kind = "protobuf"
	}
	body := &limitedReader{r: resp.Body, n: limit}
	fams, err := decodeLimited(body, format, limit)
	if err != nil {
		if body.over {
			return nil, fmt.Errorf("scrape %s: the page is larger than %d MiB", u, limit>>20)
		}
		return nil, fmt.Errorf("scrape %s: did not answer Prometheus metrics (%s, Content-Type %q): %v", u, kind, ct, err)
	}
	if len(fams) == 0 {
		return nil, fmt.Errorf("scrape %s: answered an empty page (Content-Type %q), no metrics", u, ct)
	}
	return &Page{URL: u, Instance: inst, Time: time.Now(), Format: kind, Families: fams}, nil
}

// Decode decodes a metrics page of the given format (expfmt.ResponseFormat of
// its header) into its metric families by name, reading at most MaxPage bytes.
func Decode(r io.Reader, format expfmt.Format) (map[string]*dto.MetricFamily, error) {
	return decodeLimited(&limitedReader{r: r, n: MaxPage}, format, MaxPage)
}

func decodeLimited(r io.Reader, format expfmt.Format, limit int64) (map[string]*dto.MetricFamily, error) {
	if format.FormatType() == expfmt.TypeProtoDelim {
		// expfmt's protobuf decoder trusts each message's length prefix
		// (no maximum size) and allocates it before reading: a garbage page
		// whose first bytes read as a huge length would exhaust memory.
		r = &delimGuard{r: r, budget: limit}
	}
	dec := expfmt.NewDecoder(r, format)
	fams := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				return fams, nil
			}
			return nil, err
		}
		if prev, ok := fams[mf.GetName()]; ok {
			// The protobuf format may split a family; keep every series.
			prev.Metric = append(prev.Metric, mf.Metric...)
			continue
		}
		fams[mf.GetName()] = mf
	}
}

// delimGuard passes a stream of length-delimited protobuf messages through,
// failing before a length prefix larger than budget reaches the decoder. It
// sees every byte before the decoder's buffer does, so the decoder never
// allocates for a length it refuses.
type delimGuard struct {
	r      io.Reader
	budget int64
	need   int64 // bytes left of the current message
	size   uint64
	shift  uint
}

var errMessageTooLarge = errors.New("a protobuf message's length prefix exceeds the page size limit")

func (g *delimGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	for i := 0; i < n; i++ {
		if g.need > 0 {
			skip := min(g.need, int64(n-i))
			g.need -= skip
			i += int(skip) - 1
			continue
		}
		b := p[i]
		g.size |= uint64(b&0x7f) << g.shift
		g.shift += 7
		if b&0x80 != 0 {
			if g.shift >= 64 {
				return 0, errors.New("bad protobuf length prefix")
			}
			continue
		}
		if g.size > uint64(g.budget) {
			return 0, errMessageTooLarge
		}
		g.need = int64(g.size)
		g.size, g.shift = 0, 0
	}
	return n, err
}

// limitedReader reads at most n bytes and then fails, so an endless answer is
// an error, not a truncated page that happens to parse.
type limitedReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		l.over = true
		return 0, errors.New("answer too large")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// pageKind names what kind of exporter a page is from, for evidence:
// node_exporter, process-exporter, or the page's service.
func pageKind(fams map[string]*dto.MetricFamily) string {
	var node, proc bool
	for name := range fams {
		node = node || strings.HasPrefix(name, "node_")
		proc = proc || strings.HasPrefix(name, "namedprocess_")
	}
	switch {
	case node:
		return "node_exporter"
	case proc:
		return "process-exporter"
	}
	return "/metrics"
}
