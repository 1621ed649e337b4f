package prom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Querier reads named PromQL queries from a Prometheus server over its HTTP
// API.
type Querier struct {
	// URL is the server's base URL (http://prom:9090).
	URL string
	api v1.API
}

// NewQuerier returns a Querier of the server at base, with client (nil: a
// client with a 30 s timeout). Answers larger than MaxPage are an error.
func NewQuerier(base string, client *http.Client) (*Querier, error) {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	c := *client
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = limitTransport{rt}
	ac, err := api.NewClient(api.Config{Address: base, Client: &c})
	if err != nil {
		return nil, fmt.Errorf("prometheus server %q: %w", base, err)
	}
	return &Querier{URL: base, api: v1.NewAPI(ac)}, nil
}

// Check asks the server for each query at now (an instant query), so a
// server that is down, a URL that is not a Prometheus server and PromQL the
// server rejects are found before a step runs. A query without data passes:
// its series may appear only under load.
func (q *Querier) Check(ctx context.Context, queries map[string]string) error {
	var errs []error
	for _, name := range sortedKeys(queries) {
		_, _, err := q.api.Query(ctx, queries[name], time.Now())
		if err != nil {
			err = q.explain(name, queries[name], err)
			var ue unreachable
			if errors.As(err, &ue) {
				return err // one message for the whole server
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// A Prometheus server that started less than FreshServer ago (one the plan
// started itself) is given up to FirstScrapeWait to complete its first
// scrape before the first step: it discovers its targets about 5 s after it
// starts, and a step held before that reads no data.
const (
	FreshServer     = time.Minute
	FirstScrapeWait = 20 * time.Second
)

// WaitFirstScrape waits, for a server that started less than FreshServer
// ago, until it has scraped a target once (count(up) answers), at most
// FirstScrapeWait. A server that does not say when it started (not
// Prometheus itself) is not waited for. It reports whether it waited and
// whether the scrape came; ctx bounds the wait.
func (q *Querier) WaitFirstScrape(ctx context.Context) (waited, scraped bool) {
	info, err := q.api.Runtimeinfo(ctx)
	if err != nil || info.StartTime.IsZero() || time.Since(info.StartTime) > FreshServer {
		return false, false
	}
	ctx, cancel := context.WithTimeout(ctx, FirstScrapeWait)
	defer cancel()
	for {
		v, _, err := q.api.Query(ctx, "count(up)", time.Now())
		if vec, ok := v.(model.Vector); err == nil && ok && len(vec) > 0 {
			return true, true
		}
		select {
		case <-ctx.Done():
			return true, false
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Point is one value of a query's range.
type Point struct {
	T time.Time
	V float64
}

// Ranged is a query's answer over a hold: its figures and its points.
type Ranged struct {
	Figures
	Points []Point
}

// Range evaluates each query over [start, end] and summarises its values.
// A query that answers no data, or more than one series, is left out of the
// returned figures with the reason in problems; an error of the server or the
// connection is a problem too (the metric is not measured), never a panic.
func (q *Querier) Range(ctx context.Context, queries map[string]string, start, end time.Time) (map[string]Ranged, []string) {
	out := map[string]Ranged{}
	var problems []string
	r := v1.Range{Start: start, End: end, Step: rangeStep(end.Sub(start))}
	for _, name := range sortedKeys(queries) {
		val, warnings, err := q.api.QueryRange(ctx, queries[name], r)
		for _, w := range warnings {
			problems = append(problems, fmt.Sprintf("prom.%s: the server warns: %s", name, w))
		}
		if err != nil {
			problems = append(problems, problem(name, q.explain(name, queries[name], err).Error()))
			continue
		}
		f, why := matrixFigures(val)
		if why != "" {
			problems = append(problems, problem(name, fmt.Sprintf("%s (%s from %s to %s)", why, queries[name], start.UTC().Format(time.TimeOnly), end.UTC().Format(time.TimeOnly))))
			continue
		}
		out[name] = f
	}
	return out, problems
}

// rangeStep is the resolution of a hold's range query: a point a second for
// holds up to 100 s, then 100 points.
func rangeStep(hold time.Duration) time.Duration {
	return max(time.Second, (hold / 100).Truncate(time.Second))
}

// matrixFigures summarises a range query's answer: one series, its points'
// mean, peak and min (NaN and infinite points skipped).
func matrixFigures(v model.Value) (Ranged, string) {
	m, ok := v.(model.Matrix)
	if !ok {
		return Ranged{}, fmt.Sprintf("the server answered a %s, not a range of values", v.Type())
	}
	switch len(m) {
	case 0:
		return Ranged{}, "no data"
	case 1:
	default:
		names := make([]string, 0, 3)
		for i, s := range m {
			if i == 3 {
				names = append(names, "...")
				break
			}
			names = append(names, s.Metric.String())
		}
		return Ranged{}, fmt.Sprintf("the query returns %d series (%s); a gate needs one: aggregate it, e.g. max(...) or sum(...)", len(m), strings.Join(names, ", "))
	}
	f := Ranged{Figures: Figures{Peak: math.Inf(-1), Min: math.Inf(1)}}
	var sum float64
	for _, p := range m[0].Values {
		v := float64(p.Value)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		sum += v
		f.Points = append(f.Points, Point{T: p.Timestamp.Time(), V: v})
		f.Peak = math.Max(f.Peak, v)
		f.Min = math.Min(f.Min, v)
	}
	if len(f.Points) == 0 {
		return Ranged{}, "no data (every point is NaN or infinite)"
	}
	f.Mean = sum / float64(len(f.Points))
	return f, ""
}

// unreachable is an error reaching the server at all.
type unreachable struct{ error }

func (u unreachable) Unwrap() error { return u.error }

// explain turns a client error into a sentence that says what to fix.
func (q *Querier) explain(name, query string, err error) error {
	var ae *v1.Error
	if errors.As(err, &ae) {
		switch ae.Type {
		case v1.ErrBadData:
			return fmt.Errorf("prom.%s: the Prometheus server at %s rejects the query %q: %s", name, q.URL, query, ae.Msg)
		case v1.ErrBadResponse, v1.ErrClient:
			detail := strings.TrimSpace(ae.Detail)
			if len(detail) > 120 {
				detail = detail[:120] + "..."
			}
			if detail != "" {
				detail = ": " + detail
			}
			return unreachable{fmt.Errorf("%s does not answer as a Prometheus server's API (%s%s); give the server's base URL, e.g. http://prom:9090", q.URL, ae.Msg, detail)}
		case v1.ErrTimeout, v1.ErrCanceled:
			return fmt.Errorf("prom.%s: the Prometheus server at %s gave up on the query %q: %s", name, q.URL, query, ae.Msg)
		}
		return fmt.Errorf("prom.%s: the Prometheus server at %s failed on %q: %s: %s", name, q.URL, query, ae.Type, ae.Msg)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("prom.%s: no answer from the Prometheus server at %s in time: %w", name, q.URL, err)
	}
	return unreachable{fmt.Errorf("the Prometheus server at %s is not reachable: %w", q.URL, err)}
}

// limitTransport fails an answer larger than MaxPage: the API client reads
// whole answers into memory.
type limitTransport struct{ http.RoundTripper }

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.RoundTripper.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{&limitedReader{r: resp.Body, n: MaxPage}, resp.Body}
	return resp, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
