package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLocalCampaign runs plans/local-campaign.yaml for real: three variants of
// the event bus, one static change each, and checks each variant's capacity
// against the limit the bus was given.
func TestLocalCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	_, bus := binaries(t)
	out := t.TempDir()
	var so, se bytes.Buffer
	// The plan runs bin/eventbus relative to the repository; point it at the
	// test's build.
	code := run([]string{"run", "../../plans/local-campaign.yaml", "--out", out, "--progress", "plain", "--log-level", "warn",
		"--set", "fleets.target.processes[0].command[0]=" + bus,
		// Other tests share this machine's cores; the verdicts under test are the target's.
		"--set", "default_checks.generator_health=false"},
		IO{In: strings.NewReader(""), Out: &so, ErrOut: &se}, emptyEnv)
	// Logged after the test's own messages: a failure's reason leads the log.
	t.Cleanup(func() { t.Logf("exit %d\n%s\n%s", code, so.String(), se.String()) })
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), "-campaign") {
		t.Fatalf("want one campaign directory, got %v", entries)
	}
	cdir := filepath.Join(out, entries[0].Name())
	var camp struct {
		Variants []struct {
			RunID      string             `json:"run_id"`
			Changed    []string           `json:"changed"`
			Status     string             `json:"status"`
			Capacity   map[string]float64 `json:"capacity"`
			Throughput float64            `json:"throughput_rps"`
			Bottleneck string             `json:"bottleneck"`
		} `json:"variants"`
	}
	b, err := os.ReadFile(filepath.Join(cdir, "campaign.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &camp); err != nil {
		t.Fatal(err)
	}
	if len(camp.Variants) != 3 {
		t.Fatalf("%d variants, want 3", len(camp.Variants))
	}
	within := func(name string, got, want float64) {
		if got < want*0.85 || got > want*1.15 {
			t.Errorf("%s: %.0f, want within 15%% of %.0f", name, got, want)
		}
	}
	v := camp.Variants
	if strings.Join(v[1].Changed, ",") != "eventbus_capacity" || strings.Join(v[2].Changed, ",") != "eventbus_nofile" {
		t.Errorf("changed parameters %v, %v; want eventbus_capacity, eventbus_nofile", v[1].Changed, v[2].Changed)
	}
	within("variant 1 capacity (req/s) against --capacity 1100", v[0].Throughput, 1100)
	within("variant 2 capacity (req/s) against --capacity 2200", v[1].Throughput, 2200)
	// 128 files: stdio, the listener and epoll leave about 122 for connections.
	within("variant 3 capacity (connections) against --nofile 128", v[2].Capacity["connections"], 122)
	if !strings.Contains(v[2].Bottleneck, "connections") {
		t.Errorf("variant 3 bottleneck %q, want it on connections", v[2].Bottleneck)
	}
	for _, name := range []string{"campaign.md", "campaign.html"} {
		b, err := os.ReadFile(filepath.Join(cdir, name))
		if err != nil || !bytes.Contains(b, []byte("eventbus_nofile")) {
			t.Errorf("%s missing or without the changed parameter: %v", name, err)
		}
	}
	for _, vr := range v {
		if _, err := os.Stat(filepath.Join(cdir, vr.RunID, "report.html")); err != nil {
			t.Errorf("variant %s has no report: %v", vr.RunID, err)
		}
	}
}

func TestCampaignChangingTwoParametersIsRefused(t *testing.T) {
	code, _, errOut := runArgs(t, nil, "run", "../../plans/local-campaign.yaml", "--out", t.TempDir(),
		"--set", "campaign.variants[1].eventbus_nofile=256")
	if code != 2 {
		t.Fatalf("exit %d, want 2\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "campaign.variants[1]") || !strings.Contains(errOut, "eventbus_capacity") || !strings.Contains(errOut, "eventbus_nofile") {
		t.Errorf("the refusal does not name both parameters:\n%s", errOut)
	}
}

// TestCampaignInterruptKeepsFinishedVariants interrupts a campaign (SIGINT)
// during its second variant: the fleets are torn down, the finished variant
// keeps its report, and the campaign report is written, marked partial.
func TestCampaignInterruptKeepsFinishedVariants(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	lr, bus := binaries(t)
	out := t.TempDir()
	cmd := exec.Command(lr, "run", "../../plans/local-campaign.yaml", "--out", out, "--progress", "plain",
		"--set", "fleets.target.processes[0].command[0]="+bus,
		"--set", "ramp.warmup=0s", "--set", "ramp.hold=1s", "--set", "ramp.cooldown=0s",
		"--set", "parameters.rate.max=500", "--set", "parameters.connections.max=16",
		"--set", "default_checks.generator_health=false")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the second variant has started its steps.
	deadline := time.Now().Add(60 * time.Second)
	var cdir string
	for time.Now().Before(deadline) {
		if ents, _ := os.ReadDir(out); len(ents) == 1 {
			cdir = filepath.Join(out, ents[0].Name())
			if b, err := os.ReadFile(filepath.Join(cdir, "v2-eventbus_capacity_2200", "steps.jsonl")); err == nil && len(b) > 0 {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	t.Logf("stdout:\n%s\nstderr:\n%s", so.String(), se.String())
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130", err)
	}
	if _, err := os.Stat(filepath.Join(cdir, "v1-base", "report.html")); err != nil {
		t.Errorf("the finished variant lost its report: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(cdir, "campaign.json"))
	if err != nil {
		t.Fatal(err)
	}
	var camp struct {
		Partial  bool  `json:"partial"`
		Variants []any `json:"variants"`
	}
	if err := json.Unmarshal(b, &camp); err != nil {
		t.Fatal(err)
	}
	if !camp.Partial || len(camp.Variants) != 2 {
		t.Errorf("campaign.json partial=%v with %d variants, want partial with 2", camp.Partial, len(camp.Variants))
	}
	// No event bus of either variant is left running.
	for _, v := range []string{"v1-base", "v2-eventbus_capacity_2200"} {
		rb, _ := os.ReadFile(filepath.Join(cdir, v, "run.json"))
		var pids struct {
			Infra []struct {
				Pids map[string]int `json:"pids"`
			} `json:"infra"`
		}
		json.Unmarshal(rb, &pids)
		for _, inf := range pids.Infra {
			for name, pid := range inf.Pids {
				for i := 0; i < 40 && alive(pid); i++ {
					time.Sleep(50 * time.Millisecond)
				}
				if alive(pid) {
					syscall.Kill(pid, syscall.SIGKILL)
					t.Errorf("%s: %s (pid %d) still running after the interrupt", v, name, pid)
				}
			}
		}
	}
}
