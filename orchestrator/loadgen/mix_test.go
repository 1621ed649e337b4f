package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

func TestMixSchedule(t *testing.T) {
	got, err := mixSchedule([]int{6, 3, 1})
	if err != nil {
		t.Fatal(err)
	}
	// a b a a b a c a b a: interleaved, not aaaaaabbbc.
	if want := []uint8{0, 1, 0, 0, 1, 0, 2, 0, 1, 0}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("schedule %v, want %v", got, want)
	}
	if got, _ := mixSchedule([]int{60, 30, 10}); len(got) != 10 {
		t.Errorf("weights 60/30/10: cycle of %d, want 10 (divided by their gcd)", len(got))
	}
	if _, err := mixSchedule([]int{maxMixCycle, 1}); err == nil {
		t.Error("a cycle over the bound was accepted")
	}
}

// Over every run of consecutive requests, across cycles, each request's
// count stays within two of its exact share: the property that keeps shares
// right in a short window whatever the arrivals.
func TestMixScheduleIsSmooth(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 1 + rng.IntN(8)
		weights := make([]int, n)
		total := 0
		for i := range weights {
			weights[i] = 1 + rng.IntN(50)
			total += weights[i]
		}
		sched, err := mixSchedule(weights)
		if err != nil {
			t.Fatal(err)
		}
		g := 0
		for _, w := range weights {
			g = gcd(g, w)
		}
		if len(sched) != total/g {
			t.Fatalf("weights %v: cycle %d, want %d", weights, len(sched), total/g)
		}
		// Three cycles, every window length up to two cycles, every start.
		seq := append(append(append([]uint8{}, sched...), sched...), sched...)
		for length := 1; length <= 2*len(sched); length += 1 + length/7 {
			for start := 0; start+length <= len(seq); start++ {
				var count [8]int
				for _, x := range seq[start : start+length] {
					count[x]++
				}
				for i, w := range weights {
					exact := float64(length) * float64(w) / float64(total)
					if d := float64(count[i]) - exact; d > 2 || d < -2 {
						t.Fatalf("trial %d weights %v: request %d sent %d times in %d, exact share %.2f", trial, weights, i, count[i], length, exact)
					}
				}
			}
		}
	}
}

func TestAppendUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	st := newReqState(1, 2, 0)
	seen := map[string]bool{}
	for range 1000 {
		u := string(appendUUID(nil, st.rng.Uint64(), st.rng.Uint64()))
		if !re.MatchString(u) || seen[u] {
			t.Fatalf("UUID %q: not version 4 or repeated", u)
		}
		seen[u] = true
	}
	if got := string(appendUUID(nil, 0, 0)); got != "00000000-0000-4000-8000-000000000000" {
		t.Errorf("appendUUID(0, 0) = %q", got)
	}
}

func TestTemplateValues(t *testing.T) {
	fs := []*feeder{{name: "u", mode: Circular, cols: []string{"id", "name"}, rows: [][]string{{"1", "ann b"}, {"2", "bob/c"}}}}
	index := map[string]int{"u": 0}
	var b segBuilder
	for _, p := range []Part{Text("s="), Seq(), Text(";r="), RandInt(-3, 3), Text(";x="), RandString(25), Text(";n="),
		Now(""), Text(";d="), Now("2006-01-02"), Text(";u="), NowUnix(), Text(";m="), NowUnixMilli(), Text(";f="), Field("u", "name")} {
		if err := b.part(p, false, index, fs); err != nil {
			t.Fatal(err)
		}
	}
	st := newReqState(3, 4, 1)
	re := regexp.MustCompile(`^s=42;r=(-?\d);x=([A-Za-z0-9]{25});n=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z);d=(\d{4}-\d\d-\d\d);u=(\d+);m=(\d+);f=bob/c$`)
	for i := range 200 {
		st.seq, st.nowSet, st.rows[0] = 42, false, 1
		out := string(appendSegs(nil, b.segs, st, fs))
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("got %q", out)
		}
		if n, _ := strconv.Atoi(m[1]); n < -3 || n > 3 {
			t.Fatalf("randInt out of range: %q", out)
		}
		ts, err := time.Parse(time.RFC3339, m[3])
		if err != nil || time.Since(ts) > time.Minute || m[4] != ts.Format("2006-01-02") {
			t.Fatalf("now: %q (%v)", out, err)
		}
		sec, _ := strconv.ParseInt(m[5], 10, 64)
		ms, _ := strconv.ParseInt(m[6], 10, 64)
		if ms/1000 != sec || ts.Unix() != sec {
			t.Fatalf("times of one request differ: %q", out)
		}
		if i == 0 && m[2] == strings.Repeat("A", 25) {
			t.Fatalf("randString not random: %q", out)
		}
	}
	// In a URL, a value is one component.
	var u segBuilder
	_ = u.part(Text("/a?q="), false, index, fs)
	_ = u.part(Field("u", "name"), true, index, fs)
	st.rows[0] = 0
	if got := string(appendSegs(nil, u.segs, st, fs)); got != "/a?q=ann%20b" {
		t.Errorf("escaped %q", got)
	}
	st.rows[0] = 1
	if got := string(appendSegs(nil, u.segs, st, fs)); got != "/a?q=bob%2Fc" {
		t.Errorf("escaped %q", got)
	}
	// The whole int64 range works.
	var all segBuilder
	_ = all.part(RandInt(-1<<63, 1<<63-1), false, index, fs)
	if out := appendSegs(nil, all.segs, st, fs); len(out) == 0 {
		t.Error("no value")
	}
}

