package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/internal/eventbus"
	"github.com/loadramp/loadramp/internal/wiring"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/delivery"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/probe"
)

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startBusProcess starts the event bus binary and waits until it answers.
func startBusProcess(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	_, bus := binaries(t)
	addr := freePort(t)
	cmd := exec.Command(bus, append([]string{"--listen", addr}, args...)...)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := "http://" + addr
	for i := 0; ; i++ {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			return cmd, url
		}
		if i > 100 {
			t.Fatalf("event bus not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// staticRender renders templates with only the target's endpoint output.
func staticRender(endpoint string) orchestrator.Renderer {
	data := plan.TemplateData{Fleets: map[string]map[string]string{"target": {"endpoint": endpoint}}}
	return func(s string) (string, error) { return plan.Render(s, data, nil) }
}

// TestProbeSeesTheBusStopped stops the event bus process (SIGSTOP) for 1 s
// in the middle of the probe's hold: probe.delay.max shows at least that
// long, since delays run from each message's intended send time.
func TestProbeSeesTheBusStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	cmd, url := startBusProcess(t)
	p := &plan.Plan{Probe: &plan.Probe{Kind: "pubsub", Rate: 20, Timeout: plan.Duration(5 * time.Second),
		PubSubBus: plan.PubSubBus{Publish: url + "/publish?topic=probe", Subscribe: url + "/subscribe?topic=probe", Confirm: `comment ": subscribed"`}}}
	pr, err := wiring.NewProbe(context.Background(), p, staticRender(url), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	const pause = time.Second
	stopped := make(chan time.Duration, 1)
	go func() {
		time.Sleep(2 * time.Second)
		_ = cmd.Process.Signal(syscall.SIGSTOP)
		begin := time.Now()
		time.Sleep(pause)
		_ = cmd.Process.Signal(syscall.SIGCONT)
		stopped <- time.Since(begin)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := pr.Step(ctx, 500*time.Millisecond, 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st := <-stopped
	t.Logf("stopped %v; %v", st, m)
	// A message due just after the stop waits for all of it (less the
	// probe's own 50 ms interval at most).
	if mx := m["probe.delay.max"]; mx < (pause - 60*time.Millisecond).Seconds() {
		t.Errorf("probe.delay.max = %.3fs, want >= %v: the stop did not show", mx, pause)
	}
	if r := m["probe.lost.ratio"]; r != 0 {
		t.Errorf("probe.lost.ratio = %v, want 0: the bus only paused", r)
	}
}

// stallBody is a subscriber that stops reading for a while once it has read
// its confirmation, as a busy client does.
type stallBody struct {
	io.ReadCloser
	reads int
	stall time.Duration
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.reads++
	if b.reads == 2 {
		time.Sleep(b.stall)
	}
	return b.ReadCloser.Read(p)
}

// stallTransport makes every subscription stream a slow reader.
type stallTransport struct{ base http.RoundTripper }

func (s stallTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(r)
	if err == nil && strings.Contains(r.URL.Path, "subscribe") {
		resp.Body = &stallBody{ReadCloser: resp.Body, stall: 2500 * time.Millisecond}
	}
	return resp, err
}

// TestProbeLostFailsTheStep runs a ramp on a real event bus with a small
// per-subscriber buffer while the probe reads its stream slowly (its
// receive buffer is small and it stalls): the bus drops the probe's
// subscription, probe.lost.ratio counts the messages it lost and the gate on
// it fails the step.
func TestProbeLostFailsTheStep(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := eventbus.New(eventbus.Config{SubscriberBuffer: 2, WriteTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	busCtx, stopBus := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(busCtx, smallSendBuffers{ln}) }()
	defer func() { stopBus(); <-served }()
	endpoint := "http://" + ln.Addr().String()

	src := fmt.Sprintf(`version: 1
name: probe-lost
fleets:
  target:
    provider: static
    outputs: { endpoint: %q }
workload:
  engine: builtin
  http:
    url: "{{ .fleets.target.endpoint }}/publish?topic=load"
    body: '{"msg":"hello"}'
    timeout: 1s
probe:
  kind: pubsub
  publish: "{{ .fleets.target.endpoint }}/publish?topic=probe"
  subscribe: "{{ .fleets.target.endpoint }}/subscribe?topic=probe"
  confirm: 'comment ": subscribed"'
  rate: 200
  timeout: 1s
parameters:
  - { name: rate, start: 50, max: 100 }
  - { name: connections, start: 2, max: 2 }
ramp:
  warmup: 500ms
  hold: 4s
  cooldown: 100ms
  confirm: 1
  refine: 0
gates:
  - probe.lost.ratio < 0.01
`, endpoint)
	path := filepath.Join(t.TempDir(), "probe-lost.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := plan.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if errs := p.Validate(); len(errs) > 0 {
		t.Fatal(plan.Errors(errs))
	}
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
	}}
	slowProbe := func(ctx context.Context, p *plan.Plan, render orchestrator.Renderer, log zerolog.Logger) (orchestrator.Probe, error) {
		pub, _ := render(p.Probe.Publish)
		sub, _ := render(p.Probe.Subscribe)
		return probe.New(probe.Config{Kind: probe.KindPubSub, Bus: delivery.Bus{Publish: pub, Subscribe: sub, Confirm: p.Probe.Confirm},
			Rate: p.Probe.Rate, Timeout: p.Probe.Timeout.D(), Log: log,
			Client: &http.Client{Transport: stallTransport{base: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}}}})
	}
	deps := orchestrator.Deps{
		Provision: wiring.Provision(wiring.DefaultConfig()),
		NewEngine: wiring.NewEngine,
		NewProbe:  slowProbe,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := orchestrator.Run(ctx, p, deps, orchestrator.Options{OutDir: t.TempDir(), PlanFile: path})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(res.Dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("status %s; bus %+v", res.Status, srv.Stats())
	if srv.Stats().Dropped == 0 {
		t.Fatal("the bus dropped no subscriber: the test did not make a slow one")
	}
	steps, _ := rep["steps"].([]any)
	if len(steps) == 0 {
		t.Fatal("no steps in the report")
	}
	first := steps[0].(map[string]any)
	if v := str(first, "verdict"); v != "target-fail" {
		t.Errorf("step 1 verdict %q, want target-fail", v)
	}
	if r := num(t, first, "metrics", "probe.lost.ratio"); r < 0.05 {
		t.Errorf("step 1 probe.lost.ratio = %v, want >= 0.05", r)
	}
	bn, _ := rep["bottleneck"].(map[string]any)
	fg, _ := bn["failed_gates"].([]any)
	if len(fg) == 0 || str(fg[0].(map[string]any), "metric") != "probe.lost.ratio" {
		t.Errorf("bottleneck failed gates %v, want probe.lost.ratio", fg)
	}
}

// smallSendBuffers gives every accepted connection a small kernel send buffer,
// as a slow network link would: loopback's autotuned buffers otherwise absorb
// seconds of a stalled reader's stream and the bus never sees it as slow.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}
