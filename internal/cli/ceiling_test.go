package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCeilingMustBePositive: a ceiling of 0 or less once silently meant no
// ceiling at all.
func TestCeilingMustBePositive(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfg, []byte("max_rate: 0\n"), 0o644)
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--max-rate", "0"}, "max_rate: 0 is not a ceiling"},
		{nil, []string{"--max-rate", "-100"}, "max_rate: -100 is not a ceiling"},
		{nil, []string{"--max-users", "0"}, "max_users: 0 is not a ceiling"},
		{map[string]string{"LOADRAMP_MAX_RATE": "0"}, nil, "max_rate: 0 is not a ceiling"},
		{nil, []string{"--config", cfg}, "max_rate: 0 is not a ceiling"},
	} {
		args := append([]string{"plan", "../../plans/local-eventbus.yaml"}, c.args...)
		code, _, errOut := runArgs(t, c.env, args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v %v: exit %d, want 2 and %q:\n%s", c.env, c.args, code, c.want, errOut)
		}
	}
	if code, _, errOut := runArgs(t, nil, "plan", "../../plans/local-eventbus.yaml", "--max-rate", "64000"); code != 0 {
		t.Errorf("--max-rate 64000: exit %d\n%s", code, errOut)
	}
}
