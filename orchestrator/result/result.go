// Package result holds what a run produces, in the one shape every other
// package uses: verdicts, kinds and statuses, a step attempt with its gate
// results and findings, an engine's measurement of a step, and the references
// a run keeps to its infrastructure. It imports nothing of loadramp's, so
// engines, samplers, the diagnosis, the run directory and the reports can all
// share it.
//
// Metrics are plain maps from metric name to value (durations in seconds,
// ratios 0..1); package metrics names them, and its Metrics type converts to
// and from map[string]float64.
package result

import (
	"sort"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Verdicts of a step attempt.
const (
	VerdictPass          = "pass"
	VerdictTargetFail    = "target-fail"
	VerdictGeneratorFail = "generator-fail"
	VerdictError         = "error"
)

// Kinds of step attempt.
const (
	KindRamp    = "ramp"    // a step of the doubling schedule
	KindConfirm = "confirm" // a rerun of a failing step before it counts
	KindRefine  = "refine"  // a bisection step between the last pass and the first fail
	KindRerun   = "rerun"   // a rerun of a generator-fail step: on the same generators when others took their CPU or it stalled with CPU to spare, else after the generator fleet was scaled
)

// Run statuses (run.json and report.json "status").
const (
	StatusRunning          = "running"
	StatusBottleneck       = "bottleneck"
	StatusMaxReached       = "max-reached"
	StatusGeneratorLimited = "generator-limited"
	StatusAborted          = "aborted"
	StatusError            = "error"
	// StatusInterrupted is never written to run.json: the history reports
	// it for a run.json still saying StatusRunning whose owner is gone
	// (killed, or the machine went down), so no process holds its lock.
	StatusInterrupted = "interrupted"
)

// Sides of a finding or a bottleneck.
const (
	SideTarget    = "target"
	SideGenerator = "generator"
)

// GateResult is one gate judged on a step window.
type GateResult struct {
	Gate      string  `json:"gate"`
	Metric    string  `json:"metric"`
	Observed  float64 `json:"observed"`
	Threshold float64 `json:"threshold"`
	Pass      bool    `json:"pass"`
	// Missing is true when the metric was not measured in the window.
	Missing bool   `json:"missing,omitempty"`
	Explain string `json:"explain,omitempty"`
	// Default is true for a check loadramp applies without the plan writing
	// it (a default generator health check, or a check that a load parameter
	// was achieved); one whose metric was not measured is ignored.
	Default bool `json:"default,omitempty"`
}

// Check is an expression every step of a run is judged on, with where it
// comes from: the plan, or loadramp's documented defaults.
type Check struct {
	Expr string `json:"expr"`
	// Default is true for a check the plan did not write.
	Default bool `json:"default,omitempty"`
	// Param names the load parameter whose achievement the check judges
	// ("" for others).
	Param string `json:"param,omitempty"`
	// Why says why a default check has its threshold.
	Why string `json:"why,omitempty"`
}

// Checks are the gates and generator health checks a run judged every step
// on, the plan's and the defaults, and the default sets the plan turned off.
type Checks struct {
	Gates           []Check `json:"gates"`
	GeneratorHealth []Check `json:"generator_health"`
	// Off names the default sets the plan turned off (default_checks:
	// "generator_health", "parameters").
	Off []string `json:"off,omitempty"`
}

// Finding is a named cause with its evidence (docs/metrics.md rule ids).
type Finding struct {
	Rule     string   `json:"rule"`
	Side     string   `json:"side,omitempty"` // target | generator
	Host     string   `json:"host"`
	Process  string   `json:"process,omitempty"`
	Resource string   `json:"resource"`
	Setting  string   `json:"setting"`
	Observed string   `json:"observed"`
	Evidence []string `json:"evidence"`
	Fix      string   `json:"fix"`
	// LimitReached is true when the evidence shows a hard limit was reached
	// (connections refused, closed or dropped, files or table entries
	// exhausted), not merely approached: on the target's side such a finding
	// makes the step target-fail even when every gate holds.
	LimitReached bool `json:"limit_reached,omitempty"`
}

// SortFindings orders findings as a step's diagnosis lists them: the target's
// own first (they name the bottleneck), then the generator's, then host-wide
// ones; by rule within each, a process's before the host's.
func SortFindings(fs []Finding) {
	rank := func(side string) int {
		switch side {
		case SideTarget:
			return 0
		case SideGenerator:
			return 1
		}
		return 2
	}
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if ra, rb := rank(a.Side), rank(b.Side); ra != rb {
			return ra < rb
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if (a.Process == "") != (b.Process == "") {
			return a.Process != ""
		}
		return a.Process < b.Process
	})
}

