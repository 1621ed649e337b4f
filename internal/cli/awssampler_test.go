package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/rs/zerolog"
	"github.com/spf13/viper"

	awsinfra "github.com/loadramp/loadramp/infra/aws"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// fakeEC2Query is a loopback server speaking the EC2 query API (form POST,
// XML answers as in the EC2 API reference) for DescribeInstances and
// DescribeInstanceStatus. It is a fake: its instances are pending on the
// first DescribeInstances, running after; their instance status check is
// "initializing" until statusOKAfter status calls.
type fakeEC2Query struct {
	mu            sync.Mutex
	run           string
	instances     map[string]string // id -> role
	statusOKAfter int
	describes     int
	statuses      int
	tagFilters    []string
}

func (f *fakeEC2Query) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	switch r.Form.Get("Action") {
	case "DescribeInstances":
		f.describes++
		run := ""
		for k, v := range r.Form {
			if strings.HasSuffix(k, ".Name") && v[0] == "tag:"+awsinfra.TagRunID {
				run = r.Form.Get(strings.TrimSuffix(k, ".Name") + ".Value.1")
			}
		}
		f.tagFilters = append(f.tagFilters, run)
		state, code := "pending", 0
		if f.describes > 1 {
			state, code = "running", 16
		}
		var items strings.Builder
		if run == f.run {
			for id, role := range f.instances {
				fmt.Fprintf(&items, `<item><instanceId>%s</instanceId><instanceType>c6i.large</instanceType><launchTime>2026-11-27T06:00:00.000Z</launchTime>
<instanceState><code>%d</code><name>%s</name></instanceState>
<tagSet><item><key>%s</key><value>%s</value></item><item><key>%s</key><value>%s</value></item></tagSet></item>`,
					id, code, state, awsinfra.TagRunID, f.run, awsinfra.TagRole, role)
			}
		}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-1</requestId>
<reservationSet><item><reservationId>r-1</reservationId><ownerId>123456789012</ownerId><instancesSet>%s</instancesSet></item></reservationSet>
</DescribeInstancesResponse>`, items.String())
	case "DescribeInstanceStatus":
		f.statuses++
		status := "initializing"
		if f.statuses > f.statusOKAfter {
			status = "ok"
		}
		var items strings.Builder
		for k, v := range r.Form {
			if strings.HasPrefix(k, "InstanceId.") {
				fmt.Fprintf(&items, `<item><instanceId>%s</instanceId><availabilityZone>eu-west-1a</availabilityZone>
<instanceState><code>16</code><name>running</name></instanceState>
<systemStatus><status>ok</status></systemStatus><instanceStatus><status>%s</status></instanceStatus></item>`, v[0], status)
			}
		}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstanceStatusResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-2</requestId>
<instanceStatusSet>%s</instanceStatusSet></DescribeInstanceStatusResponse>`, items.String())
	default:
		w.WriteHeader(400)
		fmt.Fprintf(w, `<Response><Errors><Error><Code>InvalidAction</Code><Message>%s is not faked</Message></Error></Errors><RequestID>x</RequestID></Response>`, r.Form.Get("Action"))
	}
}

// fakeCloudWatchClient is a fake CloudWatch client: CPUUtilization of every
// instance at 30, 50 then 70 % from 12:00, published up to published; it
// records its inputs.
type fakeCloudWatchClient struct {
	mu        sync.Mutex
	inputs    []*cloudwatch.GetMetricDataInput
	published time.Time
}

var awsT0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func (f *fakeCloudWatchClient) GetMetricData(_ context.Context, in *cloudwatch.GetMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inputs = append(f.inputs, in)
	out := &cloudwatch.GetMetricDataOutput{}
	for _, q := range in.MetricDataQueries {
		r := cwtypes.MetricDataResult{Id: q.Id, StatusCode: cwtypes.StatusCodeComplete}
		if sdkaws.ToString(q.MetricStat.Metric.MetricName) == "CPUUtilization" {
			for i, v := range []float64{30, 50, 70} {
				ts := awsT0.Add(time.Duration(i) * time.Minute)
				if ts.Before(f.published) {
					r.Timestamps = append(r.Timestamps, ts)
					r.Values = append(r.Values, v)
				}
			}
		}
		out.MetricDataResults = append(out.MetricDataResults, r)
	}
	return out, nil
}

