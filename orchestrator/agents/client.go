// Package agents is the coordinator's side of `loadramp agent`: it dials a
// fleet's agents (token, TLS, version check), measures each one's clock
// offset, splits a step's load among them, starts them at one instant,
// collects their per-second series and final measurements, and merges their
// HDR histograms exactly. An agent that refuses, falls behind or is lost is
// named in the error.
package agents

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/gen/loadramp/agent/v1/agentv1connect"
	"github.com/loadramp/loadramp/orchestrator/agent"
)

// DefaultCallTimeout bounds one call to an agent (FinishStep excepted: it
// waits for the step).
const DefaultCallTimeout = 10 * time.Second

// Endpoint is one agent as the coordinator knows it.
type Endpoint struct {
	// Name names the agent in messages, findings and steps.jsonl.
	Name string
	// URL is http://HOST:PORT (HTTP/2 without TLS) or https://HOST:PORT.
	URL string
}

// Options configure the coordinator's connections to agents.
type Options struct {
	// Version is the coordinator's loadramp version; agents of another are
	// refused.
	Version string
	// Token is the agents' bearer token.
	Token string
	// RootCAs are the CAs trusted for https:// agents (nil: the system's).
	RootCAs *x509.CertPool
	// CallTimeout bounds one call (default DefaultCallTimeout).
	CallTimeout time.Duration
	// HTTPClient replaces the client built from the options (tests).
	HTTPClient connect.HTTPClient
}

// LoadCA reads a PEM file of CA certificates to trust for agents.
func LoadCA(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("agent CA %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// Error is a call to an agent that failed; it names the agent.
type Error struct {
	Agent string
	URL   string
	Op    string
	Code  connect.Code
	Err   error
}

func (e *Error) Error() string {
	msg := e.Err.Error()
	var ce *connect.Error
	if errors.As(e.Err, &ce) {
		msg = ce.Message()
	}
	switch e.Code {
	case connect.CodeUnauthenticated:
		return fmt.Sprintf("agent %s (%s) refused the coordinator's token (401): %s", e.Agent, e.URL, msg)
	case connect.CodeFailedPrecondition:
		return fmt.Sprintf("agent %s (%s): %s: %s", e.Agent, e.URL, e.Op, msg)
	case connect.CodeUnavailable:
		return fmt.Sprintf("agent %s (%s) unreachable (%s): %s", e.Agent, e.URL, e.Op, msg)
	}
	return fmt.Sprintf("agent %s (%s): %s: %s", e.Agent, e.URL, e.Op, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Clock is an agent's clock offset as measured from the coordinator: the
// agent's clock reads the coordinator's plus Offset, give or take
// Uncertainty (half the fastest round trip).
type Clock struct {
	Offset      time.Duration
	Uncertainty time.Duration
	RTT         time.Duration
	Rounds      int
}

// Client is a connection to one agent.
type Client struct {
	ep    Endpoint
	svc   agentv1connect.AgentServiceClient
	opts  Options
	hello *agentv1.HelloResponse
	clock Clock
}

// Dial connects to an agent, says hello and checks that it runs the
// coordinator's version; every error names the agent.
func Dial(ctx context.Context, ep Endpoint, opts Options) (*Client, error) {
	if opts.Version == "" {
		return nil, errors.New("agents: coordinator version is empty")
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	u, err := url.Parse(ep.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("agent %s: url %q: want http://HOST:PORT or https://HOST:PORT", ep.Name, ep.URL)
	}
	if ep.Name == "" {
		ep.Name = u.Host
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = newHTTPClient(u.Scheme == "https", opts.RootCAs)
	}
	c := &Client{ep: ep, opts: opts}
	c.svc = agentv1connect.NewAgentServiceClient(hc, u.Scheme+"://"+u.Host,
		connect.WithInterceptors(headers(opts)),
		connect.WithReadMaxBytes(agent.MaxMessageBytes),
		connect.WithSendMaxBytes(agent.MaxMessageBytes))
	cctx, cancel := context.WithTimeout(ctx, opts.CallTimeout)
	defer cancel()
	resp, err := c.svc.Hello(cctx, connect.NewRequest(&agentv1.HelloRequest{
		CoordinatorVersion: opts.Version, Protocol: agent.Protocol, AgentName: ep.Name}))
	if err != nil {
		return nil, c.wrap("hello", err)
	}
	h := resp.Msg
	if h.AgentVersion != opts.Version || h.Protocol != agent.Protocol {
		return nil, &Error{Agent: ep.Name, URL: ep.URL, Op: "hello", Code: connect.CodeFailedPrecondition,
			Err: fmt.Errorf("the agent runs loadramp %s (protocol %d) but the coordinator runs %s (protocol %d): run the same loadramp version on both",
				h.AgentVersion, h.Protocol, opts.Version, agent.Protocol)}
	}
	c.hello = h
	return c, nil
}

// newHTTPClient speaks HTTP/2 only: over TLS, or without it (h2c).
func newHTTPClient(useTLS bool, roots *x509.CertPool) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
		IdleConnTimeout:     time.Minute,
	}
	tr.Protocols = new(http.Protocols)
	if useTLS {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		tr.Protocols.SetHTTP2(true)
	} else {
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: tr}
}

// headers adds the token and the coordinator's version to every call.
func headers(o Options) connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if o.Token != "" {
				req.Header().Set("Authorization", "Bearer "+o.Token)
			}
			req.Header().Set(agent.HeaderVersion, o.Version)
			req.Header().Set(agent.HeaderProtocol, strconv.Itoa(agent.Protocol))
			return next(ctx, req)
		}
	})
}

