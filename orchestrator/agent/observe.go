package agent

import (
	"context"
	"sort"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// MaxWindow bounds one sampling window: a window still open this long after
// its hold is closed by the agent, whatever its keepalive.
const MaxWindow = 24 * time.Hour

// obsWindow is an open sampling window.
type obsWindow struct {
	id        string
	side      string
	keepalive time.Duration
	// expires is when the agent closes the window whatever the coordinator
	// does: its hold plus MaxGrace after it opened.
	expires time.Time
	window  Window
	devs    []string
	before  []hoststat.NetDevStats
}

func (w *obsWindow) discard() {
	if w.window != nil {
		w.window.Discard()
	}
}

// nopWindow stands in for the host sampler on an agent without an Observer:
// the window then reads network devices only.
type nopWindow struct{}

func (nopWindow) Stop(context.Context, map[string]int64) (*Observation, error) {
	return &Observation{}, nil
}
func (nopWindow) Discard() {}

// StartObservation implements the service: it opens a sampling window on
// this host and reads its network devices' counters.
func (s *Server) StartObservation(ctx context.Context, req *connect.Request[agentv1.StartObservationRequest]) (*connect.Response[agentv1.StartObservationResponse], error) {
	m := req.Msg
	if m.WindowId == "" {
		return nil, s.errorf(connect.CodeInvalidArgument, "window_id is empty")
	}
	switch m.Side {
	case "", hoststat.SideTarget, hoststat.SideGenerator:
	default:
		return nil, s.errorf(connect.CodeInvalidArgument, "window %s: side %q: want target or generator", m.WindowId, m.Side)
	}
	warmup, hold := m.Warmup.AsDuration(), m.Hold.AsDuration()
	if warmup < 0 || hold < 0 || warmup+hold > MaxWindow {
		return nil, s.errorf(connect.CodeInvalidArgument, "window %s: warmup %v and hold %v: want >= 0, together at most %v", m.WindowId, warmup, hold, MaxWindow)
	}
	s.mu.Lock()
	_, dup := s.windows[m.WindowId]
	s.mu.Unlock()
	if dup {
		return nil, s.errorf(connect.CodeAlreadyExists, "window %s is already open", m.WindowId)
	}
	w := &obsWindow{id: m.WindowId, side: m.Side, keepalive: durOr(m.Keepalive, DefaultKeepalive, MaxKeepalive), window: nopWindow{}}
	w.expires = time.Now().Add(MaxWindow)
	if hold > 0 {
		w.expires = time.Now().Add(warmup + hold + MaxGrace)
	}
	if s.cfg.NetDev != nil {
		w.devs = m.Devices
		if len(w.devs) == 0 {
			w.devs, _ = hoststat.NetDevices()
		}
		w.before = hoststat.ReadNetDevs(s.cfg.NetDev, w.devs)
	}
	if s.cfg.Observer != nil {
		spec := ObserveSpec{WindowID: m.WindowId, Side: m.Side, SharedMachine: m.SharedMachine, Warmup: warmup, Hold: hold}
		for _, p := range m.Processes {
			spec.Processes = append(spec.Processes, ProcessRef{Name: p.Name, Pid: int(p.Pid), LogPath: p.LogPath, Side: p.Side})
		}
		for _, l := range m.Logs {
			spec.Logs = append(spec.Logs, LogRef{Path: l.Path, Side: l.Side})
		}
		win, err := s.cfg.Observer.Start(ctx, spec)
		if err != nil {
			return nil, s.errorf(connect.CodeInternal, "window %s: %v", m.WindowId, err)
		}
		w.window = win
	}
	s.mu.Lock()
	s.windows[m.WindowId] = w
	s.mu.Unlock()
	return connect.NewResponse(&agentv1.StartObservationResponse{}), nil
}

// StopObservation implements the service: it closes the window and returns
// the host's metrics and findings over it, ena-allowance among them.
func (s *Server) StopObservation(ctx context.Context, req *connect.Request[agentv1.StopObservationRequest]) (*connect.Response[agentv1.StopObservationResponse], error) {
	s.mu.Lock()
	w, ok := s.windows[req.Msg.WindowId]
	delete(s.windows, req.Msg.WindowId)
	s.mu.Unlock()
	if !ok {
		return nil, s.errorf(connect.CodeNotFound, "no open window %s (never opened, or closed after the coordinator fell silent)", req.Msg.WindowId)
	}
	obs, err := w.window.Stop(ctx, req.Msg.GeneratorErrorClasses)
	if err != nil {
		return nil, s.errorf(connect.CodeInternal, "window %s: %v", w.id, err)
	}
	if obs == nil {
		obs = &Observation{}
	}
	out := &agentv1.HostObservation{Host: s.cfg.Name, Side: w.side, Samples: int32(obs.Summary.Samples),
		Metrics: obs.Metrics, Deltas: obs.Summary.Deltas, Peaks: obs.Summary.Peaks, Mins: obs.Summary.Mins,
		Limits: obs.Summary.Limits, LogMatches: logMatchesToWire(obs.Logs), Unavailable: obs.Unavailable}
	if !obs.Summary.Start.IsZero() {
		out.Start, out.End = timestamppb.New(obs.Summary.Start), timestamppb.New(obs.Summary.End)
	}
	findings := obs.Findings
	if s.cfg.NetDev != nil {
		nd := hoststat.NetDevWindow(w.before, hoststat.ReadNetDevs(s.cfg.NetDev, w.devs))
		out.Netdev = netDevToWire(nd)
		findings = append(findings, diagnose.ENAAllowance(s.cfg.Name, w.side, nd, nil)...)
	}
	for i := range findings {
		if findings[i].Host == "" || findings[i].Host == "local" {
			findings[i].Host = s.cfg.Name
		}
	}
	out.Findings = FindingsToWire(findings)
	return connect.NewResponse(&agentv1.StopObservationResponse{Observation: out}), nil
}

// AuditLimits implements the service: the host's limits funnel.
func (s *Server) AuditLimits(ctx context.Context, req *connect.Request[agentv1.AuditLimitsRequest]) (*connect.Response[agentv1.AuditLimitsResponse], error) {
	var procs []hoststat.Proc
	for _, p := range req.Msg.Processes {
		if p.Pid < 0 || (p.Pid == 0 && p.Name == "") {
			return nil, s.errorf(connect.CodeInvalidArgument, "audit process %q (pid %d): give its command name, or its pid (> 0)", p.Name, p.Pid)
		}
		procs = append(procs, hoststat.Proc{Name: p.Name, Pid: int(p.Pid)})
	}
	a, err := s.cfg.Auditor.Audit(ctx, procs, req.Msg.NginxConf)
	if err != nil {
		return nil, s.errorf(connect.CodeFailedPrecondition, "audit: %v", err)
	}
	out := &agentv1.AuditLimitsResponse{Host: s.cfg.Name, Somaxconn: a.Somaxconn, TcpMaxSynBacklog: a.TCPMaxSynBacklog,
		ConntrackMax: a.ConntrackMax, FileMax: a.FileMax, PortRange: a.PortRange, TcpTwReuse: a.TCPTWReuse,
		Warnings: a.Warnings}
	if n := a.Nginx; n != nil {
		out.Nginx = &agentv1.NginxConf{Path: n.Path, WorkerProcesses: int32(n.WorkerProcesses),
			WorkerProcessesAuto: n.WorkerProcessesAuto, WorkerConnections: int32(n.WorkerConnections),
			WorkerRlimitNofile: n.WorkerRlimitNofile, Proxies: n.Proxies}
		for _, b := range n.Backlogs {
			out.Nginx.Backlogs = append(out.Nginx.Backlogs, int32(b))
		}
	}
	for _, p := range a.Procs {
		out.Procs = append(out.Procs, &agentv1.ProcLimit{Name: p.Name, Pid: int32(p.Pid), Nofile: p.NoFile, OpenFds: int32(p.OpenFDs), Error: p.Err})
	}
	return connect.NewResponse(out), nil
}

// NetDevCounters implements the service: network devices' driver statistics.
func (s *Server) NetDevCounters(ctx context.Context, req *connect.Request[agentv1.NetDevCountersRequest]) (*connect.Response[agentv1.NetDevCountersResponse], error) {
	if s.cfg.NetDev == nil {
		return nil, s.errorf(connect.CodeUnimplemented, "this agent reads no network device statistics")
	}
	devs := req.Msg.Devices
	if len(devs) == 0 {
		var err error
		if devs, err = hoststat.NetDevices(); err != nil {
			return nil, s.errorf(connect.CodeInternal, "%v", err)
		}
	}
	sort.Strings(devs)
	out := &agentv1.NetDevCountersResponse{}
	for _, d := range hoststat.ReadNetDevs(s.cfg.NetDev, devs) {
		out.Devices = append(out.Devices, &agentv1.NetDevCounters{Device: d.Device, Driver: d.Driver, Counters: d.Counters, Error: d.Err})
	}
	return connect.NewResponse(out), nil
}