func TestCompileRequest(t *testing.T) {
	feeders := map[string]*Feeder{"u": {Columns: []string{"id", "nl"}, Rows: [][]string{{"1", "a\nb"}}}}
	ok := Request{Name: "a", Method: "POST", URL: Template{Text("http://h:8/p/"), Seq(), Text("?x="), Field("u", "id")},
		Headers: []Header{{Name: "X-Id", Value: Template{UUID()}}}, Body: Template{Text(`{"n":`), Seq(), Text("}")}}
	ep, reqs, _, err := compileTarget(Target{Requests: []Request{ok}, Feeders: feeders})
	if err != nil {
		t.Fatal(err)
	}
	c := reqs[0]
	if ep.addr != "h:8" || c.static != nil || !c.length || !c.usesSeq || len(c.feeders) != 1 {
		t.Fatalf("compiled %+v %+v", ep, c)
	}
	fs := []*feeder{{name: "u", cols: []string{"id", "nl"}, rows: [][]string{{"1", "a\nb"}}}}
	st := newReqState(1, 1, 1)
	st.seq = 7
	b, err := c.build(st, fs)
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile("^POST /p/7\\?x=1 HTTP/1.1\r\nX-Id: [0-9a-f-]{36}\r\nHost: h:8\r\nUser-Agent: loadramp\r\nContent-Length: 7\r\n\r\n\\{\"n\":7\\}$")
	if !want.Match(b) {
		t.Errorf("built %q", b)
	}
	for _, tt := range []struct {
		name string
		t    Target
		want string
	}{
		{"per-request host", Target{Requests: []Request{{URL: Template{Text("http://"), Seq(), Text("/")}}}}, "scheme, host and port must be written before"},
		{"no path before a value", Target{Requests: []Request{{URL: Template{Text("http://h:8"), Seq()}}}}, "scheme, host and port must be written before"},
		{"content-length with a varying body", Target{Requests: []Request{{URL: Template{Text("http://h/")},
			Body: Template{UUID()}, Headers: []Header{{Name: "Content-Length", Value: Template{Text("36")}}}}}}, "sets its length"},
		{"line break from a feeder into a header", Target{Feeders: feeders, Requests: []Request{{URL: Template{Text("http://h/")},
			Headers: []Header{{Name: "X", Value: Template{Field("u", "nl")}}}}}}, `line break in column "nl"`},
		{"unknown column", Target{Feeders: feeders, Requests: []Request{{URL: Template{Text("http://h/"), Field("u", "x")}}}}, `no such column (it has id, nl)`},
		{"unknown feeder", Target{Requests: []Request{{URL: Template{Text("http://h/"), Field("v", "x")}}}}, `no such feeder`},
		{"two origins", Target{Requests: []Request{{Name: "a", URL: Template{Text("http://h/")}}, {Name: "b", URL: Template{Text("http://g/")}}}}, "one scheme, host and port"},
		{"unnamed in a mix", Target{Requests: []Request{{Name: "a", URL: Template{Text("http://h/")}}, {URL: Template{Text("http://h/")}}}}, "needs a name"},
		{"space in the path", Target{Requests: []Request{{URL: Template{Text("http://h/a b/"), Seq()}}}}, "white space"},
		{"bad randInt", Target{Requests: []Request{{URL: Template{Text("http://h/"), RandInt(2, 1)}}}}, "min > max"},
	} {
		if _, _, _, err := compileTarget(tt.t); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.want)
		}
	}
}

