package plan

import "math"

// Step is one load level of the schedule.
type Step struct {
	Index   int                // from 1
	Values  map[string]float64 // every parameter's value at this step
	Changed string             // the parameter raised from the step before; "" on step 1
	From    float64            // Changed's value at the step before
	To      float64            // Changed's value at this step
}

// raise multiplies v by factor, rounding integer parameters and always moving
// at least one unit so a small factor cannot stall, and clamps to max.
func raise(v, factor, max float64, integer bool) float64 {
	next := v * factor
	if integer {
		next = math.Round(next)
		if next <= v {
			next = v + 1
		}
	} else if next <= v {
		// A factor this close to 1 is lost to rounding: take the next float.
		next = math.Nextafter(v, math.Inf(1))
	}
	return math.Min(next, max)
}

// usable reports whether a parameter can take part in a schedule.
func usable(p Parameter) bool {
	ok := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	return ok(p.Start) && ok(p.Max) && p.Start > 0
}

// Schedule lays out the step sequence. Step 1 has every parameter at its start
// (clamped to its max). Each later step multiplies one parameter by factor,
// clamping the last multiplication to its max: in round-robin order the
// parameters take turns, in sequential order the first goes to its max before
// the next moves. A parameter at its max is skipped. The schedule ends when
// every parameter is at its max or after maxSteps steps. Parameters that cannot
// grow (start <= 0, not finite) stay at their start; factor <= 1 gives step 1
// only. maxSteps < 1 or no parameters give no steps.
func Schedule(params []Parameter, factor float64, order string, maxSteps int) []Step {
	if len(params) == 0 || maxSteps < 1 {
		return nil
	}
	cur := make([]float64, len(params))
	first := Step{Index: 1, Values: make(map[string]float64, len(params))}
	for i, p := range params {
		cur[i] = p.Start
		if usable(p) && cur[i] > p.Max {
			cur[i] = p.Max
		}
		first.Values[p.Name] = cur[i]
	}
	steps := []Step{first}
	if !(factor > 1) || math.IsInf(factor, 0) {
		return steps
	}
	canGrow := func(i int) bool { return usable(params[i]) && cur[i] < params[i].Max }
	last := -1 // the parameter raised last, for round-robin turns
	for len(steps) < maxSteps {
		pick := -1
		for k := range params {
			i := k
			if order != OrderSequential {
				i = (last + 1 + k) % len(params)
			}
			if canGrow(i) {
				pick = i
				break
			}
		}
		if pick < 0 {
			break
		}
		p := params[pick]
		from := cur[pick]
		cur[pick] = raise(from, factor, p.Max, IntegerParam(p.Name))
		last = pick
		vals := make(map[string]float64, len(params))
		for i, q := range params {
			vals[q.Name] = cur[i]
		}
		steps = append(steps, Step{Index: len(steps) + 1, Values: vals, Changed: p.Name, From: from, To: cur[pick]})
	}
	return steps
}

// Schedule is the plan's step schedule (its parameters and ramp settings).
func (p *Plan) Schedule() []Step {
	return Schedule(p.Parameters, p.Ramp.Factor, p.Ramp.Order, p.Ramp.MaxSteps)
}

// Bisect searches between the last passing value and the first failing value
// of a parameter to narrow its capacity. It is driven by results: call Next
// for the value to try, run the step, and Record whether it passed.
type Bisect struct {
	pass, fail float64
	integer    bool
}

// NewBisect starts a search between pass (known to pass) and fail (known to
// fail); integer keeps every tried value whole.
func NewBisect(pass, fail float64, integer bool) *Bisect {
	return &Bisect{pass: pass, fail: fail, integer: integer}
}

// Next returns the midpoint to try, rounded to a whole number for integer
// parameters; ok is false when no value strictly between pass and fail remains.
func (b *Bisect) Next() (v float64, ok bool) {
	lo, hi := math.Min(b.pass, b.fail), math.Max(b.pass, b.fail)
	mid := lo + (hi-lo)/2
	if b.integer {
		mid = math.Round(mid)
	}
	if math.IsNaN(mid) || !(mid > lo && mid < hi) {
		return 0, false
	}
	return mid, true
}

// Record narrows the search with the result of trying v. A value outside the
// current interval is ignored.
func (b *Bisect) Record(v float64, passed bool) {
	lo, hi := math.Min(b.pass, b.fail), math.Max(b.pass, b.fail)
	if !(v > lo && v < hi) {
		return
	}
	if passed {
		b.pass = v
	} else {
		b.fail = v
	}
}

// Pass is the highest value known to pass.
func (b *Bisect) Pass() float64 { return b.pass }

// Fail is the lowest value known to fail.
func (b *Bisect) Fail() float64 { return b.fail }

// ParamNames returns the load parameter names in plan order.
func (p *Plan) ParamNames() []string {
	names := make([]string, 0, len(p.Parameters))
	for _, prm := range p.Parameters {
		names = append(names, prm.Name)
	}
	return names
}
