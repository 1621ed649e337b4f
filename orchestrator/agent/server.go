package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/gen/loadramp/agent/v1/agentv1connect"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// MaxMessageBytes bounds one request or response message.
const MaxMessageBytes = 16 << 20

// Config configures a Server.
type Config struct {
	// Name is the agent's name in messages and findings (default: the host
	// name).
	Name string
	// Version is this loadramp's version; a coordinator of another version is
	// refused.
	Version string
	// Token is the bearer token every call must carry. It may be empty only
	// when the agent listens on loopback (Serve refuses otherwise).
	Token string
	// Engines makes the generator role's engines; nil: the agent has no
	// generator role.
	Engines EngineFactory
	// Observer samples the host over a window; nil: a window reads the
	// network devices' counters only.
	Observer Observer
	// Auditor audits the host's limits (default ProcAuditor{}).
	Auditor Auditor
	// NetDev reads network devices' statistics (nil: none are read).
	NetDev hoststat.NetDevReader
	// ProcRoot is where procfs is mounted (default /proc), for the agent's
	// own run delay.
	ProcRoot string
	Log      zerolog.Logger
	// Now is the agent's clock (default time.Now); tests shift it.
	Now func() time.Time
	// WatchEvery is the watchdog's period (default 250ms).
	WatchEvery time.Duration
}

// Server is an agent: the Connect service, its authentication, and the
// watchdog that stops work whose coordinator fell silent.
type Server struct {
	cfg     Config
	started time.Time
	token   [sha256.Size]byte

	inflight atomic.Int64
	// lastContact is the coordinator's last call, in nanoseconds since
	// epoch on the monotonic clock: a step of the wall clock (NTP, a
	// virtual machine's clock sync) neither stops a step early nor keeps it
	// running.
	epoch       time.Time
	lastContact atomic.Int64
	shutting    atomic.Bool

	mu      sync.Mutex
	step    *stepRun
	engine  LocalEngine
	engineW *agentv1.Workload
	windows map[string]*obsWindow
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Version == "" {
		return nil, errors.New("agent: version is empty")
	}
	if cfg.Name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "agent"
		}
		cfg.Name = h
	}
	if cfg.Auditor == nil {
		cfg.Auditor = ProcAuditor{Root: cfg.ProcRoot}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WatchEvery <= 0 {
		cfg.WatchEvery = 250 * time.Millisecond
	}
	s := &Server{cfg: cfg, started: cfg.Now(), epoch: time.Now(), windows: map[string]*obsWindow{}}
	s.token = sha256.Sum256([]byte(cfg.Token))
	s.touch()
	return s, nil
}

// Name is the agent's name.
func (s *Server) Name() string { return s.cfg.Name }

func (s *Server) touch() { s.lastContact.Store(int64(time.Since(s.epoch))) }

// silentFor is how long the coordinator has not called; 0 while a call is in
// flight.
func (s *Server) silentFor() time.Duration {
	if s.inflight.Load() > 0 {
		return 0
	}
	return time.Since(s.epoch) - time.Duration(s.lastContact.Load())
}

// Handler returns the agent's HTTP handler: the health endpoint, and the
// Connect service behind the bearer token.
func (s *Server) Handler() http.Handler {
	path, h := agentv1connect.NewAgentServiceHandler(s,
		connect.WithInterceptors(s.versionInterceptor()),
		connect.WithReadMaxBytes(MaxMessageBytes),
		connect.WithSendMaxBytes(MaxMessageBytes))
	mux := http.NewServeMux()
	mux.Handle(path, s.authenticate(h))
	mux.HandleFunc(HealthPath, s.health)
	mux.Handle("/", s.authenticate(http.NotFoundHandler()))
	return mux
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.shutting.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "shutting down")
		return
	}
	fmt.Fprintln(w, "ready")
}

