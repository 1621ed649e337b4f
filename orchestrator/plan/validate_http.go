package plan

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Bounds of a workload.http mix.
const (
	// MaxRequests bounds the requests of a mix.
	MaxRequests = 64
	// MaxWeight bounds one request's weight.
	MaxWeight = 1_000_000
	// MaxMixCycle bounds the sum of the weights (divided by their greatest
	// common divisor): the mix repeats after that many requests.
	MaxMixCycle = 1 << 20
)

// requestNameRe: a request's name is a segment of its metrics' names
// (request.<name>.latency.p99), which gates parse.
var requestNameRe = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)

// managedHeaders are set by the generator itself.
var managedHeaders = []string{"connection", "transfer-encoding"}

func (v *validator) http(h *HTTP) {
	if h.Timeout <= 0 {
		v.add("workload.http.timeout", "must be > 0")
	}
	v.atMost("workload.http.timeout", "HTTP.timeout", float64(h.Timeout))
	if len(h.Requests) == 0 {
		v.request("workload.http", h.URL, h.Method, h.Headers, h.Check)
	} else {
		v.mix(h)
	}
	data := v.feeders(h)
	v.requestTemplates(h, data)
}

// request checks one request's url, method, headers and check.
func (v *validator) request(prefix, url, method string, headers map[string]string, check *Check) {
	v.checkURL(prefix+".url", url)
	if method == "" || !httpTokenRe.MatchString(method) {
		v.add(prefix+".method", "%q is not an HTTP method", method)
	}
	for _, k := range mapKeys(headers) {
		switch {
		case !httpTokenRe.MatchString(k):
			v.add(prefix+".headers."+k, "%q is not a valid header name", k)
		case contains(managedHeaders, strings.ToLower(k)):
			v.add(prefix+".headers."+k, "%s is managed by the generator (keep-alive connections, Content-Length framing)", k)
		}
	}
	v.check(prefix+".check", check)
}

// mix checks workload.http.requests.
func (v *validator) mix(h *HTTP) {
	for _, f := range []struct {
		key   string
		given bool
	}{{"url", h.URL != ""}, {"method", h.Method != ""}, {"body", h.Body != ""}, {"headers", len(h.Headers) > 0}, {"check", h.Check != nil}} {
		if f.given {
			v.add("workload.http."+f.key, "give %s per request: with workload.http.requests, each request has its own", f.key)
		}
	}
	if len(h.Requests) > MaxRequests {
		v.add("workload.http.requests", "%d requests; a mix has at most %d", len(h.Requests), MaxRequests)
	}
	seen := map[string]int{}
	var weights []int
	for i, r := range h.Requests {
		rp := fmt.Sprintf("workload.http.requests[%d]", i)
		switch {
		case r.Name == "":
			v.add(rp+".name", "missing; a request's name names its metrics and gates (request.NAME.latency.p99)")
		case !requestNameRe.MatchString(r.Name):
			v.add(rp+".name", "%q: use 1-40 lower-case letters, digits and _ (it is part of metric names such as request.%s.latency.p99)", r.Name, strings.ToLower(r.Name))
		default:
			if j, dup := seen[r.Name]; dup {
				v.add(rp+".name", "%q is also the name of requests[%d]; names must be unique", r.Name, j)
			}
			seen[r.Name] = i
		}
		if r.Weight < 1 || r.Weight > MaxWeight {
			v.add(rp+".weight", "must be a whole number from 1 to %d (got %d); leave a request out rather than weigh it 0", MaxWeight, r.Weight)
		} else {
			weights = append(weights, r.Weight)
		}
		v.request(rp, r.URL, r.Method, r.Headers, r.Check)
	}
	if len(weights) == len(h.Requests) && len(weights) > 0 {
		if c := MixCycle(weights); c > MaxMixCycle {
			v.add("workload.http.requests", "the weights add up to %d (divided by their common divisor); at most %d: use smaller weights in the same proportions", c, MaxMixCycle)
		}
	}
}

