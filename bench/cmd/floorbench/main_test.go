//go:build linux

package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// serveHTTP is a real HTTP/1.1 server on loopback answering every request with
// a 200 "ok\n", as the benchmark's nginx does.
func serveHTTP(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func field(t *testing.T, line, key string) float64 {
	t.Helper()
	for _, kv := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s in %q: %v", key, line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in %q", key, line)
	return 0
}

func TestFloorOffersTheRateAndCountsResponses(t *testing.T) {
	addr := serveHTTP(t)
	var out, errOut bytes.Buffer
	code := run([]string{"-addr", addr, "-rate", "2000", "-connections", "4", "-duration", "500ms", "-warmup", "100ms"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	line := out.String()
	// The rate is kept by the clock (requests due by now are written at each
	// tick), so it is within a few ticks' worth of the offered rate; responses
	// trail by at most the requests of the last tick or two.
	if rps := field(t, line, "rps"); rps < 1800 || rps > 2200 {
		t.Errorf("rps %v, want about 2000: %s", rps, line)
	}
	if resp := field(t, line, "responses"); resp < 1700 || resp > 2200 {
		t.Errorf("responses/s %v, want about 2000: %s", resp, line)
	}
	if cpu := field(t, line, "cpu"); cpu <= 0 || cpu > 2 {
		t.Errorf("cpu %v, want a share of a core: %s", cpu, line)
	}
}

func TestFloorRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-addr", "10.0.0.1:80"}, "only an IPv4 loopback address"},
		{[]string{"-addr", "localhost"}, "want 127.0.0.1:PORT"},
		{[]string{"-addr", "127.0.0.1:80", "-rate", "0"}, "-rate 0: must be > 0"},
		{[]string{"-addr", "127.0.0.1:80", "-connections", "0"}, "-connections 0: must be 1..10000"},
		{[]string{"-addr", "127.0.0.1:80", "-tick", "1s"}, "-tick 1s: must be 0 (loadramp's) or 10µs..100ms"},
	} {
		var out, errOut bytes.Buffer
		if code := run(tc.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}
