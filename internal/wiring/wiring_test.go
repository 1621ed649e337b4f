package wiring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/rs/zerolog"

	awsinfra "github.com/loadramp/loadramp/infra/aws"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/delivery"
	"github.com/loadramp/loadramp/orchestrator/loadgen"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// staticRender renders templates with only the target's endpoint output.
func staticRender(endpoint string) orchestrator.Renderer {
	data := plan.TemplateData{Fleets: map[string]map[string]string{"target": {"endpoint": endpoint}}}
	return func(s string) (string, error) { return plan.Render(s, data, nil) }
}

func noRender(s string) (string, error) { return s, nil }

func TestNewProbeRendersURLs(t *testing.T) {
	p := &plan.Plan{Probe: &plan.Probe{Kind: "pubsub", Rate: 20, PubSubBus: plan.PubSubBus{
		Publish: "{{ .fleets.target.endpoint }}/publish?topic=probe", Subscribe: "{{ .fleets.target.endpoint }}/subscribe?topic=probe"}}}
	pr, err := NewProbe(context.Background(), p, staticRender("http://127.0.0.1:9"), zerolog.Nop())
	if err != nil || pr == nil {
		t.Fatalf("NewProbe = %v, %v", pr, err)
	}
	p.Probe.Subscribe = "{{ .fleets.target.endpoint }}"
	if _, err := NewProbe(context.Background(), p, staticRender(""), zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "probe publish") {
		t.Errorf("an empty rendered URL: err = %v", err)
	}
	if pr, err := NewProbe(context.Background(), &plan.Plan{}, staticRender(""), zerolog.Nop()); pr != nil || err != nil {
		t.Errorf("no probe block: %v, %v", pr, err)
	}
}

func TestNewEngineByWorkload(t *testing.T) {
	for _, tt := range []struct {
		name string
		w    plan.Workload
		want any
	}{
		{"http", plan.Workload{Engine: plan.EngineBuiltin, HTTP: &plan.HTTP{Method: "GET", URL: "{{ .fleets.target.endpoint }}/", Timeout: plan.Duration(time.Second)}}, &httpEngine{}},
		{"pubsub", plan.Workload{Engine: plan.EngineBuiltin, PubSub: &plan.PubSub{PubSubBus: plan.PubSubBus{Publish: "{{ .fleets.target.endpoint }}/p", Subscribe: "{{ .fleets.target.endpoint }}/s"}}}, &pubsubEngine{}},
		{"locust", plan.Workload{Engine: plan.EngineLocust, Locust: &plan.Locust{Master: "http://127.0.0.1:1", Host: "{{ .fleets.target.endpoint }}"}}, &locustEngine{}},
	} {
		e, err := NewEngine(context.Background(), &plan.Plan{Workload: tt.w}, staticRender("http://127.0.0.1:9"), zerolog.Nop())
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got, want := fmt.Sprintf("%T", e), fmt.Sprintf("%T", tt.want); got != want {
			t.Errorf("%s: engine %s, want %s", tt.name, got, want)
		}
		_ = e.Close()
	}
	if _, err := NewEngine(context.Background(), &plan.Plan{Workload: plan.Workload{Engine: "k6"}}, noRender, zerolog.Nop()); err == nil {
		t.Error("an unknown engine was built")
	}
}

// fakeFleet is a fake Terraform fleet: Up returns its outputs.
type fakeFleet struct{ outputs map[string]string }

func (f *fakeFleet) Up(context.Context) (orchestrator.FleetState, error) {
	return orchestrator.FleetState{Outputs: f.outputs, Size: 1}, nil
}
func (f *fakeFleet) Scale(context.Context, float64) (orchestrator.FleetState, bool, error) {
	return orchestrator.FleetState{}, false, nil
}
func (f *fakeFleet) Down(context.Context) error { return nil }
func (f *fakeFleet) Check() error               { return nil }

// fakeLocalSampler is a fake local sampler: generator-host figures and a finding.
type fakeLocalSampler struct{ started int }

func (s *fakeLocalSampler) Start(context.Context, orchestrator.SampleSpec) (func(orchestrator.StepFacts) (map[string]float64, []result.Finding), error) {
	s.started++
	return func(orchestrator.StepFacts) (map[string]float64, []result.Finding) {
		return map[string]float64{"host.cpu": 0.5, metrics.GeneratorCPU: 0.25}, []result.Finding{{Rule: "local-finding"}}
	}, nil
}

