package cli

import (
	"strings"
	"testing"
)

// TestPlanRefusesAbsurdValues: the values issue 19 ran into (a rate that
// hung the pacer, a hold that ran out of memory, a billion connections, an
// integer too large for its field) are refused by `loadramp plan` and
// `loadramp run` with exit 2 and the bound, before anything starts.
func TestPlanRefusesAbsurdValues(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"parameters.rate.max=1e20", "1e+20 is over the bound of rate: at most 100000000 requests/s"},
		{"ramp.hold=2000000h", "2000000h0m0s is over the bound: at most 24h0m0s"},
		{"parameters.connections.max=1e9", "1000000000 is over the bound of connections: at most 1000000"},
		{"ramp.max_steps=99999999999999999999", "is too large for an integer"},
	} {
		for _, cmd := range []string{"plan", "run"} {
			args := []string{cmd, "../../plans/local-eventbus.yaml", "--set", tc.set}
			if cmd == "run" {
				args = append(args, "--out", t.TempDir())
			}
			code, _, errOut := runArgs(t, nil, args...)
			if code != ExitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("%s --set %s: exit %d, want %d and %q:\n%s", cmd, tc.set, code, ExitUsage, tc.want, errOut)
			}
		}
	}
}