// Step is one step attempt: a line of steps.jsonl and a step of report.json.
// report.json's steps may gain fields, never lose or rename one
// (loadramp.report/v1).
type Step struct {
	Index      int                `json:"index"`
	Attempt    int                `json:"attempt"`
	Kind       string             `json:"kind"`
	Parameters map[string]float64 `json:"parameters"`
	// Changed names the parameter that changed from the step before ("" for the
	// first step); From and To are its values.
	Changed string  `json:"changed"`
	From    float64 `json:"from,omitempty"`
	To      float64 `json:"to,omitempty"`
	Verdict string  `json:"verdict"`
	// Reason says in words why the verdict is what it is.
	Reason     string `json:"reason,omitempty"`
	Aborted    bool   `json:"aborted,omitempty"`
	Generators int    `json:"generators,omitempty"`
	// Metrics are the hold window's measurements by metric name.
	Metrics map[string]float64 `json:"metrics"`
	// Gates are every gate judged on the window; FailedGates those that did
	// not hold.
	Gates       []GateResult `json:"gates,omitempty"`
	FailedGates []GateResult `json:"failed_gates"`
	// Health are the generator health checks; FailedHealth those that did not
	// hold (why a step is generator-fail).
	Health       []GateResult `json:"generator_health,omitempty"`
	FailedHealth []GateResult `json:"failed_health,omitempty"`
	Findings     []Finding    `json:"findings"`
	// NotMeasured says what the step's samplers could not measure and why
	// ("prom.queue not measured: no data (...)"), so a gate on such a
	// metric is explained.
	NotMeasured []string `json:"not_measured,omitempty"`
	// Agents are the agents that generated the step's load, each with its
	// share of the load parameters and its own measurement, when agents ran
	// it (docs/agents.md).
	Agents []AgentShare `json:"agents,omitempty"`
	// Hosts are the hosts observed over the step's hold, each with its own
	// figures: the fleet hosts through their agents, and this machine when
	// something of the run runs on it.
	Hosts []Host `json:"hosts,omitempty"`
	// ErrorClasses counts errors by class (http_4xx, http_5xx, timeout, refused,
	// reset, gen_emfile, gen_enfile, gen_eaddrnotavail, other).
	ErrorClasses map[string]int64 `json:"error_classes,omitempty"`
	// Requests are the requests of the builtin engine's mix
	// (workload.http.requests), in plan order; each one's figures are in
	// Metrics as request.<name>.<metric>.
	Requests []Request `json:"requests,omitempty"`
	Error    string    `json:"error,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	// Series is the per-second series of the step, warmup included.
	Series []Second `json:"series,omitempty"`
}

// Second is one point of a step's per-second series. T is the second's offset
// from the start of the step (warmup included), in whole seconds.
type Second struct {
	T        int     `json:"t"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	P50      float64 `json:"p50"` // seconds
	P99      float64 `json:"p99"` // seconds
	// Offered is the number of requests due in that second.
	Offered int64 `json:"offered"`
}

// ErrorsRatio is the share of requests of the second that failed.
func (s Second) ErrorsRatio() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

// EngineResult is an engine's measurement of one step's hold window, the same
// for every engine.
type EngineResult struct {
	Metrics map[string]float64
	// Series covers warmup and hold, one point a second.
	Series []Second
	// ErrorClasses counts the hold's errors by class (metrics.Class*).
	ErrorClasses map[string]int64
	// Requests are the requests of a mix, when the engine sends one.
	Requests []Request
	// Histograms are the hold's distributions by name (metrics.Hist*, and
	// engine-specific ones such as pubsub.delay), in microseconds, for a
	// result merged with others' (an agent's share of a step): percentiles
	// are then taken from the merged histograms, never averaged. Optional.
	Histograms map[string]*hdrhistogram.Histogram
	// Findings are what the engine itself names (a saturated agent).
	Findings []Finding
	// Agents are the agents' shares of the step, when agents ran it.
	Agents []AgentShare
}

