package diagnose

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// NginxDefaultBacklog is nginx's listen backlog on Linux when none is given.
const NginxDefaultBacklog = 511

// NginxDefaultWorkerConnections is nginx's worker_connections when unset.
const NginxDefaultWorkerConnections = 512

// NginxConf is the part of an nginx.conf that bounds connections.
type NginxConf struct {
	Path string `json:"path"`
	// WorkerProcesses is the number of workers; WorkerProcessesAuto says it was
	// "auto" (one per CPU; Audit fills in the host's CPUs).
	WorkerProcesses     int  `json:"worker_processes"`
	WorkerProcessesAuto bool `json:"worker_processes_auto,omitempty"`
	// WorkerConnections is per worker (default 512 when unset).
	WorkerConnections int `json:"worker_connections"`
	// WorkerRlimitNofile is 0 when unset: the workers inherit the master's limit.
	WorkerRlimitNofile int64 `json:"worker_rlimit_nofile,omitempty"`
	// Backlogs are the listen backlogs asked for, one per listen directive
	// (NginxDefaultBacklog where none is given).
	Backlogs []int `json:"backlogs,omitempty"`
	// Proxies is true when the configuration proxies to an upstream.
	Proxies bool `json:"proxies,omitempty"`
}

// MaxConnections is the connections all workers may hold at once.
func (c NginxConf) MaxConnections() int { return max(c.WorkerProcesses, 1) * c.WorkerConnections }

// ParseNginxConf reads the connection-bounding directives of an nginx.conf. It is
// tolerant: comments, quoting and unknown directives are skipped, includes are
// not followed, and the last value of a repeated directive wins.
func ParseNginxConf(text string) NginxConf {
	c := NginxConf{WorkerProcesses: 1, WorkerConnections: NginxDefaultWorkerConnections}
	for _, stmt := range nginxStatements(text) {
		if len(stmt) == 0 {
			continue
		}
		args := stmt[1:]
		switch stmt[0] {
		case "worker_processes":
			if len(args) > 0 {
				if args[0] == "auto" {
					c.WorkerProcessesAuto = true
				} else if n, err := strconv.Atoi(args[0]); err == nil && n > 0 {
					c.WorkerProcesses, c.WorkerProcessesAuto = n, false
				}
			}
		case "worker_connections":
			if len(args) > 0 {
				if n, err := strconv.Atoi(args[0]); err == nil && n > 0 {
					c.WorkerConnections = n
				}
			}
		case "worker_rlimit_nofile":
			if len(args) > 0 {
				if n, err := strconv.ParseInt(args[0], 10, 64); err == nil && n > 0 {
					c.WorkerRlimitNofile = n
				}
			}
		case "listen":
			backlog := NginxDefaultBacklog
			for _, a := range args {
				if v, ok := strings.CutPrefix(a, "backlog="); ok {
					if n, err := strconv.Atoi(v); err == nil {
						backlog = n
					}
				}
			}
			c.Backlogs = append(c.Backlogs, backlog)
		case "proxy_pass", "fastcgi_pass", "uwsgi_pass", "grpc_pass", "scgi_pass":
			c.Proxies = true
		}
	}
	return c
}

// nginxStatements splits a configuration into statements (words up to ';' or
// '{'), dropping comments and quotes.
func nginxStatements(text string) [][]string {
	var out [][]string
	var cur []string
	var word strings.Builder
	flush := func() {
		if word.Len() > 0 {
			cur = append(cur, word.String())
			word.Reset()
		}
	}
	end := func() {
		flush()
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur = nil
	}
	var quote rune
	inComment := false
	for _, r := range text {
		switch {
		case inComment:
			if r == '\n' {
				inComment = false
			}
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				word.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '#':
			flush()
			inComment = true
		case r == ';' || r == '{' || r == '}':
			end()
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			flush()
		default:
			word.WriteRune(r)
		}
	}
	end()
	return out
}

// ProcLimit is a watched process's open-file limit.
type ProcLimit struct {
	Name    string `json:"name"`
	Pid     int    `json:"pid"`
	NoFile  int64  `json:"nofile"` // soft limit; 0 when unlimited or unreadable
	OpenFDs int    `json:"open_fds"`
	Err     string `json:"err,omitempty"`
}

