package plan

import (
	"fmt"
	"math"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// MaxStepsLimit bounds ramp.max_steps: a longer ramp is a mistake, not a plan.
const MaxStepsLimit = 10000

var (
	planNameRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	identRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	httpTokenRe = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
	providers   = []string{ProviderLocal, ProviderTerraform, ProviderStatic}
	engines     = []string{EngineBuiltin, EngineLocust}
	orders      = []string{OrderRoundRobin, OrderSequential}
	arrivals    = []string{ArrivalConstant, ArrivalPoisson}
	probeKinds  = []string{"http", "pubsub"}
)

// MaxPubSubBodyBytes bounds workload.pubsub.body_bytes.
const MaxPubSubBodyBytes = 1 << 20

// Expr is a gate, generator-health or abort expression with where it was
// written. Package plan does not parse expressions (package gate does); the
// path lets the caller report a bad one as `gates[2] (line 40): ...`.
type Expr struct {
	Kind string // "gates", "generator_health" or "abort"
	Path string // e.g. gates[2]
	Line int    // 0 if unknown
	Text string
}

// Expressions lists the plan's gate, generator-health and abort expressions in
// that order, each with its path and line.
func (p *Plan) Expressions() []Expr {
	var out []Expr
	for _, g := range []struct {
		kind string
		list []string
	}{{"gates", p.Gates}, {"generator_health", p.GeneratorHealth}, {"abort", p.Abort}} {
		for i, t := range g.list {
			path := fmt.Sprintf("%s[%d]", g.kind, i)
			out = append(out, Expr{Kind: g.kind, Path: path, Line: p.Line(path), Text: t})
		}
	}
	return out
}

type validator struct {
	p     *Plan
	probs []error
}

// lineOf returns the line of path or, when path was not written, of its
// nearest written ancestor (so a missing key points at the block it is missing
// from). A path written by --set has no line.
func (v *validator) lineOf(p string) int {
	for p != "" {
		if l, ok := v.p.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

func (v *validator) add(path, format string, args ...any) {
	v.probs = append(v.probs, &Problem{Path: path, Line: v.lineOf(path), Msg: fmt.Sprintf(format, args...)})
}

func oneOf(list []string) string {
	switch len(list) {
	case 0:
		return ""
	case 1:
		return list[0]
	}
	return strings.Join(list[:len(list)-1], ", ") + " or " + list[len(list)-1]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// choice checks that value is one of allowed.
func (v *validator) choice(path, what, value string, allowed []string) {
	if value == "" {
		v.add(path, "missing; use %s", oneOf(allowed))
		return
	}
	if !contains(allowed, value) {
		v.add(path, "unknown %s %q; use %s%s", what, value, oneOf(allowed), hint(value, allowed))
	}
}

// Validate checks the plan and returns every problem at once, each a *Problem
// with its YAML path and, for a plan made by Parse, its line. Gate expressions
// are not parsed here (see Expressions).
func (p *Plan) Validate() []error {
	v := &validator{p: p}
	if p.Version != SchemaVersion {
		v.add("version", "unsupported version %d; this loadramp reads version %d", p.Version, SchemaVersion)
	}
	switch {
	case p.Name == "":
		v.add("name", "missing; the plan's name names its run directories")
	case !planNameRe.MatchString(p.Name):
		v.add("name", "%q cannot name a run directory: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", p.Name)
	}
	v.fleets()
	v.parameters()
	v.ramp()
	v.workload()
	v.probe()
	v.report()
	v.expressions()
	v.campaign()
	v.prometheus()
	v.templates()
	sort.SliceStable(v.probs, func(i, j int) bool {
		li, lj := v.probs[i].(*Problem).Line, v.probs[j].(*Problem).Line
		if (li == 0) != (lj == 0) {
			return lj == 0
		}
		return li < lj
	})
	return v.probs
}

func (v *validator) fleets() {
	p := v.p
	if len(p.Fleets) == 0 {
		v.add("fleets", "missing; a plan needs at least a target fleet")
		return
	}
	if _, ok := p.Fleets["target"]; !ok {
		v.add("fleets", "no target fleet; name the system under test fleets.target%s", hint("target", mapKeys(p.Fleets)))
	}
	for _, name := range mapKeys(p.Fleets) {
		f := p.Fleets[name]
		fp := "fleets." + name
		if !identRe.MatchString(name) {
			v.add(fp, "fleet name %q cannot be used in templates: use letters, digits and _", name)
		}
		if f == nil {
			v.add(fp+".provider", "missing; use %s", oneOf(providers))
			continue
		}
		v.choice(fp+".provider", "provider", f.Provider, providers)
		for _, o := range mapKeys(f.Outputs) {
			if !identRe.MatchString(o) {
				v.add(fp+".outputs."+o, "output name %q cannot be used in templates: use letters, digits and _", o)
			}
		}
		for i, l := range f.Logs {
			if strings.TrimSpace(l) == "" {
				v.add(fmt.Sprintf("%s.logs[%d]", fp, i), "empty log file path")
			}
		}
		if f.Provider != ProviderLocal && len(f.Processes) > 0 {
			v.add(fp+".processes", "only the local provider starts processes (provider is %q)", f.Provider)
		}
		v.processes(fp, f.Processes)
		v.agents(name, f)
		if f.Provider != ProviderTerraform && f.Terraform != nil {
			v.add(fp+".terraform", "only for provider terraform (provider is %q)", f.Provider)
		}
		switch f.Provider {
		case ProviderLocal:
			// The generators fleet may be empty: the builtin engine then
			// runs inside loadramp on this machine.
			if len(f.Processes) == 0 && name != "generators" && (f.Agents == nil || f.Agents.Local == 0) {
				v.add(fp+".processes", "missing; a local fleet needs processes to start")
			}
		case ProviderTerraform:
			if f.Terraform == nil || strings.TrimSpace(f.Terraform.Dir) == "" {
				v.add(fp+".terraform.dir", "missing; a terraform fleet needs the module directory")
			}
		case ProviderStatic:
			if len(f.Outputs) == 0 && !f.HasAgents() {
				v.add(fp+".outputs", "missing; a static fleet is its outputs (e.g. endpoint: http://host:port)")
			}
		}
	}
}

func (v *validator) processes(fp string, procs []Process) {
	seen := map[string]int{}
	for i, pr := range procs {
		pp := fmt.Sprintf("%s.processes[%d]", fp, i)
		switch {
		case pr.Name == "":
			v.add(pp+".name", "missing; processes are named in logs and findings")
		case !planNameRe.MatchString(pr.Name):
			v.add(pp+".name", "%q: use letters, digits, '.', '_' or '-'", pr.Name)
		default:
			if j, dup := seen[pr.Name]; dup {
				v.add(pp+".name", "duplicate process name %q (also %s.processes[%d])", pr.Name, fp, j)
			} else {
				seen[pr.Name] = i
			}
		}
		if len(pr.Command) == 0 || strings.TrimSpace(pr.Command[0]) == "" {
			v.add(pp+".command", "missing; give the program and its arguments as a list")
		}
		if pr.Ready != "" && !hasScheme(pr.Ready, "http://", "https://", "tcp://") {
			v.add(pp+".ready", "%q: use an http://, https:// or tcp://host:port address", pr.Ready)
		}
		if pr.ReadyTimeout <= 0 {
			v.add(pp+".ready_timeout", "must be > 0")
		}
		v.atMost(pp+".ready_timeout", "Process.ready_timeout", float64(pr.ReadyTimeout))
		if pr.Replicas < 1 {
			v.add(pp+".replicas", "%d: must be >= 1", pr.Replicas)
		}
		v.atMost(pp+".replicas", "Process.replicas", float64(pr.Replicas))
		for _, name := range mapKeys(pr.Files) {
			clean := path.Clean(name)
			if name == "" || path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(name, "{{") {
				v.add(pp+".files."+name, "file name %q must be a plain path inside the run directory", name)
			}
		}
	}
}

func hasScheme(s string, schemes ...string) bool {
	for _, sc := range schemes {
		if strings.HasPrefix(strings.ToLower(s), sc) {
			return true
		}
	}
	return false
}

func (v *validator) parameters() {
	p := v.p
	if len(p.Parameters) == 0 {
		v.add("parameters", "missing; name at least one load parameter to ramp, e.g. { name: rate, start: 250, max: 64000 }")
		return
	}
	workload := p.WorkloadKind()
	allowed := ParamNamesOf(workload)
	for _, lp := range ParamsOf(workload) {
		if lp.Required && !hasParam(p.Parameters, lp.Name) {
			v.add("parameters", "the %s engine needs a %s parameter (%s); to hold it fixed, give start = max, e.g. { name: %s, start: %s, max: %s }",
				p.Workload.Engine, lp.Name, lp.Description, lp.Name, formatNumber(lp.Example), formatNumber(lp.Example))
		}
	}
	seen := map[string]int{}
	for i, par := range p.Parameters {
		pp := fmt.Sprintf("parameters[%d]", i)
		switch {
		case par.Name == "":
			v.add(pp+".name", "missing")
		case allowed != nil && !contains(allowed, par.Name):
			v.add(pp+".name", "unknown parameter %q for the %s engine; use %s%s", par.Name, p.Workload.Engine, oneOf(allowed), hint(par.Name, allowed))
		}
		if j, dup := seen[par.Name]; dup && par.Name != "" {
			v.add(pp+".name", "duplicate parameter %q (also parameters[%d])", par.Name, j)
		} else {
			seen[par.Name] = i
		}
		if !(par.Start > 0) {
			v.add(pp+".start", "must be > 0 (got %s)", formatNumber(par.Start))
		}
		if par.Max < par.Start {
			v.add(pp+".max", "must be >= start (%s), got %s", formatNumber(par.Start), formatNumber(par.Max))
		}
		if lp, ok := LookupParam(workload, par.Name); ok {
			for _, x := range []struct {
				key string
				val float64
			}{{"start", par.Start}, {"max", par.Max}} {
				if x.val > lp.Max {
					v.add(pp+"."+x.key, "%s is over the bound of %s: at most %s%s (docs/plan.md, parameters)", formatLarge(x.val), par.Name, formatNumber(lp.Max), unitSuffix(lp.Unit))
				}
			}
		}
		if IntegerParam(par.Name) {
			if par.Start != math.Trunc(par.Start) {
				v.add(pp+".start", "%s takes whole numbers, got %s", par.Name, formatNumber(par.Start))
			}
			if par.Max != math.Trunc(par.Max) {
				v.add(pp+".max", "%s takes whole numbers, got %s", par.Name, formatNumber(par.Max))
			}
		}
	}
}

func (v *validator) ramp() {
	r := v.p.Ramp
	if !(r.Factor > 1) || math.IsInf(r.Factor, 0) {
		v.add("ramp.factor", "must be > 1 (got %s); 2 doubles a parameter each time", formatNumber(r.Factor))
	}
	v.choice("ramp.order", "order", r.Order, orders)
	if r.Hold <= 0 {
		v.add("ramp.hold", "must be > 0; it is the steady-state window gates judge")
	}
	if r.Warmup < 0 {
		v.add("ramp.warmup", "must be >= 0")
	}
	if r.Cooldown < 0 {
		v.add("ramp.cooldown", "must be >= 0")
	}
	if r.Confirm < 0 {
		v.add("ramp.confirm", "must be >= 0")
	}
	if r.Refine < 0 {
		v.add("ramp.refine", "must be >= 0")
	}
	if r.InterferenceReruns < 0 {
		v.add("ramp.interference_reruns", "must be >= 0")
	}
	if r.MaxSteps < 1 || r.MaxSteps > MaxStepsLimit {
		v.add("ramp.max_steps", "must be between 1 and %d (got %d)", MaxStepsLimit, r.MaxSteps)
	}
	if r.Factor > 1 {
		v.atMost("ramp.factor", "Ramp.factor", r.Factor)
	}
	v.atMost("ramp.warmup", "Ramp.warmup", float64(r.Warmup))
	v.atMost("ramp.hold", "Ramp.hold", float64(r.Hold))
	v.atMost("ramp.cooldown", "Ramp.cooldown", float64(r.Cooldown))
	v.atMost("ramp.confirm", "Ramp.confirm", float64(r.Confirm))
	v.atMost("ramp.refine", "Ramp.refine", float64(r.Refine))
	v.atMost("ramp.interference_reruns", "Ramp.interference_reruns", float64(r.InterferenceReruns))
}

// checkURL checks a literal http(s) URL; templated ones are checked when
// rendered.
func (v *validator) checkURL(p, u string) {
	if u == "" {
		v.add(p, "missing")
		return
	}
	if strings.Contains(u, "{{") {
		if !strings.HasPrefix(strings.TrimSpace(u), "{{") && !hasScheme(u, "http://", "https://") {
			v.add(p, "%q: use an http:// or https:// URL", u)
		}
		return
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		v.add(p, "%q: use an http:// or https:// URL with a host", u)
	}
}

func (v *validator) workload() {
	w := v.p.Workload
	v.choice("workload.engine", "engine", w.Engine, engines)
	switch w.Engine {
	case EngineBuiltin:
		switch {
		case w.HTTP != nil && w.PubSub != nil:
			v.add("workload.pubsub", "give workload.http or workload.pubsub, not both: the builtin engine runs one workload")
		case w.HTTP == nil && w.PubSub == nil:
			v.add("workload.http", "missing; the builtin engine needs workload.http (requests) or workload.pubsub (publish/subscribe)")
		case w.PubSub != nil:
			v.pubsub(w.PubSub)
		default:
			v.http(w.HTTP)
		}
		if w.Arrival != "" {
			v.choice("workload.arrival", "arrival", w.Arrival, arrivals)
		}
		if w.PubSub != nil && w.Arrival == ArrivalPoisson {
			v.add("workload.arrival", "the pubsub workload publishes at a constant rate; leave arrival out or use constant")
		}
		if w.Locust != nil {
			v.add("workload.locust", "only for the locust engine")
		}
	case EngineLocust:
		if w.Locust == nil || w.Locust.Locustfile == "" {
			v.add("workload.locust.locustfile", "missing; the locust engine needs a locustfile")
		}
		if w.HTTP != nil {
			v.add("workload.http", "only for the builtin engine; a locustfile says what locust sends")
		}
		if w.PubSub != nil {
			v.add("workload.pubsub", "only for the builtin engine; a locustfile says what locust sends")
		}
		if w.Arrival != "" {
			v.add("workload.arrival", "only for the builtin engine")
		}
	}
}

func (v *validator) pubsub(ps *PubSub) {
	v.bus("workload.pubsub", &ps.PubSubBus)
	if ps.BodyBytes < 0 || ps.BodyBytes > MaxPubSubBodyBytes {
		v.add("workload.pubsub.body_bytes", "must be between 0 and %d bytes (got %d)", MaxPubSubBodyBytes, ps.BodyBytes)
	}
	if ps.Timeout < 0 {
		v.add("workload.pubsub.timeout", "must be >= 0 (0: the default, 5s)")
	}
	v.atMost("workload.pubsub.timeout", "PubSub.timeout", float64(ps.Timeout))
}

// Transports of a pub/sub URL, as far as validation can tell.
const (
	transportUnknown = ""
	transportHTTP    = "http"
	transportWS      = "websocket"
)

// leadingOutput matches a template that starts with a fleet's output.
var leadingOutput = regexp.MustCompile(`^\{\{-?\s*\.fleets\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)\s*-?\}\}`)

// busURL checks a publish or subscribe URL and returns its transport. A URL
// that starts with a local fleet's output ({{ .fleets.target.endpoint }}/x)
// has that output's scheme.
func (v *validator) busURL(p, u, what string) string {
	if m := leadingOutput.FindStringSubmatch(strings.TrimSpace(u)); m != nil {
		if f := v.p.Fleets[m[1]]; f != nil && f.Provider != ProviderTerraform {
			if out := f.Outputs[m[2]]; hasScheme(out, "http://", "https://", "ws://", "wss://") {
				u = out + u[len(m[0]):]
			}
		}
	}
	schemes := "http:// or https:// (Server-Sent Events) or ws:// or wss:// (WebSocket)"
	if what == "publish" {
		schemes = "http:// or https:// (a request per message) or ws:// or wss:// (WebSocket messages)"
	}
	switch {
	case u == "":
		v.add(p, "missing; the %s URL: %s", what, schemes)
		return transportUnknown
	case hasScheme(u, "http://", "https://"):
		if !strings.Contains(u, "{{") {
			if pu, err := url.Parse(u); err != nil || pu.Host == "" {
				v.add(p, "%q: use an http:// or https:// URL with a host", u)
			}
		}
		return transportHTTP
	case hasScheme(u, "ws://", "wss://"):
		if !strings.Contains(u, "{{") {
			if pu, err := url.Parse(u); err != nil || pu.Host == "" {
				v.add(p, "%q: use a ws:// or wss:// URL with a host", u)
			}
		}
		return transportWS
	case strings.HasPrefix(strings.TrimSpace(u), "{{"):
		return transportUnknown // checked when rendered
	}
	v.add(p, "%q: use %s", u, schemes)
	return transportUnknown
}

// bus checks the pub/sub settings at path (workload.pubsub or probe).
func (v *validator) bus(path string, b *PubSubBus) {
	pub := v.busURL(path+".publish", b.Publish, "publish")
	sub := v.busURL(path+".subscribe", b.Subscribe, "subscribe")
	if b.PublishMethod != "" {
		if !httpTokenRe.MatchString(b.PublishMethod) {
			v.add(path+".publish_method", "%q is not an HTTP method", b.PublishMethod)
		}
		if pub == transportWS {
			v.add(path+".publish_method", "only for HTTP publishing; a ws:// publish URL sends WebSocket messages")
		}
	}
	for _, h := range []struct {
		key string
		m   map[string]string
	}{{"publish_headers", b.PublishHeaders}, {"subscribe_headers", b.SubscribeHeaders}} {
		for _, k := range mapKeys(h.m) {
			if !httpTokenRe.MatchString(k) {
				v.add(path+"."+h.key+"."+k, "%q is not a valid header name", k)
			}
		}
	}
	if len(b.PublishOpen) > 0 && pub == transportHTTP {
		v.add(path+".publish_open", "only for WebSocket publishing (a ws:// or wss:// publish URL): messages sent once the connection opens")
	}
	if len(b.SubscribeOpen) > 0 && sub == transportHTTP {
		v.add(path+".subscribe_open", "only for WebSocket subscriptions (a ws:// or wss:// subscribe URL): messages sent once the connection opens")
	}
	if len(b.Replies) > 0 && pub == transportHTTP && sub == transportHTTP {
		v.add(path+".replies", "only for WebSocket connections (a ws:// or wss:// URL): what to answer the server's keep-alive messages with")
	}
	for _, k := range mapKeys(b.Replies) {
		if k == "" {
			v.add(path+".replies", "a reply needs the start of the message it answers as its key")
		}
	}
	mode, _, err := ParseConfirm(b.Confirm)
	if err != nil {
		v.add(path+".confirm", "%v", err)
	}
	if b.Settle != nil {
		if *b.Settle < 0 {
			v.add(path+".settle", "must be >= 0")
		}
		v.atMost(path+".settle", "PubSubBus.settle", float64(*b.Settle))
		if err == nil && mode != ConfirmNone {
			v.add(path+".settle", "only with confirm none (the wait before publishing); %s confirms each subscription itself", mode)
		}
	}
	if b.Body != "" && !clientRefs(b.Body)[ClientMarker] {
		v.add(path+".body", "the envelope must print {{ .marker }}: it is where loadramp's marker (source, sequence number, send time) goes")
	}
}

func (v *validator) probe() {
	pr := v.p.Probe
	if pr == nil {
		return
	}
	v.choice("probe.kind", "probe kind", pr.Kind, probeKinds)
	switch pr.Kind {
	case "http":
		v.checkURL("probe.url", pr.URL)
		for _, k := range pr.PubSubBus.keys() {
			v.add("probe."+k, "only for probe kind pubsub")
		}
	case "pubsub":
		v.bus("probe", &pr.PubSubBus)
		if pr.URL != "" {
			v.add("probe.url", "only for probe kind http; kind pubsub publishes to publish and subscribes to subscribe")
		}
	}
	if !(pr.Rate > 0) {
		v.add("probe.rate", "must be > 0 probes/s")
	}
	v.atMost("probe.rate", "Probe.rate", pr.Rate)
	if pr.Expect != "" && pr.Kind != "http" {
		v.add("probe.expect", "only for probe kind http (a body substring to expect)")
	}
	if pr.Timeout < 0 {
		v.add("probe.timeout", "must be >= 0 (0: the default, 2s)")
	}
	v.atMost("probe.timeout", "Probe.timeout", float64(pr.Timeout))
}

func (v *validator) report() {
	seen := map[string]bool{}
	for i, f := range v.p.Report.Formats {
		fp := fmt.Sprintf("report.formats[%d]", i)
		if !contains(ReportFormats, f) {
			v.add(fp, "unknown format %q; use %s%s", f, oneOf(ReportFormats), hint(f, ReportFormats))
		} else if seen[f] {
			v.add(fp, "duplicate format %q", f)
		}
		seen[f] = true
	}
	if u := v.p.Report.Upload; u != "" {
		rest, ok := strings.CutPrefix(u, "s3://")
		if !ok || rest == "" || strings.HasPrefix(rest, "/") {
			v.add("report.upload", "%q: use s3://bucket/prefix, or leave it empty", u)
		}
	}
}

func (v *validator) expressions() {
	if len(v.p.Gates) == 0 {
		v.add("gates", "missing; without a gate every step passes")
	}
	for _, e := range v.p.Expressions() {
		if strings.TrimSpace(e.Text) == "" {
			v.add(e.Path, "empty expression")
		}
	}
}

func (v *validator) campaign() {
	c := v.p.Campaign
	if c == nil {
		return
	}
	if len(c.Variants) == 0 {
		v.add("campaign.variants", "missing; list variants of the static parameters, or drop campaign")
		return
	}
	statics := mapKeys(v.p.Static)
	for i, vr := range c.Variants {
		vp := fmt.Sprintf("campaign.variants[%d]", i)
		if len(vr) == 0 {
			v.add(vp, "empty variant")
		}
		for _, k := range mapKeys(vr) {
			if _, ok := v.p.Static[k]; !ok {
				v.add(vp+"."+k, "no static parameter %q to vary%s", k, hint(k, statics))
			}
		}
		if i == 0 || c.AllowMultipleChanges {
			continue
		}
		// Each variant overrides the plan's static parameters; compare what
		// the runs will really use.
		var changed []string
		prev, vr := union(v.p.Static, c.Variants[i-1]), union(v.p.Static, vr)
		for _, k := range mapKeys(union(prev, vr)) {
			a, inA := prev[k]
			b, inB := vr[k]
			if inA != inB || !reflect.DeepEqual(a, b) {
				changed = append(changed, k)
			}
		}
		if len(changed) != 1 {
			v.add(vp, "changes %d static parameters from the variant before (%s); change exactly one so a difference points at one cause, or set allow_multiple_changes", len(changed), strings.Join(changed, ", "))
		}
	}
}

func union(a, b map[string]any) map[string]any {
	m := make(map[string]any, len(a)+len(b))
	for k, x := range a {
		m[k] = x
	}
	for k, x := range b {
		m[k] = x
	}
	return m
}

// VariantStatic returns the static parameters of campaign variant i: the
// plan's, overridden by the variant's.
func (p *Plan) VariantStatic(i int) map[string]any {
	if p.Campaign == nil || i < 0 || i >= len(p.Campaign.Variants) {
		return union(p.Static, nil)
	}
	return union(p.Static, p.Campaign.Variants[i])
}

// VariantChange names the static parameters variant i changes from the one
// before it (from the plan's own static parameters for the first).
func (p *Plan) VariantChange(i int) []string {
	prev := union(p.Static, nil)
	if i > 0 {
		prev = p.VariantStatic(i - 1)
	}
	cur := p.VariantStatic(i)
	var changed []string
	for _, k := range mapKeys(union(prev, cur)) {
		a, inA := prev[k]
		b, inB := cur[k]
		if inA != inB || !reflect.DeepEqual(a, b) {
			changed = append(changed, k)
		}
	}
	return changed
}

// templates checks that every templated string parses and refers only to
// what the plan declares.
func (v *validator) templates() {
	p := v.p
	sc := refScope{static: p.Static, params: map[string]bool{}, fleets: p.Fleets}
	for _, par := range p.Parameters {
		sc.params[par.Name] = true
	}
	for _, t := range p.templated() {
		tsc := sc
		tsc.client = t.client
		msgs := checkTemplate(t.text, tsc)
		for _, msg := range msgs {
			v.add(t.path, "%s", msg)
		}
		if t.client != nil && len(msgs) == 0 {
			if _, err := DeferClient(t.text); err != nil {
				v.add(t.path, "%v", err)
			}
		}
		if names := RequestFuncsIn(t.text); len(names) > 0 && !isRequestField(t.path) {
			v.add(t.path, "%s is evaluated per request: only workload.http's url, headers and body (and its requests') may use it", names[0])
		}
		if !strings.Contains(t.path, ".files.") {
			continue
		}
		said := map[string]bool{}
		for _, msg := range CheckFileStatics(t.text, p.Static) {
			said[msg] = true
			v.add(t.path, "%s", msg)
		}
		if p.Campaign != nil {
			for i := range p.Campaign.Variants {
				for _, msg := range CheckFileStatics(t.text, p.VariantStatic(i)) {
					if !said[msg] {
						said[msg] = true
						v.add(t.path, "campaign.variants[%d]: %s", i, msg)
					}
				}
			}
		}
	}
}

type templated struct {
	path, text string
	// client lists the client names a per-client template may use
	// (ClientIndex...); nil for a plan template.
	client []string
}

// templated lists every string of the plan that is a template, with its path.
func (p *Plan) templated() []templated {
	var out []templated
	add := func(path, s string) {
		if s != "" {
			out = append(out, templated{path: path, text: s})
		}
	}
	addMap := func(path string, m map[string]string) {
		for _, k := range mapKeys(m) {
			add(path+"."+k, m[k])
		}
	}
	for _, name := range mapKeys(p.Fleets) {
		f := p.Fleets[name]
		if f == nil {
			continue
		}
		fp := "fleets." + name
		for i, pr := range f.Processes {
			pp := fmt.Sprintf("%s.processes[%d]", fp, i)
			for j, a := range pr.Command {
				add(fmt.Sprintf("%s.command[%d]", pp, j), a)
			}
			addMap(pp+".env", pr.Env)
			addMap(pp+".files", pr.Files)
			add(pp+".dir", pr.Dir)
			add(pp+".ready", pr.Ready)
		}
		addMap(fp+".outputs", f.Outputs)
		for i, l := range f.Logs {
			add(fmt.Sprintf("%s.logs[%d]", fp, i), l)
		}
		if tf := f.Terraform; tf != nil {
			add(fp+".terraform.dir", tf.Dir)
			walkStrings(fp+".terraform.vars", tf.Vars, add)
		}
		if a := f.Agents; a != nil {
			for i, e := range a.Endpoints {
				add(fmt.Sprintf("%s.agents.endpoints[%d].url", fp, i), e.URL)
			}
			add(fp+".agents.ca", a.CA)
		}
	}
	for _, f := range p.RequestFields() {
		add(f.Path, f.Text)
	}
	if ps := p.Workload.PubSub; ps != nil {
		out = append(out, ps.clientTemplated("workload.pubsub")...)
	}
	if l := p.Workload.Locust; l != nil {
		add("workload.locust.locustfile", l.Locustfile)
		add("workload.locust.host", l.Host)
		add("workload.locust.master", l.Master)
		add("workload.locust.workers", l.Workers)
	}
	if pr := p.Probe; pr != nil {
		add("probe.url", pr.URL)
		out = append(out, pr.clientTemplated("probe")...)
	}
	p.promTemplated(add)
	return out
}

// walkStrings calls add for every string inside a free-form value.
func walkStrings(path string, v any, add func(string, string)) {
	switch x := v.(type) {
	case string:
		add(path, x)
	case map[string]any:
		for _, k := range mapKeys(x) {
			walkStrings(path+"."+k, x[k], add)
		}
	case []any:
		for i, e := range x {
			walkStrings(fmt.Sprintf("%s[%d]", path, i), e, add)
		}
	}
}

func hasParam(ps []Parameter, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}