// authenticate admits a call with the right bearer token, compared in
// constant time (of the tokens' hashes, so their lengths leak nothing
// either), and answers any other with 401 and a Connect error body naming
// the agent and the reason.
func (s *Server) authenticate(next http.Handler) http.Handler {
	open := s.cfg.Token == ""
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !open {
			reason := ""
			auth := r.Header.Get("Authorization")
			tok, ok := strings.CutPrefix(auth, "Bearer ")
			switch {
			case auth == "":
				reason = "no bearer token in the call (give the coordinator the agent's token)"
			case !ok || tok == "":
				reason = "the Authorization header is not \"Bearer TOKEN\""
			default:
				got := sha256.Sum256([]byte(tok))
				if subtle.ConstantTimeCompare(got[:], s.token[:]) != 1 {
					reason = "wrong bearer token"
				}
			}
			if reason != "" {
				s.cfg.Log.Warn().Str("remote", r.RemoteAddr).Str("reason", reason).Msg("agent: call refused")
				w.Header().Set("WWW-Authenticate", `Bearer realm="loadramp-agent"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_ = json.NewEncoder(w).Encode(map[string]string{
					"code":    connect.CodeUnauthenticated.String(),
					"message": fmt.Sprintf("agent %s: %s", s.cfg.Name, reason),
				})
				return
			}
		}
		s.inflight.Add(1)
		s.touch()
		defer func() {
			s.touch()
			s.inflight.Add(-1)
		}()
		next.ServeHTTP(w, r)
	})
}

// versionInterceptor refuses a caller of another loadramp version or
// protocol: both ends must run the same binary's version.
func (s *Server) versionInterceptor() connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			v, p := req.Header().Get(HeaderVersion), req.Header().Get(HeaderProtocol)
			if v == "" {
				return nil, connect.NewError(connect.CodeFailedPrecondition,
					fmt.Errorf("agent %s: the call has no %s header: only a loadramp coordinator may call an agent", s.cfg.Name, HeaderVersion))
			}
			if v != s.cfg.Version || p != strconv.Itoa(Protocol) {
				return nil, connect.NewError(connect.CodeFailedPrecondition,
					fmt.Errorf("agent %s runs loadramp %s (protocol %d) but the coordinator runs %s (protocol %s): run the same loadramp version on both",
						s.cfg.Name, s.cfg.Version, Protocol, v, p))
			}
			return next(ctx, req)
		}
	})
}

// CheckBind refuses an agent without a token on an address that is not
// loopback: anyone who can reach it could then drive load from it or read
// its host.
func CheckBind(addr net.Addr, token string) error {
	if token != "" {
		return nil
	}
	host := addr.String()
	if ta, ok := addr.(*net.TCPAddr); ok {
		if ta.IP.IsLoopback() {
			return nil
		}
		host = ta.IP.String()
		if ta.IP.IsUnspecified() {
			host = "every address (" + host + ")"
		}
	}
	return fmt.Errorf("agent: refusing to listen on %s without a token: it is not a loopback address; give a token (--token-file or LOADRAMP_AGENT_TOKEN) or listen on 127.0.0.1", host)
}

// Serve serves the agent on ln until ctx is done, then stops any step's
// load, closes the engine and shuts the server down. With tlsConf it serves
// TLS (HTTP/2 negotiated by ALPN), else HTTP/2 without TLS (h2c) and
// HTTP/1.1. It refuses a non-loopback ln without a token.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConf *tls.Config) error {
	if err := CheckBind(ln.Addr(), s.cfg.Token); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          stdlog.New(s.cfg.Log.With().Str("component", "http").Logger(), "", 0),
	}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	if tlsConf != nil {
		srv.Protocols.SetHTTP2(true)
		tc := tlsConf.Clone()
		tc.NextProtos = []string{"h2", "http/1.1"}
		ln = tls.NewListener(ln, tc)
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go s.watch(wctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.cfg.Log.Info().Str("name", s.cfg.Name).Str("listen", ln.Addr().String()).Bool("tls", tlsConf != nil).
		Str("version", s.cfg.Version).Msg("agent: serving")
	select {
	case err := <-errc:
		s.stopAll("the agent's server stopped")
		return fmt.Errorf("agent: serve: %w", err)
	case <-ctx.Done():
	}
	s.shutting.Store(true)
	s.stopAll("the agent is shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
	}
	s.mu.Lock()
	if s.engine != nil {
		_ = s.engine.Close()
		s.engine = nil
	}
	s.mu.Unlock()
	return nil
}

// watch stops the step and closes the windows whose coordinator fell silent
// for their keepalive.
func (s *Server) watch(ctx context.Context) {
	t := time.NewTicker(s.cfg.WatchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		silent := s.silentFor()
		s.mu.Lock()
		st := s.step
		var gone []*obsWindow
		for id, w := range s.windows {
			if silent > w.keepalive || time.Now().After(w.expires) {
				gone = append(gone, w)
				delete(s.windows, id)
			}
		}
		s.mu.Unlock()
		if st != nil && st.overdue() {
			if st.abandon("the engine did not return within warmup+hold+grace: the agent gave up on it") {
				s.cfg.Log.Error().Str("step", st.id).Msg("agent: the engine did not return by the step's bound")
			}
		}
		if st != nil && st.active() && silent > st.keepalive {
			reason := fmt.Sprintf("the coordinator did not call for %v (keepalive %v): the agent stopped the step's load", silent.Round(time.Millisecond), st.keepalive)
			if st.abandon(reason) {
				s.cfg.Log.Warn().Str("step", st.id).Msg("agent: " + reason)
			}
		}
		for _, w := range gone {
			w.discard()
			s.cfg.Log.Warn().Str("window", w.id).Dur("silent", silent).Msg("agent: the coordinator fell silent: sampling window closed")
		}
	}
}

// stopAll stops the step's load and discards every window.
func (s *Server) stopAll(reason string) {
	s.mu.Lock()
	st := s.step
	ws := s.windows
	s.windows = map[string]*obsWindow{}
	s.mu.Unlock()
	if st != nil {
		st.stop(reason)
		st.wait(5 * time.Second)
	}
	for _, w := range ws {
		w.discard()
	}
}

// Hello implements the service: versions and roles.
func (s *Server) Hello(ctx context.Context, req *connect.Request[agentv1.HelloRequest]) (*connect.Response[agentv1.HelloResponse], error) {
	m := req.Msg
	if m.CoordinatorVersion != s.cfg.Version || m.Protocol != Protocol {
		return nil, connect.NewError(connect.CodeFailedPrecondition,
			fmt.Errorf("agent %s runs loadramp %s (protocol %d) but the coordinator runs %s (protocol %d): run the same loadramp version on both",
				s.cfg.Name, s.cfg.Version, Protocol, m.CoordinatorVersion, m.Protocol))
	}
	host, _ := os.Hostname()
	roles := []agentv1.Role{agentv1.Role_ROLE_OBSERVER}
	if s.cfg.Engines != nil {
		roles = append([]agentv1.Role{agentv1.Role_ROLE_GENERATOR}, roles...)
	}
	s.cfg.Log.Info().Str("as", m.AgentName).Str("remote", req.Peer().Addr).Msg("agent: hello from a coordinator")
	return connect.NewResponse(&agentv1.HelloResponse{
		AgentVersion: s.cfg.Version, Protocol: Protocol, Name: s.cfg.Name, Hostname: host,
		Roles: roles, Pid: int32(os.Getpid()), Gomaxprocs: int32(runtime.GOMAXPROCS(0)),
		HostCpus: int32(runtime.NumCPU()), Os: runtime.GOOS, Arch: runtime.GOARCH,
		Started: timestamppb.New(s.started), BootId: hoststat.BootID(s.cfg.ProcRoot),
	}), nil
}

// Health implements the service: readiness, the current step, and the
// answer of the URL the caller asked the agent to check (check.go).
func (s *Server) Health(ctx context.Context, req *connect.Request[agentv1.HealthRequest]) (*connect.Response[agentv1.HealthResponse], error) {
	s.mu.Lock()
	r := &agentv1.HealthResponse{Ready: !s.shutting.Load(), StepState: "idle"}
	if s.step != nil {
		r.StepId = s.step.id
		r.StepState = s.step.stateName()
	}
	for id := range s.windows {
		r.Observations = append(r.Observations, id)
	}
	s.mu.Unlock()
	s.check(ctx, req.Msg, r)
	return connect.NewResponse(r), nil
}

// Clock implements the service: the agent's receive and send times.
func (s *Server) Clock(ctx context.Context, req *connect.Request[agentv1.ClockRequest]) (*connect.Response[agentv1.ClockResponse], error) {
	t2 := s.cfg.Now().UnixNano()
	r := &agentv1.ClockResponse{T1UnixNano: req.Msg.T1UnixNano, T2UnixNano: t2}
	r.T3UnixNano = s.cfg.Now().UnixNano()
	return connect.NewResponse(r), nil
}

func (s *Server) errorf(code connect.Code, format string, args ...any) error {
	return connect.NewError(code, fmt.Errorf("agent %s: "+format, append([]any{s.cfg.Name}, args...)...))
}