// Audit is a host's limits funnel, outermost first: kernel accept and SYN
// queues and connection tracking, the proxy's connections and open files, the
// processes' open files, the system's file handles and the local port range.
type Audit struct {
	Somaxconn        int64       `json:"somaxconn"`
	TCPMaxSynBacklog int64       `json:"tcp_max_syn_backlog"`
	ConntrackMax     int64       `json:"conntrack_max"` // 0: conntrack not loaded
	FileMax          int64       `json:"file_max"`
	PortRange        []int64     `json:"port_range,omitempty"`
	TCPTWReuse       int64       `json:"tcp_tw_reuse"`
	Nginx            *NginxConf  `json:"nginx,omitempty"`
	Procs            []ProcLimit `json:"procs,omitempty"`
	// Warnings say where the funnel is inverted: an inner layer tighter than an
	// outer one fails deep in the stack, where errors are hardest to read.
	Warnings []string `json:"warnings,omitempty"`
}

// AuditLimits reads the limits funnel of the host whose procfs is at root, of
// the watched processes, and of the nginx configuration at nginxConf ("" for
// none), and warns where it is inverted. A missing procfs file leaves its limit
// at 0; an unreadable nginx.conf is an error.
func AuditLimits(ctx context.Context, root string, procs []hoststat.Proc, nginxConf string) (Audit, error) {
	if root == "" {
		root = hoststat.DefaultRoot
	}
	set := hoststat.Settings(root)
	num := func(name string) int64 { v, _ := hoststat.SettingInt(set, name); return v }
	a := Audit{
		Somaxconn: num("net.core.somaxconn"), TCPMaxSynBacklog: num("net.ipv4.tcp_max_syn_backlog"),
		ConntrackMax: num("net.netfilter.nf_conntrack_max"), FileMax: num("fs.file-max"),
		TCPTWReuse: num("net.ipv4.tcp_tw_reuse"),
	}
	if pr, ok := set["net.ipv4.ip_local_port_range"].([]int64); ok && len(pr) == 2 {
		a.PortRange = pr
	}
	smp, err := hoststat.New(root).Sample(ctx, procs, nil)
	if err != nil {
		return a, fmt.Errorf("audit: sample %s: %w", root, err)
	}
	for _, p := range smp.Procs {
		a.Procs = append(a.Procs, ProcLimit{Name: p.Name, Pid: p.Pid, NoFile: p.FDLimit, OpenFDs: p.FDs, Err: p.Err})
	}
	if nginxConf != "" {
		b, err := os.ReadFile(nginxConf)
		if err != nil {
			return a, fmt.Errorf("audit: read nginx configuration: %w", err)
		}
		c := ParseNginxConf(string(b))
		c.Path = nginxConf
		if c.WorkerProcessesAuto {
			c.WorkerProcesses = max(int(smp.Host[hoststat.HostCPUs]), 1)
		}
		a.Nginx = &c
	}
	a.Warnings = a.check()
	return a, nil
}

func (a Audit) check() []string {
	var w []string
	if a.Nginx != nil {
		n := a.Nginx
		for _, b := range n.Backlogs {
			if a.Somaxconn > 0 && int64(b) > a.Somaxconn {
				w = append(w, fmt.Sprintf("nginx asks for a listen backlog of %d but net.core.somaxconn is %d: the kernel silently caps it", b, a.Somaxconn))
			}
		}
		nofile := n.WorkerRlimitNofile
		src := "worker_rlimit_nofile"
		if nofile == 0 {
			for _, p := range a.Procs {
				if strings.Contains(strings.ToLower(p.Name), "nginx") && p.NoFile > 0 {
					nofile, src = p.NoFile, fmt.Sprintf("the open-file limit of %s (pid %d)", p.Name, p.Pid)
				}
			}
		}
		if nofile > 0 && nofile < 2*int64(n.WorkerConnections) {
			w = append(w, fmt.Sprintf("nginx open files (%s = %d) are under twice worker_connections (%d): a proxied connection holds two fds", src, nofile, n.WorkerConnections))
		}
		if n.Proxies {
			// Each client connection may hold one upstream connection.
			upstream := int64(n.MaxConnections() / 2)
			for _, p := range a.Procs {
				if strings.Contains(strings.ToLower(p.Name), "nginx") || p.NoFile <= 0 {
					continue
				}
				if upstream > p.NoFile {
					w = append(w, fmt.Sprintf("nginx may open %d upstream connections (%d workers x %d worker_connections / 2) but %s accepts only %d open files", upstream, max(n.WorkerProcesses, 1), n.WorkerConnections, p.Name, p.NoFile))
				}
			}
		}
	} else if a.Somaxconn > 0 && a.Somaxconn < NginxDefaultBacklog {
		w = append(w, fmt.Sprintf("net.core.somaxconn is %d: every listen backlog is capped there", a.Somaxconn))
	}
	if a.FileMax > 0 {
		var sum int64
		for _, p := range a.Procs {
			sum += p.NoFile
		}
		if sum > a.FileMax {
			w = append(w, fmt.Sprintf("the watched processes may open %d files together but fs.file-max is %d: the system runs out first (ENFILE)", sum, a.FileMax))
		}
	}
	return w
}

