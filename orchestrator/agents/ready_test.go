package agents

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadramp/loadramp/orchestrator/agent"
)

// serveAgentLater serves a real agent on addr after delay: until then
// nothing listens there (an instance still running its user_data).
func serveAgentLater(t *testing.T, addr string, delay time.Duration, cfg agent.Config) {
	t.Helper()
	srv, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("agent listen %s: %v", addr, err)
			return
		}
		_ = srv.Serve(ctx, ln, nil)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestWaitReadyAgentUpThenAppHealthy(t *testing.T) {
	var healthy atomic.Bool
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			http.Error(w, "starting", http.StatusBadGateway)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer app.Close()
	a1, a2 := freeAddr(t), freeAddr(t)
	serveAgentLater(t, a1, 0, agentConfig("ip-10-0-1-5", "tok", nil))
	serveAgentLater(t, a2, 400*time.Millisecond, agentConfig("ip-10-0-1-6", "tok", nil))
	eps := []Endpoint{{Name: "i-0aaa", URL: "http://" + a1}, {Name: "i-0bbb", URL: "http://" + a2}}
	var mu sync.Mutex
	var rounds []ReadyState
	o := WaitOptions{Options: opts("tok"), HealthURL: app.URL + "/healthz", Poll: 50 * time.Millisecond,
		Progress: func(st ReadyState) {
			mu.Lock()
			defer mu.Unlock()
			rounds = append(rounds, st)
			if len(rounds) == 12 {
				healthy.Store(true) // the app comes up a while after the agents
			}
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := WaitReady(ctx, eps, o); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var down, sick bool
	for _, r := range rounds {
		if strings.Contains(r.NotReady["i-0bbb"], "its agent does not answer") && strings.Contains(r.NotReady["i-0bbb"], "connection refused") {
			down = true
		}
		if strings.Contains(r.NotReady["i-0aaa"], app.URL+"/healthz through its agent: answered 502 Bad Gateway") {
			sick = true
		}
	}
	if !down || !sick {
		t.Errorf("rounds never said the second agent was down (%v) or the app unhealthy (%v): %v", down, sick, rounds)
	}
}

func TestWaitReadyBoundedAndRefusals(t *testing.T) {
	addr := freeAddr(t)
	eps := []Endpoint{{Name: "i-0ccc", URL: "http://" + addr}}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := WaitReady(ctx, eps, WaitOptions{Options: opts("tok"), Poll: 50 * time.Millisecond})
	var nr *NotReadyError
	if !errors.As(err, &nr) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "i-0ccc: its agent does not answer") {
		t.Errorf("no agent: %v", err)
	}

	// A wrong token is not waited out: the agent answered, and refused.
	a := startAgent(t, agentConfig("gen", "right", nil))
	start := time.Now()
	err = WaitReady(context.Background(), []Endpoint{{Name: "i-0ddd", URL: a.url}}, WaitOptions{Options: opts("wrong"), Poll: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "agent i-0ddd") || !strings.Contains(err.Error(), "refused the coordinator's token") || time.Since(start) > 10*time.Second {
		t.Errorf("wrong token: %v after %s", err, time.Since(start))
	}
	// Nor is a bad address.
	if err := WaitReady(context.Background(), []Endpoint{{Name: "x", URL: "ftp://h:1"}}, WaitOptions{Options: opts("t")}); err == nil || !strings.Contains(err.Error(), "want http://HOST:PORT") {
		t.Errorf("bad address: %v", err)
	}
}
