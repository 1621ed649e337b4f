package aws

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/fxamacker/cbor/v2"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// The GetMetricData wire shapes of the Smithy RPC v2 CBOR protocol, as in the
// CloudWatch API reference (member names are the CBOR map keys; timestamps
// are tag 1, epoch seconds).
type cwDimension struct {
	Name, Value string
}

type cwMetric struct {
	Namespace, MetricName string
	Dimensions            []cwDimension
}

type cwMetricStat struct {
	Metric *cwMetric
	Period int
	Stat   string
	Unit   string `cbor:",omitempty"`
}

type cwQuery struct {
	Id         string
	Label      string `cbor:",omitempty"`
	MetricStat *cwMetricStat
	Expression string `cbor:",omitempty"`
	ReturnData *bool
	Period     int    `cbor:",omitempty"`
	AccountId  string `cbor:",omitempty"`
}

type cwRequest struct {
	MetricDataQueries []cwQuery
	StartTime         time.Time
	EndTime           time.Time
	NextToken         string `cbor:",omitempty"`
	ScanBy            string `cbor:",omitempty"`
	MaxDatapoints     int    `cbor:",omitempty"`
	LabelOptions      any    `cbor:",omitempty"`
}

type cwResult struct {
	Id         string
	Label      string
	Timestamps []time.Time
	Values     []float64
	StatusCode string
}

type cwResponse struct {
	MetricDataResults []cwResult
	NextToken         string `cbor:",omitempty"`
}

type cwError struct {
	Type    string `cbor:"__type"`
	Message string `cbor:"message"`
}

// fakeCloudWatch is a loopback server speaking GetMetricData in the Smithy RPC
// v2 CBOR protocol the SDK uses (POST /service/GraniteServiceVersion20100801/
// operation/GetMetricData, application/cbor both ways). It is a fake: its
// datapoints come from series, only for periods starting before published
// (CloudWatch publishes late), and it pages every pageSize datapoints as the
// real API pages, a query's datapoints possibly split over pages.
type fakeCloudWatch struct {
	mu        sync.Mutex
	requests  []cwRequest
	auth      []string
	series    func(namespace, metric, dim, stat string, t time.Time) (float64, bool)
	published time.Time
	pageSize  int
	fail      string // an error type to answer with
}

var queryID = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)

