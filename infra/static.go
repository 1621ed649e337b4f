package infra

import (
	"context"
	"maps"
)

// Static is a fleet that already exists elsewhere: its outputs (endpoints)
// are given in the plan. Up reports them, Down does nothing and Scale
// returns ErrCannotScale.
type Static struct {
	fleet *Fleet
}

var _ Provider = (*Static)(nil)

// NewStatic returns a provider for the fleet named fleet with the given
// (already templated) outputs. The outputs map is copied.
func NewStatic(fleet string, outputs map[string]string) *Static {
	out := maps.Clone(outputs)
	if out == nil {
		out = map[string]string{}
	}
	return &Static{fleet: &Fleet{Name: fleet, Outputs: out, Size: 1}}
}

// Up returns the fleet's outputs. A static fleet counts as one unit.
func (s *Static) Up(ctx context.Context) (*Fleet, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return cloneFleet(s.fleet), nil
}

// Scale always returns ErrCannotScale: loadramp does not own a static fleet.
func (s *Static) Scale(context.Context, float64) (*Fleet, error) {
	return nil, ErrCannotScale
}

// Down does nothing: loadramp does not own a static fleet.
func (s *Static) Down(context.Context) error { return nil }

// Check always returns nil: loadramp does not watch a static fleet.
func (s *Static) Check() error { return nil }