func (c *Client) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Agent: c.ep.Name, URL: c.ep.URL, Op: op, Code: connect.CodeOf(err), Err: err}
}

// Name is the agent's name as the coordinator knows it.
func (c *Client) Name() string { return c.ep.Name }

// Endpoint is where the agent is.
func (c *Client) Endpoint() Endpoint { return c.ep }

// Hello is what the agent said of itself.
func (c *Client) Hello() *agentv1.HelloResponse { return c.hello }

// Clock is the agent's last measured clock offset.
func (c *Client) Clock() Clock { return c.clock }

// Service is the raw protocol client, for calls this package does not wrap.
func (c *Client) Service() agentv1connect.AgentServiceClient { return c.svc }

func (c *Client) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.CallTimeout)
}

// MeasureClock measures the agent's clock offset over rounds round trips
// (NTP-style: t1 sent, t2 received and t3 sent by the agent, t4 received),
// keeping the fastest round trip's, whose uncertainty is half its delay.
func (c *Client) MeasureClock(ctx context.Context, rounds int) (Clock, error) {
	if rounds < 1 {
		rounds = 1
	}
	best := Clock{RTT: -1}
	for i := 0; i < rounds; i++ {
		cctx, cancel := c.call(ctx)
		t1 := time.Now()
		resp, err := c.svc.Clock(cctx, connect.NewRequest(&agentv1.ClockRequest{T1UnixNano: t1.UnixNano()}))
		t4 := time.Now()
		cancel()
		if err != nil {
			return Clock{}, c.wrap("clock", err)
		}
		r := resp.Msg
		if r.T1UnixNano != t1.UnixNano() || r.T3UnixNano < r.T2UnixNano {
			return Clock{}, &Error{Agent: c.ep.Name, URL: c.ep.URL, Op: "clock", Code: connect.CodeInternal,
				Err: errors.New("the agent's clock answer does not match the question")}
		}
		// t4-t1 on the coordinator's monotonic clock; t3-t2 on the agent's.
		rtt := t4.Sub(t1)
		delay := rtt - time.Duration(r.T3UnixNano-r.T2UnixNano)
		if delay < 0 {
			delay = 0
		}
		offset := (time.Duration(r.T2UnixNano-t1.UnixNano()) + time.Duration(r.T3UnixNano-t4.UnixNano())) / 2
		if best.RTT < 0 || delay < best.RTT {
			best = Clock{Offset: offset, Uncertainty: delay / 2, RTT: delay}
		}
	}
	best.Rounds = rounds
	c.clock = best
	return best, nil
}

