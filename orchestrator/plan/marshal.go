package plan

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
)

// rampYAML is Ramp with the settings whose zero means something (no warmup,
// no confirmation, no refinement) always written, so a marshalled plan parses
// back to the same plan instead of picking up defaults.
type rampYAML struct {
	Factor   float64  `yaml:"factor,omitempty"`
	Order    string   `yaml:"order,omitempty"`
	Warmup   Duration `yaml:"warmup"`
	Hold     Duration `yaml:"hold,omitempty"`
	Cooldown Duration `yaml:"cooldown"`
	Confirm  int      `yaml:"confirm"`
	Refine   int      `yaml:"refine"`
	MaxSteps int      `yaml:"max_steps,omitempty"`

	InterferenceReruns int `yaml:"interference_reruns"`
}

// MarshalYAML writes every ramp setting whose zero value is meaningful.
func (r Ramp) MarshalYAML() (any, error) { return rampYAML(r), nil }

// Marshal returns the plan as YAML with its defaults filled in: the resolved
// plan, every setting as used. Parse reads it back to an equal plan.
func (p *Plan) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("marshal plan %q: %w", p.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal plan %q: %w", p.Name, err)
	}
	return buf.Bytes(), nil
}
