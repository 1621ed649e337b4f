package aws

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// CloudWatchPeriod is the period of loadramp's GetMetricData queries. 60 s is
// the finest period EC2 publishes (with detailed monitoring; basic monitoring
// publishes every 5 minutes) and the period of the ALB metrics; 1 s periods
// exist only for custom high-resolution metrics. A step's hold is therefore
// measured by whole minutes: the window is widened to the minutes it touches.
const CloudWatchPeriod = 60 * time.Second

// maxQueries is GetMetricData's limit of queries per request.
const maxQueries = 500

// Metric names of the target's CloudWatch measurements (besides
// metrics.TargetCPU). Bytes and counts are totals over the queried window.
const (
	MetricTargetCPUPeak        = "target.cpu.peak"
	MetricTargetNetInBytes     = "target.net.in.bytes"
	MetricTargetNetOutBytes    = "target.net.out.bytes"
	MetricTargetLBResponseP99  = "target.lb.response_time.p99"
	MetricTargetLBResponseAvg  = "target.lb.response_time.avg"
	MetricTargetLB5xxCount     = "target.lb.5xx.count"
	MetricTargetLBRejectedConn = "target.lb.rejected.count"
	// A Network Load Balancer's: the most flows open at once in a period,
	// flows opened, and resets sent by the targets and by the load balancer
	// itself, summed over the window.
	MetricTargetLBFlowsPeak    = "target.lb.flows.peak"
	MetricTargetLBFlowsNew     = "target.lb.flows.new.count"
	MetricTargetLBTargetResets = "target.lb.target_reset.count"
	MetricTargetLBResets       = "target.lb.reset.count"
)

// CloudWatchAPI is the part of the CloudWatch client loadramp calls
// (declared here so the code around it can be tested).
type CloudWatchAPI interface {
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
}

// NewCloudWatch returns a CloudWatch client for cfg, at c.Endpoint when set.
func NewCloudWatch(cfg sdkaws.Config, c ClientConfig) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = sdkaws.String(c.Endpoint)
		}
	})
}

// TargetQuery says which target to measure over which window.
type TargetQuery struct {
	// InstanceIDs are the target's EC2 instances (AWS/EC2, dimension InstanceId).
	InstanceIDs []string
	// LoadBalancer is the target's Application or Network Load Balancer: its
	// ARN or its CloudWatch dimension value ("app/NAME/ID", "net/NAME/ID");
	// "" measures no load balancer.
	LoadBalancer string
	// Start and End are the step's hold window.
	Start, End time.Time
	// Period is the query period; 0 means CloudWatchPeriod.
	Period time.Duration
}

// TargetSample is what CloudWatch had for a window.
type TargetSample struct {
	Metrics metrics.Metrics
	// Start and End are the queried window: the hold widened to whole periods.
	Start, End time.Time
	// Complete is true when every instance's CPUUtilization has a datapoint
	// for the window's last period: CloudWatch publishes a minute or more
	// late, so a query right after the hold often lacks it. (The load
	// balancer's metrics are not waited for: without requests or errors in
	// a minute it publishes none.)
	Complete bool
	// Missing names the queries with no datapoint in the window, and why
	// when CloudWatch said (for example "cpu i-0abc: Forbidden").
	Missing []string
}

// LoadBalancer is a load balancer as CloudWatch knows it.
type LoadBalancer struct {
	// Dimension is the LoadBalancer dimension's value: app/NAME/ID or
	// net/NAME/ID.
	Dimension string
	// Network is true for a Network Load Balancer (AWS/NetworkELB), false
	// for an Application Load Balancer (AWS/ApplicationELB).
	Network bool
}

