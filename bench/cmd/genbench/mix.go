package main

import (
	"fmt"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/loadgen"
)

// mixTarget is the benchmark's request mix against base (a URL ending in
// "/"): three requests weighted 6:3:1, the first with one template variable
// (its sequence number in the query), the third with a response check; what
// plans/local-mix.yaml does, against any server answering every path.
func mixTarget(base string) loadgen.Target {
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return loadgen.Target{Requests: []loadgen.Request{
		{Name: "item", Weight: 6, URL: loadgen.Template{loadgen.Text(base + "item?n="), loadgen.Seq()}},
		{Name: "list", Weight: 3, URL: loadgen.Template{loadgen.Text(base + "list")}},
		{Name: "health", Weight: 1, URL: loadgen.Template{loadgen.Text(base + "healthz")},
			Check: &loadgen.Check{Status: []int{200}, BodyContains: "ok"}},
	}}
}

// mixShares prints each request's share of the window and its errors.
func mixShares(w *loadgen.Window) string {
	var b strings.Builder
	for _, r := range w.PerRequest {
		share := 0.0
		if w.Requests > 0 {
			share = float64(r.Requests) / float64(w.Requests)
		}
		fmt.Fprintf(&b, " share_%s=%.4f errors_%s=%d", r.Name, share, r.Name, r.Errors)
	}
	return b.String()
}
