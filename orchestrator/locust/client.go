package locust

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Locust worker and runner states (locust/runners.py).
const (
	StateReady    = "ready"
	StateSpawning = "spawning"
	StateRunning  = "running"
	StateStopped  = "stopped"
	StateMissing  = "missing"
)

// requestTimeout bounds one call to the master's web API. A Locust master
// is one Python process: on a busy host it can take seconds to answer.
const requestTimeout = 10 * time.Second

// Client calls a Locust master's web API (FIELD_NOTES.md, "Locust web API").
// Locust has no authentication: the master must listen on loopback or a
// private network only.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client of the master whose web interface is at base
// (http://host:port). hc nil means a client of its own.
func NewClient(base string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("locust: master %q is not an http(s)://host:port URL", base)
	}
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}}
	}
	return &Client{base: strings.TrimRight(base, "/"), http: hc}, nil
}

// Status is the master's /stats/requests answer. Locust memoizes it for
// about 2 s, so it can lag; the counts and percentiles of the step window
// come from RequestsCSV, which is computed on every call.
type Status struct {
	State     string         `json:"state"`
	UserCount int            `json:"user_count"`
	TotalRPS  float64        `json:"total_rps"`
	FailRatio float64        `json:"fail_ratio"`
	Stats     []StatusRow    `json:"stats"`
	Errors    []StatusError  `json:"errors"`
	Workers   []WorkerStatus `json:"workers"`
}

// StatusRow is one request type's cumulative statistics.
type StatusRow struct {
	Method          *string `json:"method"`
	Name            string  `json:"name"`
	NumRequests     int64   `json:"num_requests"`
	NumFailures     int64   `json:"num_failures"`
	CurrentRPS      float64 `json:"current_rps"`
	CurrentFailRate float64 `json:"current_fail_per_sec"`
}

// StatusError is one class of failure and how often it occurred.
type StatusError struct {
	Method      string `json:"method"`
	Name        string `json:"name"`
	Error       string `json:"error"`
	Occurrences int64  `json:"occurrences"`
}

// WorkerStatus is one worker as the master sees it. CPUUsage is the
// worker process's CPU in percent of one core (psutil's cpu_percent).
type WorkerStatus struct {
	ID        string  `json:"id"`
	State     string  `json:"state"`
	UserCount int     `json:"user_count"`
	CPUUsage  float64 `json:"cpu_usage"`
}

// Live lists the workers that are not missing.
func (s *Status) Live() []WorkerStatus {
	var out []WorkerStatus
	for _, w := range s.Workers {
		if w.State != StateMissing {
			out = append(out, w)
		}
	}
	return out
}

// Row is one line of /stats/requests/csv: a request type's statistics since
// the last reset. Times are in milliseconds, as Locust rounds them: to 1 ms
// below 100 ms, to 10 ms below 1 s, to 100 ms above (locust/stats.py).
type Row struct {
	Type, Name string
	Requests   int64
	Failures   int64
	Mean       float64
	Min, Max   float64
	// Percentiles holds the value at each of CSVPercentiles; NaN when the
	// row has no requests.
	Percentiles []float64
}

// CSVPercentiles are the quantiles of the percentile columns of
// /stats/requests/csv (locust.stats.PERCENTILES_TO_REPORT in 2.12).
var CSVPercentiles = []float64{0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0}

// Aggregated is the Name of Locust's total row.
const Aggregated = "Aggregated"

// Swarm starts or changes the load: users in total, spawned (or stopped) at
// spawnRate users/s, against host (empty: the locustfile's).
func (c *Client) Swarm(ctx context.Context, users int, spawnRate float64, host string) error {
	form := url.Values{"user_count": {strconv.Itoa(users)}, "spawn_rate": {strconv.FormatFloat(spawnRate, 'f', -1, 64)}}
	if host != "" {
		form.Set("host", host)
	}
	body, err := c.do(ctx, http.MethodPost, "/swarm", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	var ans struct {
		Success bool   `json:"success"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return fmt.Errorf("locust: /swarm answered %q: %w", truncate(body), err)
	}
	if !ans.Success {
		return fmt.Errorf("locust: /swarm refused %d users: %s", users, ans.Message)
	}
	return nil
}

// Stop stops every user.
func (c *Client) Stop(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/stop", nil)
	return err
}

// Reset clears the master's statistics: what follows is a new window.
func (c *Client) Reset(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/stats/reset", nil)
	return err
}

// Status reads /stats/requests.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	body, err := c.do(ctx, http.MethodGet, "/stats/requests", nil)
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("locust: /stats/requests is not the JSON of a Locust master: %w", err)
	}
	return &s, nil
}

// RequestsCSV reads /stats/requests/csv: every request type and the
// Aggregated row, counted since the last reset.
func (c *Client) RequestsCSV(ctx context.Context) ([]Row, error) {
	body, err := c.do(ctx, http.MethodGet, "/stats/requests/csv", nil)
	if err != nil {
		return nil, err
	}
	return ParseRequestsCSV(body)
}

// ParseRequestsCSV parses the body of /stats/requests/csv.
func ParseRequestsCSV(body []byte) ([]Row, error) {
	recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("locust: /stats/requests/csv: %w", err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("locust: /stats/requests/csv is empty")
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, h := range []string{"Type", "Name", "Request Count", "Failure Count", "Average Response Time", "Min Response Time", "Max Response Time"} {
		if _, ok := col[h]; !ok {
			return nil, fmt.Errorf("locust: /stats/requests/csv has no %q column (header %q)", h, recs[0])
		}
	}
	pcols := make([]int, len(CSVPercentiles))
	for i, q := range CSVPercentiles {
		name := strconv.FormatFloat(q*100, 'f', -1, 64) + "%"
		j, ok := col[name]
		if !ok {
			return nil, fmt.Errorf("locust: /stats/requests/csv has no %q column", name)
		}
		pcols[i] = j
	}
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nan
		}
		return v
	}
	var rows []Row
	for _, rec := range recs[1:] {
		if len(rec) != len(recs[0]) {
			return nil, fmt.Errorf("locust: /stats/requests/csv: a row has %d fields, the header %d", len(rec), len(recs[0]))
		}
		r := Row{
			Type: rec[col["Type"]], Name: rec[col["Name"]],
			Requests: int64(num(rec[col["Request Count"]])), Failures: int64(num(rec[col["Failure Count"]])),
			Mean: num(rec[col["Average Response Time"]]), Min: num(rec[col["Min Response Time"]]), Max: num(rec[col["Max Response Time"]]),
		}
		for _, j := range pcols {
			r.Percentiles = append(r.Percentiles, num(rec[j])) // "N/A" -> NaN
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("locust: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("locust: master at %s: %s %s: %w", c.base, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("locust: master at %s: %s %s: reading the answer: %w", c.base, method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("locust: master at %s: %s %s: HTTP %d: %s", c.base, method, path, resp.StatusCode, truncate(b))
	}
	return b, nil
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// CloseIdle closes the client's idle connections.
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }
