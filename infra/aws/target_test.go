package aws

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// notes records a Target's messages.
type notes struct {
	mu  sync.Mutex
	all []string
}

func (n *notes) add(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.all = append(n.all, fmt.Sprintf(format, args...))
}

func (n *notes) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.all, "\n")
}

// testTarget is a Target on fakes: clients fail the test when ec2 is nil.
func testTarget(t *testing.T, n *notes, ec2 EC2API, cw CloudWatchAPI) *Target {
	t.Helper()
	cfg := TargetConfig{ReadyPoll: 10 * time.Millisecond, CloudWatchPoll: 10 * time.Millisecond, Notify: n.add}
	cfg.Clients = func(context.Context) (TargetClients, error) {
		if ec2 == nil {
			t.Error("AWS clients built")
			return TargetClients{}, fmt.Errorf("no AWS in this test")
		}
		return TargetClients{EC2: ec2, CloudWatch: cw}, nil
	}
	return NewTarget(cfg)
}

func TestTargetReadyWaitPendingRunningOK(t *testing.T) {
	f, ec2 := serveFakeEC2(t, &fakeEC2{pending: 1, okAfter: 1, instances: []fakeInstance{
		{"i-0aaa", "running", "run-a", "target"}, {"i-0bbb", "running", "run-a", "target"}}})
	cw := newFakeCloudWatch(t, &fakeCloudWatch{series: targetSeries, pageSize: 100})
	n := &notes{}
	tg := testTarget(t, n, ec2, cw)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := tg.Ready(ctx, "run-a", map[string]string{OutputInstanceIDs: "i-0aaa,i-0bbb", OutputLoadBalancer: "app/web/50dc6c495c0c9188"}, "")
	if err != nil {
		t.Fatal(err)
	}
	// pending; running with status initializing; running and ok.
	if f.calls["DescribeInstances"] != 3 || f.calls["DescribeInstanceStatus"] != 2 {
		t.Errorf("%d DescribeInstances, %d DescribeInstanceStatus; want 3 and 2", f.calls["DescribeInstances"], f.calls["DescribeInstanceStatus"])
	}
	if f.runs[0] != "run-a" {
		t.Errorf("instances looked up by tag %q, want the run id", f.runs[0])
	}
	for _, want := range []string{"waiting up to 10m0s for 2 target instance(s)", "target instances: 0 of 2 running", "target instances ready after"} {
		if !strings.Contains(n.String(), want) {
			t.Errorf("messages lack %q:\n%s", want, n)
		}
	}
	if !tg.Watched() || strings.Join(tg.instances, ",") != "i-0aaa,i-0bbb" || tg.lb != "app/web/50dc6c495c0c9188" {
		t.Errorf("target after the wait: watched %v ids %v lb %q", tg.Watched(), tg.instances, tg.lb)
	}
}