// fakeEC2 is a fake EC2 API: every instance asked about runs and passes its checks.
type fakeEC2 struct{ run string }

func (f fakeEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	tags := []ec2types.Tag{{Key: sdkaws.String(awsinfra.TagRunID), Value: sdkaws.String(f.run)}, {Key: sdkaws.String(awsinfra.TagRole), Value: sdkaws.String("target")}}
	inst := ec2types.Instance{InstanceId: sdkaws.String("i-0aaa"), State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning}, Tags: tags}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: []ec2types.Instance{inst}}}}, nil
}

func (f fakeEC2) DescribeInstanceStatus(_ context.Context, in *ec2.DescribeInstanceStatusInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error) {
	ok := &ec2types.InstanceStatusSummary{Status: ec2types.SummaryStatusOk}
	var out ec2.DescribeInstanceStatusOutput
	for _, id := range in.InstanceIds {
		out.InstanceStatuses = append(out.InstanceStatuses, ec2types.InstanceStatus{InstanceId: sdkaws.String(id), SystemStatus: ok, InstanceStatus: ok})
	}
	return &out, nil
}

// fakeCloudWatch is a fake CloudWatch API: CPUUtilization 50 % at every minute asked.
type fakeCloudWatch struct{ calls int }

func (f *fakeCloudWatch) GetMetricData(_ context.Context, in *cloudwatch.GetMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error) {
	f.calls++
	out := &cloudwatch.GetMetricDataOutput{}
	for _, q := range in.MetricDataQueries {
		r := cwtypes.MetricDataResult{Id: q.Id, StatusCode: cwtypes.StatusCodeComplete}
		if sdkaws.ToString(q.MetricStat.Metric.MetricName) == "CPUUtilization" {
			for ts := sdkaws.ToTime(in.StartTime); ts.Before(sdkaws.ToTime(in.EndTime)); ts = ts.Add(time.Minute) {
				r.Timestamps, r.Values = append(r.Timestamps, ts), append(r.Values, 50)
			}
		}
		out.MetricDataResults = append(out.MetricDataResults, r)
	}
	return out, nil
}

