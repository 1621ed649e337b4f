package gate

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		expr      string
		metric    string
		op        Op
		threshold float64
		unit      string
	}{
		{"latency.p99 < 100ms", "latency.p99", Less, 0.1, "ms"},
		{"  latency.p99<100ms  ", "latency.p99", Less, 0.1, "ms"},
		{"latency.p99 <= 100 ms", "latency.p99", LessEqual, 0.1, "ms"},
		{"errors.ratio < 0.001", "errors.ratio", Less, 0.001, ""},
		{"errors.ratio < 0.1%", "errors.ratio", Less, 0.001, "%"},
		{"throughput.ratio > 95%", "throughput.ratio", Greater, 0.95, "%"},
		{"throughput.ratio >= .95", "throughput.ratio", GreaterEqual, 0.95, ""},
		{"probe.delay.p99 < 250ms", "probe.delay.p99", Less, 0.25, "ms"},
		{"generator.lag.p99 < 5ms", "generator.lag.p99", Less, 0.005, "ms"},
		{"latency.p50 < 500us", "latency.p50", Less, 0.0005, "us"},
		{"latency.p50 < 500µs", "latency.p50", Less, 0.0005, "us"},
		{"latency.p50 < 800ns", "latency.p50", Less, 8e-7, "ns"},
		{"latency.max < 2s", "latency.max", Less, 2, "s"},
		{"latency.max < 1.5e0s", "latency.max", Less, 1.5, "s"},
		{"throughput.rps >= 8000", "throughput.rps", GreaterEqual, 8000, ""},
		{"custom_engine.queue_depth_2 > -3", "custom_engine.queue_depth_2", Greater, -3, ""},
		{"x\t<\t1", "x", Less, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			g, err := Parse(tt.expr)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if g.Metric != tt.metric || g.Op != tt.op || g.Unit != tt.unit {
				t.Errorf("got %q %v unit %q, want %q %v unit %q", g.Metric, g.Op, g.Unit, tt.metric, tt.op, tt.unit)
			}
			if g.Threshold != tt.threshold {
				t.Errorf("threshold = %v, want %v", g.Threshold, tt.threshold)
			}
			if g.Expr != tt.expr {
				t.Errorf("Expr = %q, want the input", g.Expr)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		expr string
		col  int
		msg  string
	}{
		{"latency.p99 < 100xs", 18, `unknown unit "xs" (allowed: ns, us, ms, s, %)`},
		{"", 1, "missing metric name"},
		{"   ", 4, "missing metric name"},
		{"Latency.p99 < 1s", 1, "lowercase"},
		{"latency.P99 < 1s", 9, "lowercase"},
		{"latency.p-9 < 1s", 10, "expected an operator"},
		{"latency..p99 < 1s", 8, "segment is empty"},
		{"latency. < 1s", 8, "segment is empty"},
		{"9latency < 1s", 1, "expected a metric name"},
		{"latency.p99", 12, "missing operator"},
		{"latency.p99 == 1s", 13, `unknown operator "=="`},
		{"latency.p99 != 1s", 13, `unknown operator "!="`},
		{"latency.p99 => 1s", 13, `unknown operator "=>"`},
		{"latency.p99 ~ 1s", 13, `expected an operator`},
		{"latency.p99 <", 14, "missing threshold"},
		{"latency.p99 < ms", 15, "expected a number"},
		{"latency.p99 < -", 15, "expected a number"},
		{"latency.p99 < 1e999", 15, "out of range"},
		{"latency.p99 < 1 ms extra", 20, `unexpected "extra"`},
		{"latency.p99 < 1ms 2", 19, `unexpected "2"`},
		{"latency.p99 < 1.2.3", 18, `unexpected ".3"`},
		{"latency.p99 < 1e", 16, `unknown unit "e"`},
		{"latency.p99 < 100 MS", 19, `unknown unit "MS"`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := Parse(tt.expr)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error = %v, want a *SyntaxError", tt.expr, err)
			}
			if se.Col != tt.col {
				t.Errorf("column = %d, want %d (%v)", se.Col, tt.col, err)
			}
			if !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", se.Msg, tt.msg)
			}
		})
	}
}

func TestSyntaxErrorText(t *testing.T) {
	_, err := Parse("latency.p99 < 100xs")
	want := `gate "latency.p99 < 100xs": column 18: unknown unit "xs" (allowed: ns, us, ms, s, %)`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
	var se *SyntaxError
	errors.As(err, &se)
	if got, want := se.Caret(), "latency.p99 < 100xs\n                 ^"; got != want {
		t.Errorf("Caret() =\n%s\nwant\n%s", got, want)
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, expr := range []string{"latency.p99<100ms", "errors.ratio < 0.1 %", "a >= -0.5", "latency.p50 < 500µs", "x > 1e21"} {
		g := MustParse(expr)
		g2, err := Parse(g.String())
		if err != nil {
			t.Fatalf("re-parse of %q (%q): %v", expr, g.String(), err)
		}
		if !sameGate(g, g2) {
			t.Errorf("%q -> %q -> %+v, want %+v", expr, g.String(), g2, g)
		}
	}
	if got := MustParse("  latency.p99<100 ms").String(); got != "latency.p99 < 100ms" {
		t.Errorf("String() = %q", got)
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse of a bad gate did not panic")
		}
	}()
	MustParse("latency <")
}

