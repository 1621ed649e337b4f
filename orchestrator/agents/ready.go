package agents

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
)

// DefaultReadyPoll is how often WaitReady asks again.
const DefaultReadyPoll = 5 * time.Second

// WaitOptions configure WaitReady.
type WaitOptions struct {
	// Options connect to the agents (version, token, CA).
	Options
	// HealthURL, if set, is checked through each agent (CheckURL): a
	// service's health endpoint as its host sees it, e.g.
	// http://127.0.0.1:80/healthz. An agent is ready when it answers and
	// the URL answers 200-399 through it.
	HealthURL string
	// CheckTimeout bounds each check of HealthURL (0: the agent's default).
	CheckTimeout time.Duration
	// Poll is the time between rounds (0: DefaultReadyPoll).
	Poll time.Duration
	// Progress, if set, is called after every round that leaves an agent not
	// ready.
	Progress func(ReadyState)
}

// ReadyState is one round of WaitReady.
type ReadyState struct {
	Ready []string
	// NotReady says why each agent not ready is not, by name: "its agent
	// does not answer: connection refused", "http://127.0.0.1/healthz
	// answered 502 Bad Gateway"...
	NotReady map[string]string
}

// String lists the agents not ready with why, in name order.
func (s ReadyState) String() string { return JoinReasons(s.NotReady) }

// JoinReasons lists what is not ready with why ("a: why; b: why"), in key
// order.
func JoinReasons(why map[string]string) string {
	keys := slices.Sorted(maps.Keys(why))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + why[k]
	}
	return strings.Join(parts, "; ")
}

// NotReadyError is a wait that ended with agents not ready.
type NotReadyError struct {
	State ReadyState
	Total int
	Err   error // the context's
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("%d of %d agent(s) not ready (%s): %v", len(e.State.NotReady), e.Total, e.State, e.Err)
}

func (e *NotReadyError) Unwrap() error { return e.Err }

// WaitReady waits until every agent of eps answers (Hello: its token and
// version accepted) and, with o.HealthURL, the URL answers through it. An
// agent that refuses the token or the version ends the wait at once (it
// will not change its mind); any other failure (nothing listening yet, the
// URL not answering yet) is asked again every o.Poll. ctx bounds the wait:
// the error (*NotReadyError) names every agent still not ready and why.
func WaitReady(ctx context.Context, eps []Endpoint, o WaitOptions) error {
	if len(eps) == 0 {
		return errors.New("agents: no agent to wait for")
	}
	poll := o.Poll
	if poll <= 0 {
		poll = DefaultReadyPoll
	}
	ready := map[string]bool{}
	var last ReadyState
	for {
		st := ReadyState{NotReady: map[string]string{}}
		var mu sync.Mutex
		var fatal error
		var wg sync.WaitGroup
		for _, ep := range eps {
			if ready[ep.Name] {
				st.Ready = append(st.Ready, ep.Name)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				why, err := agentReady(ctx, ep, o)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					fatal = errors.Join(fatal, err)
				case why != "":
					st.NotReady[ep.Name] = why
				default:
					st.Ready = append(st.Ready, ep.Name)
				}
			}()
		}
		wg.Wait()
		if fatal != nil {
			return fatal
		}
		if ctx.Err() != nil && len(last.NotReady) > 0 {
			// The deadline fell during this round: what the last complete
			// round said is the clearer reason.
			return &NotReadyError{State: last, Total: len(eps), Err: ctx.Err()}
		}
		for _, n := range st.Ready {
			ready[n] = true
		}
		slices.Sort(st.Ready)
		last = st
		if len(st.NotReady) == 0 {
			return nil
		}
		if o.Progress != nil {
			o.Progress(st)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return &NotReadyError{State: last, Total: len(eps), Err: ctx.Err()}
		case <-t.C:
		}
	}
}

// agentReady asks one agent once: "" when it is ready, else why not; an
// error when it refused the coordinator (token, version).
func agentReady(ctx context.Context, ep Endpoint, o WaitOptions) (string, error) {
	c, err := Dial(ctx, ep, o.Options)
	if err != nil {
		var ae *Error
		if !errors.As(err, &ae) || ae.Code == connect.CodeUnauthenticated || ae.Code == connect.CodeFailedPrecondition {
			return "", err // a bad address, the token, the version
		}
		return "its agent does not answer: " + reason(err), nil
	}
	if o.HealthURL == "" {
		return "", nil
	}
	r, err := c.CheckURL(ctx, o.HealthURL, o.CheckTimeout)
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) && ae.Code == connect.CodeUnimplemented {
			return "", err
		}
		return "its agent does not answer: " + reason(err), nil
	}
	if !r.CheckOk {
		return fmt.Sprintf("%s through its agent: %s", o.HealthURL, r.CheckError), nil
	}
	return "", nil
}

// reason is the innermost message of a call's error, without the agent's
// name (the caller names it).
func reason(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Err.Error()
	}
	return err.Error()
}
