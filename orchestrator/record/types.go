// Package record owns the run directory: run.json, the append-only step log
// (steps.jsonl, fsynced as each attempt ends), samples and the history of runs.
package record

import (
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
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
	KindRerun   = "rerun"   // a rerun after the generator fleet was scaled
)

// Run statuses (report.json "status").
const (
	StatusRunning          = "running"
	StatusBottleneck       = "bottleneck"
	StatusMaxReached       = "max-reached"
	StatusGeneratorLimited = "generator-limited"
	StatusAborted          = "aborted"
	StatusError            = "error"
	// StatusInterrupted is not written to run.json: List reports it for a
	// run.json still saying StatusRunning whose owner is gone (killed, or
	// the machine went down), so no process holds the run's lock.
	StatusInterrupted = "interrupted"
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
}

// Finding is a named cause with its evidence (DESIGN.md rule ids).
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
}

// Step is one step attempt, as appended to steps.jsonl.
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
	Reason      string           `json:"reason,omitempty"`
	Aborted     bool             `json:"aborted,omitempty"`
	Metrics     metrics.Metrics  `json:"metrics"`
	Gates       []GateResult     `json:"gates,omitempty"`
	FailedGates []GateResult     `json:"failed_gates,omitempty"`
	Health      []GateResult     `json:"generator_health,omitempty"`
	Findings    []Finding        `json:"findings"`
	Series      []metrics.Second `json:"series,omitempty"`
	// ErrorClasses counts errors by class (http_4xx, http_5xx, timeout, refused,
	// reset, gen_emfile, gen_enfile, gen_eaddrnotavail, other).
	ErrorClasses map[string]int64 `json:"error_classes,omitempty"`
	Error        string           `json:"error,omitempty"`
	Generators   int              `json:"generators,omitempty"`
	Start        time.Time        `json:"start"`
	End          time.Time        `json:"end"`
}

// Run is run.json: what was run, where, and how it ended.
type Run struct {
	ID       string         `json:"id"`
	Plan     string         `json:"plan"`
	PlanFile string         `json:"plan_file"`
	PlanHash string         `json:"plan_hash"`
	Version  string         `json:"version"`
	Host     HostFacts      `json:"host"`
	Static   map[string]any `json:"static"`
	// Limits is the preflight limits audit (static parameters of the host).
	Limits map[string]any `json:"limits,omitempty"`
	Start  time.Time      `json:"start"`
	End    time.Time      `json:"end,omitempty"`
	Status string         `json:"status"`
	Error  string         `json:"error,omitempty"`
	Infra  []InfraRef     `json:"infra,omitempty"`
	Params []string       `json:"parameters"`
	// Policy is the judgement of a scheduled run against its baseline and
	// minimum capacities, when one was asked for.
	Policy *Policy           `json:"policy,omitempty"`
	Gates  []string          `json:"gates,omitempty"`
	Extra  map[string]string `json:"extra,omitempty"`
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

// InfraRef says where a fleet's infrastructure lives, so `loadramp destroy` can
// clean up after a crash.
type InfraRef struct {
	Fleet     string            `json:"fleet"`
	Provider  string            `json:"provider"`
	Module    string            `json:"module,omitempty"`
	Workspace string            `json:"workspace,omitempty"`
	State     string            `json:"state,omitempty"`
	Pids      map[string]int    `json:"pids,omitempty"`
	Outputs   map[string]string `json:"outputs,omitempty"`
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
