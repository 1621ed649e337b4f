// Package record owns the run directory: run.json, the append-only step log
// (steps.jsonl, fsynced as each attempt ends), samples and the history of runs.
package record

import (
	"time"

	"github.com/loadramp/loadramp/orchestrator/result"
)

// Run is run.json: what was run, where, and how it ended.
type Run struct {
	ID       string           `json:"id"`
	Plan     string           `json:"plan"`
	PlanFile string           `json:"plan_file"`
	PlanHash string           `json:"plan_hash"`
	Version  string           `json:"version"`
	Host     result.HostFacts `json:"host"`
	Static   map[string]any   `json:"static"`
	// Limits is the preflight limits audit (static parameters of the host).
	Limits map[string]any    `json:"limits,omitempty"`
	Start  time.Time         `json:"start"`
	End    time.Time         `json:"end,omitempty"`
	Status string            `json:"status"`
	Error  string            `json:"error,omitempty"`
	Infra  []result.InfraRef `json:"infra,omitempty"`
	Params []string          `json:"parameters"`
	// Policy is the judgement of a scheduled run against its baseline and
	// minimum capacities, when one was asked for.
	Policy *result.Policy `json:"policy,omitempty"`
	Gates  []string       `json:"gates,omitempty"`
	// Checks are every gate and generator health check the steps were judged
	// on, the plan's and loadramp's defaults.
	Checks *result.Checks    `json:"checks,omitempty"`
	Extra  map[string]string `json:"extra,omitempty"`
}
