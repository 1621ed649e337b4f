package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPreflightRecordsLimits: a short real run records the limits funnel of
// the host and of the target process in run.json and report.json.
func TestPreflightRecordsLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	plan := busPlan(t, "preflight", "--nofile 300",
		"  - { name: rate, start: 100, max: 100 }\n  - { name: connections, start: 2, max: 2 }",
		"ramp:\n  warmup: 0s\n  hold: 1s\n  cooldown: 0s\ngates:\n  - errors.ratio < 0.5\n")
	o := runCLI(t, plan)
	if o.code != 0 {
		t.Fatalf("exit %d", o.code)
	}
	b, err := os.ReadFile(filepath.Join(o.dir, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var run struct {
		Limits map[string]any `json:"limits"`
	}
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	somaxconn, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		t.Fatal(err)
	}
	wantSomaxconn, _ := strconv.Atoi(strings.TrimSpace(string(somaxconn)))
	for name, limits := range map[string]map[string]any{"run.json": run.Limits, "report.json": asMap(o.report["limits"])} {
		if got := limits["nofile.eventbus"]; got != float64(300) {
			t.Errorf("%s limits nofile.eventbus = %v, want 300 (the event bus's --nofile): %v", name, got, limits)
		}
		if got := limits["net.core.somaxconn"]; got != float64(wantSomaxconn) {
			t.Errorf("%s limits net.core.somaxconn = %v, want %d", name, got, wantSomaxconn)
		}
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
