package orchestrator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
)

// funcFleet is a fake fleet whose Up is a function.
type funcFleet struct {
	up func() (FleetState, error)
}

func (f *funcFleet) Up(context.Context) (FleetState, error) { return f.up() }
func (f *funcFleet) Scale(context.Context, float64) (FleetState, bool, error) {
	return FleetState{}, false, nil
}
func (f *funcFleet) Down(context.Context) error { return nil }
func (f *funcFleet) Check() error               { return nil }

func bindable(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// TestRunHoldsPortsUntilTheFleetStartsAndRedactsSecrets: a port a fleet's
// templates allocate stays bound until the fleet's Up, and a sensitive
// output is used by later templates but recorded and logged redacted.
func TestRunHoldsPortsUntilTheFleetStartsAndRedactsSecrets(t *testing.T) {
	p, err := plan.Parse([]byte(fakePlan), "fake.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "tok-0123456789abcdef"
	var heldAtProvision, freeAtUp bool
	var genSaw string
	gens := &fakeFleet{size: 1, maxSize: 1}
	deps := Deps{
		Provision: func(_ context.Context, spec ProvisionSpec) (Fleet, error) {
			if spec.Name == "generators" {
				s, err := spec.Render("{{ .fleets.target.token }}")
				genSaw = s
				return gens, err
			}
			s, err := spec.Render(`{{ port "bus" }}`)
			if err != nil {
				return nil, err
			}
			port, _ := strconv.Atoi(s)
			heldAtProvision = !bindable(port)
			return &funcFleet{up: func() (FleetState, error) {
				freeAtUp = bindable(port)
				return FleetState{Outputs: map[string]string{"endpoint": "http://127.0.0.1:1", "token": secret}, Sensitive: []string{"token"}, Size: 1}, nil
			}}, nil
		},
		NewEngine: func(context.Context, *plan.Plan, Renderer, zerolog.Logger) (Engine, error) {
			return &fakeEngine{capacity: 1e9, gens: gens}, nil
		},
		Now: time.Now,
	}
	res, err := Run(context.Background(), p, deps, Options{OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !heldAtProvision || !freeAtUp {
		t.Errorf("port held while the fleet was provisioned: %v, free when it started: %v; want both", heldAtProvision, freeAtUp)
	}
	if genSaw != secret {
		t.Errorf("a later template saw the sensitive output as %q", genSaw)
	}
	b, _ := os.ReadFile(filepath.Join(res.Dir, record.RunFile))
	var run record.Run
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	if len(run.Infra) == 0 || run.Infra[0].Outputs["token"] != record.Redacted || run.Infra[0].Outputs["endpoint"] != "http://127.0.0.1:1" {
		t.Errorf("run.json infra %+v", run.Infra)
	}
	filepath.Walk(res.Dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			if data, _ := os.ReadFile(path); bytes.Contains(data, []byte(secret)) {
				t.Errorf("%s holds the secret", path)
			}
		}
		return nil
	})
	if ev, _ := os.ReadFile(filepath.Join(res.Dir, record.EventsFile)); !bytes.Contains(ev, []byte(`"token":"(sensitive)"`)) {
		t.Errorf("events.log lacks the redacted fleet-up event:\n%s", ev)
	}
}