func (f *fakeCloudWatchClient) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.inputs)
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

// fakeLocalSampler is a fake local sampler: generator-host figures and a
// finding.
type fakeLocalSampler struct{ started int }

func (s *fakeLocalSampler) Start(context.Context, orchestrator.SampleSpec) (func(orchestrator.StepFacts) (metrics.Metrics, []result.Finding), error) {
	s.started++
	return func(orchestrator.StepFacts) (metrics.Metrics, []result.Finding) {
		return metrics.Metrics{"host.cpu": 0.5, metrics.GeneratorCPU: 0.25}, []result.Finding{{Rule: "local-finding"}}
	}, nil
}

// messages records observer messages.
type messages struct {
	orchestrator.NopObserver
	mu  sync.Mutex
	all []string
}

func (m *messages) Message(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.all = append(m.all, fmt.Sprintf(format, args...))
}

func (m *messages) joined() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.all, "\n")
}

func testHooks(t *testing.T, obs orchestrator.Observer, ec2 *fakeEC2Query, cw awsinfra.CloudWatchAPI) *awsHooks {
	t.Helper()
	a := &app{io: IO{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}, v: viper.New(), getenv: emptyEnv, log: zerolog.Nop()}
	h := a.newAWSHooks(obs)
	h.poll, h.progress, h.cwPoll = 10*time.Millisecond, 0, 10*time.Millisecond
	h.clients = func(context.Context) (awsClients, error) {
		t.Error("AWS clients built")
		return awsClients{}, fmt.Errorf("no AWS in this test")
	}
	if ec2 != nil {
		srv := httptest.NewServer(ec2)
		t.Cleanup(srv.Close)
		cfg := sdkaws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
		api := awsinfra.NewEC2(cfg, awsinfra.ClientConfig{Endpoint: srv.URL})
		h.clients = func(context.Context) (awsClients, error) { return awsClients{ec2: api, cw: cw}, nil }
	}
	return h
}

func noRender(s string) (string, error) { return s, nil }

