package loadgen

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// endpoint is a Target resolved once: where to dial and the bytes of its request.
type endpoint struct {
	tls     bool
	addr    string // host:port to dial
	server  string // TLS server name
	head    bool   // HEAD request: the response has no body
	request []byte // the whole pre-serialized HTTP/1.1 request
}

// newEndpoint validates t and serializes its request once, so sending it is one write.
func newEndpoint(t Target) (*endpoint, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, fmt.Errorf("loadgen: target url: %w", err)
	}
	ep := &endpoint{}
	switch u.Scheme {
	case "http":
	case "https":
		ep.tls = true
	default:
		return nil, fmt.Errorf("loadgen: target url %q: scheme must be http or https", t.URL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("loadgen: target url %q: no host", t.URL)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if ep.tls {
			port = "443"
		}
	}
	ep.addr = net.JoinHostPort(host, port)
	ep.server = host
	method := t.Method
	if method == "" {
		method = "GET"
	}
	if strings.ContainsAny(method, " \r\n") {
		return nil, errors.New("loadgen: target method contains white space")
	}
	ep.head = strings.EqualFold(method, "HEAD")
	path := u.RequestURI()

	var b strings.Builder
	b.WriteString(method + " " + path + " HTTP/1.1\r\n")
	hasHost, hasLen, hasUA := false, false, false
	names := make([]string, 0, len(t.Headers))
	for k := range t.Headers {
		names = append(names, k)
	}
	sort.Strings(names) // a stable request, for tests and for reproducible captures
	for _, k := range names {
		v := t.Headers[k]
		if strings.ContainsAny(k, ":\r\n") || strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("loadgen: target header %q: invalid characters", k)
		}
		switch strings.ToLower(k) {
		case "host":
			hasHost = true
		case "content-length":
			hasLen = true
		case "user-agent":
			hasUA = true
		case "connection", "transfer-encoding":
			return nil, fmt.Errorf("loadgen: target header %q is managed by the generator", k)
		}
		b.WriteString(k + ": " + v + "\r\n")
	}
	if !hasHost {
		b.WriteString("Host: " + u.Host + "\r\n")
	}
	if !hasLen && (len(t.Body) > 0 || method == "POST" || method == "PUT" || method == "PATCH") {
		b.WriteString("Content-Length: " + strconv.Itoa(len(t.Body)) + "\r\n")
	}
	if !hasUA {
		b.WriteString("User-Agent: loadramp\r\n")
	}
	b.WriteString("\r\n")
	b.Write(t.Body)
	ep.request = []byte(b.String())
	return ep, nil
}