func TestDepsWireTheLocalImplementations(t *testing.T) {
	d := Deps(DefaultConfig(), nil)
	s, ok := d.Sampler.(*awsSampler)
	if !ok {
		t.Fatalf("sampler %T", d.Sampler)
	}
	if _, ok := s.local.(hostSampler); !ok {
		t.Errorf("local side of the sampler is %T, want the host observer", s.local)
	}
	if d.NewEngine == nil || d.NewProbe == nil || d.Preflight == nil || d.Observer == nil {
		t.Errorf("deps incomplete: %+v", d)
	}
	// A static fleet is provisioned as itself, not wrapped.
	fl, err := d.Provision(context.Background(), orchestrator.ProvisionSpec{Name: "target",
		Fleet:  &plan.Fleet{Provider: plan.ProviderStatic, Outputs: map[string]string{"endpoint": "http://127.0.0.1:1"}},
		Render: noRender, RunDir: t.TempDir(), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fl.(*fleetAdapter); !ok {
		t.Errorf("static target fleet provisioned as %T", fl)
	}
	if st, err := fl.Up(context.Background()); err != nil || st.Outputs["endpoint"] != "http://127.0.0.1:1" || st.Ref.Provider != plan.ProviderStatic {
		t.Errorf("static Up = %+v, %v", st, err)
	}
}

func TestAWSTargetHooks(t *testing.T) {
	ctx := context.Background()
	cw := &fakeCloudWatch{}
	clientsBuilt := 0
	tg := awsinfra.NewTarget(awsinfra.TargetConfig{
		Clients: func(context.Context) (awsinfra.TargetClients, error) {
			clientsBuilt++
			return awsinfra.TargetClients{EC2: fakeEC2{run: "run-a"}, CloudWatch: cw}, nil
		},
		ReadyPoll: 10 * time.Millisecond,
	})
	next := func(_ context.Context, spec orchestrator.ProvisionSpec) (orchestrator.Fleet, error) {
		return &fakeFleet{outputs: map[string]string{"endpoint": "http://127.0.0.1:1"}}, nil
	}
	fa := &fleetAgents{cfg: DefaultConfig(), specs: map[string]orchestrator.ProvisionSpec{}}
	provision := awsProvision(tg, fa, next)
	spec := func(name, provider string) orchestrator.ProvisionSpec {
		return orchestrator.ProvisionSpec{Name: name, Fleet: &plan.Fleet{Provider: provider}, Render: noRender,
			RunDir: filepath.Join(t.TempDir(), "run-a"), Log: zerolog.Nop()}
	}
	for _, s := range []orchestrator.ProvisionSpec{spec("target", plan.ProviderLocal), spec("generators", plan.ProviderTerraform)} {
		fl, _ := provision(ctx, s)
		if _, ok := fl.(*awsFleet); ok {
			t.Errorf("fleet %s (%s) wrapped for EC2", s.Name, s.Fleet.Provider)
		}
	}

	// A Terraform target without instance_ids and no aws_region: no AWS
	// call, and the sampler is the local one alone.
	fl, err := provision(ctx, spec("target", plan.ProviderTerraform))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fl.Up(ctx); err != nil || clientsBuilt != 0 {
		t.Fatalf("Up: %v; AWS clients built %d times", err, clientsBuilt)
	}
	local := &fakeLocalSampler{}
	sampler := &awsSampler{local: local, target: tg}
	stop, err := sampler.Start(ctx, orchestrator.SampleSpec{})
	if err != nil {
		t.Fatal(err)
	}
	m, findings := stop(orchestrator.StepFacts{})
	if local.started != 1 || len(m) != 2 || m["host.cpu"] != 0.5 || len(findings) != 1 || cw.calls != 0 {
		t.Errorf("local-only step: started %d, metrics %v, findings %v, CloudWatch calls %d", local.started, m, findings, cw.calls)
	}

	// A target that outputs its instances: Up waits for them, then every
	// step adds CloudWatch's figures to the local ones.
	next = func(_ context.Context, spec orchestrator.ProvisionSpec) (orchestrator.Fleet, error) {
		return &fakeFleet{outputs: map[string]string{awsinfra.OutputInstanceIDs: "i-0aaa"}}, nil
	}
	fl, err = awsProvision(tg, fa, next)(ctx, spec("target", plan.ProviderTerraform))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fl.Up(ctx); err != nil || !tg.Watched() {
		t.Fatalf("Up: %v; watched %v", err, tg.Watched())
	}
	stop, err = sampler.Start(ctx, orchestrator.SampleSpec{Warmup: -3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	m, findings = stop(orchestrator.StepFacts{})
	if m[metrics.TargetCPU] != 0.5 || m["host.cpu"] != 0.5 || len(findings) != 1 || findings[0].Rule != "local-finding" || cw.calls != 1 {
		t.Errorf("EC2 step: metrics %v, findings %v, CloudWatch calls %d", m, findings, cw.calls)
	}
}

func TestProvisionErrorsNameTheField(t *testing.T) {
	_, err := Provision(DefaultConfig())(context.Background(), orchestrator.ProvisionSpec{Name: "target",
		Fleet: &plan.Fleet{Provider: plan.ProviderLocal, Processes: []plan.Process{{Name: "p", Command: []string{"{{ bad"}}}},
		Render: func(s string) (string, error) {
			if strings.Contains(s, "{{") {
				return "", errors.New("template: unclosed action")
			}
			return s, nil
		}, RunDir: t.TempDir(), Log: zerolog.Nop()})
	if err == nil || !strings.Contains(err.Error(), "fleets.target.processes[0].command[0]") {
		t.Errorf("bad command template: %v", err)
	}
}

// The plan's values are rendered into the pub/sub settings once; the
// client's (.index, .topic, .marker) are left for each subscriber and
// publisher, which package delivery renders.
func TestRenderBusDefersClientValues(t *testing.T) {
	data := plan.TemplateData{Static: map[string]any{"rooms": float64(3)},
		Fleets: map[string]map[string]string{"target": {"endpoint": "http://127.0.0.1:9", "ws": "ws://127.0.0.1:9"}}}
	render := func(s string) (string, error) { return plan.Render(s, data, nil) }
	settle := plan.Duration(0)
	b, err := renderBus(render, "workload.pubsub", plan.PubSubBus{
		Publish: "{{ .fleets.target.endpoint }}/pub/{{ .topic }}", Subscribe: "{{ .fleets.target.ws }}/sub/{{ .topic }}",
		PublishTopic: "room{{ mod .index .static.rooms }}", SubscribeTopic: "room{{ mod .index .static.rooms }}",
		SubscribeHeaders: map[string]string{"X-Client": "sub-{{ .index }}"},
		Body:             `{"room":{{ json .topic }},"m":"{{ .marker }}"}`, Settle: &settle,
	})
	if err != nil {
		t.Fatal(err)
	}
	if b.Settle != 0 || b.Confirm != "" {
		t.Errorf("settle %v, confirm %q", b.Settle, b.Confirm)
	}
	c, err := b.Compile()
	if err != nil {
		t.Fatal(err)
	}
	topic, err := c.SubscribeTopic(4)
	if err != nil || topic != "room1" {
		t.Fatalf("subscriber 4's topic %q, %v", topic, err)
	}
	sub, err := c.Subscription(4, topic, time.Second)
	if err != nil || sub.URL != "ws://127.0.0.1:9/sub/room1" || sub.Header.Get("X-Client") != "sub-4" {
		t.Errorf("subscription %+v, %v", sub, err)
	}
	body, err := c.Body(2, "room2", "src-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if msg := string(body.Append(nil, 7, time.Second)); !strings.HasPrefix(msg, `{"room":"room2","m":"loadramp:src-1:2:0000000007:`) {
		t.Errorf("message %s", msg)
	}
	if _, err := renderBus(render, "probe", plan.PubSubBus{Publish: "{{ .fleets.nope.x }}"}); err == nil || !strings.HasPrefix(err.Error(), "probe.publish: ") {
		t.Errorf("a bad reference: %v", err)
	}
	if d := delivery.DefaultSettle; d <= 0 {
		t.Errorf("DefaultSettle %v", d)
	}
}

// A mix's templates are rendered once into text and per-request parts; an
// env value is read once; feeders are loaded with their mode.
func TestHTTPTargetOfAMix(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(users, []byte("id,name\n1,ann\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := plan.Parse([]byte(`version: 1
name: mix
fleets:
  target: { provider: static, outputs: { endpoint: "http://127.0.0.1:9" } }
workload:
  engine: builtin
  http:
    feeders: { users: { file: `+users+`, mode: unique } }
    requests:
      - name: publish
        weight: 3
        url: '{{ .fleets.target.endpoint }}/publish?u={{ feed "users" "name" }}'
        headers: { Authorization: 'Bearer {{ env "WIRING_TOKEN" }}', X-Id: '{{ uuid }}' }
        body: '{"n":{{ seq }}}'
        check: { status: [200], json: { path: receivers, equals: 0 } }
      - { name: health, url: '{{ .fleets.target.endpoint }}/healthz' }
parameters:
  - { name: rate, start: 1, max: 2 }
gates: [latency.p99 < 1s]
`), "mix.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	env := func(name string) (string, bool) {
		return map[string]string{"WIRING_TOKEN": "s3cret"}[name], name == "WIRING_TOKEN"
	}
	// Around per-request calls, the plan's actions are in canonical form.
	render := func(s string) (string, error) {
		s = strings.ReplaceAll(s, "{{.fleets.target.endpoint}}", "http://127.0.0.1:9")
		return staticRender("http://127.0.0.1:9")(s)
	}
	tg, err := httpTarget(p, render, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(tg.Requests) != 2 || tg.Feeders["users"].Mode != loadgen.Unique || tg.Feeders["users"].Rows[0][1] != "ann" {
		t.Fatalf("target %+v", tg)
	}
	r := tg.Requests[0]
	want := loadgen.Request{Name: "publish", Weight: 3, Method: "POST",
		URL:  loadgen.Template{loadgen.Text("http://127.0.0.1:9/publish?u="), loadgen.Field("users", "name")},
		Body: loadgen.Template{loadgen.Text(`{"n":`), loadgen.Seq(), loadgen.Text("}")},
		Headers: []loadgen.Header{{Name: "Authorization", Value: loadgen.Template{loadgen.Text("Bearer "), loadgen.Text("s3cret")}},
			{Name: "X-Id", Value: loadgen.Template{loadgen.UUID()}}},
		Check: &loadgen.Check{Status: []int{200}, JSON: &loadgen.JSONCheck{Path: "receivers", Equals: float64(0)}}} // through JSON, as agents receive it
	if !reflect.DeepEqual(r, want) {
		t.Errorf("request\n%#v\nwant\n%#v", r, want)
	}
	if _, err := loadgen.New(tg); err != nil {
		t.Errorf("loadgen.New: %v", err)
	}
	if _, err := httpTarget(p, render, func(string) (string, bool) { return "", false }); err == nil ||
		!strings.Contains(err.Error(), `workload.http.requests[0].headers.Authorization: env "WIRING_TOKEN" is not set`) {
		t.Errorf("unset env: %v", err)
	}
}