// ParseLoadBalancer reads a load balancer given by ARN
// (arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app/NAME/ID, or
// .../net/NAME/ID) or already as its dimension value.
func ParseLoadBalancer(lb string) (LoadBalancer, error) {
	lb = strings.TrimSpace(lb)
	if strings.HasPrefix(lb, "arn:") {
		_, rest, ok := strings.Cut(lb, ":loadbalancer/")
		if !ok {
			return LoadBalancer{}, fmt.Errorf("load balancer %q: an ARN must hold :loadbalancer/app/NAME/ID or :loadbalancer/net/NAME/ID", lb)
		}
		lb = rest
	}
	parts := strings.Split(lb, "/")
	if len(parts) != 3 || (parts[0] != "app" && parts[0] != "net") || parts[1] == "" || parts[2] == "" {
		return LoadBalancer{}, fmt.Errorf("load balancer %q: want an Application or Network Load Balancer's ARN, app/NAME/ID or net/NAME/ID", lb)
	}
	return LoadBalancer{Dimension: lb, Network: parts[0] == "net"}, nil
}

// LoadBalancerDimension returns the LoadBalancer dimension value of a load
// balancer given by ARN or dimension value (ParseLoadBalancer).
func LoadBalancerDimension(lb string) (string, error) {
	l, err := ParseLoadBalancer(lb)
	return l.Dimension, err
}

// query is one GetMetricData query and how its datapoints fold into metrics.
type query struct {
	id, label          string
	namespace, metric  string
	dimName, dimValue  string
	stat               string
	instance           string // the instance of an EC2 query
	needsLast, countOK bool   // completeness marker; no data means zero
}

func (q TargetQuery) queries(lb LoadBalancer) []query {
	var qs []query
	for i, id := range q.InstanceIDs {
		for _, m := range []struct{ key, name, stat string }{
			{"cpu", "CPUUtilization", "Average"},
			{"netin", "NetworkIn", "Sum"},
			{"netout", "NetworkOut", "Sum"},
		} {
			qs = append(qs, query{
				id: fmt.Sprintf("%s_%d", m.key, i), label: m.key + " " + id,
				namespace: "AWS/EC2", metric: m.name, dimName: "InstanceId", dimValue: id, stat: m.stat,
				instance: id, needsLast: m.key == "cpu",
			})
		}
	}
	if lb.Network || lb.Dimension != "" {
		namespace, ms := "AWS/ApplicationELB", []struct{ id, name, stat string }{
			{"lb_rt_p99", "TargetResponseTime", "p99"},
			{"lb_rt_avg", "TargetResponseTime", "Average"},
			{"lb_5xx", "HTTPCode_Target_5XX_Count", "Sum"},
			{"lb_rejected", "RejectedConnectionCount", "Sum"},
		}
		if lb.Network {
			namespace, ms = "AWS/NetworkELB", []struct{ id, name, stat string }{
				{"lb_flows", "ActiveFlowCount", "Maximum"},
				{"lb_flows_new", "NewFlowCount", "Sum"},
				{"lb_target_reset", "TCP_Target_Reset_Count", "Sum"},
				{"lb_reset", "TCP_ELB_Reset_Count", "Sum"},
			}
		}
		for _, m := range ms {
			qs = append(qs, query{
				id: m.id, label: m.id, namespace: namespace, metric: m.name,
				dimName: "LoadBalancer", dimValue: lb.Dimension, stat: m.stat,
				// A load balancer publishes its counts only when they are
				// not zero.
				countOK: m.stat == "Sum",
			})
		}
	}
	return qs
}

