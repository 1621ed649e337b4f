package plan

import (
	"strings"
	"testing"
)

const replicasPlan = `version: 1
name: replicas
fleets:
  target:
    processes:
      - { name: app, command: [app] }
  generators:
    outputs: { web: "http://127.0.0.1:1" }
    processes:
      - { name: master, command: [locust, --master] }
      - { name: worker, command: [locust, --worker], replicas: REPLICAS, scalable: true }
workload:
  engine: locust
  locust: { locustfile: f.py, master: "{{ .fleets.generators.web }}", workers: "{{ .fleets.generators.size }}" }
gates: [latency.p99 < 1s]
parameters:
  - { name: users, start: 10, max: 100 }
`

func TestProcessReplicas(t *testing.T) {
	p, err := Parse([]byte(strings.Replace(replicasPlan, "REPLICAS", "2", 1)), "replicas.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if errs := p.Validate(); len(errs) > 0 {
		t.Fatalf("valid plan: %v", errs)
	}
	gen := p.Fleets["generators"].Processes
	if gen[0].Replicas != 1 || gen[0].Scalable || gen[1].Replicas != 2 || !gen[1].Scalable {
		t.Errorf("processes %+v", gen)
	}
	if p.Workload.Locust.Workers != "{{ .fleets.generators.size }}" {
		t.Errorf("workload.locust.workers = %q", p.Workload.Locust.Workers)
	}

	p, err = Parse([]byte(strings.Replace(replicasPlan, "REPLICAS", "0", 1)), "replicas.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	errs := p.Validate()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "fleets.generators.processes[1].replicas") ||
		!strings.Contains(errs[0].Error(), "must be >= 1") {
		t.Errorf("replicas: 0 gave %v, want one problem at fleets.generators.processes[1].replicas", errs)
	}
}
