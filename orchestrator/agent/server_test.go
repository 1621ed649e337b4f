package agent

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
	"github.com/loadramp/loadramp/gen/loadramp/agent/v1/agentv1connect"
	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

const testVersion = "v-test"

// serve runs s on a free loopback port until the test ends.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func newServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Version = testVersion
	cfg.Log = zerolog.Nop()
	if cfg.WatchEvery == 0 {
		cfg.WatchEvery = 50 * time.Millisecond
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// client is a raw protocol client with the test's version and a token.
func client(url, token string) agentv1connect.AgentServiceClient {
	return agentv1connect.NewAgentServiceClient(http.DefaultClient, url, connect.WithInterceptors(
		connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
			return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
				if token != "" {
					req.Header().Set("Authorization", "Bearer "+token)
				}
				req.Header().Set(HeaderVersion, testVersion)
				req.Header().Set(HeaderProtocol, "1")
				return next(ctx, req)
			}
		})))
}

// A wrong or missing token gets HTTP 401 with a Connect error body naming
// the agent and the reason; the health endpoint needs none.
func TestUnauthorizedIs401(t *testing.T) {
	url := serve(t, newServer(t, Config{Name: "gen-7", Token: "right"}))
	for _, c := range []struct{ header, reason string }{
		{"", "no bearer token"},
		{"Bearer wrong", "wrong bearer token"},
		{"Basic dXNlcjpwYXNz", "is not \"Bearer TOKEN\""},
	} {
		req, _ := http.NewRequest(http.MethodPost, url+agentv1connect.AgentServiceHelloProcedure, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Code, Message string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || body.Code != "unauthenticated" {
			t.Errorf("Authorization %q: status %d code %q, want 401 unauthenticated", c.header, resp.StatusCode, body.Code)
		}
		if !strings.Contains(body.Message, "agent gen-7") || !strings.Contains(body.Message, c.reason) {
			t.Errorf("Authorization %q: message %q, want the agent and %q", c.header, body.Message, c.reason)
		}
	}
	resp, err := http.Get(url + HealthPath)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "ready" {
		t.Errorf("health: %d %q, want 200 ready", resp.StatusCode, b)
	}
	// The right token passes; a call without the version header does not.
	if _, err := client(url, "right").Health(context.Background(), connect.NewRequest(&agentv1.HealthRequest{})); err != nil {
		t.Errorf("right token: %v", err)
	}
	bare := agentv1connect.NewAgentServiceClient(http.DefaultClient, url, connect.WithInterceptors(
		connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
			return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
				req.Header().Set("Authorization", "Bearer right")
				return next(ctx, req)
			}
		})))
	_, err = bare.Health(context.Background(), connect.NewRequest(&agentv1.HealthRequest{}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "only a loadramp coordinator") {
		t.Errorf("no version header: %v, want failed precondition", err)
	}
}

func TestRefusesNonLoopbackWithoutToken(t *testing.T) {
	for _, c := range []struct {
		addr  net.Addr
		token string
		ok    bool
	}{
		{&net.TCPAddr{IP: net.IPv4zero, Port: 7070}, "", false},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 7070}, "", false},
		{&net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 7070}, "", false},
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7070}, "", true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 7070}, "", true},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 7070}, "tok", true},
	} {
		err := CheckBind(c.addr, c.token)
		if (err == nil) != c.ok {
			t.Errorf("CheckBind(%v, token %q) = %v, want ok %v", c.addr, c.token, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "without a token") {
			t.Errorf("CheckBind(%v): %q does not say why", c.addr, err)
		}
	}
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	err = newServer(t, Config{}).Serve(context.Background(), ln, nil)
	if err == nil || !strings.Contains(err.Error(), "refusing to listen on every address") {
		t.Fatalf("Serve on 0.0.0.0 without a token: %v", err)
	}
}

// fakeNetDev is a fake network device reader whose ENA pps counter grows by
// step at every read.
type fakeNetDev struct {
	pps, step uint64
}

func (f *fakeNetDev) Stats(dev string) (map[string]uint64, error) {
	if dev != "eth0" {
		return nil, os.ErrNotExist
	}
	f.pps += f.step
	return map[string]uint64{diagnose.ENAPPS: f.pps, "rx_packets": f.pps * 10}, nil
}
func (f *fakeNetDev) Driver(string) (string, error) { return "ena", nil }

// fakeObserver is a fake Observer whose windows report one finding made on
// "local", and count discards.
type fakeObserver struct{ discarded chan string }

type fakeWindow struct {
	id string
	o  *fakeObserver
}