// provisionTarget provisions a Terraform target fleet through the hooks,
// next returning fl, in a run directory named runID.
func provisionTarget(t *testing.T, h *awsHooks, fl orchestrator.Fleet, runID string, f *plan.Fleet) orchestrator.Fleet {
	t.Helper()
	next := func(context.Context, string, *plan.Fleet, orchestrator.Renderer, string, zerolog.Logger) (orchestrator.Fleet, error) {
		return fl, nil
	}
	if f == nil {
		f = &plan.Fleet{Provider: plan.ProviderTerraform}
	}
	got, err := h.provision(next)(context.Background(), "target", f, noRender, filepath.Join(t.TempDir(), runID), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestAWSReadyWaitPendingRunningOK(t *testing.T) {
	ec2 := &fakeEC2Query{run: "run-a", instances: map[string]string{"i-0aaa": "target", "i-0bbb": "target"}, statusOKAfter: 1}
	cw := &fakeCloudWatchClient{}
	obs := &messages{}
	h := testHooks(t, obs, ec2, cw)
	fl := provisionTarget(t, h, &fakeFleet{outputs: map[string]string{
		outputInstanceIDs: "i-0aaa,i-0bbb", outputLoadBalancer: "app/web/50dc6c495c0c9188",
	}}, "run-a", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := fl.Up(ctx); err != nil {
		t.Fatal(err)
	}
	// pending; running with status initializing; running and ok.
	if ec2.describes != 3 || ec2.statuses != 2 {
		t.Errorf("%d DescribeInstances, %d DescribeInstanceStatus; want 3 and 2", ec2.describes, ec2.statuses)
	}
	if ec2.tagFilters[0] != "run-a" {
		t.Errorf("instances looked up by tag %q, want the run id", ec2.tagFilters[0])
	}
	msgs := obs.joined()
	for _, want := range []string{"waiting up to 10m0s for 2 target instance(s)", "target instances: 0 of 2 running", "target instances ready after"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("messages lack %q:\n%s", want, msgs)
		}
	}
	gotCW, ids, lb := h.target()
	if gotCW != cw || strings.Join(ids, ",") != "i-0aaa,i-0bbb" || lb != "app/web/50dc6c495c0c9188" {
		t.Errorf("target after the wait: cw %v ids %v lb %q", gotCW, ids, lb)
	}
}

func TestAWSReadyTimeoutAndTags(t *testing.T) {
	ec2 := &fakeEC2Query{run: "run-b", instances: map[string]string{"i-0aaa": "target"}, statusOKAfter: 1 << 30}
	h := testHooks(t, &messages{}, ec2, &fakeCloudWatchClient{})
	h.timeout = 300 * time.Millisecond
	fl := provisionTarget(t, h, &fakeFleet{outputs: map[string]string{outputInstanceIDs: "i-0aaa"}}, "run-b", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := fl.Up(ctx)
	if err == nil || !strings.Contains(err.Error(), "aws_ready_timeout 300ms") || !strings.Contains(err.Error(), "instance status initializing") {
		t.Errorf("Up with instances never ready: %v", err)
	}
	if cw, _, _ := h.target(); cw != nil {
		t.Error("CloudWatch sampling set up for instances that never got ready")
	}

	// No instance_ids output, aws_region set: the run's instances tagged
	// target (not the generators) are waited for.
	ec2 = &fakeEC2Query{run: "run-c", instances: map[string]string{"i-0ccc": "target", "i-0ddd": "generator"}}
	h = testHooks(t, &messages{}, ec2, &fakeCloudWatchClient{})
	h.region = "eu-west-1"
	fl = provisionTarget(t, h, &fakeFleet{outputs: map[string]string{"endpoint": "http://10.0.0.1"}}, "run-c", nil)
	if _, err := fl.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ids, _ := h.target(); strings.Join(ids, ",") != "i-0ccc" {
		t.Errorf("tagged target instances %v, want i-0ccc", ids)
	}

	// aws_region set but nothing tagged with this run: not an EC2 target.
	obs := &messages{}
	h = testHooks(t, obs, &fakeEC2Query{run: "another-run", instances: map[string]string{"i-0eee": "target"}}, &fakeCloudWatchClient{})
	h.region = "eu-west-1"
	fl = provisionTarget(t, h, &fakeFleet{}, "run-d", nil)
	if _, err := fl.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if cw, _, _ := h.target(); cw != nil || !strings.Contains(obs.joined(), "no EC2 instance is tagged loadramp:run-id=run-d") {
		t.Errorf("untagged run: cw %v, messages %s", cw, obs.joined())
	}

	// A load balancer that is not an ALB is refused with the output's name.
	h = testHooks(t, &messages{}, nil, nil)
	fl = provisionTarget(t, h, &fakeFleet{outputs: map[string]string{outputLoadBalancer: "net/nlb/1"}}, "run-e", nil)
	if _, err := fl.Up(ctx); err == nil || !strings.Contains(err.Error(), "output load_balancer") {
		t.Errorf("network load balancer: %v", err)
	}
}

func TestAWSNotConfiguredKeepsLocalRuns(t *testing.T) {
	a := &app{io: IO{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}, v: viper.New(), getenv: emptyEnv, log: zerolog.Nop()}
	d := a.deps(orchestrator.NopObserver{}, "none", nil)
	s, ok := d.Sampler.(*awsSampler)
	if !ok {
		t.Fatalf("sampler %T", d.Sampler)
	}
	if _, ok := s.local.(*localSampler); !ok {
		t.Errorf("local side of the sampler is %T, want newSampler's *localSampler", s.local)
	}

	// A local fleet is provisioned as before, not wrapped.
	dir := t.TempDir()
	fl, err := d.Provision(context.Background(), "target", &plan.Fleet{Provider: plan.ProviderStatic, Outputs: map[string]string{"endpoint": "http://127.0.0.1:1"}},
		noRender, dir, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fl.(*fleetAdapter); !ok {
		t.Errorf("static target fleet provisioned as %T", fl)
	}

	// A Terraform target without instance_ids and no aws_region: no AWS call
	// (testHooks fails the test if clients are built), and the sampler is the
	// local one alone.
	cw := &fakeCloudWatchClient{}
	h := testHooks(t, &messages{}, nil, cw)
	tf := provisionTarget(t, h, &fakeFleet{outputs: map[string]string{"endpoint": "http://127.0.0.1:1"}}, "run-local", nil)
	if _, err := tf.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	local := &fakeLocalSampler{}
	stop, err := h.sampler(local).Start(context.Background(), orchestrator.SampleSpec{})
	if err != nil {
		t.Fatal(err)
	}
	m, findings := stop(orchestrator.StepFacts{})
	if local.started != 1 || len(m) != 2 || m["host.cpu"] != 0.5 || len(findings) != 1 || cw.calls() != 0 {
		t.Errorf("local-only step: started %d, metrics %v, findings %v, CloudWatch calls %d", local.started, m, findings, cw.calls())
	}

	// A malformed aws_ready_timeout is refused when a Terraform target is provisioned.
	a.v.Set(keyAWSReadyTimeout, "ten minutes")
	h = a.newAWSHooks(nil)
	_, err = h.provision(func(context.Context, string, *plan.Fleet, orchestrator.Renderer, string, zerolog.Logger) (orchestrator.Fleet, error) {
		return &fakeFleet{}, nil
	})(context.Background(), "target", &plan.Fleet{Provider: plan.ProviderTerraform}, noRender, dir, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), `aws_ready_timeout "ten minutes"`) {
		t.Errorf("bad aws_ready_timeout: %v", err)
	}
}

// stepClock is a settable clock for the sampler's window.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func TestAWSSamplerMergesCloudWatch(t *testing.T) {
	cw := &fakeCloudWatchClient{published: awsT0.Add(2 * time.Minute)}
	obs := &messages{}
	h := testHooks(t, obs, nil, cw)
	clock := &stepClock{t: awsT0.Add(20 * time.Second)}
	h.now = clock.now
	h.settle = time.Hour // ends when CloudWatch has the last minute
	h.cw, h.instances = cw, []string{"i-0aaa"}
	var sunk []any
	spec := orchestrator.SampleSpec{Warmup: 10 * time.Second, Sink: func(v any) { sunk = append(sunk, v) }}
	stop, err := h.sampler(&fakeLocalSampler{}).Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	clock.set(awsT0.Add(2*time.Minute + 10*time.Second)) // hold 12:00:30..12:02:10
	// CloudWatch publishes the last minute after the first query.
	go func() {
		deadline := time.Now().Add(20 * time.Second)
		for cw.calls() == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cw.mu.Lock()
		cw.published = awsT0.Add(time.Hour)
		cw.mu.Unlock()
	}()
	m, findings := stop(orchestrator.StepFacts{})
	if v := m[metrics.TargetCPU]; v < 0.4999 || v > 0.5001 { // (30+50+70)/3 %
		t.Errorf("target.cpu %v, want 0.5 over the three minutes", v)
	}
	if m["host.cpu"] != 0.5 || m[metrics.GeneratorCPU] != 0.25 || len(findings) != 1 || findings[0].Rule != "local-finding" {
		t.Errorf("local figures lost: %v %v", m, findings)
	}
	n := cw.calls()
	if n < 2 {
		t.Errorf("%d GetMetricData calls, want a second once the first lacked the last minute", n)
	}
	in := cw.inputs[n-1]
	if !sdkaws.ToTime(in.StartTime).Equal(awsT0) || !sdkaws.ToTime(in.EndTime).Equal(awsT0.Add(3*time.Minute)) {
		t.Errorf("window %s..%s, want the hold widened to 12:00..12:03", sdkaws.ToTime(in.StartTime), sdkaws.ToTime(in.EndTime))
	}
	if len(sunk) != 1 || !strings.Contains(fmt.Sprint(sunk[0]), "source:cloudwatch") {
		t.Errorf("samples %v", sunk)
	}

	// An aborted step (ctx done) takes what CloudWatch has at once, and says so.
	cw2 := &fakeCloudWatchClient{published: awsT0.Add(time.Minute)}
	h.cw = cw2
	ctx, cancel := context.WithCancel(context.Background())
	clock.set(awsT0.Add(10 * time.Second))
	stop, err = h.sampler(&fakeLocalSampler{}).Start(ctx, orchestrator.SampleSpec{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	clock.set(awsT0.Add(2*time.Minute + 10*time.Second))
	m, _ = stop(orchestrator.StepFacts{})
	if cw2.calls() != 1 || m[metrics.TargetCPU] != 0.3 || !strings.Contains(obs.joined(), "CloudWatch had not published all of 12:00..12:03") {
		t.Errorf("aborted step: %d calls, metrics %v, messages %s", cw2.calls(), m, obs.joined())
	}
}