// AgentShare is one agent's part of a step that several agents generated
// (steps.jsonl "agents").
type AgentShare struct {
	// Agent names the agent as the plan or its fleet's output does.
	Agent string `json:"agent"`
	URL   string `json:"url,omitempty"`
	// Parameters are the agent's share of the step's load parameters.
	Parameters map[string]float64 `json:"parameters,omitempty"`
	// Idle is true for an agent that sat the step out (a needed count, such
	// as connections, smaller than the number of agents).
	Idle bool `json:"idle,omitempty"`
	// Metrics are the agent's own measurement of the hold: its counts,
	// latencies and generator.* health, judged by the generator health
	// checks on their own so that a generator-fail names the agent.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// ClockOffset is the agent's clock minus the coordinator's, in seconds,
	// and StartLead how long before the agreed start instant the agent was
	// told (negative: it started late by that much).
	ClockOffset float64 `json:"clock_offset"`
	StartLead   float64 `json:"start_lead"`
	// Error says why the agent's part ended early.
	Error string `json:"error,omitempty"`
}

// Host is one host observed over a step's hold (steps.jsonl "hosts"): a
// fleet host through its agent, or the machine running loadramp.
type Host struct {
	// Host names the host as its findings do.
	Host string `json:"host"`
	// Side is the side the host serves (target or generator), Fleet the
	// plan's fleet it belongs to.
	Side  string `json:"side,omitempty"`
	Fleet string `json:"fleet,omitempty"`
	// Source says what observed it: "agent http://10.0.0.5:7070", "/proc".
	Source  string `json:"source"`
	Samples int    `json:"samples,omitempty"`
	// Metrics are the host's figures over the hold (host.*, target.*,
	// generator.* of its processes).
	Metrics map[string]float64 `json:"metrics"`
	// Findings counts the step's findings on this host.
	Findings int `json:"findings,omitempty"`
	// Unavailable says what could not be read on the host, and why.
	Unavailable []string `json:"unavailable,omitempty"`
	// Error says why the host could not be observed over the step.
	Error string `json:"error,omitempty"`
}

// Request is one named request of a mix as a step measured it. Its figures
// (latency, errors, throughput, share) are in the step's metrics under
// request.<Name>. (metrics.RequestMetric); what is here is what a flat metric
// cannot say.
type Request struct {
	Name   string `json:"name"`
	Weight int    `json:"weight"`
	// ErrorClasses counts the request's errors in the hold by class
	// (metrics.Class*: check, http_5xx, timeout...).
	ErrorClasses map[string]int64 `json:"error_classes,omitempty"`
}

// InfraRef says where a fleet's infrastructure lives, so `loadramp destroy`
// can clean up after a crash.
type InfraRef struct {
	Fleet     string         `json:"fleet"`
	Provider  string         `json:"provider"`
	Module    string         `json:"module,omitempty"`
	Workspace string         `json:"workspace,omitempty"`
	State     string         `json:"state,omitempty"`
	Pids      map[string]int `json:"pids,omitempty"`
	// Processes identify the local processes of Pids, by the same names:
	// `loadramp destroy` signals a process only while its pid is still that
	// process.
	Processes map[string]ProcessID `json:"processes,omitempty"`
	Outputs   map[string]string    `json:"outputs,omitempty"`
}

// ProcessID identifies one local process for a later teardown: its pid, when
// it started (clock ticks after boot, /proc/PID/stat field 22), the boot it
// ran in (the kernel's boot id) and, for messages, its executable.
type ProcessID struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
	Boot  string `json:"boot,omitempty"`
	Exe   string `json:"exe,omitempty"`
}

// Policy is the capacity judgement of a run: against a baseline run (capacity
// must not regress beyond MaxRegression) and against minimum capacities.
type Policy struct {
	Baseline      string  `json:"baseline,omitempty"` // run id of the baseline
	MaxRegression float64 `json:"max_regression,omitempty"`
	// MinCapacity are the required capacities by load parameter (or
	// throughput.rps).
	MinCapacity map[string]float64 `json:"min_capacity,omitempty"`
	Passed      bool               `json:"passed"`
	// Messages say what was compared and what failed, one sentence each.
	Messages []string `json:"messages"`
}

// Refined is the narrowest pass/fail interval of a bottleneck's changed
// parameter after bisection.
type Refined struct {
	Pass float64 `json:"pass"`
	Fail float64 `json:"fail"`
}

// HostFacts describes the machine that ran loadramp.
type HostFacts struct {
	Hostname string `json:"hostname"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CPUs     int    `json:"cpus"`
	Kernel   string `json:"kernel,omitempty"`
	Go       string `json:"go"`
}