func TestTargetReadyTimeoutAndTags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, ec2 := serveFakeEC2(t, &fakeEC2{okAfter: 1 << 30, instances: []fakeInstance{{"i-0aaa", "running", "run-b", "target"}}})
	tg := testTarget(t, &notes{}, ec2, nil)
	tg.cfg.ReadyTimeout = 300 * time.Millisecond
	err := tg.Ready(ctx, "run-b", map[string]string{OutputInstanceIDs: "i-0aaa"}, "")
	if err == nil || !strings.Contains(err.Error(), "aws_ready_timeout 300ms") || !strings.Contains(err.Error(), "instance status initializing") {
		t.Errorf("Ready with instances never ready: %v", err)
	}
	if tg.Watched() {
		t.Error("CloudWatch sampling set up for instances that never got ready")
	}

	// No instance_ids output, aws_region set: the run's instances tagged
	// target (not the generators) are waited for.
	_, ec2 = serveFakeEC2(t, &fakeEC2{instances: []fakeInstance{{"i-0ccc", "running", "run-c", "target"}, {"i-0ddd", "running", "run-c", "generator"}}})
	tg = testTarget(t, &notes{}, ec2, nil)
	tg.cfg.Region = "eu-west-1"
	if err := tg.Ready(ctx, "run-c", map[string]string{"endpoint": "http://10.0.0.1"}, ""); err != nil {
		t.Fatal(err)
	}
	if strings.Join(tg.instances, ",") != "i-0ccc" {
		t.Errorf("tagged target instances %v, want i-0ccc", tg.instances)
	}

	// aws_region set but nothing tagged with this run: not an EC2 target.
	n := &notes{}
	_, ec2 = serveFakeEC2(t, &fakeEC2{instances: []fakeInstance{{"i-0eee", "running", "another-run", "target"}}})
	tg = testTarget(t, n, ec2, nil)
	tg.cfg.Region = "eu-west-1"
	if err := tg.Ready(ctx, "run-d", nil, ""); err != nil {
		t.Fatal(err)
	}
	if tg.Watched() || !strings.Contains(n.String(), "no EC2 instance is tagged loadramp:run-id=run-d") {
		t.Errorf("untagged run: watched %v, messages %s", tg.Watched(), n)
	}

	// Neither instance_ids nor aws_region: no AWS call at all (testTarget
	// fails the test if clients are built).
	tg = testTarget(t, &notes{}, nil, nil)
	if err := tg.Ready(ctx, "run-local", map[string]string{"endpoint": "http://127.0.0.1:1"}, ""); err != nil || tg.Watched() {
		t.Errorf("local target: %v, watched %v", err, tg.Watched())
	}
	if m := tg.Window(ctx, time.Now().Add(-time.Minute), nil); m != nil {
		t.Errorf("an unwatched target measured %v", m)
	}

	// A load balancer that is neither an ALB nor an NLB is refused with the
	// output's name.
	tg = testTarget(t, &notes{}, nil, nil)
	if err := tg.Ready(ctx, "run-e", map[string]string{OutputLoadBalancer: "gwy/g/1"}, ""); err == nil || !strings.Contains(err.Error(), "output load_balancer") {
		t.Errorf("gateway load balancer: %v", err)
	}
}

// stepClock is a settable clock.
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

func TestTargetWindowWaitsForTheLastMinute(t *testing.T) {
	f := &fakeCloudWatch{series: targetSeries, published: t0.Add(2 * time.Minute), pageSize: 100}
	cw := newFakeCloudWatch(t, f)
	n := &notes{}
	tg := testTarget(t, n, nil, cw)
	clock := &stepClock{t: t0.Add(2*time.Minute + 10*time.Second)} // hold 12:00:30..12:02:10
	tg.cfg.Now = clock.now
	tg.cfg.Settle = time.Hour // ends when CloudWatch has the last minute
	tg.cw, tg.instances = cw, []string{"i-0aaa"}
	// CloudWatch publishes the last minute after the first query.
	go func() {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			f.mu.Lock()
			if len(f.requests) > 0 {
				f.published = t0.Add(time.Hour)
				f.mu.Unlock()
				return
			}
			f.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var sunk []any
	m := tg.Window(context.Background(), t0.Add(30*time.Second), func(v any) { sunk = append(sunk, v) })
	if v := m[metrics.TargetCPU]; v < 0.3999 || v > 0.4001 { // (20+40+60)/3 %
		t.Errorf("target.cpu %v, want 0.4 over the three minutes", v)
	}
	f.mu.Lock()
	reqs := len(f.requests)
	last := f.requests[reqs-1]
	f.mu.Unlock()
	if reqs < 2 {
		t.Errorf("%d GetMetricData calls, want a second once the first lacked the last minute", reqs)
	}
	if !last.StartTime.Equal(t0) || !last.EndTime.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("window %s..%s, want the hold widened to 12:00..12:03", last.StartTime, last.EndTime)
	}
	if len(sunk) != 1 || !strings.Contains(fmt.Sprint(sunk[0]), "source:cloudwatch") {
		t.Errorf("samples %v", sunk)
	}

	// An aborted step (ctx done) takes what CloudWatch has at once, and says so.
	f2 := &fakeCloudWatch{series: targetSeries, published: t0.Add(time.Minute), pageSize: 100}
	tg.cw = newFakeCloudWatch(t, f2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m = tg.Window(ctx, t0.Add(10*time.Second), nil)
	if len(f2.requests) != 1 || m[metrics.TargetCPU] != 0.2 || !strings.Contains(n.String(), "CloudWatch had not published all of 12:00..12:03") {
		t.Errorf("aborted step: %d calls, metrics %v, messages %s", len(f2.requests), m, n)
	}
}