func (o *fakeObserver) Start(_ context.Context, spec ObserveSpec) (Window, error) {
	return &fakeWindow{id: spec.WindowID, o: o}, nil
}
func (w *fakeWindow) Stop(context.Context, map[string]int64) (*Observation, error) {
	return &Observation{Metrics: metrics.Metrics{metrics.TargetCPU: 0.5},
		Summary:  hoststat.Summary{Samples: 3, Deltas: map[string]float64{hoststat.HostListenOverflows: 12}},
		Findings: []result.Finding{{Rule: diagnose.RuleListenOverflow, Host: "local", Side: "target", Evidence: []string{"ListenOverflows +12"}}}}, nil
}
func (w *fakeWindow) Discard() { w.o.discarded <- w.id }

// A window returns the observer's findings on the agent's name, plus the
// ena-allowance finding from the network devices' counters.
func TestObservationWindow(t *testing.T) {
	obs := &fakeObserver{discarded: make(chan string, 4)}
	url := serve(t, newServer(t, Config{Name: "target-1", Observer: obs, NetDev: &fakeNetDev{step: 100}}))
	c := client(url, "")
	ctx := context.Background()
	if _, err := c.StartObservation(ctx, connect.NewRequest(&agentv1.StartObservationRequest{WindowId: "s1", Side: "target",
		Devices: []string{"eth0", "eth9"}, Hold: durationpb.New(time.Second)})); err != nil {
		t.Fatal(err)
	}
	resp, err := c.StopObservation(ctx, connect.NewRequest(&agentv1.StopObservationRequest{WindowId: "s1"}))
	if err != nil {
		t.Fatal(err)
	}
	o := resp.Msg.Observation
	rules := map[string]*agentv1.Finding{}
	for _, f := range o.Findings {
		rules[f.Rule] = f
		if f.Host != "target-1" || f.Side != "target" {
			t.Errorf("finding %s names host %q side %q, want target-1 target", f.Rule, f.Host, f.Side)
		}
	}
	if rules[diagnose.RuleListenOverflow] == nil || rules[diagnose.RuleENAAllowance] == nil {
		t.Fatalf("findings %v, want listen-overflow and ena-allowance", o.Findings)
	}
	if len(o.Netdev) != 2 || o.Netdev[0].Deltas[diagnose.ENAPPS] != 100 || o.Netdev[1].Error == "" {
		t.Errorf("netdev %v, want eth0 +100 pps and eth9 unreadable", o.Netdev)
	}
	if o.Host != "target-1" || o.Deltas[hoststat.HostListenOverflows] != 12 || o.Metrics[metrics.TargetCPU] != 0.5 {
		t.Errorf("observation %v", o)
	}
	if _, err := c.StopObservation(ctx, connect.NewRequest(&agentv1.StopObservationRequest{WindowId: "s1"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("second stop: %v, want not found", err)
	}

	// A window whose coordinator falls silent is closed by the agent.
	if _, err := c.StartObservation(ctx, connect.NewRequest(&agentv1.StartObservationRequest{WindowId: "s2",
		Keepalive: durationpb.New(300 * time.Millisecond)})); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-obs.discarded:
		if id != "s2" {
			t.Errorf("discarded %s, want s2", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the silent coordinator's window is still open after 5s")
	}
}

func TestAuditLimitsOwnProcess(t *testing.T) {
	url := serve(t, newServer(t, Config{Name: "h"}))
	resp, err := client(url, "").AuditLimits(context.Background(), connect.NewRequest(&agentv1.AuditLimitsRequest{
		Processes: []*agentv1.Process{{Name: "self", Pid: int32(os.Getpid())}}}))
	if err != nil {
		t.Fatal(err)
	}
	a := resp.Msg
	if a.Host != "h" || a.Somaxconn <= 0 || len(a.Procs) != 1 || a.Procs[0].Nofile <= 0 || a.Procs[0].OpenFds <= 0 {
		t.Errorf("audit %v: want somaxconn and this process's open files", a)
	}
	// A process given by name is every process of that command name.
	comm, err := hoststat.Comm("", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	resp, err = client(url, "").AuditLimits(context.Background(), connect.NewRequest(&agentv1.AuditLimitsRequest{
		Processes: []*agentv1.Process{{Name: comm}}}))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range resp.Msg.Procs {
		found = found || int(p.Pid) == os.Getpid()
	}
	if !found {
		t.Errorf("audit by name %q: %v, want this process among them", comm, resp.Msg.Procs)
	}
	_, err = client(url, "").AuditLimits(context.Background(), connect.NewRequest(&agentv1.AuditLimitsRequest{
		Processes: []*agentv1.Process{{}}}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "give its command name, or its pid") {
		t.Errorf("process without name or pid: %v", err)
	}
}

func TestGeneratorRoleAbsent(t *testing.T) {
	url := serve(t, newServer(t, Config{Name: "obs-only"}))
	_, err := client(url, "").PrepareStep(context.Background(), connect.NewRequest(&agentv1.PrepareStepRequest{StepId: "x"}))
	if connect.CodeOf(err) != connect.CodeUnimplemented || !strings.Contains(err.Error(), "agent obs-only: no generator role") {
		t.Errorf("PrepareStep on an agent without engines: %v", err)
	}
	h, err := client(url, "").Hello(context.Background(), connect.NewRequest(&agentv1.HelloRequest{CoordinatorVersion: testVersion, Protocol: Protocol}))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Msg.Roles) != 1 || h.Msg.Roles[0] != agentv1.Role_ROLE_OBSERVER {
		t.Errorf("roles %v, want observer only", h.Msg.Roles)
	}
}

func TestHistogramRoundTrip(t *testing.T) {
	h := NewHist(HistDigits)
	for v := int64(1); v < 60_000_000; v = v*3 + 1 {
		_ = h.RecordValue(v)
	}
	s, err := EncodeHist(h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeHist(s, HistDigits)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equals(h) {
		t.Fatal("decoded histogram differs")
	}
	if _, err := DecodeHist(s, SecondDigits); err == nil || !strings.Contains(err.Error(), "geometry") {
		t.Errorf("wrong digits: %v, want a geometry error", err)
	}
	if _, err := DecodeHist("not base64!", HistDigits); err == nil {
		t.Error("garbage decoded")
	}
}

func FuzzDecodeHist(f *testing.F) {
	h := NewHist(HistDigits)
	_ = h.RecordValue(1234)
	s, _ := EncodeHist(h)
	f.Add(s)
	f.Add("HISTFAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := DecodeHist(s, HistDigits)
		if err != nil || h == nil {
			return
		}
		// What decodes re-encodes to the same histogram.
		s2, err := EncodeHist(h)
		if err != nil {
			t.Fatal(err)
		}
		h2, err := DecodeHist(s2, HistDigits)
		if err != nil || !h2.Equals(h) {
			t.Fatalf("re-encoding changed the histogram: %v", err)
		}
	})
}

// FuzzDecodeResult feeds arbitrary bytes as a FinishStep result: decoding
// never panics and a decoded result's histograms have the agents' geometry.
func FuzzDecodeResult(f *testing.F) {
	h := NewHist(HistDigits)
	_ = h.RecordValue(500)
	sec := NewHist(SecondDigits)
	_ = sec.RecordValue(500)
	r, _ := encodeResult(&Result{Latency: h, Requests: 1, ErrorClasses: map[string]int64{"timeout": 1}},
		[]*agentv1.Second{{T: 0, Requests: 1}})
	b, _ := proto.Marshal(r)
	f.Add(b)
	f.Add([]byte{0x52, 0x03, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var g agentv1.GeneratorResult
		if proto.Unmarshal(b, &g) != nil {
			return
		}
		res, err := DecodeResult(&g)
		if err != nil {
			return
		}
		if res.Latency != nil && res.Latency.SignificantFigures() != HistDigits {
			t.Fatalf("latency decoded with %d digits", res.Latency.SignificantFigures())
		}
		for _, s := range res.Series {
			if s.T < 0 {
				t.Fatalf("second %d decoded", s.T)
			}
		}
	})
}

// The real ethtool path through the protocol: the host's devices with driver
// statistics are read by name.
func TestNetDevCountersThisHost(t *testing.T) {
	et := &hoststat.Ethtool{}
	defer et.Close()
	url := serve(t, newServer(t, Config{Name: "h", NetDev: et}))
	resp, err := client(url, "").NetDevCounters(context.Background(), connect.NewRequest(&agentv1.NetDevCountersRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for _, d := range resp.Msg.Devices {
		if d.Device == "lo" {
			t.Errorf("loopback listed")
		}
		if d.Error == "" && len(d.Counters) > 0 {
			read++
			t.Logf("%s (%s): %d statistics", d.Device, d.Driver, len(d.Counters))
		}
	}
	if read == 0 {
		t.Skip("no network device with driver statistics here")
	}
	resp, err = client(url, "").NetDevCounters(context.Background(), connect.NewRequest(&agentv1.NetDevCountersRequest{Devices: []string{"loadramp-none0"}}))
	if err != nil || len(resp.Msg.Devices) != 1 || resp.Msg.Devices[0].Error == "" {
		t.Errorf("a missing device: %v %v, want it listed with its error", resp, err)
	}
}