// Static flattens the audit into static parameters for run.json and the report.
func (a Audit) Static() map[string]any {
	m := map[string]any{
		"net.core.somaxconn":           a.Somaxconn,
		"net.ipv4.tcp_max_syn_backlog": a.TCPMaxSynBacklog,
		"fs.file-max":                  a.FileMax,
		"net.ipv4.tcp_tw_reuse":        a.TCPTWReuse,
	}
	if a.ConntrackMax > 0 {
		m["net.netfilter.nf_conntrack_max"] = a.ConntrackMax
	}
	if len(a.PortRange) == 2 {
		m["net.ipv4.ip_local_port_range"] = fmt.Sprintf("%d-%d", a.PortRange[0], a.PortRange[1])
	}
	if n := a.Nginx; n != nil {
		m["nginx.worker_processes"] = n.WorkerProcesses
		m["nginx.worker_connections"] = n.WorkerConnections
		m["nginx.max_connections"] = n.MaxConnections()
		if n.WorkerRlimitNofile > 0 {
			m["nginx.worker_rlimit_nofile"] = n.WorkerRlimitNofile
		}
		if len(n.Backlogs) > 0 {
			m["nginx.listen_backlog"] = n.Backlogs[0]
		}
	}
	for _, p := range a.Procs {
		if p.NoFile > 0 {
			m["nofile."+p.Name] = p.NoFile
		}
	}
	if len(a.Warnings) > 0 {
		m["limits.warnings"] = append([]string(nil), a.Warnings...)
	}
	return m
}

// Print writes the funnel as a table, outermost layer first, then the warnings.
func (a Audit) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(layer, setting string, v any) { fmt.Fprintf(tw, "%s\t%s\t%v\n", layer, setting, v) }
	fmt.Fprintln(tw, "LAYER\tSETTING\tVALUE")
	row("kernel", "net.core.somaxconn", a.Somaxconn)
	row("kernel", "net.ipv4.tcp_max_syn_backlog", a.TCPMaxSynBacklog)
	if a.ConntrackMax > 0 {
		row("kernel", "net.netfilter.nf_conntrack_max", a.ConntrackMax)
	} else {
		row("kernel", "net.netfilter.nf_conntrack_max", "(conntrack not loaded)")
	}
	if n := a.Nginx; n != nil {
		row("nginx", "listen backlog", joinInts(n.Backlogs))
		row("nginx", "worker_processes x worker_connections", fmt.Sprintf("%d x %d = %d", n.WorkerProcesses, n.WorkerConnections, n.MaxConnections()))
		if n.WorkerRlimitNofile > 0 {
			row("nginx", "worker_rlimit_nofile", n.WorkerRlimitNofile)
		} else {
			row("nginx", "worker_rlimit_nofile", "(unset: inherited)")
		}
	}
	procs := append([]ProcLimit(nil), a.Procs...)
	sort.SliceStable(procs, func(i, j int) bool { return procs[i].Name < procs[j].Name })
	for _, p := range procs {
		v := any(p.NoFile)
		switch {
		case p.Err != "":
			v = "(" + p.Err + ")"
		case p.NoFile == 0:
			v = "unlimited"
		}
		row(fmt.Sprintf("%s (pid %d)", p.Name, p.Pid), "open files (soft)", v)
	}
	row("system", "fs.file-max", a.FileMax)
	if len(a.PortRange) == 2 {
		row("system", "net.ipv4.ip_local_port_range", fmt.Sprintf("%d-%d (%d ports)", a.PortRange[0], a.PortRange[1], a.PortRange[1]-a.PortRange[0]+1))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print audit: %w", err)
	}
	if len(a.Warnings) == 0 {
		_, err := fmt.Fprintln(w, "\nfunnel: no inversion found")
		return err
	}
	fmt.Fprintln(w, "\nwarnings:")
	for _, s := range a.Warnings {
		if _, err := fmt.Fprintf(w, "  - %s\n", s); err != nil {
			return fmt.Errorf("print audit: %w", err)
		}
	}
	return nil
}

func joinInts(v []int) string {
	if len(v) == 0 {
		return "-"
	}
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
