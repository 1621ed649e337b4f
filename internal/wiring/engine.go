package wiring

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/rs/zerolog"
	"google.golang.org/protobuf/types/known/durationpb"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"

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

// httpTarget maps workload.http onto a loadgen.Target, through the form the
// agents receive it in (httpWorkload), so both run the same requests.
func httpTarget(p *plan.Plan, render orchestrator.Renderer, lookupEnv func(string) (string, bool)) (loadgen.Target, error) {
	w, err := httpWorkload(p, render, lookupEnv)
	if err != nil {
		return loadgen.Target{}, err
	}
	return targetOf(w)
}

// httpWorkload renders workload.http once on this machine: its templates'
// text parts and env values rendered, its per-request functions kept as
// parts, its feeders loaded.
func httpWorkload(p *plan.Plan, render orchestrator.Renderer, lookupEnv func(string) (string, bool)) (*agentv1.HttpWorkload, error) {
	h := p.Workload.HTTP
	if h == nil {
		return nil, fmt.Errorf("workload.http: missing")
	}
	w := &agentv1.HttpWorkload{Timeout: durationpb.New(h.Timeout.D()), Insecure: h.Insecure}
	for name, f := range h.Feeders {
		d, err := p.LoadFeeder(name)
		if err != nil {
			return nil, fmt.Errorf("workload.http.feeders.%s.file: %w", name, err)
		}
		if w.Feeders == nil {
			w.Feeders = map[string]*agentv1.Feeder{}
		}
		pf := &agentv1.Feeder{Mode: f.Mode, Columns: d.Columns, Rows: make([]*agentv1.FeederRow, len(d.Rows))}
		for i, r := range d.Rows {
			pf.Rows[i] = &agentv1.FeederRow{Values: r}
		}
		w.Feeders[name] = pf
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
		req := &agentv1.HttpRequest{Name: src.name, Weight: int32(src.weight), Method: src.method}
		var err error
		if req.Check, err = checkOf(src.prefix+".check", src.check); err != nil {
			return nil, err
		}
		if req.Url, err = requestTemplate(render, lookupEnv, src.prefix+".url", src.url); err != nil {
			return nil, err
		}
		if req.Body, err = requestTemplate(render, lookupEnv, src.prefix+".body", src.body); err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(src.headers))
		for k := range src.headers {
			keys = append(keys, k)
		}
		sort.Strings(keys) // a stable request, for tests and for reproducible captures
		for _, k := range keys {
			v, err := requestTemplate(render, lookupEnv, src.prefix+".headers."+k, src.headers[k])
			if err != nil {
				return nil, err
			}
			req.Headers = append(req.Headers, &agentv1.HttpHeader{Name: k, Value: v})
		}
		w.Requests = append(w.Requests, req)
	}
	return w, nil
}

