package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	agentv1 "github.com/loadramp/loadramp/gen/loadramp/agent/v1"
)

// Bounds of a Health call's URL check.
const (
	DefaultCheckTimeout = 5 * time.Second
	MaxCheckTimeout     = 30 * time.Second
)

// checkClient makes the agent's URL checks: no proxy (the URL is usually on
// the agent's own host), no kept connections, no redirects followed, and no
// certificate verification (the check asks whether the service answers; a
// service beside the agent commonly serves a self-signed certificate).
var checkClient = &http.Client{
	Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // readiness only, see above
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// CheckURL GETs rawURL once, bounded by timeout (0: DefaultCheckTimeout; at
// most MaxCheckTimeout), and says how it answered: the status (0 without an
// answer), whether it is from 200 to 399, and why not when it is not. The
// response body is read (at most 4 KiB, to end the exchange) and dropped:
// what the URL serves never leaves the agent.
func CheckURL(ctx context.Context, rawURL string, timeout time.Duration) (status int, ok bool, why string) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return 0, false, fmt.Sprintf("%q is not an http:// or https:// URL", rawURL)
	}
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	timeout = min(timeout, MaxCheckTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, false, err.Error()
	}
	req.Header.Set("User-Agent", "loadramp-agent-check")
	resp, err := checkClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, false, fmt.Sprintf("no answer within %s", timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, false, err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return resp.StatusCode, false, fmt.Sprintf("answered %s", resp.Status)
	}
	return resp.StatusCode, true, ""
}

// check fills r's check fields from req's check_url, if it has one.
func (s *Server) check(ctx context.Context, req *agentv1.HealthRequest, r *agentv1.HealthResponse) {
	if req.GetCheckUrl() == "" {
		return
	}
	status, ok, why := CheckURL(ctx, req.GetCheckUrl(), req.GetCheckTimeout().AsDuration())
	r.CheckStatus, r.CheckOk, r.CheckError = int32(status), ok, why
	if !ok {
		s.cfg.Log.Info().Str("url", req.GetCheckUrl()).Int("status", status).Str("why", why).Msg("agent: health check of a URL failed")
	}
}