// TargetMetrics asks CloudWatch (GetMetricData, every page) for the target's
// instances and load balancer over q's window and maps the datapoints to
// target.* metrics:
//
//   - target.cpu: CPUUtilization/100, the mean over the window of each
//     instance, the busiest instance; target.cpu.peak: the busiest period
//   - target.net.in.bytes, target.net.out.bytes: NetworkIn/NetworkOut summed
//     over the window and the instances
//   - target.lb.response_time.p99 (the worst period's p99) and .avg (the
//     mean of the periods' averages), in seconds
//   - target.lb.5xx.count, target.lb.rejected.count: HTTPCode_Target_5XX_Count
//     and RejectedConnectionCount summed (0 when CloudWatch has no datapoint,
//     as the ALB publishes none for a zero count)
//   - with a Network Load Balancer instead: target.lb.flows.peak (the most
//     ActiveFlowCount of a period), target.lb.flows.new.count
//     (NewFlowCount), target.lb.target_reset.count (TCP_Target_Reset_Count:
//     the targets refused or dropped connections) and target.lb.reset.count
//     (TCP_ELB_Reset_Count: the load balancer reset them), summed
//
// A metric without datapoints is left out and named in Missing.
func TargetMetrics(ctx context.Context, api CloudWatchAPI, q TargetQuery) (*TargetSample, error) {
	if len(q.InstanceIDs) == 0 && q.LoadBalancer == "" {
		return nil, fmt.Errorf("cloudwatch: nothing to measure: no instance ids and no load balancer")
	}
	if !q.End.After(q.Start) {
		return nil, fmt.Errorf("cloudwatch: window end %s is not after its start %s", q.End.Format(time.RFC3339), q.Start.Format(time.RFC3339))
	}
	period := q.Period
	if period <= 0 {
		period = CloudWatchPeriod
	}
	if period < time.Second || period%time.Second != 0 {
		return nil, fmt.Errorf("cloudwatch: period %s: want whole seconds", period)
	}
	var lb LoadBalancer
	if q.LoadBalancer != "" {
		var err error
		if lb, err = ParseLoadBalancer(q.LoadBalancer); err != nil {
			return nil, fmt.Errorf("cloudwatch: %w", err)
		}
	}
	// Timestamps of datapoints are the starts of their periods: widen the
	// window to whole periods so the hold's first and last seconds count.
	start := q.Start.UTC().Truncate(period)
	end := q.End.UTC().Truncate(period)
	if end.Before(q.End) {
		end = end.Add(period)
	}
	qs := q.queries(lb)
	points := map[string][]point{}
	messages := map[string]string{}
	for from := 0; from < len(qs); from += maxQueries {
		batch := qs[from:min(from+maxQueries, len(qs))]
		if err := getMetricData(ctx, api, batch, start, end, period, points, messages); err != nil {
			return nil, err
		}
	}
	s := &TargetSample{Metrics: metrics.Metrics{}, Start: start, End: end, Complete: true}
	last := end.Add(-period)
	var (
		cpuMean, cpuPeak float64 = -1, -1
		netIn, netOut    float64
		haveIn, haveOut  bool
	)
	for _, qu := range qs {
		ps := points[qu.id]
		if len(ps) == 0 {
			if qu.countOK {
				s.Metrics[lbMetric(qu.id)] = 0
				continue
			}
			miss := qu.label
			if m := messages[qu.id]; m != "" {
				miss += ": " + m
			}
			s.Missing = append(s.Missing, miss)
			if qu.needsLast {
				s.Complete = false
			}
			continue
		}
		if qu.needsLast && !slices.ContainsFunc(ps, func(p point) bool { return p.t.Equal(last) }) {
			s.Complete = false
		}
		switch {
		case strings.HasPrefix(qu.id, "cpu_"):
			mean, peak := meanMax(ps)
			cpuMean, cpuPeak = math.Max(cpuMean, mean), math.Max(cpuPeak, peak)
		case strings.HasPrefix(qu.id, "netin_"):
			netIn, haveIn = netIn+sum(ps), true
		case strings.HasPrefix(qu.id, "netout_"):
			netOut, haveOut = netOut+sum(ps), true
		case qu.id == "lb_rt_p99":
			_, s.Metrics[MetricTargetLBResponseP99] = meanMax(ps)
		case qu.id == "lb_rt_avg":
			s.Metrics[MetricTargetLBResponseAvg], _ = meanMax(ps)
		case qu.id == "lb_flows":
			_, s.Metrics[MetricTargetLBFlowsPeak] = meanMax(ps)
		default:
			s.Metrics[lbMetric(qu.id)] = sum(ps)
		}
	}
	if cpuMean >= 0 {
		s.Metrics[metrics.TargetCPU] = cpuMean / 100
		s.Metrics[MetricTargetCPUPeak] = cpuPeak / 100
	}
	if haveIn {
		s.Metrics[MetricTargetNetInBytes] = netIn
	}
	if haveOut {
		s.Metrics[MetricTargetNetOutBytes] = netOut
	}
	return s, nil
}

