package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// stepRun is one step on this agent, from PrepareStep to FinishStep.
type stepRun struct {
	id               string
	params           map[string]float64
	first            map[string]int
	warmup, hold     time.Duration
	keepalive, grace time.Duration
	engine           LocalEngine

	mu      sync.Mutex
	state   agentv1.StepState
	cancel  context.CancelCauseFunc
	done    chan struct{}
	seconds []*agentv1.Second
	result  *Result
	reason  string // why the step ended early
	startAt time.Time
	// bound is when FinishStep gives up waiting (the step's end plus grace,
	// plus a little for the engine to return).
	bound time.Time
}

func (st *stepRun) active() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch st.state {
	case agentv1.StepState_STEP_STATE_PREPARED, agentv1.StepState_STEP_STATE_WAITING, agentv1.StepState_STEP_STATE_RUNNING:
		return true
	}
	return false
}

func (st *stepRun) stateName() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch st.state {
	case agentv1.StepState_STEP_STATE_PREPARED:
		return "prepared"
	case agentv1.StepState_STEP_STATE_WAITING:
		return "waiting"
	case agentv1.StepState_STEP_STATE_RUNNING:
		return "running"
	case agentv1.StepState_STEP_STATE_ABANDONED:
		return "abandoned"
	}
	return "done"
}

// overdue reports a step still running past its bound: its engine ignores
// its context.
func (st *stepRun) overdue() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return (st.state == agentv1.StepState_STEP_STATE_WAITING || st.state == agentv1.StepState_STEP_STATE_RUNNING) &&
		!st.bound.IsZero() && time.Now().After(st.bound)
}

// stop ends the step's load with reason; false if it had already ended.
func (st *stepRun) stop(reason string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch st.state {
	case agentv1.StepState_STEP_STATE_DONE, agentv1.StepState_STEP_STATE_ABANDONED:
		return false
	case agentv1.StepState_STEP_STATE_PREPARED:
		st.state = agentv1.StepState_STEP_STATE_DONE
		st.reason = reason
		close(st.done)
		return true
	}
	if st.reason == "" {
		st.reason = reason
	}
	st.cancel(errors.New(reason))
	return true
}

// abandon stops the step because its coordinator is gone.
func (st *stepRun) abandon(reason string) bool {
	if !st.stop(reason) {
		return false
	}
	st.mu.Lock()
	st.state = agentv1.StepState_STEP_STATE_ABANDONED
	st.mu.Unlock()
	return true
}

func (st *stepRun) wait(d time.Duration) bool {
	select {
	case <-st.done:
		return true
	case <-time.After(d):
		return false
	}
}

func durOr(d interface{ AsDuration() time.Duration }, def, maxd time.Duration) time.Duration {
	v := d.AsDuration()
	if v <= 0 {
		v = def
	}
	return min(v, maxd)
}