// MixCycle is the length of a mix's cycle: the sum of its weights divided by
// their greatest common divisor.
func MixCycle(weights []int) int {
	g := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	if g == 0 {
		return 0
	}
	sum := 0
	for _, w := range weights {
		sum += w / g
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// check checks a response check.
func (v *validator) check(path string, c *Check) {
	if c == nil {
		return
	}
	if len(c.Status) == 0 && c.BodyContains == "" && c.JSON == nil {
		v.add(path, "empty; give status (a list of codes), body_contains or json")
	}
	for i, s := range c.Status {
		if s < 100 || s > 599 {
			v.add(fmt.Sprintf("%s.status[%d]", path, i), "%d is not an HTTP status code (100-599)", s)
		}
	}
	if v.p.given(path+".body_contains") && c.BodyContains == "" {
		v.add(path+".body_contains", "empty; every body contains the empty string")
	}
	if j := c.JSON; j != nil {
		if msg := checkJSONPath(j.Path); msg != "" {
			v.add(path+".json.path", "%s", msg)
		}
		switch j.Equals.(type) {
		case nil, string, bool, int, int64, float64:
		default:
			v.add(path+".json.equals", "a string, number, boolean or null, not a list or mapping")
		}
	}
}

// checkJSONPath explains what is wrong with a JSON check's path, or "".
func checkJSONPath(p string) string {
	if p == "" {
		return `missing; the field to check, such as "status" or "data.items.0.id"`
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return fmt.Sprintf("%q: an empty segment; join keys and array indexes with single dots", p)
		}
	}
	return ""
}

// feeders checks workload.http.feeders and loads each feeder's file, so a
// missing, empty or ragged file is refused before anything starts. It
// returns the data of those that loaded, by name.
func (v *validator) feeders(h *HTTP) map[string]*FeederData {
	data := map[string]*FeederData{}
	for _, name := range mapKeys(h.Feeders) {
		f := h.Feeders[name]
		fp := "workload.http.feeders." + name
		if !identRe.MatchString(name) {
			v.add(fp, "feeder name %q: use letters, digits and _", name)
		}
		if f == nil {
			v.add(fp+".file", "missing; the feeder's data file (CSV or JSON Lines)")
			continue
		}
		if f.Format != "" {
			v.choice(fp+".format", "format", f.Format, feederFormats)
		}
		if f.Mode != "" {
			v.choice(fp+".mode", "mode", f.Mode, feederModes)
		}
		if f.Mode == FeederUnique && v.p.BuiltinOnAgents() {
			v.add(fp+".mode", "unique gives each row once a run, which the generators fleet's agents cannot share: "+
				"use circular or random, or run the builtin engine on this machine (no agents)")
		}
		switch {
		case f.File == "":
			v.add(fp+".file", "missing; the feeder's data file (CSV or JSON Lines)")
		case FeederFormat(f) == "":
			v.add(fp+".format", "cannot tell from %q's extension; give format: csv or jsonl", f.File)
		case f.Format != "" && !contains(feederFormats, f.Format):
		default:
			d, err := v.p.LoadFeeder(name)
			if err != nil {
				v.add(fp+".file", "%v", err)
				continue
			}
			data[name] = d
		}
	}
	return data
}

// requestTemplates parses every request template and checks its per-request
// calls against the plan: feeders and their columns.
func (v *validator) requestTemplates(h *HTTP, data map[string]*FeederData) {
	for _, f := range v.p.RequestFields() {
		parts, err := ParseRequestTemplate(f.Text)
		if err != nil {
			var se *syntaxError
			if !errors.As(err, &se) { // checkTemplate says it for every template
				v.add(f.Path, "%v", err)
			}
			continue
		}
		if f.URL && len(parts) > 0 && !parts[0].IsText() {
			v.add(f.Path, "starts with {{ %s }}; the scheme, host and port are the same for every request: a per-request value can go in the path or the query", parts[0].Func)
		}
		for _, part := range parts {
			if part.Func != FuncFeed {
				continue
			}
			name, col := part.Args[0], part.Args[1]
			fd, declared := h.Feeders[name]
			if !declared || fd == nil {
				v.add(f.Path, "feed %q: no feeder %q in workload.http.feeders%s", name, name, hint(name, mapKeys(h.Feeders)))
				continue
			}
			d := data[name]
			if d == nil {
				continue // its file's problem is reported on the feeder
			}
			i := d.Column(col)
			if i < 0 {
				v.add(f.Path, "feed %q %q: feeder %q has no column %q (its columns: %s)%s", name, col, name, col, strings.Join(d.Columns, ", "), hint(col, d.Columns))
				continue
			}
			if f.Header {
				for r, row := range d.Rows {
					if strings.ContainsFunc(row[i], isControl) {
						v.add(f.Path, "feed %q %q: row %d holds a control character (a line break?), which cannot go into a header", name, col, r+1)
						break
					}
				}
			}
		}
	}
	// A body that varies per request has its length computed per request.
	for _, f := range v.p.RequestFields() {
		if !f.Header || !strings.EqualFold(f.Path[strings.LastIndexByte(f.Path, '.')+1:], "content-length") {
			continue
		}
		prefix := strings.TrimSuffix(f.Path[:strings.LastIndex(f.Path, ".headers.")], ".")
		for _, b := range v.p.RequestFields() {
			if b.Body && b.Path == prefix+".body" && len(RequestFuncsIn(b.Text)) > 0 {
				v.add(f.Path, "the body varies per request: the generator sets Content-Length for each")
			}
		}
	}
}