// ClockError is an agent whose clock is too far from the coordinator's.
type ClockError struct {
	Agent string
	Clock Clock
	Bound time.Duration
}

func (e *ClockError) Error() string {
	return fmt.Sprintf("agent %s: clock offset %v ± %v exceeds the bound %v: synchronise the host's clock (chrony or systemd-timesyncd) or raise the bound",
		e.Agent, e.Clock.Offset.Round(time.Microsecond), e.Clock.Uncertainty.Round(time.Microsecond), e.Bound)
}

// CheckClock refuses an offset whose size plus uncertainty exceeds bound.
func CheckClock(name string, c Clock, bound time.Duration) error {
	off := c.Offset
	if off < 0 {
		off = -off
	}
	if off+c.Uncertainty > bound {
		return &ClockError{Agent: name, Clock: c, Bound: bound}
	}
	return nil
}

// AuditLimits asks the agent for its host's limits funnel.
func (c *Client) AuditLimits(ctx context.Context, req *agentv1.AuditLimitsRequest) (*agentv1.AuditLimitsResponse, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.svc.AuditLimits(cctx, connect.NewRequest(req))
	if err != nil {
		return nil, c.wrap("audit limits", err)
	}
	return resp.Msg, nil
}

// StartObservation opens a sampling window on the agent's host.
func (c *Client) StartObservation(ctx context.Context, req *agentv1.StartObservationRequest) error {
	cctx, cancel := c.call(ctx)
	defer cancel()
	_, err := c.svc.StartObservation(cctx, connect.NewRequest(req))
	return c.wrap("start observation", err)
}

// StopObservation closes a sampling window and returns the host over it.
func (c *Client) StopObservation(ctx context.Context, req *agentv1.StopObservationRequest) (*agentv1.HostObservation, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.svc.StopObservation(cctx, connect.NewRequest(req))
	if err != nil {
		return nil, c.wrap("stop observation", err)
	}
	return resp.Msg.Observation, nil
}

// Health asks the agent whether it is ready; it is also a keepalive.
func (c *Client) Health(ctx context.Context) (*agentv1.HealthResponse, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.svc.Health(cctx, connect.NewRequest(&agentv1.HealthRequest{}))
	if err != nil {
		return nil, c.wrap("health", err)
	}
	return resp.Msg, nil
}

// CheckURL asks the agent to GET rawURL from its own host (a service's
// health endpoint beside it) within timeout, and returns its Health answer
// with the check's status. An agent that did not check (one without the
// check) answers with neither a status nor a reason: that is an error.
func (c *Client) CheckURL(ctx context.Context, rawURL string, timeout time.Duration) (*agentv1.HealthResponse, error) {
	if timeout <= 0 {
		timeout = agent.DefaultCheckTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, max(c.opts.CallTimeout, timeout+2*time.Second))
	defer cancel()
	resp, err := c.svc.Health(cctx, connect.NewRequest(&agentv1.HealthRequest{CheckUrl: rawURL, CheckTimeout: durationpb.New(timeout)}))
	if err != nil {
		return nil, c.wrap("health", err)
	}
	if resp.Msg.CheckStatus == 0 && resp.Msg.CheckError == "" {
		return nil, &Error{Agent: c.ep.Name, URL: c.ep.URL, Op: "health", Code: connect.CodeUnimplemented,
			Err: errors.New("the agent did not check the URL it was given (an agent without URL checks)")}
	}
	return resp.Msg, nil
}
