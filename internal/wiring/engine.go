package wiring

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/loadgen"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// NewEngine builds the plan's engine for its workload (plan.Workload*).
// Adding an engine is a case here, and a file of this package adapting it to
// orchestrator.Engine.
func NewEngine(_ context.Context, p *plan.Plan, render orchestrator.Renderer, log zerolog.Logger) (orchestrator.Engine, error) {
	switch p.WorkloadKind() {
	case plan.WorkloadHTTP:
		return newHTTPEngine(p, render, os.LookupEnv)
	case plan.WorkloadPubSub:
		return newPubSubEngine(p, render, log)
	case plan.WorkloadLocust:
		return newLocustEngine(p, render, log)
	}
	return nil, fmt.Errorf("engine %q is not available in this build yet", p.Workload.Engine)
}

// newHTTPEngine builds the builtin engine's HTTP workload (workload.http):
// its request or mix of requests, each template rendered once into text and
// per-request parts, and its feeders loaded.
func newHTTPEngine(p *plan.Plan, render orchestrator.Renderer, lookupEnv func(string) (string, bool)) (orchestrator.Engine, error) {
	target, err := httpTarget(p, render, lookupEnv)
	if err != nil {
		return nil, err
	}
	g, err := loadgen.New(target)
	if err != nil {
		return nil, err
	}
	return &httpEngine{g: g, poisson: p.Workload.Arrival == plan.ArrivalPoisson}, nil
}

// httpTarget maps workload.http onto a loadgen.Target.
func httpTarget(p *plan.Plan, render orchestrator.Renderer, lookupEnv func(string) (string, bool)) (loadgen.Target, error) {
	h := p.Workload.HTTP
	if h == nil {
		return loadgen.Target{}, fmt.Errorf("workload.http: missing")
	}
	target := loadgen.Target{Timeout: h.Timeout.D(), Insecure: h.Insecure}
	for name, f := range h.Feeders {
		d, err := p.LoadFeeder(name)
		if err != nil {
			return target, fmt.Errorf("workload.http.feeders.%s.file: %w", name, err)
		}
		if target.Feeders == nil {
			target.Feeders = map[string]*loadgen.Feeder{}
		}
		target.Feeders[name] = &loadgen.Feeder{Mode: feederMode(f.Mode), Columns: d.Columns, Rows: d.Rows}
	}
	type source struct {
		prefix, name      string
		weight            int
		method, url, body string
		headers           map[string]string
		check             *plan.Check
	}
	sources := []source{{prefix: "workload.http", method: h.Method, url: h.URL, body: h.Body, headers: h.Headers, check: h.Check}}
	if len(h.Requests) > 0 {
		sources = sources[:0]
		for i, r := range h.Requests {
			sources = append(sources, source{prefix: fmt.Sprintf("workload.http.requests[%d]", i), name: r.Name, weight: r.Weight,
				method: r.Method, url: r.URL, body: r.Body, headers: r.Headers, check: r.Check})
		}
	}
	for _, src := range sources {
		req := loadgen.Request{Name: src.name, Weight: src.weight, Method: src.method, Check: loadgenCheck(src.check)}
		var err error
		if req.URL, err = requestTemplate(render, lookupEnv, src.prefix+".url", src.url); err != nil {
			return target, err
		}
		if req.Body, err = requestTemplate(render, lookupEnv, src.prefix+".body", src.body); err != nil {
			return target, err
		}
		keys := make([]string, 0, len(src.headers))
		for k := range src.headers {
			keys = append(keys, k)
		}
		sort.Strings(keys) // a stable request, for tests and for reproducible captures
		for _, k := range keys {
			v, err := requestTemplate(render, lookupEnv, src.prefix+".headers."+k, src.headers[k])
			if err != nil {
				return target, err
			}
			req.Headers = append(req.Headers, loadgen.Header{Name: k, Value: v})
		}
		target.Requests = append(target.Requests, req)
	}
	return target, nil
}

// requestTemplate parses a request template once and renders its text parts:
// what remains for each request are its per-request parts. An env value is
// read here, once.
func requestTemplate(render orchestrator.Renderer, lookupEnv func(string) (string, bool), path, text string) (loadgen.Template, error) {
	parts, err := plan.ParseRequestTemplate(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var t loadgen.Template
	for _, part := range parts {
		switch part.Func {
		case "":
			s, err := render(part.Text)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			t = append(t, loadgen.Text(s))
		case plan.FuncSeq:
			t = append(t, loadgen.Seq())
		case plan.FuncUUID:
			t = append(t, loadgen.UUID())
		case plan.FuncRandInt:
			t = append(t, loadgen.RandInt(part.IntArg(0), part.IntArg(1)))
		case plan.FuncRandString:
			t = append(t, loadgen.RandString(int(part.IntArg(0))))
		case plan.FuncNow:
			layout := ""
			if len(part.Args) > 0 {
				layout = part.Args[0]
			}
			t = append(t, loadgen.Now(layout))
		case plan.FuncNowUnix:
			t = append(t, loadgen.NowUnix())
		case plan.FuncNowUnixMilli:
			t = append(t, loadgen.NowUnixMilli())
		case plan.FuncFeed:
			t = append(t, loadgen.Field(part.Args[0], part.Args[1]))
		case plan.FuncEnv:
			v, ok := lookupEnv(part.Args[0])
			if !ok {
				return nil, fmt.Errorf("%s: env %q is not set", path, part.Args[0])
			}
			t = append(t, loadgen.Text(v))
		default:
			return nil, fmt.Errorf("%s: unknown per-request function %q", path, part.Func)
		}
	}
	return t, nil
}

func feederMode(mode string) loadgen.FeederMode {
	switch mode {
	case plan.FeederRandom:
		return loadgen.Random
	case plan.FeederUnique:
		return loadgen.Unique
	}
	return loadgen.Circular
}

func loadgenCheck(c *plan.Check) *loadgen.Check {
	if c == nil {
		return nil
	}
	out := &loadgen.Check{Status: c.Status, BodyContains: c.BodyContains}
	if c.JSON != nil {
		out.JSON = &loadgen.JSONCheck{Path: c.JSON.Path, Equals: c.JSON.Equals}
	}
	return out
}

// httpEngine adapts loadgen.Generator to the orchestrator's Engine.
type httpEngine struct {
	g       *loadgen.Generator
	poisson bool
}

func (e *httpEngine) Step(ctx context.Context, s orchestrator.EngineStep) (*result.EngineResult, error) {
	w, err := e.g.Run(ctx, loadgen.Step{
		Rate:        s.Params[plan.ParamRate],
		Connections: int(plan.ParamValue(plan.WorkloadHTTP, s.Params, plan.ParamConnections)),
		Warmup:      s.Warmup,
		Hold:        s.Hold,
		Poisson:     e.poisson,
		OnSecond:    s.OnSecond,
	})
	if w == nil {
		return nil, err
	}
	return w.Result(), err
}

func (e *httpEngine) Close() error { return e.g.Close() }