func TestParseAll(t *testing.T) {
	gates, errs := ParseAll([]string{"latency.p99 < 100ms", "bad", "errors.ratio < 1%", "x >> 1"})
	if len(gates) != 2 || gates[0].Metric != "latency.p99" || gates[1].Metric != "errors.ratio" {
		t.Errorf("gates = %+v", gates)
	}
	if len(errs) != 2 {
		t.Fatalf("errs = %v, want 2", errs)
	}
	for i, want := range []int{1, 3} {
		var ie *IndexError
		if !errors.As(errs[i], &ie) || ie.Index != want {
			t.Errorf("errs[%d] = %v, want index %d", i, errs[i], want)
		}
		var se *SyntaxError
		if !errors.As(errs[i], &se) {
			t.Errorf("errs[%d] does not wrap a *SyntaxError", i)
		}
		if !strings.HasPrefix(errs[i].Error(), "gates[") {
			t.Errorf("errs[%d] = %q, want a gates[N] prefix", i, errs[i])
		}
	}
	if gates, errs := ParseAll(nil); len(gates) != 0 || errs != nil {
		t.Errorf("ParseAll(nil) = %v, %v", gates, errs)
	}
}

func TestEvaluate(t *testing.T) {
	m := map[string]float64{
		"latency.p99":      0.8123,
		"latency.p50":      0.0123,
		"errors.ratio":     0.0012,
		"throughput.ratio": 0.98,
		"throughput.rps":   7990.5,
		"nan.metric":       math.NaN(),
	}
	tests := []struct {
		expr    string
		pass    bool
		missing bool
		explain string
	}{
		{"latency.p99 < 100ms", false, false, "latency.p99 812 ms > 100 ms"},
		{"latency.p50 < 100ms", true, false, "latency.p50 12.3 ms < 100 ms: ok"},
		{"errors.ratio < 0.001", false, false, "errors.ratio 0.12% > 0.1%"},
		{"errors.ratio <= 0.12%", true, false, "errors.ratio 0.12% <= 0.12%: ok"},
		{"throughput.ratio > 95%", true, false, "throughput.ratio 98% > 95%: ok"},
		{"throughput.ratio > 99%", false, false, "throughput.ratio 98% < 99%"},
		{"throughput.rps >= 8000", false, false, "throughput.rps 7,991 < 8,000"},
		{"throughput.rps > 7990.5", false, false, "throughput.rps 7,991 = 7,991 (required > 7,991)"},
		{"throughput.rps < 7990.6", true, false, "throughput.rps 7,991 < 7,991: ok"},
		{"probe.delay.p99 < 250ms", false, true, "probe.delay.p99 not measured"},
		{"nan.metric < 1", false, true, "nan.metric not measured"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			g := MustParse(tt.expr)
			r := g.Evaluate(m)
			if r.Pass != tt.pass || r.Missing != tt.missing {
				t.Errorf("pass=%v missing=%v, want pass=%v missing=%v", r.Pass, r.Missing, tt.pass, tt.missing)
			}
			if r.Explain != tt.explain {
				t.Errorf("Explain = %q, want %q", r.Explain, tt.explain)
			}
			if r.Gate != tt.expr || r.Metric != g.Metric || r.Threshold != g.Threshold {
				t.Errorf("result = %+v", r)
			}
			if !tt.missing && r.Observed != m[g.Metric] {
				t.Errorf("Observed = %v", r.Observed)
			}
		})
	}
}

func TestEvaluateZeroGateFails(t *testing.T) {
	r := Gate{Metric: "x"}.Evaluate(map[string]float64{"x": 0})
	if r.Pass {
		t.Errorf("a Gate without an operator passed: %+v", r)
	}
	if r.Gate == "" {
		t.Error("Result.Gate is empty for a gate built without Expr")
	}
}

// sameGate compares everything but Expr, which keeps the text as written.
func sameGate(a, b Gate) bool {
	return a.Metric == b.Metric && a.Op == b.Op && a.Threshold == b.Threshold && a.Value == b.Value && a.Unit == b.Unit
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"latency.p99 < 100ms", "errors.ratio < 0.001", "throughput.ratio > 95%",
		"latency.p50 <= 500µs", "x >= -1.5e3", "latency.p99 < 100xs", "a.b.c_d > .5 s", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error is %T, want *SyntaxError", err)
			}
			if se.Col < 1 || se.Col > len([]rune(s))+1 {
				t.Fatalf("column %d outside 1..%d", se.Col, len([]rune(s))+1)
			}
			_ = se.Caret()
			return
		}
		g2, err := Parse(g.String())
		if err != nil {
			t.Fatalf("String() %q of %q does not re-parse: %v", g.String(), s, err)
		}
		if !sameGate(g, g2) {
			t.Fatalf("%q -> %q -> %+v, want %+v", s, g.String(), g2, g)
		}
		_ = g.Evaluate(map[string]float64{g.Metric: 1})
	})
}
