// Package infra provisions the fleets a ramp runs against: the target and the
// load generators. A Provider brings a fleet up, grows it when the generators
// saturate, and tears it down. This file holds the provider contract; local.go
// runs local processes and static.go describes endpoints that already exist.
package infra

import (
	"context"
	"errors"
	"maps"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// ErrCannotScale is returned by Scale when a fleet cannot grow (local
// processes, static endpoints). Callers test for it with errors.Is.
var ErrCannotScale = errors.New("infra: this fleet cannot scale")

// Fleet is what a provider reports after Up or Scale.
type Fleet struct {
	// Name is the fleet's name in the plan, e.g. "target" or "generators".
	Name string
	// Outputs are the fleet's named values, e.g. "endpoint" -> "http://127.0.0.1:41234",
	// bound into the plan's templates as .fleets.<name>.<output>.
	Outputs map[string]string
	// Sensitive names the Outputs that are secrets (Terraform outputs marked
	// sensitive): usable in templates, never recorded, logged or uploaded.
	Sensitive []string
	// Processes are the local processes of the fleet, for samplers and log
	// scanning; empty for remote fleets.
	Processes []ProcessInfo
	// Size is the number of generator or target units, where meaningful
	// (1 for a local or static fleet).
	Size int
	// Ref locates the fleet's infrastructure for a later teardown (run.json):
	// for Terraform the RefModule, RefWorkspace, RefState and RefDataDir keys.
	Ref map[string]string
}

// ProcessInfo identifies one local process of a fleet.
type ProcessInfo struct {
	Name string
	Pid  int
	// Identity tells the process apart from a later one reusing its pid
	// (recorded in run.json and checked before `loadramp destroy` signals).
	Identity hoststat.Identity
	LogPath  string // stdout and stderr of the process, appended
	// Address is where the process said it listens (LocalProcess.Address).
	Address string
}

// Provider brings a fleet up, scales it and tears it down.
type Provider interface {
	// Up provisions the fleet and returns once it is ready.
	Up(ctx context.Context) (*Fleet, error)
	// Scale grows the fleet by factor; it returns ErrCannotScale if it can't grow.
	Scale(ctx context.Context, factor float64) (*Fleet, error)
	// Down tears the fleet down. It is idempotent and safe after a failed Up.
	Down(ctx context.Context) error
}

// cloneFleet returns a deep copy of f, so callers cannot alter a provider's state.
func cloneFleet(f *Fleet) *Fleet {
	if f == nil {
		return nil
	}
	c := *f
	c.Outputs = maps.Clone(f.Outputs)
	if c.Outputs == nil {
		c.Outputs = map[string]string{}
	}
	c.Sensitive = append([]string(nil), f.Sensitive...)
	c.Processes = append([]ProcessInfo(nil), f.Processes...)
	c.Ref = maps.Clone(f.Ref)
	return &c
}