// requestTemplate parses a request template once and renders its text parts:
// what remains for each request are its per-request parts. An env value is
// read here, once.
func requestTemplate(render orchestrator.Renderer, lookupEnv func(string) (string, bool), path, text string) ([]*agentv1.TemplatePart, error) {
	parts, err := plan.ParseRequestTemplate(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var t []*agentv1.TemplatePart
	for _, part := range parts {
		switch part.Func {
		case "":
			s, err := render(part.Text)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			t = append(t, &agentv1.TemplatePart{Text: s})
		case plan.FuncEnv:
			v, ok := lookupEnv(part.Args[0])
			if !ok {
				return nil, fmt.Errorf("%s: env %q is not set", path, part.Args[0])
			}
			t = append(t, &agentv1.TemplatePart{Text: v})
		default:
			t = append(t, &agentv1.TemplatePart{Func: part.Func, Args: part.Args})
		}
	}
	return t, nil
}

// checkOf is a response check as it travels.
func checkOf(path string, c *plan.Check) (*agentv1.ResponseCheck, error) {
	if c == nil {
		return nil, nil
	}
	out := &agentv1.ResponseCheck{BodyContains: c.BodyContains}
	for _, s := range c.Status {
		out.Status = append(out.Status, int32(s))
	}
	if c.JSON != nil {
		out.JsonPath = c.JSON.Path
		if c.JSON.Equals != nil {
			b, err := json.Marshal(c.JSON.Equals)
			if err != nil {
				return nil, fmt.Errorf("%s.json.equals: %w", path, err)
			}
			out.JsonEqualsJson = string(b)
		}
	}
	return out, nil
}

// targetOf is the loadgen.Target of a rendered http workload: on this
// machine, or on an agent from what the coordinator sent it.
func targetOf(w *agentv1.HttpWorkload) (loadgen.Target, error) {
	target := loadgen.Target{Timeout: w.GetTimeout().AsDuration(), Insecure: w.GetInsecure()}
	for name, f := range w.GetFeeders() {
		lf := &loadgen.Feeder{Mode: feederMode(f.GetMode()), Columns: f.GetColumns(), Rows: make([][]string, len(f.GetRows()))}
		for i, r := range f.GetRows() {
			lf.Rows[i] = r.GetValues()
		}
		if target.Feeders == nil {
			target.Feeders = map[string]*loadgen.Feeder{}
		}
		target.Feeders[name] = lf
	}
	if len(w.GetRequests()) == 0 {
		return target, fmt.Errorf("workload.http: no request")
	}
	for _, r := range w.GetRequests() {
		req := loadgen.Request{Name: r.GetName(), Weight: int(r.GetWeight()), Method: r.GetMethod()}
		var err error
		if req.Check, err = loadgenCheck(r.GetCheck()); err != nil {
			return target, err
		}
		if req.URL, err = loadgenTemplate(r.GetUrl()); err != nil {
			return target, fmt.Errorf("request %q url: %w", r.GetName(), err)
		}
		if req.Body, err = loadgenTemplate(r.GetBody()); err != nil {
			return target, fmt.Errorf("request %q body: %w", r.GetName(), err)
		}
		for _, h := range r.GetHeaders() {
			v, err := loadgenTemplate(h.GetValue())
			if err != nil {
				return target, fmt.Errorf("request %q header %s: %w", r.GetName(), h.GetName(), err)
			}
			req.Headers = append(req.Headers, loadgen.Header{Name: h.GetName(), Value: v})
		}
		target.Requests = append(target.Requests, req)
	}
	return target, nil
}

// partArgs are the arguments the per-request functions need (what an agent
// receives is checked before it is used).
var partArgs = map[string]int{plan.FuncRandInt: 2, plan.FuncRandString: 1, plan.FuncFeed: 2}

// loadgenTemplate maps rendered template parts onto loadgen's.
func loadgenTemplate(parts []*agentv1.TemplatePart) (loadgen.Template, error) {
	var t loadgen.Template
	for _, p := range parts {
		part := plan.RequestPart{Text: p.GetText(), Func: p.GetFunc(), Args: p.GetArgs()}
		if n := partArgs[part.Func]; len(part.Args) < n {
			return nil, fmt.Errorf("%s: wants %d arguments, has %d", part.Func, n, len(part.Args))
		}
		switch part.Func {
		case "":
			t = append(t, loadgen.Text(part.Text))
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
		default:
			return nil, fmt.Errorf("unknown per-request function %q", part.Func)
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

func loadgenCheck(c *agentv1.ResponseCheck) (*loadgen.Check, error) {
	if c == nil {
		return nil, nil
	}
	out := &loadgen.Check{BodyContains: c.GetBodyContains()}
	for _, s := range c.GetStatus() {
		out.Status = append(out.Status, int(s))
	}
	if c.GetJsonPath() != "" {
		out.JSON = &loadgen.JSONCheck{Path: c.GetJsonPath()}
		if e := c.GetJsonEqualsJson(); e != "" {
			if err := json.Unmarshal([]byte(e), &out.JSON.Equals); err != nil {
				return nil, fmt.Errorf("check: json equals: %w", err)
			}
		}
	}
	return out, nil
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