// mixServer is a real loopback HTTP server that records what the requests of
// a mix carried.
type mixServer struct {
	*countingServer
	mu     sync.Mutex
	paths  map[string]int
	values []string // X-Value headers in arrival order
	bodies []string
}

func newMixServer(t *testing.T) *mixServer {
	ms := &mixServer{paths: map[string]int{}}
	ms.countingServer = newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ms.mu.Lock()
		ms.paths[r.URL.Path]++
		if v := r.Header.Get("X-Value"); v != "" {
			ms.values = append(ms.values, v)
		}
		if len(body) > 0 {
			ms.bodies = append(ms.bodies, string(body))
		}
		ms.mu.Unlock()
		switch r.URL.Path {
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"status":"ok","n":3,"items":[{"id":"a"},{"id":"b\u00e9"}]}`)
		case "/created":
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, "made")
		case "/missing":
			http.NotFound(w, r)
		default:
			_, _ = io.WriteString(w, "ok "+r.URL.Path)
		}
	}), false)
	return ms
}

func TestMixAgainstAServer(t *testing.T) {
	ms := newMixServer(t)
	u := ms.URL
	g := newGen(t, Target{Requests: []Request{
		{Name: "publish", Weight: 6, Method: "POST", URL: Template{Text(u + "/publish?id="), UUID()},
			Body: Template{Text(`{"seq":`), Seq(), Text(`,"at":"`), Now(""), Text(`"}`)}},
		{Name: "read", Weight: 3, URL: Template{Text(u + "/read")}},
		{Name: "health", Weight: 1, URL: Template{Text(u + "/health")}, Check: &Check{BodyContains: "ok"}},
	}})
	// A closed loop: every request counted was sent and answered, however
	// busy the machine is.
	w := runStep(t, g, Step{Rate: 0, Connections: 4, Warmup: 100 * time.Millisecond, Hold: 500 * time.Millisecond})
	if w.Errors != 0 || w.Requests < 100 {
		t.Fatalf("%d requests, %d errors: %v", w.Requests, w.Errors, w.ErrorClasses)
	}
	m := w.Metrics()
	for i, want := range []float64{0.6, 0.3, 0.1} {
		rw := w.PerRequest[i]
		share := m[metrics.RequestMetric(rw.Name, metrics.RequestShare)]
		if d := share - want; d > 0.005 || d < -0.005 {
			t.Errorf("%s: share %.4f, want %.1f", rw.Name, share, want)
		}
		if rw.Requests == 0 || m[metrics.RequestMetric(rw.Name, metrics.RequestsCount)] != float64(rw.Requests) ||
			m[metrics.RequestMetric(rw.Name, metrics.LatencyP99)] <= 0 || m[metrics.RequestMetric(rw.Name, metrics.ThroughputRPS)] <= 0 {
			t.Errorf("%s: metrics %v", rw.Name, rw)
		}
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	// Every body is what it says: a distinct sequence number, parsed by a
	// real server with the Content-Length computed per request.
	seqs := map[int]bool{}
	for _, b := range ms.bodies {
		var v struct {
			Seq int    `json:"seq"`
			At  string `json:"at"`
		}
		if err := json.Unmarshal([]byte(b), &v); err != nil || v.Seq < 1 || seqs[v.Seq] {
			t.Fatalf("body %q: %v (repeated or bad seq)", b, err)
		}
		seqs[v.Seq] = true
		if _, err := time.Parse(time.RFC3339, v.At); err != nil {
			t.Fatalf("body %q: %v", b, err)
		}
	}
	if len(seqs) < 50 {
		t.Errorf("%d bodies", len(seqs))
	}
	res := w.Result()
	if len(res.Requests) != 3 || res.Requests[0].Name != "publish" || res.Requests[0].Weight != 6 {
		t.Errorf("Result().Requests = %+v", res.Requests)
	}
}

func TestUniqueFeederRunsDry(t *testing.T) {
	ms := newMixServer(t)
	rows := make([][]string, 50)
	for i := range rows {
		rows[i] = []string{strconv.Itoa(i)}
	}
	g := newGen(t, Target{
		Feeders: map[string]*Feeder{"ids": {Mode: Unique, Columns: []string{"id"}, Rows: rows}},
		Requests: []Request{{Name: "get", URL: Template{Text(ms.URL + "/")},
			Headers: []Header{{Name: "X-Value", Value: Template{Field("ids", "id")}}}}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hold := 10 * time.Second // 2,000 requests due for 50 rows: dry a fortieth of the way in
	w, err := g.Run(ctx, Step{Rate: 200, Connections: 2, Hold: hold})
	var dry *FeederDryError
	if !errors.As(err, &dry) || !errors.Is(err, ErrFeederDry) || dry.Feeder != "ids" || dry.Rows != 50 {
		t.Fatalf("err = %v, want the feeder ran dry", err)
	}
	if !strings.Contains(err.Error(), `feeder "ids" (mode unique) ran dry: all of its 50 rows were used`) {
		t.Errorf("message: %v", err)
	}
	// Stopped, not run to the end of its hold: the window measured ends
	// when the run stopped.
	if w == nil || w.Duration >= hold {
		t.Errorf("the step was not stopped when the feeder ran dry (window %+v)", w)
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	seen := map[string]bool{}
	for _, v := range ms.values {
		if seen[v] {
			t.Fatalf("row %s sent twice", v)
		}
		seen[v] = true
	}
	if len(seen) != 50 {
		t.Errorf("%d distinct rows sent, want all 50", len(seen))
	}
}

func TestCircularFeederWraps(t *testing.T) {
	ms := newMixServer(t)
	g := newGen(t, Target{
		Feeders: map[string]*Feeder{"names": {Mode: Circular, Columns: []string{"n"}, Rows: [][]string{{"ann"}, {"bob"}, {"cid"}}}},
		Requests: []Request{{Name: "get", URL: Template{Text(ms.URL + "/")},
			Headers: []Header{{Name: "X-Value", Value: Template{Field("names", "n")}}}}},
	})
	// One connection: the server sees the rows in the order they were taken.
	w := runStep(t, g, Step{Rate: 0, Connections: 1, Hold: 200 * time.Millisecond})
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if len(ms.values) < 7 || int64(len(ms.values)) < w.Requests {
		t.Fatalf("%d values for %d requests", len(ms.values), w.Requests)
	}
	for i, v := range ms.values {
		if want := []string{"ann", "bob", "cid"}[i%3]; v != want {
			t.Fatalf("request %d sent %q, want %q (rows in order, wrapping)", i, v, want)
		}
	}
}

func TestResponseChecks(t *testing.T) {
	ms := newMixServer(t)
	u := ms.URL
	g := newGen(t, Target{Requests: []Request{
		{Name: "good", URL: Template{Text(u + "/json")}, Check: &Check{Status: []int{200}, BodyContains: `"status"`,
			JSON: &JSONCheck{Path: "items.1.id", Equals: "bé"}}},
		{Name: "bad_text", URL: Template{Text(u + "/plain")}, Check: &Check{BodyContains: "nope"}},
		{Name: "bad_status", URL: Template{Text(u + "/created")}, Check: &Check{Status: []int{200}}},
		{Name: "bad_json", URL: Template{Text(u + "/json")}, Check: &Check{JSON: &JSONCheck{Path: "n", Equals: 4}}},
		{Name: "expected_404", URL: Template{Text(u + "/missing")}, Check: &Check{Status: []int{404}}},
		{Name: "unexpected_404", URL: Template{Text(u + "/missing")}, Check: &Check{Status: []int{200}}},
	}})
	w := runStep(t, g, Step{Rate: 0, Connections: 2, Hold: 300 * time.Millisecond}) // closed loop: all answered
	want := map[string]string{"good": "", "bad_text": metrics.ClassCheck, "bad_status": metrics.ClassCheck,
		"bad_json": metrics.ClassCheck, "expected_404": "", "unexpected_404": metrics.ClassHTTP4xx}
	for _, rw := range w.PerRequest {
		if rw.Requests == 0 {
			t.Fatalf("%s: no requests", rw.Name)
		}
		cls := want[rw.Name]
		if cls == "" {
			if rw.Errors != 0 || len(rw.ErrorClasses) != 0 {
				t.Errorf("%s: %d errors %v, want none", rw.Name, rw.Errors, rw.ErrorClasses)
			}
			continue
		}
		if rw.Errors != rw.Requests || rw.ErrorClasses[cls] != rw.Requests || len(rw.ErrorClasses) != 1 {
			t.Errorf("%s: %d errors of %d, classes %v; want all %s", rw.Name, rw.Errors, rw.Requests, rw.ErrorClasses, cls)
		}
		if rw.Completed != rw.Requests {
			t.Errorf("%s: a failed check is still an answer: %d completed of %d", rw.Name, rw.Completed, rw.Requests)
		}
	}
	if w.ErrorClasses[metrics.ClassCheck] != w.PerRequest[1].Requests+w.PerRequest[2].Requests+w.PerRequest[3].Requests {
		t.Errorf("step check errors %v", w.ErrorClasses)
	}
}

func TestJSONLookup(t *testing.T) {
	doc := []byte(` {"a": {"b": [10, {"c": "x\"y"}, true], "e\u0301": null}, "n": -1.5e2, "s": "\ud83d\ude00"} `)
	for _, tt := range []struct {
		path string
		want string
		ok   bool
	}{
		{"a.b.0", "10", true},
		{"a.b.1.c", `"x\"y"`, true},
		{"a.b.2", "true", true},
		{"a.b.3", "", false},
		{"a.e\u0301", "null", true},
		{"n", "-1.5e2", true},
		{"a.b.x", "", false},
		{"a.z", "", false},
		{"n.x", "", false},
		{"s", `"\ud83d\ude00"`, true},
	} {
		got, ok := jsonLookup(doc, strings.Split(tt.path, "."))
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("jsonLookup(%s) = %q, %v; want %q, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
	if !(jsonScalar{kind: 'n', n: -150}).matches([]byte("-1.5e2")) || !(jsonScalar{kind: 's', s: "😀"}).matches([]byte(`"\ud83d\ude00"`)) ||
		(jsonScalar{kind: 's', s: "x"}).matches([]byte("1")) || !(jsonScalar{kind: 'b', b: true}).matches([]byte("true")) {
		t.Error("jsonScalar.matches")
	}
}

// FuzzJSONLookup compares jsonLookup with encoding/json: on a valid document
// both find the same value, and it never panics on anything.
func FuzzJSONLookup(f *testing.F) {
	for _, s := range []string{`{"a":{"b":[1,{"c":"x"}]}}`, `[0,[1,2]]`, `{"a":"\u00e9\n"}`, `{"a":1,"a":2}`, `{"a" 1}`, `{"a":[}`} {
		f.Add(s, "a.b.1.c")
		f.Add(s, "1.0")
	}
	f.Fuzz(func(t *testing.T, doc, path string) {
		segs := strings.Split(path, ".")
		raw, ok := jsonLookup([]byte(doc), segs)
		var v any
		if json.Unmarshal([]byte(doc), &v) != nil {
			return
		}
		want, wantOK := refLookup(v, segs)
		if wantOK != ok {
			if !ok && hasDuplicateKeys(doc) {
				return
			}
			t.Fatalf("jsonLookup(%q, %q) found=%v, encoding/json found=%v", doc, path, ok, wantOK)
		}
		if !ok {
			return
		}
		var got any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("jsonLookup(%q, %q) = %q: not a JSON value: %v", doc, path, raw, err)
		}
		if hasDuplicateKeys(doc) {
			return // encoding/json keeps the last, jsonLookup the first
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("jsonLookup(%q, %q) = %v, encoding/json %v", doc, path, got, want)
		}
		if s, isStr := want.(string); isStr && !(jsonScalar{kind: 's', s: s}).matches(raw) {
			t.Fatalf("string %q does not match its own raw form %q", s, raw)
		}
	})
}

func refLookup(v any, segs []string) (any, bool) {
	for _, s := range segs {
		switch x := v.(type) {
		case map[string]any:
			e, ok := x[s]
			if !ok {
				return nil, false
			}
			v = e
		case []any:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// hasDuplicateKeys is a cheap over-approximation: any key repeated anywhere.
func hasDuplicateKeys(doc string) bool {
	dec := json.NewDecoder(strings.NewReader(doc))
	seen := map[string]int{}
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if s, ok := tok.(string); ok {
			seen[s]++
			if seen[s] > 1 {
				return true
			}
		}
	}
	return false
}

// Judging an answer allocates nothing, JSON checks included.
func TestCheckZeroAlloc(t *testing.T) {
	body := []byte(`{"status":"ok \u00e9","n":3.0,"items":[{"id":"a"},{"id":"b"}],"done":true}`)
	for _, c := range []Check{
		{Status: []int{200, 201}, BodyContains: "items"},
		{JSON: &JSONCheck{Path: "n", Equals: 3}},
		{JSON: &JSONCheck{Path: "status", Equals: "ok é"}},
		{JSON: &JSONCheck{Path: "items.1.id", Equals: "b"}},
		{JSON: &JSONCheck{Path: "done", Equals: true}},
	} {
		ck, err := compileCheck(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := ck.judge(200, clsOK, body); got != clsOK {
			t.Errorf("%+v: class %v, want ok", c, got)
		}
		if a := testing.AllocsPerRun(100, func() { ck.judge(200, clsOK, body) }); a != 0 {
			t.Errorf("%+v: %v allocations", c, a)
		}
	}
}