// PrepareStep implements the service: it readies the engine for the step's
// workload (reusing the last one for the same workload) and records the
// step's share.
func (s *Server) PrepareStep(ctx context.Context, req *connect.Request[agentv1.PrepareStepRequest]) (*connect.Response[agentv1.PrepareStepResponse], error) {
	m := req.Msg
	if s.cfg.Engines == nil {
		return nil, s.errorf(connect.CodeUnimplemented, "no generator role: this agent runs no engine")
	}
	if m.StepId == "" {
		return nil, s.errorf(connect.CodeInvalidArgument, "step_id is empty")
	}
	if m.Workload == nil || m.Workload.Kind == nil {
		return nil, s.errorf(connect.CodeInvalidArgument, "step %s: workload is empty (want http or pubsub)", m.StepId)
	}
	warmup, hold := m.Warmup.AsDuration(), m.Hold.AsDuration()
	if warmup < 0 || hold <= 0 || warmup+hold > MaxStepLength {
		return nil, s.errorf(connect.CodeInvalidArgument, "step %s: warmup %v and hold %v: want warmup >= 0, hold > 0, together at most %v", m.StepId, warmup, hold, MaxStepLength)
	}
	for k, v := range m.Params {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return nil, s.errorf(connect.CodeInvalidArgument, "step %s: parameter %s = %v: must be a finite number >= 0", m.StepId, k, v)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.step != nil && s.step.active() {
		if s.step.id == m.StepId {
			return connect.NewResponse(&agentv1.PrepareStepResponse{}), nil
		}
		return nil, s.errorf(connect.CodeFailedPrecondition, "step %s is still %s: stop it before preparing step %s", s.step.id, s.step.stateName(), m.StepId)
	}
	if s.engine == nil || !proto.Equal(s.engineW, m.Workload) {
		if s.engine != nil {
			_ = s.engine.Close()
			s.engine = nil
		}
		e, err := s.cfg.Engines(m.Workload)
		if err != nil {
			return nil, s.errorf(connect.CodeInvalidArgument, "step %s: %v", m.StepId, err)
		}
		s.engine, s.engineW = e, proto.Clone(m.Workload).(*agentv1.Workload)
	}
	first := make(map[string]int, len(m.First))
	for k, v := range m.First {
		if v < 0 || v > 1<<31 {
			return nil, s.errorf(connect.CodeInvalidArgument, "step %s: first %s = %d: must be from 0 to 2^31", m.StepId, k, v)
		}
		first[k] = int(v)
	}
	s.step = &stepRun{
		id: m.StepId, params: m.Params, first: first, warmup: warmup, hold: hold,
		keepalive: durOr(m.Keepalive, DefaultKeepalive, MaxKeepalive),
		grace:     durOr(m.Grace, DefaultGrace, MaxGrace),
		engine:    s.engine, state: agentv1.StepState_STEP_STATE_PREPARED,
		done: make(chan struct{}),
	}
	s.cfg.Log.Info().Str("step", m.StepId).Interface("params", m.Params).Msg("agent: step prepared")
	return connect.NewResponse(&agentv1.PrepareStepResponse{}), nil
}

func (s *Server) stepByID(id string) (*stepRun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.step == nil || s.step.id != id {
		return nil, s.errorf(connect.CodeNotFound, "no step %s (prepare it first)", id)
	}
	return s.step, nil
}

// StartStep implements the service: it schedules the prepared step at the
// given instant of the agent's clock. The step's load is bounded by the
// agent: it is cancelled at warmup+hold+grace after the start.
func (s *Server) StartStep(ctx context.Context, req *connect.Request[agentv1.StartStepRequest]) (*connect.Response[agentv1.StartStepResponse], error) {
	st, err := s.stepByID(req.Msg.StepId)
	if err != nil {
		return nil, err
	}
	at := time.Unix(0, req.Msg.StartUnixNano)
	lead := at.Sub(s.cfg.Now())
	if lead > MaxStartLead {
		return nil, s.errorf(connect.CodeInvalidArgument, "step %s: start %v ahead: at most %v (is the clock offset right?)", st.id, lead.Round(time.Millisecond), MaxStartLead)
	}
	st.mu.Lock()
	if st.state != agentv1.StepState_STEP_STATE_PREPARED {
		state := st.state
		st.mu.Unlock()
		if state == agentv1.StepState_STEP_STATE_WAITING || state == agentv1.StepState_STEP_STATE_RUNNING {
			return connect.NewResponse(&agentv1.StartStepResponse{}), nil // a retried call
		}
		return nil, s.errorf(connect.CodeFailedPrecondition, "step %s has ended (%s): prepare it again", st.id, st.reason)
	}
	wait := max(lead, 0)
	total := wait + st.warmup + st.hold + st.grace
	runCtx, cancel := context.WithCancelCause(context.Background())
	runCtx, cancelT := context.WithTimeoutCause(runCtx, total,
		fmt.Errorf("the step ran past warmup %v + hold %v + grace %v: the agent stopped it", st.warmup, st.hold, st.grace))
	st.cancel = cancel
	st.state = agentv1.StepState_STEP_STATE_WAITING
	st.startAt = at
	st.bound = time.Now().Add(total + 5*time.Second)
	st.mu.Unlock()
	go s.run(runCtx, func() { cancelT(); cancel(nil) }, st, wait)
	s.cfg.Log.Info().Str("step", st.id).Dur("lead", lead).Msg("agent: step scheduled")
	return connect.NewResponse(&agentv1.StartStepResponse{Lead: durationpb.New(lead)}), nil
}

// run waits for the start instant, runs the engine and keeps its result.
func (s *Server) run(ctx context.Context, release func(), st *stepRun, wait time.Duration) {
	defer release()
	defer close(st.done)
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			st.finish(&Result{Err: context.Cause(ctx).Error()}, nil)
			return
		case <-t.C:
		}
	}
	st.mu.Lock()
	st.state = agentv1.StepState_STEP_STATE_RUNNING
	st.mu.Unlock()
	probe := newHealthProbe(s.cfg.ProcRoot)
	holdTimer := time.AfterFunc(st.warmup, probe.holdStarts)
	res, err := st.engine.Run(ctx, EngineStep{
		Params: st.params, First: st.first, Warmup: st.warmup, Hold: st.hold,
		OnSecond: func(sec Second) { st.addSecond(sec) },
	})
	holdTimer.Stop()
	if res == nil {
		res = &Result{}
	}
	probe.fill(&res.Health)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		cause := err
		if c := context.Cause(ctx); c != nil && ctx.Err() != nil {
			cause = c
		}
		res.Err = cause.Error()
		s.cfg.Log.Warn().Str("step", st.id).Err(cause).Msg("agent: step ended early")
	}
	st.finish(res, err)
}

