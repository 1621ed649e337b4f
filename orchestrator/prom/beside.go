package prom

import (
	"net"
	"strings"

	"github.com/loadramp/loadramp/orchestrator/result"
)

// Beside merges the findings of hosts observed directly (an agent's or the
// local sampler's reading of the host's own /proc, its settings and logs)
// with those of hosts seen through their exporters (node_exporter,
// process-exporter). Direct observation wins: it sees per-process limits,
// kernel settings and log lines an exporter does not export. An exporter's
// finding about a host that is also observed directly
//
//   - joins the direct finding of the same rule (and process) as evidence
//     ("exporter agrees: ... (node_netstat_TcpExt_ListenOverflows from
//     node_exporter at 10.0.0.5:9100)"), so the two are shown side by side;
//   - is kept as its own finding when the direct observation did not name
//     that rule: the exporter saw something the direct reading missed.
//
// Hosts are the same when their host names are (ports aside), so an agent
// at 10.0.0.5:7070 and a node_exporter at 10.0.0.5:9100 are one host.
// direct comes first in the result, in its own order.
func Beside(direct, exporter []result.Finding) []result.Finding {
	out := append([]result.Finding(nil), direct...)
	for _, f := range exporter {
		i := -1
		for j := range out[:len(direct)] {
			d := out[j]
			if d.Rule == f.Rule && d.Process == f.Process && SameHost(d.Host, f.Host) {
				i = j
				break
			}
		}
		if i < 0 {
			out = append(out, f)
			continue
		}
		ev := append([]string(nil), out[i].Evidence...)
		for _, e := range f.Evidence {
			ev = append(ev, "exporter agrees: "+e)
		}
		out[i].Evidence = ev
	}
	return out
}

// SameHost reports whether two host names in findings name one machine:
// equal host parts of host:port, with "localhost" and the loopback
// addresses one name.
func SameHost(a, b string) bool {
	return hostPart(a) == hostPart(b)
}

func hostPart(s string) string {
	h := s
	if host, _, err := net.SplitHostPort(s); err == nil {
		h = host
	}
	h = strings.ToLower(strings.Trim(h, "[]"))
	if h == "localhost" || h == "local" {
		return "127.0.0.1"
	}
	if ip := net.ParseIP(h); ip != nil {
		if ip.IsLoopback() {
			return "127.0.0.1"
		}
		return ip.String()
	}
	return h
}
