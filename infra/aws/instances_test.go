package aws

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/rs/zerolog"
)

// fakeEC2 is a loopback server speaking the EC2 query API (form-encoded
// POST, XML responses as in the EC2 API reference) for DescribeInstances and
// DescribeInstanceStatus. It is a fake: it knows a fixed set of instances
// (instances, or fakeInstances), pending for the first pending
// DescribeInstances calls, and an instance's status checks turn "ok" after
// okAfter status calls.
type fakeEC2 struct {
	mu        sync.Mutex
	calls     map[string]int
	forms     []string
	instances []fakeInstance
	pending   int
	okAfter   int
	statuses  int
	runs      []string // the run id of each DescribeInstances tag filter
}

type fakeInstance struct{ id, state, run, role string }

var fakeInstances = []fakeInstance{
	{"i-0aaa", "running", "run-a", "target"},
	{"i-0bbb", "running", "run-a", "generator"},
	{"i-0ccc", "running", "run-old", "target"},
}

func (f *fakeEC2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	action := r.Form.Get("Action")
	f.calls[action]++
	f.forms = append(f.forms, r.Form.Encode())
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	switch action {
	case "DescribeInstances":
		// Filter.N.Name / Filter.N.Value.M: only the tag filters matter here.
		run := ""
		for k, v := range r.Form {
			if strings.HasSuffix(k, ".Name") && v[0] == "tag:"+TagRunID {
				run = r.Form.Get(strings.TrimSuffix(k, ".Name") + ".Value.1")
			}
		}
		f.runs = append(f.runs, run)
		instances := f.instances
		if instances == nil {
			instances = fakeInstances
		}
		var items strings.Builder
		for _, in := range instances {
			if run != "" && in.run != run {
				continue
			}
			state, code := in.state, 16
			if f.calls[action] <= f.pending {
				state, code = "pending", 0
			}
			fmt.Fprintf(&items, `<item><instanceId>%s</instanceId><instanceType>c6i.large</instanceType><launchTime>2026-11-27T06:00:00.000Z</launchTime>
<instanceState><code>%d</code><name>%s</name></instanceState>
<tagSet><item><key>%s</key><value>%s</value></item><item><key>%s</key><value>%s</value></item></tagSet></item>`,
				in.id, code, state, TagRunID, in.run, TagRole, in.role)
		}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-1</requestId>
<reservationSet><item><reservationId>r-1</reservationId><ownerId>123456789012</ownerId><instancesSet>%s</instancesSet></item></reservationSet>
</DescribeInstancesResponse>`, items.String())
	case "DescribeInstanceStatus":
		f.statuses++
		status := "initializing"
		if f.statuses > f.okAfter {
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
		fmt.Fprintf(w, `<Response><Errors><Error><Code>InvalidAction</Code><Message>%s is not faked</Message></Error></Errors><RequestID>x</RequestID></Response>`, action)
	}
}

func newFakeEC2(t *testing.T, okAfter int) (*fakeEC2, EC2API) {
	return serveFakeEC2(t, &fakeEC2{okAfter: okAfter})
}

func serveFakeEC2(t *testing.T, f *fakeEC2) (*fakeEC2, EC2API) {
	f.calls = map[string]int{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := sdkaws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
	return f, NewEC2(cfg, ClientConfig{Endpoint: srv.URL})
}

func TestTaggedInstancesAndLeaked(t *testing.T) {
	f, api := newFakeEC2(t, 0)
	ctx := context.Background()
	all, err := TaggedInstances(ctx, api, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].ID != "i-0aaa" || all[0].Role != "target" || all[0].RunID != "run-a" || all[0].State != "running" ||
		!all[0].Launched.Equal(time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)) {
		t.Fatalf("instances %+v", all)
	}
	if !strings.Contains(f.forms[0], "Filter.2.Name=tag-key") || !strings.Contains(f.forms[0], "Value.1=loadramp%3Arun-id") {
		t.Errorf("DescribeInstances form %s lacks the tag-key filter", f.forms[0])
	}
	// run-a is still running here; run-old finished; nothing knows run-x.
	leaked, known := Leaked(all, map[string]string{"run-a": "running", "run-old": "bottleneck"})
	if len(leaked) != 1 || leaked[0].ID != "i-0ccc" || !known[0] {
		t.Errorf("leaked %+v %v", leaked, known)
	}
	leaked, known = Leaked(all, map[string]string{})
	if len(leaked) != 3 || known[0] {
		t.Errorf("with no run directories: leaked %+v %v", leaked, known)
	}
}

func TestWaitInstancesReady(t *testing.T) {
	f, api := newFakeEC2(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ids, err := WaitInstancesReady(ctx, api, "run-a", 2, 10*time.Millisecond, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ids, ",") != "i-0aaa,i-0bbb" {
		t.Errorf("ready %v", ids)
	}
	if f.calls["DescribeInstanceStatus"] != 3 {
		t.Errorf("%d status calls, want 3 (two initializing, then ok)", f.calls["DescribeInstanceStatus"])
	}
	// More instances than the run has: the wait ends with ctx, saying why.
	f2, api2 := newFakeEC2(t, 1000)
	_ = f2
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	_, err = WaitInstancesReady(ctx2, api2, "run-a", 0, 20*time.Millisecond, zerolog.Nop(), nil)
	if err == nil || !strings.Contains(err.Error(), "instance status initializing") || !strings.Contains(err.Error(), "0 of 2 ready") {
		t.Errorf("wait on initializing instances: %v", err)
	}
}