func lbMetric(id string) string {
	switch id {
	case "lb_5xx":
		return MetricTargetLB5xxCount
	case "lb_rejected":
		return MetricTargetLBRejectedConn
	case "lb_flows_new":
		return MetricTargetLBFlowsNew
	case "lb_target_reset":
		return MetricTargetLBTargetResets
	case "lb_reset":
		return MetricTargetLBResets
	}
	return ""
}

type point struct {
	t time.Time
	v float64
}

// getMetricData runs one batch of queries through every page, collecting the
// datapoints within [start, end) by query id.
func getMetricData(ctx context.Context, api CloudWatchAPI, batch []query, start, end time.Time, period time.Duration,
	points map[string][]point, messages map[string]string) error {
	in := &cloudwatch.GetMetricDataInput{
		StartTime: sdkaws.Time(start),
		EndTime:   sdkaws.Time(end),
		ScanBy:    cwtypes.ScanByTimestampAscending,
	}
	secs := int32(period / time.Second)
	for _, q := range batch {
		in.MetricDataQueries = append(in.MetricDataQueries, cwtypes.MetricDataQuery{
			Id:    sdkaws.String(q.id),
			Label: sdkaws.String(q.label),
			MetricStat: &cwtypes.MetricStat{
				Metric: &cwtypes.Metric{
					Namespace:  sdkaws.String(q.namespace),
					MetricName: sdkaws.String(q.metric),
					Dimensions: []cwtypes.Dimension{{Name: sdkaws.String(q.dimName), Value: sdkaws.String(q.dimValue)}},
				},
				Period: sdkaws.Int32(secs),
				Stat:   sdkaws.String(q.stat),
			},
			ReturnData: sdkaws.Bool(true),
		})
	}
	p := cloudwatch.NewGetMetricDataPaginator(api, in)
	for pages := 0; p.HasMorePages(); pages++ {
		if pages >= 100 {
			return fmt.Errorf("cloudwatch: GetMetricData: more than 100 pages for a step's window")
		}
		out, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("cloudwatch: GetMetricData (%s to %s, %d queries): %w",
				start.Format(time.RFC3339), end.Format(time.RFC3339), len(batch), err)
		}
		for _, r := range out.MetricDataResults {
			id := sdkaws.ToString(r.Id)
			if len(r.Timestamps) != len(r.Values) {
				return fmt.Errorf("cloudwatch: GetMetricData result %s: %d timestamps but %d values", id, len(r.Timestamps), len(r.Values))
			}
			for i, t := range r.Timestamps {
				if t.Before(start) || !t.Before(end) || math.IsNaN(r.Values[i]) {
					continue
				}
				points[id] = append(points[id], point{t: t.UTC(), v: r.Values[i]})
			}
			if r.StatusCode == cwtypes.StatusCodeForbidden || r.StatusCode == cwtypes.StatusCodeInternalError {
				msg := string(r.StatusCode)
				for _, m := range r.Messages {
					msg += " " + sdkaws.ToString(m.Code) + " " + sdkaws.ToString(m.Value)
				}
				messages[id] = strings.TrimSpace(msg)
			}
		}
	}
	return nil
}

func meanMax(ps []point) (mean, peak float64) {
	peak = math.Inf(-1)
	for _, p := range ps {
		mean += p.v
		peak = math.Max(peak, p.v)
	}
	return mean / float64(len(ps)), peak
}

func sum(ps []point) float64 {
	var s float64
	for _, p := range ps {
		s += p.v
	}
	return s
}