func (f *fakeCloudWatch) writeCBOR(w http.ResponseWriter, status int, v any) {
	em, err := cbor.EncOptions{Time: cbor.TimeUnixDynamic, TimeTag: cbor.EncTagRequired}.EncMode()
	if err != nil {
		panic(err)
	}
	b, err := em.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (f *fakeCloudWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bad := func(typ, format string, args ...any) {
		f.writeCBOR(w, 400, cwError{Type: typ, Message: fmt.Sprintf(format, args...)})
	}
	if r.Method != http.MethodPost || r.URL.Path != "/service/GraniteServiceVersion20100801/operation/GetMetricData" {
		bad("UnknownOperationException", "%s %s is not faked", r.Method, r.URL.Path)
		return
	}
	if r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" || r.Header.Get("Content-Type") != "application/cbor" {
		bad("SerializationException", "Smithy-Protocol %q, Content-Type %q", r.Header.Get("Smithy-Protocol"), r.Header.Get("Content-Type"))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		bad("SerializationException", "%v", err)
		return
	}
	dm, err := cbor.DecOptions{ExtraReturnErrors: cbor.ExtraDecErrorUnknownField}.DecMode()
	if err != nil {
		panic(err)
	}
	var req cwRequest
	if err := dm.NewDecoder(bytes.NewReader(body)).Decode(&req); err != nil {
		bad("SerializationException", "request body: %v", err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	if f.fail != "" {
		bad(f.fail, "the fake was told to fail")
		return
	}
	if len(req.MetricDataQueries) == 0 || len(req.MetricDataQueries) > 500 || !req.EndTime.After(req.StartTime) {
		bad("InvalidParameterValueException", "%d queries, %s to %s", len(req.MetricDataQueries), req.StartTime, req.EndTime)
		return
	}
	type dp struct {
		q int
		t time.Time
		v float64
	}
	var all []dp
	for i, q := range req.MetricDataQueries {
		if !queryID.MatchString(q.Id) || q.MetricStat == nil || q.MetricStat.Metric == nil || len(q.MetricStat.Metric.Dimensions) != 1 || q.MetricStat.Period < 1 {
			bad("InvalidParameterValueException", "query %d (%q) is not one the fake knows", i, q.Id)
			return
		}
		ms := q.MetricStat
		period := time.Duration(ms.Period) * time.Second
		var ts []time.Time
		for t := req.StartTime.Truncate(period); t.Before(req.EndTime); t = t.Add(period) {
			if !t.Before(req.StartTime) && t.Before(f.published) {
				ts = append(ts, t)
			}
		}
		if req.ScanBy != "TimestampAscending" { // the API's default is descending
			slices.Reverse(ts)
		}
		for _, t := range ts {
			if v, ok := f.series(ms.Metric.Namespace, ms.Metric.MetricName, ms.Metric.Dimensions[0].Value, ms.Stat, t); ok {
				all = append(all, dp{i, t, v})
			}
		}
	}
	from := 0
	if req.NextToken != "" {
		if from, err = strconv.Atoi(req.NextToken); err != nil {
			bad("InvalidNextToken", "%q", req.NextToken)
			return
		}
	}
	to := min(from+f.pageSize, len(all))
	resp := cwResponse{}
	if to < len(all) {
		resp.NextToken = strconv.Itoa(to)
	}
	resp.MetricDataResults = make([]cwResult, 0, len(req.MetricDataQueries))
	for _, q := range req.MetricDataQueries {
		status := "Complete"
		if resp.NextToken != "" {
			status = "PartialData"
		}
		resp.MetricDataResults = append(resp.MetricDataResults, cwResult{Id: q.Id, Label: q.Label, StatusCode: status,
			Timestamps: []time.Time{}, Values: []float64{}})
	}
	for _, p := range all[from:to] {
		res := &resp.MetricDataResults[p.q]
		res.Timestamps = append(res.Timestamps, p.t)
		res.Values = append(res.Values, p.v)
	}
	f.writeCBOR(w, 200, resp)
}

func newFakeCloudWatch(t *testing.T, f *fakeCloudWatch) CloudWatchAPI {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("fake CloudWatch at %s, not on 127.0.0.1", srv.URL)
	}
	cfg := sdkaws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
	return NewCloudWatch(cfg, ClientConfig{Endpoint: srv.URL})
}

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// targetSeries is the fake's data: three minutes of two instances and an ALB.
func targetSeries(namespace, metric, dim, stat string, t time.Time) (float64, bool) {
	k := int(t.Sub(t0) / time.Minute)
	if k < 0 || k > 2 {
		return 0, false
	}
	pick := func(v ...float64) (float64, bool) { return v[k], true }
	switch namespace + " " + metric + " " + dim + " " + stat {
	case "AWS/EC2 CPUUtilization i-0aaa Average":
		return pick(20, 40, 60)
	case "AWS/EC2 CPUUtilization i-0bbb Average":
		return pick(50, 50, 80)
	case "AWS/EC2 NetworkIn i-0aaa Sum", "AWS/EC2 NetworkIn i-0bbb Sum":
		return 1000, true
	case "AWS/EC2 NetworkOut i-0aaa Sum", "AWS/EC2 NetworkOut i-0bbb Sum":
		return 2000, true
	case "AWS/ApplicationELB TargetResponseTime app/web/50dc6c495c0c9188 p99":
		return pick(0.1, 0.3, 0.2)
	case "AWS/ApplicationELB TargetResponseTime app/web/50dc6c495c0c9188 Average":
		return pick(0.05, 0.07, 0.06)
	case "AWS/ApplicationELB RejectedConnectionCount app/web/50dc6c495c0c9188 Sum":
		if k == 1 {
			return 3, true
		}
	case "AWS/NetworkELB ActiveFlowCount net/bus/7a3e0d1c2b4f5a69 Maximum":
		return pick(900, 4100, 2500)
	case "AWS/NetworkELB NewFlowCount net/bus/7a3e0d1c2b4f5a69 Sum":
		return pick(600, 700, 800)
	case "AWS/NetworkELB TCP_Target_Reset_Count net/bus/7a3e0d1c2b4f5a69 Sum":
		if k == 2 {
			return 42, true
		}
	}
	return 0, false // HTTPCode_Target_5XX_Count: the ALB publishes no zero counts
}

const (
	testALB = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188"
	testNLB = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/bus/7a3e0d1c2b4f5a69"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestCloudWatchTargetMetricsRoundTrip(t *testing.T) {
	f := &fakeCloudWatch{series: targetSeries, published: t0.Add(time.Hour), pageSize: 7}
	api := newFakeCloudWatch(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A hold from 12:00:20 to 12:02:40 touches three minutes.
	s, err := TargetMetrics(ctx, api, TargetQuery{
		InstanceIDs: []string{"i-0aaa", "i-0bbb"}, LoadBalancer: testALB,
		Start: t0.Add(20 * time.Second), End: t0.Add(2*time.Minute + 40*time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := metrics.Metrics{
		metrics.TargetCPU:          0.6, // i-0bbb's mean, (50+50+80)/3 %
		MetricTargetCPUPeak:        0.8,
		MetricTargetNetInBytes:     6000, // 3 minutes x 2 instances x 1000
		MetricTargetNetOutBytes:    12000,
		MetricTargetLBResponseP99:  0.3,
		MetricTargetLBResponseAvg:  0.06,
		MetricTargetLB5xxCount:     0,
		MetricTargetLBRejectedConn: 3,
	}
	for k, v := range want {
		if got, ok := s.Metrics[k]; !ok || !near(got, v) {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if len(s.Metrics) != len(want) {
		t.Errorf("metrics %v, want exactly %v", s.Metrics, want)
	}
	if !s.Complete || len(s.Missing) != 0 || !s.Start.Equal(t0) || !s.End.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("sample complete %v missing %v window %s..%s", s.Complete, s.Missing, s.Start, s.End)
	}

	// 3x3 EC2 + 3 ALB datapoints, 7 a page: the answer came in pages.
	if len(f.requests) < 3 {
		t.Fatalf("%d requests, want the datapoints paged over at least 3", len(f.requests))
	}
	for i, req := range f.requests {
		if !req.StartTime.Equal(t0) || !req.EndTime.Equal(t0.Add(3*time.Minute)) {
			t.Errorf("request %d window %s..%s, want the hold widened to whole minutes", i, req.StartTime, req.EndTime)
		}
		if i > 0 && req.NextToken == "" {
			t.Errorf("request %d has no NextToken", i)
		}
		if !strings.Contains(f.auth[i], "Credential=AKIDTEST/20") || !strings.Contains(f.auth[i], "/eu-west-1/monitoring/aws4_request") {
			t.Errorf("request %d Authorization %q: not signed for CloudWatch (monitoring) in eu-west-1", i, f.auth[i])
		}
	}
	got := map[string]string{}
	for _, q := range f.requests[0].MetricDataQueries {
		ms := q.MetricStat
		d := ms.Metric.Dimensions[0]
		got[q.Id] = fmt.Sprintf("%s %s %s=%s %s %d %v", ms.Metric.Namespace, ms.Metric.MetricName, d.Name, d.Value, ms.Stat, ms.Period, q.ReturnData != nil && *q.ReturnData)
	}
	wantQ := map[string]string{
		"cpu_0":       "AWS/EC2 CPUUtilization InstanceId=i-0aaa Average 60 true",
		"netin_0":     "AWS/EC2 NetworkIn InstanceId=i-0aaa Sum 60 true",
		"netout_0":    "AWS/EC2 NetworkOut InstanceId=i-0aaa Sum 60 true",
		"cpu_1":       "AWS/EC2 CPUUtilization InstanceId=i-0bbb Average 60 true",
		"netin_1":     "AWS/EC2 NetworkIn InstanceId=i-0bbb Sum 60 true",
		"netout_1":    "AWS/EC2 NetworkOut InstanceId=i-0bbb Sum 60 true",
		"lb_rt_p99":   "AWS/ApplicationELB TargetResponseTime LoadBalancer=app/web/50dc6c495c0c9188 p99 60 true",
		"lb_rt_avg":   "AWS/ApplicationELB TargetResponseTime LoadBalancer=app/web/50dc6c495c0c9188 Average 60 true",
		"lb_5xx":      "AWS/ApplicationELB HTTPCode_Target_5XX_Count LoadBalancer=app/web/50dc6c495c0c9188 Sum 60 true",
		"lb_rejected": "AWS/ApplicationELB RejectedConnectionCount LoadBalancer=app/web/50dc6c495c0c9188 Sum 60 true",
	}
	if len(got) != len(wantQ) {
		t.Errorf("queries %v", got)
	}
	for id, w := range wantQ {
		if got[id] != w {
			t.Errorf("query %s = %q, want %q", id, got[id], w)
		}
	}
}

// A Network Load Balancer (the AWS target module's) is measured in
// AWS/NetworkELB: flows and resets, the zero counts it does not publish
// read as zero.
func TestCloudWatchNetworkLoadBalancer(t *testing.T) {
	f := &fakeCloudWatch{series: targetSeries, published: t0.Add(time.Hour), pageSize: 100}
	api := newFakeCloudWatch(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := TargetMetrics(ctx, api, TargetQuery{InstanceIDs: []string{"i-0aaa"}, LoadBalancer: testNLB,
		Start: t0.Add(20 * time.Second), End: t0.Add(2*time.Minute + 40*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	want := metrics.Metrics{
		metrics.TargetCPU: 0.4, MetricTargetCPUPeak: 0.6, MetricTargetNetInBytes: 3000, MetricTargetNetOutBytes: 6000,
		MetricTargetLBFlowsPeak: 4100, MetricTargetLBFlowsNew: 2100, MetricTargetLBTargetResets: 42, MetricTargetLBResets: 0,
	}
	for k, v := range want {
		if got, ok := s.Metrics[k]; !ok || !near(got, v) {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if len(s.Metrics) != len(want) || !s.Complete {
		t.Errorf("metrics %v (complete %v), want exactly %v", s.Metrics, s.Complete, want)
	}
	for _, q := range f.requests[0].MetricDataQueries {
		if d := q.MetricStat.Metric.Dimensions[0]; strings.HasPrefix(q.Id, "lb_") &&
			(q.MetricStat.Metric.Namespace != "AWS/NetworkELB" || d.Name != "LoadBalancer" || d.Value != "net/bus/7a3e0d1c2b4f5a69") {
			t.Errorf("query %s: %s %s=%s", q.Id, q.MetricStat.Metric.Namespace, d.Name, d.Value)
		}
	}
	for k := range s.Metrics {
		if !strings.HasPrefix(k, "target.lb.") {
			continue
		}
		if metrics.IsRatio(k) || (strings.HasSuffix(k, ".count") != metrics.IsCount(k)) {
			t.Errorf("%s: its name says the wrong kind", k)
		}
	}
}

func TestCloudWatchLateAndMissingData(t *testing.T) {
	// CloudWatch has published only up to 12:02: the hold's last minute is
	// missing, and i-0ccc has no datapoints at all.
	f := &fakeCloudWatch{series: targetSeries, published: t0.Add(2 * time.Minute), pageSize: 100}
	api := newFakeCloudWatch(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	q := TargetQuery{InstanceIDs: []string{"i-0aaa"}, Start: t0, End: t0.Add(3 * time.Minute)}
	s, err := TargetMetrics(ctx, api, q)
	if err != nil {
		t.Fatal(err)
	}
	if s.Complete {
		t.Error("complete without the window's last minute")
	}
	if v := s.Metrics[metrics.TargetCPU]; !near(v, 0.3) { // (20+40)/2 %
		t.Errorf("target.cpu %v from the published minutes, want 0.3", v)
	}
	if _, ok := s.Metrics[MetricTargetLB5xxCount]; ok {
		t.Error("load balancer metrics without a load balancer")
	}

	q.InstanceIDs = []string{"i-0aaa", "i-0ccc"}
	f.published = t0.Add(time.Hour)
	s, err = TargetMetrics(ctx, api, q)
	if err != nil {
		t.Fatal(err)
	}
	if s.Complete || len(s.Missing) != 3 || !strings.Contains(strings.Join(s.Missing, ","), "cpu i-0ccc") {
		t.Errorf("complete %v missing %v: want i-0ccc's three metrics missing", s.Complete, s.Missing)
	}
	if v := s.Metrics[metrics.TargetCPU]; !near(v, 0.4) {
		t.Errorf("target.cpu %v, want i-0aaa's 0.4", v)
	}
}

func TestCloudWatchErrors(t *testing.T) {
	f := &fakeCloudWatch{series: targetSeries, published: t0.Add(time.Hour), pageSize: 100, fail: "InvalidParameterValueException"}
	api := newFakeCloudWatch(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := TargetMetrics(ctx, api, TargetQuery{InstanceIDs: []string{"i-0aaa"}, Start: t0, End: t0.Add(time.Minute)})
	if err == nil || !strings.Contains(err.Error(), "InvalidParameterValue") || !strings.Contains(err.Error(), "GetMetricData") {
		t.Errorf("error answer: %v", err)
	}
	for _, q := range []TargetQuery{
		{Start: t0, End: t0.Add(time.Minute)},
		{InstanceIDs: []string{"i-0aaa"}, Start: t0, End: t0},
		{InstanceIDs: []string{"i-0aaa"}, Start: t0, End: t0.Add(time.Minute), Period: 1500 * time.Millisecond},
		{LoadBalancer: "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/gwy/x/1", Start: t0, End: t0.Add(time.Minute)},
	} {
		if _, err := TargetMetrics(ctx, api, q); err == nil {
			t.Errorf("query %+v: no error", q)
		}
	}
	if n := len(f.requests); n != 1 {
		t.Errorf("%d requests: invalid queries must fail before asking CloudWatch", n)
	}
}

func TestLoadBalancerDimension(t *testing.T) {
	for in, want := range map[string]string{
		testALB:             "app/web/50dc6c495c0c9188",
		"app/web/1234":      "app/web/1234",
		" app/web/1234\n":   "app/web/1234",
		"net/nlb/1234":      "net/nlb/1234",
		testNLB:             "net/bus/7a3e0d1c2b4f5a69",
		"gwy/g/1234":        "",
		"arn:aws:s3:::b":    "",
		"app/web":           "",
		"my-load-balancer":  "",
		"app//50dc6c495c0c": "",
	} {
		got, err := LoadBalancerDimension(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("LoadBalancerDimension(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
