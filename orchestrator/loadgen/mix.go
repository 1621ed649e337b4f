package loadgen

import (
	"errors"
	"fmt"
	"strings"
)

// Request is one request of a Target's mix. Its URL, header values and body
// are Templates: text, and values computed for each request sent (Seq, UUID,
// RandInt, RandString, Now, NowUnix, NowUnixMilli, Field). A request whose
// templates are all text is serialized once, and sending it allocates nothing
// and computes nothing; one with computed values is assembled for each
// request into a buffer of its connection, which also allocates nothing once
// the buffer has grown.
type Request struct {
	// Name names the request's measurements (Window.Requests, and the
	// metrics request.<name>.*). Every request of a mix of more than one
	// needs a distinct name; a lone request without one is measured only as
	// the whole.
	Name string
	// Weight is the request's share of the mix relative to the others' (0
	// counts as 1): with weights 6, 3 and 1, six requests in ten are the
	// first. The requests are interleaved in a fixed, smooth order (see
	// mixSchedule), so the shares are exact over every cycle of the mix, not
	// only on average, whatever the arrival process.
	Weight  int
	Method  string // default GET
	URL     Template
	Headers []Header // in the order sent
	Body    Template
	// Check, if set, is the response check: an answer that fails it counts
	// as an error of class check (metrics.ClassCheck).
	Check *Check
}

// Header is one request header. Its value is a template.
type Header struct {
	Name  string
	Value Template
}

// Check is a response check.
type Check struct {
	// Status lists the status codes expected; an answer with another is an
	// error: of its status class (http_4xx, http_5xx) from 400 up, else of
	// class check. Empty: any status below 400 passes, and 400 and above
	// keep their status class.
	Status []int
	// BodyContains, if not empty, must be in the body.
	BodyContains string
	// JSON, if set, checks one field of a JSON body.
	JSON *JSONCheck
}

// JSONCheck checks one field of a JSON body.
type JSONCheck struct {
	// Path is the field's object keys and array indexes, joined by dots:
	// "data.items.0.id".
	Path string
	// Equals, if not nil, is the value the field must have: a string, a
	// number (int, int64 or float64, compared as numbers) or a bool. Nil: the
	// field must only exist.
	Equals any
}

// Checks read at most MaxCheckedBody bytes of a body: a text or JSON field
// past them is not found.
const MaxCheckedBody = 64 << 10

// FeederMode says which row of a feeder each request reads.
type FeederMode int

// Feeder modes.
const (
	// Circular reads the rows in order and starts over after the last.
	Circular FeederMode = iota
	// Random reads a row drawn at random for each request.
	Random
	// Unique reads each row once in the Generator's life; a request that
	// finds none left stops the step with a *FeederDryError.
	Unique
)

// String returns the mode's name in plans: circular, random or unique.
func (m FeederMode) String() string {
	switch m {
	case Circular:
		return "circular"
	case Random:
		return "random"
	case Unique:
		return "unique"
	}
	return fmt.Sprintf("FeederMode(%d)", int(m))
}

// Feeder is a table of data that requests read with Field: each request
// that reads a feeder takes one row of it (the same row for every Field of
// that feeder in the request).
type Feeder struct {
	Mode    FeederMode
	Columns []string
	Rows    [][]string // each as long as Columns
}

// FeederDryError stops a step when a Unique feeder has no row left for a
// request: reusing rows silently would send what the plan promised to send
// once.
type FeederDryError struct {
	Feeder string
	Rows   int
}

func (e *FeederDryError) Error() string {
	return fmt.Sprintf("feeder %q (mode unique) ran dry: all of its %d rows were used, and a unique feeder gives each row once a run; "+
		"give it more rows, lower the rate or the hold, or use mode circular", e.Feeder, e.Rows)
}

// ErrFeederDry matches every *FeederDryError with errors.Is.
var ErrFeederDry = errors.New("feeder ran dry")

// Is makes errors.Is(err, ErrFeederDry) true.
func (e *FeederDryError) Is(target error) bool { return target == ErrFeederDry }

// requestsOf is target's mix: its Requests, or its single request.
func requestsOf(t Target) []Request {
	if len(t.Requests) > 0 {
		return t.Requests
	}
	r := Request{Method: t.Method, URL: Template{Text(t.URL)}, Body: Template{Text(string(t.Body))}, Check: t.Check}
	for _, k := range sortedKeys(t.Headers) {
		r.Headers = append(r.Headers, Header{Name: k, Value: Template{Text(t.Headers[k])}})
	}
	return []Request{r}
}

// validateMix checks what compiling each request does not: names, weights.
func validateMix(reqs []Request) error {
	if len(reqs) > 255 {
		return fmt.Errorf("loadgen: %d requests; a mix has at most 255", len(reqs))
	}
	if len(reqs) == 1 {
		return checkWeight(reqs[0])
	}
	seen := map[string]bool{}
	for i, r := range reqs {
		switch {
		case r.Name == "":
			return fmt.Errorf("loadgen: requests[%d]: a request of a mix needs a name", i)
		case strings.ContainsAny(r.Name, ". \t\r\n"):
			return fmt.Errorf("loadgen: requests[%d]: name %q: no dots or white space (it is part of metric names)", i, r.Name)
		case seen[r.Name]:
			return fmt.Errorf("loadgen: requests[%d]: name %q is used twice", i, r.Name)
		}
		seen[r.Name] = true
		if err := checkWeight(r); err != nil {
			return err
		}
	}
	return nil
}

func checkWeight(r Request) error {
	if r.Weight < 0 {
		return fmt.Errorf("loadgen: request %q: weight %d: must be >= 0 (0 counts as 1)", r.Name, r.Weight)
	}
	return nil
}

// maxMixCycle bounds a mix's cycle (the sum of the weights over their
// greatest common divisor).
const maxMixCycle = 1 << 20

// mixSchedule is the order in which a mix's requests are sent, one cycle of
// it: request i appears weight_i/g times in sum(weight)/g entries, g being
// the weights' greatest common divisor. It is the smooth weighted round robin
// of nginx's upstreams: at each entry every request's credit grows by its
// weight, and the request with the most credit is sent and pays the total.
// The result interleaves the requests as evenly as their weights allow
// (6,3,1 gives a b a a b a c a b a), so over any run of consecutive requests
// each one's count is within a request or two of its exact share. A random
// draw per request (an alias table, say) is as cheap, but only right on
// average: over 1,000 requests a 10 % request's share would spread by about
// ±1 %, and a short hold or a slow Poisson step would show it.
//
// The generator sends entry (n-1) mod len of the schedule as its n-th request,
// n counted over the Generator's life, so steps continue the cycle.
func mixSchedule(weights []int) ([]uint8, error) {
	g := 0
	for _, w := range weights {
		g = gcd(g, max(w, 1))
	}
	w := make([]int, len(weights))
	total := 0
	for i, x := range weights {
		w[i] = max(x, 1) / g
		total += w[i]
		if total > maxMixCycle {
			return nil, fmt.Errorf("loadgen: the weights add up to more than %d (over their common divisor); use smaller weights in the same proportions", maxMixCycle)
		}
	}
	credit := make([]int, len(w))
	out := make([]uint8, 0, total)
	for range total {
		best := 0
		for i := range w {
			credit[i] += w[i]
			if credit[i] > credit[best] {
				best = i
			}
		}
		credit[best] -= total
		out = append(out, uint8(best))
	}
	return out, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
