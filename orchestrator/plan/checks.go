package plan

// Default checks: what loadramp judges on every step without the plan writing
// it. A tool that tells a saturated generator from a saturated target must check
// the generator even when the plan forgets to, and a step is judged on the load
// it really applied, not on the load it was asked for. Both sets are on unless
// the plan turns them off (default_checks), and every run records which checks
// it applied (run.json "checks").

// Kinds of check, as the plan's lists are named.
const (
	CheckGates           = "gates"
	CheckGeneratorHealth = "generator_health"
)

// DefaultCheck is one check loadramp applies by default.
type DefaultCheck struct {
	// Kind is CheckGates (a breach is the target's: target-fail) or
	// CheckGeneratorHealth (a breach is the generator's: generator-fail).
	Kind string
	// Metric is the metric Expr judges. A plan expression of the same kind on
	// the same metric replaces the default (the plan's threshold wins).
	Metric string
	Expr   string
	// Why says why the threshold is what it is (docs/metrics.md, the report).
	Why string
}

// DefaultGeneratorHealth are the generator health checks every plan gets
// unless it sets default_checks.generator_health: false. Thresholds are
// explained in docs/metrics.md ("Generator health"). A check whose metric a
// step did not produce is ignored (the Locust engine has no
// generator.starved.ratio).
var DefaultGeneratorHealth = []DefaultCheck{
	{Kind: CheckGeneratorHealth, Metric: "generator.lag.p99", Expr: "generator.lag.p99 < 10ms",
		Why: "a generator that keeps its schedule releases requests within a tick (at most 1 ms); 10 ms late means the schedule slipped"},
	{Kind: CheckGeneratorHealth, Metric: "generator.starved.ratio", Expr: "generator.starved.ratio < 0.2",
		Why: "a generator waiting for a CPU adds that wait to every latency it measures; its CPU share stays low, its run delay shows it"},
	{Kind: CheckGeneratorHealth, Metric: "generator.cpu", Expr: "generator.cpu < 0.9",
		Why: "at 90% of its CPUs the generator's responses wait for it, which adds to the latencies it measures"},
}

// DefaultChecks turns loadramp's default checks off. Left out (or true), a
// set applies.
type DefaultChecks struct {
	// GeneratorHealth: the DefaultGeneratorHealth checks.
	GeneratorHealth *bool `yaml:"generator_health,omitempty" json:"generator_health,omitempty"`
	// Parameters: the checks that each load parameter the plan lists was
	// achieved (LoadParam.Achieved).
	Parameters *bool `yaml:"parameters,omitempty" json:"parameters,omitempty"`
}

// DefaultHealthOn reports whether the default generator health checks apply.
func (p *Plan) DefaultHealthOn() bool {
	return p.DefaultChecks == nil || p.DefaultChecks.GeneratorHealth == nil || *p.DefaultChecks.GeneratorHealth
}

// DefaultParamChecksOn reports whether the achieved-parameter checks apply.
func (p *Plan) DefaultParamChecksOn() bool {
	return p.DefaultChecks == nil || p.DefaultChecks.Parameters == nil || *p.DefaultChecks.Parameters
}

// ParamCheck is a default check that a load parameter was achieved.
type ParamCheck struct {
	DefaultCheck
	Param string
}

// Defaults returns the default checks that apply to the plan, in order: the
// generator health checks, then for each load parameter the plan lists (in
// plan order) the checks that it was achieved. A check whose metric an
// earlier one already judges is left out (rate and publishers share
// throughput.ratio). The caller drops those the plan replaces with its own
// expression on the same metric.
func (p *Plan) Defaults() []ParamCheck {
	var out []ParamCheck
	seen := map[string]bool{}
	add := func(c DefaultCheck, param string) {
		if seen[c.Kind+"\x00"+c.Metric] {
			return
		}
		seen[c.Kind+"\x00"+c.Metric] = true
		out = append(out, ParamCheck{DefaultCheck: c, Param: param})
	}
	if p.DefaultHealthOn() {
		for _, c := range DefaultGeneratorHealth {
			add(c, "")
		}
	}
	if p.DefaultParamChecksOn() {
		for _, prm := range p.Parameters {
			lp, ok := LookupParam(p.WorkloadKind(), prm.Name)
			if !ok {
				continue
			}
			for _, c := range lp.Achieved {
				add(c, prm.Name)
			}
		}
	}
	return out
}

// DefaultsOff names the default sets the plan turned off, in the names of
// default_checks.
func (p *Plan) DefaultsOff() []string {
	var off []string
	if !p.DefaultHealthOn() {
		off = append(off, CheckGeneratorHealth)
	}
	if !p.DefaultParamChecksOn() {
		off = append(off, "parameters")
	}
	return off
}

// Achieved checks of the load parameters (LoadParam.Achieved): what each
// parameter's step must really have applied. Thresholds in docs/metrics.md.
var (
	achievedRate = DefaultCheck{Kind: CheckGates, Metric: "throughput.ratio", Expr: "throughput.ratio > 0.9",
		Why: "the offered rate was achieved: at least 90% of the offered requests were answered in the hold"}
	achievedConnsHeld = DefaultCheck{Kind: CheckGates, Metric: "connections.held.ratio", Expr: "connections.held.ratio > 0.9",
		Why: "the connections asked for were held: on average at least 90% of them stayed open through the hold"}
	achievedConnsReopened = DefaultCheck{Kind: CheckGates, Metric: "connections.reopened.ratio", Expr: "connections.reopened.ratio < 0.1",
		Why: "held connections are reused: fewer than one request in ten needed a new connection (a server closing every 100th request stays far below)"}
	achievedSubscribers = DefaultCheck{Kind: CheckGates, Metric: "pubsub.subscribers.held.ratio", Expr: "pubsub.subscribers.held.ratio > 0.9",
		Why: "the subscribers asked for were subscribed: on average at least 90% of their streams stayed open through the hold"}
	achievedUsers = DefaultCheck{Kind: CheckGeneratorHealth, Metric: "locust.users.ratio", Expr: "locust.users.ratio > 0.95",
		Why: "Locust ran the users asked for (users it did not run are the generator's shortfall)"}
)