func (st *stepRun) addSecond(sec Second) {
	p := &agentv1.Second{T: int32(sec.T), Requests: sec.Requests, Errors: sec.Errors, Offered: sec.Offered,
		P50Seconds: sec.P50, P99Seconds: sec.P99}
	if sec.Latency != nil {
		p.LatencyHdr, _ = EncodeHist(sec.Latency)
	}
	st.mu.Lock()
	st.seconds = append(st.seconds, p)
	st.mu.Unlock()
}

func (st *stepRun) finish(res *Result, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.result = res
	if res.Err != "" && st.reason == "" {
		st.reason = res.Err
	}
	if st.reason != "" && res.Err == "" {
		res.Err = st.reason
	}
	if st.state != agentv1.StepState_STEP_STATE_ABANDONED {
		st.state = agentv1.StepState_STEP_STATE_DONE
	}
}

// PollStep implements the service: the seconds from a second on, and the
// step's state. It is also the coordinator's keepalive during a step.
func (s *Server) PollStep(ctx context.Context, req *connect.Request[agentv1.PollStepRequest]) (*connect.Response[agentv1.PollStepResponse], error) {
	st, err := s.stepByID(req.Msg.StepId)
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	r := &agentv1.PollStepResponse{State: st.state, Error: st.reason}
	for _, sec := range st.seconds {
		if sec.T >= req.Msg.FromSecond {
			r.Seconds = append(r.Seconds, sec)
		}
	}
	return connect.NewResponse(r), nil
}

// FinishStep implements the service: it waits for the step to end, at most
// until the step's own bound, and returns the agent's measurement.
func (s *Server) FinishStep(ctx context.Context, req *connect.Request[agentv1.FinishStepRequest]) (*connect.Response[agentv1.FinishStepResponse], error) {
	st, err := s.stepByID(req.Msg.StepId)
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	state, bound := st.state, st.bound
	st.mu.Unlock()
	if state == agentv1.StepState_STEP_STATE_PREPARED {
		return nil, s.errorf(connect.CodeFailedPrecondition, "step %s was prepared but never started", st.id)
	}
	t := time.NewTimer(time.Until(bound))
	defer t.Stop()
	select {
	case <-st.done:
	case <-ctx.Done():
		return nil, connect.NewError(connect.CodeCanceled, ctx.Err())
	case <-t.C:
		st.abandon("the engine did not return by the step's bound")
		return nil, s.errorf(connect.CodeDeadlineExceeded, "step %s: the engine did not return within warmup+hold+grace: load stopped", st.id)
	}
	st.mu.Lock()
	res, seconds := st.result, st.seconds
	st.mu.Unlock()
	out, err := encodeResult(res, seconds)
	if err != nil {
		return nil, s.errorf(connect.CodeInternal, "step %s: %v", st.id, err)
	}
	return connect.NewResponse(&agentv1.FinishStepResponse{Result: out}), nil
}

// StopStep implements the service: it stops the step's load now.
func (s *Server) StopStep(ctx context.Context, req *connect.Request[agentv1.StopStepRequest]) (*connect.Response[agentv1.StopStepResponse], error) {
	st, err := s.stepByID(req.Msg.StepId)
	if err != nil {
		return nil, err
	}
	reason := req.Msg.Reason
	if reason == "" {
		reason = "stopped by the coordinator"
	}
	if st.stop(reason) {
		s.cfg.Log.Info().Str("step", st.id).Str("reason", reason).Msg("agent: step stopped")
	}
	return connect.NewResponse(&agentv1.StopStepResponse{}), nil
}

// healthProbe measures the agent process's starvation over a step's hold (the
// engines measure their own CPU share, lag and GC pauses): waiting for a CPU while
// the CPU share stays low, which only the kernel's scheduler statistics show.
type healthProbe struct {
	probe hoststat.StarveProbe
	mu    sync.Mutex
	start hoststat.Starvation
}

func newHealthProbe(root string) *healthProbe {
	p := &healthProbe{probe: hoststat.StarveProbe{Root: root}}
	p.holdStarts()
	return p
}

func (p *healthProbe) holdStarts() {
	s := p.probe.Read()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start = s
}

func (p *healthProbe) fill(h *Health) {
	end := p.probe.Read()
	p.mu.Lock()
	defer p.mu.Unlock()
	procs := runtime.GOMAXPROCS(0)
	h.GOMAXPROCS = procs
	h.Starvation = -1 // not measured, unless the kernel shows it
	if v, ok := hoststat.StarvedRatio(p.start, end, procs); ok {
		h.Starvation = v
	}
}
