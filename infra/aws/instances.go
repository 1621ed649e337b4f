package aws

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/loadramp/loadramp/orchestrator/agents"
	"github.com/rs/zerolog"
)

// Tags every loadramp AWS module puts on what it creates.
const (
	TagRunID = "loadramp:run-id"
	TagRole  = "loadramp:role"
)

// DefaultReadyPoll is how often WaitInstancesReady asks EC2.
const DefaultReadyPoll = 10 * time.Second

// EC2API is the part of the EC2 client loadramp calls (declared here so the
// code around it can be tested against a loopback server).
type EC2API interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeInstanceStatus(ctx context.Context, in *ec2.DescribeInstanceStatusInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
}

// ClientConfig says which AWS account and region to talk to: the config keys
// aws_profile and aws_region. Endpoint overrides the service endpoint (tests,
// or an AWS-compatible API).
type ClientConfig struct {
	Profile  string
	Region   string
	Endpoint string
}

// LoadConfig loads the SDK configuration (shared config files, environment)
// with the profile and region of c.
func LoadConfig(ctx context.Context, c ClientConfig) (sdkaws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return sdkaws.Config{}, fmt.Errorf("aws: loading configuration (profile %q, region %q): %w", c.Profile, c.Region, err)
	}
	if cfg.Region == "" {
		return sdkaws.Config{}, fmt.Errorf("aws: no region: set aws_region (LOADRAMP_AWS_REGION) or AWS_REGION")
	}
	return cfg, nil
}

// NewEC2 returns an EC2 client for cfg, at c.Endpoint when set.
func NewEC2(cfg sdkaws.Config, c ClientConfig) *ec2.Client {
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = sdkaws.String(c.Endpoint)
		}
	})
}

// Instance is an EC2 instance loadramp tagged.
type Instance struct {
	ID       string
	State    string // pending, running, stopping, stopped, shutting-down
	RunID    string
	Role     string
	Type     string
	Launched time.Time
}

// TaggedInstances lists the instances tagged TagRunID (runID, or any run
// when runID is ""), except terminated ones, sorted by run then id.
func TaggedInstances(ctx context.Context, api EC2API, runID string) ([]Instance, error) {
	filters := []ec2types.Filter{
		{Name: sdkaws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped", "shutting-down"}},
	}
	if runID != "" {
		filters = append(filters, ec2types.Filter{Name: sdkaws.String("tag:" + TagRunID), Values: []string{runID}})
	} else {
		filters = append(filters, ec2types.Filter{Name: sdkaws.String("tag-key"), Values: []string{TagRunID}})
	}
	var out []Instance
	p := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("aws: DescribeInstances (tag %s): %w", TagRunID, err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				i := Instance{ID: sdkaws.ToString(in.InstanceId), Type: string(in.InstanceType), Launched: sdkaws.ToTime(in.LaunchTime)}
				if in.State != nil {
					i.State = string(in.State.Name)
				}
				for _, t := range in.Tags {
					switch sdkaws.ToString(t.Key) {
					case TagRunID:
						i.RunID = sdkaws.ToString(t.Value)
					case TagRole:
						i.Role = sdkaws.ToString(t.Value)
					}
				}
				out = append(out, i)
			}
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].RunID != out[b].RunID {
			return out[a].RunID < out[b].RunID
		}
		return out[a].ID < out[b].ID
	})
	return out, nil
}

// ReadyState is one poll of WaitInstancesReady.
type ReadyState struct {
	Total, Ready int
	// NotReady says why each instance not ready yet is not: "pending",
	// "instance status initializing", "system status impaired"...
	NotReady map[string]string
}

// String lists the instances not ready with why, by id.
func (st ReadyState) String() string { return agents.JoinReasons(st.NotReady) }

// WaitInstancesReady waits until at least want instances tagged runID run
// and pass both status checks (DescribeInstanceStatus: system and instance
// status "ok"). want <= 0 waits for every tagged instance, at least one. It
// returns the ready instance ids; ctx bounds the wait. progress, if set, is
// called after every poll that finds too few ready, with the count wanted.
func WaitInstancesReady(ctx context.Context, api EC2API, runID string, want int, poll time.Duration, log zerolog.Logger, progress func(st ReadyState, want int)) ([]string, error) {
	if poll <= 0 {
		poll = DefaultReadyPoll
	}
	var last ReadyState
	need := want
	notReady := func() error {
		return fmt.Errorf("aws: instances of run %s not ready (%d of %d ready, %d wanted; %s): %w",
			runID, last.Ready, last.Total, need, last, ctx.Err())
	}
	for {
		ids, st, err := readyOnce(ctx, api, runID)
		if err != nil {
			if ctx.Err() != nil && last.NotReady != nil {
				return nil, notReady() // the deadline fell during a call
			}
			return nil, err
		}
		last = st
		need = want
		if need <= 0 {
			need = max(st.Total, 1)
		}
		if len(ids) >= need {
			log.Info().Str("run_id", runID).Int("ready", len(ids)).Msg("instances running and passing status checks")
			return ids, nil
		}
		log.Info().Str("run_id", runID).Int("ready", st.Ready).Int("total", st.Total).Int("want", need).Msg("waiting for instances")
		if progress != nil {
			progress(st, need)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, notReady()
		case <-t.C:
		}
	}
}

func readyOnce(ctx context.Context, api EC2API, runID string) ([]string, ReadyState, error) {
	insts, err := TaggedInstances(ctx, api, runID)
	if err != nil {
		return nil, ReadyState{}, err
	}
	st := ReadyState{Total: len(insts), NotReady: map[string]string{}}
	var running []string
	for _, i := range insts {
		if i.State == "running" {
			running = append(running, i.ID)
		} else {
			st.NotReady[i.ID] = i.State
		}
	}
	if len(running) == 0 {
		return nil, st, nil
	}
	// DescribeInstanceStatus filters by instance id (it has no tag filter).
	var ready []string
	p := ec2.NewDescribeInstanceStatusPaginator(api, &ec2.DescribeInstanceStatusInput{InstanceIds: running})
	seen := map[string]bool{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, st, fmt.Errorf("aws: DescribeInstanceStatus: %w", err)
		}
		for _, s := range page.InstanceStatuses {
			id := sdkaws.ToString(s.InstanceId)
			seen[id] = true
			sys, inst := summary(s.SystemStatus), summary(s.InstanceStatus)
			switch {
			case sys == "ok" && inst == "ok":
				ready = append(ready, id)
			case inst != "ok":
				st.NotReady[id] = "instance status " + inst
			default:
				st.NotReady[id] = "system status " + sys
			}
		}
	}
	for _, id := range running {
		if !seen[id] {
			st.NotReady[id] = "no status yet"
		}
	}
	slices.Sort(ready)
	st.Ready = len(ready)
	return ready, st, nil
}

func summary(s *ec2types.InstanceStatusSummary) string {
	if s == nil || s.Status == "" {
		return "unknown"
	}
	return string(s.Status)
}

// Leaked returns the instances whose run is not running any more: runs maps
// run ids to their status in the run directories ("running", "bottleneck",
// ...); an instance of a run with no directory here counts as leaked too,
// with ok false in the second result so the caller can say so.
func Leaked(insts []Instance, runs map[string]string) (leaked []Instance, known []bool) {
	for _, i := range insts {
		st, ok := runs[i.RunID]
		if ok && st == "running" {
			continue
		}
		leaked = append(leaked, i)
		known = append(known, ok)
	}
	return leaked, known
}
