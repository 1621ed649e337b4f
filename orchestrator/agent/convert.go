package agent

import (
	"fmt"
	"maps"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// encodeResult puts a Result on the wire.
func encodeResult(r *Result, seconds []*agentv1.Second) (*agentv1.GeneratorResult, error) {
	if r == nil {
		r = &Result{}
	}
	out := &agentv1.GeneratorResult{
		Hold: durationpb.New(r.Hold), Offered: r.Offered,
		Requests: r.Requests, Sent: r.Sent, Completed: r.Completed,
		Errors: r.Errors, GeneratorErrors: r.GeneratorErrors, ErrorClasses: r.ErrorClasses,
		OutOfRange: r.OutOfRange, Released: r.Released, Blocked: r.Blocked, Reopened: r.Reopened,
		Open: int32(r.Open), Connections: int32(r.Connections), Metrics: r.Metrics,
		Health: &agentv1.AgentHealth{
			Cpu: r.Health.CPU, LagP99Seconds: r.Health.LagP99, BlockedRatio: r.Health.BlockedRatio,
			GcPauseP99Seconds: r.Health.GCPauseP99, GcPauseMaxSeconds: r.Health.GCPauseMax,
			Starvation: r.Health.Starvation, Gomaxprocs: int32(r.Health.GOMAXPROCS),
		},
		Series: seconds,
		Error:  r.Err,
	}
	if !r.HoldStart.IsZero() {
		out.HoldStart = timestamppb.New(r.HoldStart)
	}
	for _, q := range r.Mix {
		out.Mix = append(out.Mix, &agentv1.RequestResult{Name: q.Name, Weight: int32(q.Weight), ErrorClasses: q.ErrorClasses})
	}
	var err error
	for _, h := range []struct {
		dst *string
		h   *hdrhistogram.Histogram
	}{{&out.LatencyHdr, r.Latency}, {&out.ServiceHdr, r.Service}, {&out.LagHdr, r.Lag}} {
		if *h.dst, err = EncodeHist(h.h); err != nil {
			return nil, err
		}
	}
	if len(r.Histograms) > 0 {
		out.HistogramsHdr = make(map[string]string, len(r.Histograms))
		for k, h := range r.Histograms {
			if out.HistogramsHdr[k], err = EncodeHist(h); err != nil {
				return nil, fmt.Errorf("histogram %s: %w", k, err)
			}
		}
	}
	return out, nil
}

// DecodeResult reads an agent's measurement off the wire, checking every
// histogram's geometry so that merging them is exact.
func DecodeResult(g *agentv1.GeneratorResult) (*Result, error) {
	if g == nil {
		return nil, fmt.Errorf("result: empty")
	}
	r := &Result{
		Hold: g.Hold.AsDuration(), Offered: g.Offered,
		Requests: g.Requests, Sent: g.Sent, Completed: g.Completed,
		Errors: g.Errors, GeneratorErrors: g.GeneratorErrors, ErrorClasses: maps.Clone(g.ErrorClasses),
		OutOfRange: g.OutOfRange, Released: g.Released, Blocked: g.Blocked, Reopened: g.Reopened,
		Open: int(g.Open), Connections: int(g.Connections), Metrics: metrics.Metrics(maps.Clone(g.Metrics)),
		Err: g.Error,
	}
	if g.HoldStart != nil {
		r.HoldStart = g.HoldStart.AsTime()
	}
	for _, q := range g.Mix {
		r.Mix = append(r.Mix, result.Request{Name: q.GetName(), Weight: int(q.GetWeight()), ErrorClasses: maps.Clone(q.GetErrorClasses())})
	}
	if h := g.Health; h != nil {
		r.Health = Health{CPU: h.Cpu, LagP99: h.LagP99Seconds, BlockedRatio: h.BlockedRatio,
			GCPauseP99: h.GcPauseP99Seconds, GCPauseMax: h.GcPauseMaxSeconds,
			Starvation: h.Starvation, GOMAXPROCS: int(h.Gomaxprocs)}
	}
	var err error
	for _, h := range []struct {
		name string
		dst  **hdrhistogram.Histogram
		src  string
	}{{"latency", &r.Latency, g.LatencyHdr}, {"service", &r.Service, g.ServiceHdr}, {"lag", &r.Lag, g.LagHdr}} {
		if *h.dst, err = DecodeHist(h.src, HistDigits); err != nil {
			return nil, fmt.Errorf("result: %s %w", h.name, err)
		}
	}
	if len(g.HistogramsHdr) > 0 {
		r.Histograms = make(map[string]*hdrhistogram.Histogram, len(g.HistogramsHdr))
		for k, s := range g.HistogramsHdr {
			if r.Histograms[k], err = DecodeHist(s, HistDigits); err != nil {
				return nil, fmt.Errorf("result: histogram %s: %w", k, err)
			}
		}
	}
	for _, s := range g.Series {
		sec, err := DecodeSecond(s)
		if err != nil {
			return nil, err
		}
		r.Series = append(r.Series, sec)
	}
	return r, nil
}

// DecodeSecond reads one second of a series off the wire.
func DecodeSecond(s *agentv1.Second) (Second, error) {
	out := Second{Second: result.Second{T: int(s.T), Requests: s.Requests, Errors: s.Errors,
		Offered: s.Offered, P50: s.P50Seconds, P99: s.P99Seconds}}
	if s.T < 0 {
		return out, fmt.Errorf("second %d: t must be >= 0", s.T)
	}
	h, err := DecodeHist(s.LatencyHdr, SecondDigits)
	if err != nil {
		return out, fmt.Errorf("second %d: %w", s.T, err)
	}
	out.Latency = h
	return out, nil
}

// FindingsToWire and FindingsFromWire convert findings.
func FindingsToWire(fs []result.Finding) []*agentv1.Finding {
	out := make([]*agentv1.Finding, 0, len(fs))
	for _, f := range fs {
		out = append(out, &agentv1.Finding{Rule: f.Rule, Side: f.Side, Host: f.Host, Process: f.Process,
			Resource: f.Resource, Setting: f.Setting, Observed: f.Observed, Evidence: f.Evidence, Fix: f.Fix})
	}
	return out
}

// FindingsFromWire converts findings read off the wire.
func FindingsFromWire(fs []*agentv1.Finding) []result.Finding {
	out := make([]result.Finding, 0, len(fs))
	for _, f := range fs {
		out = append(out, result.Finding{Rule: f.Rule, Side: f.Side, Host: f.Host, Process: f.Process,
			Resource: f.Resource, Setting: f.Setting, Observed: f.Observed, Evidence: f.Evidence, Fix: f.Fix})
	}
	return out
}

func logMatchesToWire(ms []diagnose.LogMatch) []*agentv1.LogMatch {
	out := make([]*agentv1.LogMatch, 0, len(ms))
	for _, m := range ms {
		out = append(out, &agentv1.LogMatch{Rule: m.Rule, Source: m.Source, Process: m.Process, Side: m.Side,
			Lines: m.Lines, Count: int32(m.Count)})
	}
	return out
}

func netDevToWire(ds []hoststat.NetDevDelta) []*agentv1.NetDevDelta {
	out := make([]*agentv1.NetDevDelta, 0, len(ds))
	for _, d := range ds {
		out = append(out, &agentv1.NetDevDelta{Device: d.Device, Driver: d.Driver, Deltas: d.Deltas, Last: d.Last, Error: d.Err})
	}
	return out
}

// NetDevFromWire converts network device deltas read off the wire.
func NetDevFromWire(ds []*agentv1.NetDevDelta) []hoststat.NetDevDelta {
	out := make([]hoststat.NetDevDelta, 0, len(ds))
	for _, d := range ds {
		out = append(out, hoststat.NetDevDelta{Device: d.Device, Driver: d.Driver, Deltas: d.Deltas, Last: d.Last, Err: d.Error})
	}
	return out
}
