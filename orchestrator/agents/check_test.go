package agents

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The agent checks a URL from its own host and says how it answered: the
// status, and why it is not healthy; what the URL served never comes back.
func TestCheckURLThroughTheAgent(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusBadGateway)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.WriteHeader(int(status.Load()))
			w.Write([]byte("secret body"))
		case "/moved":
			http.Redirect(w, r, "/healthz", http.StatusFound)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
	}))
	defer app.Close()
	a := startAgent(t, agentConfig("target-1", "tok", nil))
	ctx := context.Background()
	c, err := Dial(ctx, Endpoint{Name: "i-0aaa", URL: a.url}, opts("tok"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.CheckURL(ctx, app.URL+"/healthz", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.CheckOk || r.CheckStatus != 502 || !strings.Contains(r.CheckError, "502 Bad Gateway") || strings.Contains(r.String(), "secret body") {
		t.Errorf("502: %v", r)
	}
	status.Store(http.StatusOK)
	if r, err = c.CheckURL(ctx, app.URL+"/healthz", time.Second); err != nil || !r.CheckOk || r.CheckStatus != 200 || r.CheckError != "" || !r.Ready {
		t.Errorf("200: %v, %v", r, err)
	}
	// A redirect is an answer, not followed.
	if r, err = c.CheckURL(ctx, app.URL+"/moved", time.Second); err != nil || !r.CheckOk || r.CheckStatus != 302 {
		t.Errorf("302: %v, %v", r, err)
	}
	// Nothing listening; too slow; not http.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()
	for _, cc := range []struct{ url, want string }{
		{closed, "connection refused"},
		{app.URL + "/slow", "no answer within 200ms"},
		{"file:///etc/passwd", "is not an http:// or https:// URL"},
	} {
		r, err := c.CheckURL(ctx, cc.url, 200*time.Millisecond)
		if err != nil || r.CheckOk || r.CheckStatus != 0 || !strings.Contains(r.CheckError, cc.want) {
			t.Errorf("%s: %v, %v; want %q", cc.url, r, err, cc.want)
		}
	}
	// A plain Health call checks nothing.
	if r, err := c.Health(ctx); err != nil || r.CheckStatus != 0 || r.CheckError != "" {
		t.Errorf("health without a URL: %v, %v", r, err)
	}
}
