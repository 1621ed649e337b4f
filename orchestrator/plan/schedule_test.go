package plan

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// vals is a compact way to write a step's values: name, value, name, value...
func vals(kv ...any) map[string]float64 {
	m := map[string]float64{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = float64(kv[i+1].(int))
	}
	return m
}

func TestScheduleTable(t *testing.T) {
	rc := []Parameter{{Name: "rate", Start: 250, Max: 1000}, {Name: "connections", Start: 8, Max: 20}}
	tests := []struct {
		name     string
		params   []Parameter
		factor   float64
		order    string
		maxSteps int
		want     []Step
	}{
		{
			name: "round-robin with clamp and skip", params: rc, factor: 2, order: OrderRoundRobin, maxSteps: 40,
			want: []Step{
				{Index: 1, Values: vals("rate", 250, "connections", 8)},
				{Index: 2, Values: vals("rate", 500, "connections", 8), Changed: "rate", From: 250, To: 500},
				{Index: 3, Values: vals("rate", 500, "connections", 16), Changed: "connections", From: 8, To: 16},
				{Index: 4, Values: vals("rate", 1000, "connections", 16), Changed: "rate", From: 500, To: 1000},
				{Index: 5, Values: vals("rate", 1000, "connections", 20), Changed: "connections", From: 16, To: 20},
			},
		},
		{
			name: "sequential", params: rc, factor: 2, order: OrderSequential, maxSteps: 40,
			want: []Step{
				{Index: 1, Values: vals("rate", 250, "connections", 8)},
				{Index: 2, Values: vals("rate", 500, "connections", 8), Changed: "rate", From: 250, To: 500},
				{Index: 3, Values: vals("rate", 1000, "connections", 8), Changed: "rate", From: 500, To: 1000},
				{Index: 4, Values: vals("rate", 1000, "connections", 16), Changed: "connections", From: 8, To: 16},
				{Index: 5, Values: vals("rate", 1000, "connections", 20), Changed: "connections", From: 16, To: 20},
			},
		},
		{
			name: "max_steps bounds it", params: rc, factor: 2, order: OrderRoundRobin, maxSteps: 2,
			want: []Step{
				{Index: 1, Values: vals("rate", 250, "connections", 8)},
				{Index: 2, Values: vals("rate", 500, "connections", 8), Changed: "rate", From: 250, To: 500},
			},
		},
		{
			name: "integer parameter rounds and always moves", params: []Parameter{{Name: "connections", Start: 1, Max: 4}},
			factor: 1.2, order: OrderRoundRobin, maxSteps: 10,
			want: []Step{
				{Index: 1, Values: vals("connections", 1)},
				{Index: 2, Values: vals("connections", 2), Changed: "connections", From: 1, To: 2},
				{Index: 3, Values: vals("connections", 3), Changed: "connections", From: 2, To: 3},
				{Index: 4, Values: vals("connections", 4), Changed: "connections", From: 3, To: 4},
			},
		},
		{
			name: "start above max is clamped", params: []Parameter{{Name: "rate", Start: 50, Max: 10}},
			factor: 2, maxSteps: 5,
			want: []Step{{Index: 1, Values: vals("rate", 10)}},
		},
		{name: "factor 1 gives step 1 only", params: rc, factor: 1, maxSteps: 5,
			want: []Step{{Index: 1, Values: vals("rate", 250, "connections", 8)}}},
		{name: "no parameters", params: nil, factor: 2, maxSteps: 5, want: nil},
		{name: "max_steps 0", params: rc, factor: 2, maxSteps: 0, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Schedule(tt.params, tt.factor, tt.order, tt.maxSteps)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestPlanSchedule(t *testing.T) {
	p := mustParse(t, basePlan) // rate 250..64000, connections 8..4096, round-robin, 40 steps
	steps := p.Schedule()
	// rate needs 8 doublings to 64000, connections 9 to 4096: 1 + 17 steps.
	if len(steps) != 18 {
		t.Fatalf("len = %d, want 18", len(steps))
	}
	last := steps[len(steps)-1]
	if last.Values["rate"] != 64000 || last.Values["connections"] != 4096 || last.Changed != "connections" {
		t.Errorf("last step = %+v", last)
	}
}

// checkScheduleProperties asserts what must hold for every schedule.
func checkScheduleProperties(t *testing.T, params []Parameter, factor float64, order string, maxSteps int) {
	t.Helper()
	steps := Schedule(params, factor, order, maxSteps)
	if len(steps) > maxSteps {
		t.Fatalf("%d steps, max_steps %d", len(steps), maxSteps)
	}
	if len(steps) == 0 {
		t.Fatalf("no steps for %+v", params)
	}
	for i, p := range params {
		if steps[0].Values[p.Name] != p.Start {
			t.Fatalf("step 1 %s = %v, want start %v", p.Name, steps[0].Values[p.Name], params[i].Start)
		}
	}
	for i, s := range steps {
		if s.Index != i+1 {
			t.Fatalf("step %d has Index %d", i+1, s.Index)
		}
		for _, p := range params {
			if s.Values[p.Name] > p.Max {
				t.Fatalf("step %d: %s = %v above max %v", s.Index, p.Name, s.Values[p.Name], p.Max)
			}
			if IntegerParam(p.Name) && s.Values[p.Name] != math.Trunc(s.Values[p.Name]) {
				t.Fatalf("step %d: integer %s = %v", s.Index, p.Name, s.Values[p.Name])
			}
		}
		if i == 0 {
			if s.Changed != "" {
				t.Fatalf("step 1 Changed = %q", s.Changed)
			}
			continue
		}
		prev := steps[i-1]
		changed := 0
		for _, p := range params {
			a, b := prev.Values[p.Name], s.Values[p.Name]
			if b < a {
				t.Fatalf("step %d: %s decreased %v -> %v", s.Index, p.Name, a, b)
			}
			if b != a {
				changed++
				if p.Name != s.Changed || s.From != a || s.To != b {
					t.Fatalf("step %d: %s changed %v -> %v but step says %s %v -> %v", s.Index, p.Name, a, b, s.Changed, s.From, s.To)
				}
			}
		}
		if changed != 1 {
			t.Fatalf("step %d changes %d parameters, want exactly 1", s.Index, changed)
		}
	}
	// With room to spare every parameter reaches its max.
	if len(steps) < maxSteps {
		last := steps[len(steps)-1]
		for _, p := range params {
			if last.Values[p.Name] != p.Max {
				t.Fatalf("schedule ended after %d of %d steps with %s at %v, not max %v", len(steps), maxSteps, p.Name, last.Values[p.Name], p.Max)
			}
		}
	}
	// Round-robin: between two raises of one parameter every other
	// parameter that could still grow was raised once.
	if order == OrderRoundRobin && len(params) > 1 {
		for i := 2; i < len(steps); i++ {
			if steps[i].Changed == steps[i-1].Changed {
				for _, p := range params {
					if p.Name != steps[i].Changed && steps[i-1].Values[p.Name] < p.Max {
						t.Fatalf("round-robin raised %s twice in a row while %s could grow", steps[i].Changed, p.Name)
					}
				}
			}
		}
	}
}

func TestScheduleProperties(t *testing.T) {
	names := []string{"rate", "connections", "publishers", "spawn_rate"}
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 2000 {
		n := 1 + rng.IntN(len(names))
		params := make([]Parameter, n)
		for i := range n {
			start := 1 + rng.Float64()*1000
			if IntegerParam(names[i]) {
				start = math.Ceil(start)
			}
			mx := start * (1 + rng.Float64()*rng.Float64()*5000)
			if IntegerParam(names[i]) {
				mx = math.Floor(mx)
			}
			if rng.IntN(10) == 0 {
				mx = start // already at max
			}
			params[i] = Parameter{Name: names[i], Start: start, Max: mx}
		}
		factor := []float64{1.1, 1.5, 2, 3, 10, 1.0000001}[rng.IntN(6)]
		order := []string{OrderRoundRobin, OrderSequential}[rng.IntN(2)]
		maxSteps := 1 + rng.IntN(200)
		checkScheduleProperties(t, params, factor, order, maxSteps)
		if t.Failed() {
			t.Fatalf("trial %d: params %+v factor %v order %s maxSteps %d", trial, params, factor, order, maxSteps)
		}
	}
}

func TestBisect(t *testing.T) {
	tests := []struct {
		name       string
		pass, fail float64
		integer    bool
		capacity   float64 // values <= capacity pass
		wantTried  []float64
		wantPass   float64
		wantFail   float64
	}{
		{name: "rate", pass: 8000, fail: 16000, capacity: 11000,
			wantTried: []float64{12000, 10000, 11000}, wantPass: 11000, wantFail: 12000},
		{name: "connections to exhaustion", pass: 64, fail: 128, integer: true, capacity: 100,
			wantTried: []float64{96, 112, 104, 100, 102, 101}, wantPass: 100, wantFail: 101},
		{name: "adjacent integers", pass: 5, fail: 6, integer: true, wantTried: nil, wantPass: 5, wantFail: 6},
		{name: "rounding the midpoint", pass: 5, fail: 8, integer: true, capacity: 5,
			wantTried: []float64{7, 6}, wantPass: 5, wantFail: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBisect(tt.pass, tt.fail, tt.integer)
			var tried []float64
			limit := len(tt.wantTried)
			if !tt.integer {
				limit = 3 // a float search never runs dry on its own
			}
			for range limit + 1 {
				v, ok := b.Next()
				if !ok {
					break
				}
				if len(tried) == limit {
					if tt.integer {
						t.Fatalf("Next gave %v after the search should have ended", v)
					}
					break
				}
				if !(v > b.Pass() && v < b.Fail()) {
					t.Fatalf("Next = %v outside (%v, %v)", v, b.Pass(), b.Fail())
				}
				tried = append(tried, v)
				b.Record(v, v <= tt.capacity)
			}
			if !reflect.DeepEqual(tried, tt.wantTried) || b.Pass() != tt.wantPass || b.Fail() != tt.wantFail {
				t.Errorf("tried %v -> [%v, %v]; want %v -> [%v, %v]", tried, b.Pass(), b.Fail(), tt.wantTried, tt.wantPass, tt.wantFail)
			}
		})
	}
}

func TestBisectEndsForFloats(t *testing.T) {
	b := NewBisect(1, 2, false)
	n := 0
	for ; n < 200; n++ {
		v, ok := b.Next()
		if !ok {
			break
		}
		b.Record(v, n%2 == 0)
	}
	if n == 200 {
		t.Fatal("float bisection never reported the interval exhausted")
	}
	b.Record(100, true) // outside the interval: ignored
	if b.Pass() > b.Fail() {
		t.Errorf("Record outside the interval moved it: [%v, %v]", b.Pass(), b.Fail())
	}
}

func TestIntegerParam(t *testing.T) {
	for name, want := range map[string]bool{"connections": true, "users": true, "publishers": true, "subscribers": true,
		"rate": false, "spawn_rate": false, "other": false} {
		if IntegerParam(name) != want {
			t.Errorf("IntegerParam(%q) = %v", name, !want)
		}
	}
}
