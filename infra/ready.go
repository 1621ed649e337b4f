package infra

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// readyCheck is a parsed LocalProcess.Ready.
type readyCheck struct {
	raw  string
	kind string // "", "http" (http and https) or "tcp"
	addr string // host:port for tcp
}

func parseReady(s string) (readyCheck, error) {
	if s == "" {
		return readyCheck{}, nil
	}
	if !strings.Contains(s, "://") {
		return readyCheck{}, fmt.Errorf("ready %q: want http://, https:// or tcp://host:port", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return readyCheck{}, fmt.Errorf("ready %q: %w", s, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return readyCheck{}, fmt.Errorf("ready %q: URL has no host", s)
		}
		return readyCheck{raw: s, kind: "http"}, nil
	case "tcp":
		if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
			return readyCheck{}, fmt.Errorf("ready %q: want tcp://host:port", s)
		}
		if u.Path != "" && u.Path != "/" {
			return readyCheck{}, fmt.Errorf("ready %q: a tcp address takes no path", s)
		}
		return readyCheck{raw: s, kind: "tcp", addr: u.Host}, nil
	default:
		return readyCheck{}, fmt.Errorf("ready %q: scheme must be http, https or tcp", s)
	}
}

// newReadyClient returns the HTTP client used for readiness checks. It never
// uses a proxy (the process is local) and keeps no idle connections. It does
// not verify TLS certificates: readiness only asks whether the process
// answers, and local targets commonly serve self-signed certificates.
func newReadyClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // readiness only, see above
	}}
}

// probe makes one readiness attempt; ctx bounds it.
func (r readyCheck) probe(ctx context.Context, client *http.Client) error {
	switch r.kind {
	case "":
		return nil
	case "tcp":
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", r.addr)
		if err != nil {
			return err
		}
		return conn.Close()
	case "http":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.raw, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("HTTP %s", resp.Status)
		}
		return nil
	}
	return errors.New("unknown ready check")
}
