package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/observe"
)

// procRoot is where this host's procfs is mounted.
const procRoot = hoststat.DefaultRoot

type limitsOptions struct {
	pids      []int
	processes []string
	nginxConf string
}

func (a *app) limitsCmd() *cobra.Command {
	var o limitsOptions
	cmd := &cobra.Command{
		Use:   "limits [--pid N | --process NAME]... [--nginx-conf FILE]",
		Short: "Audit this host's limits funnel and warn where it is inverted",
		Long: `limits reads the limits a connection meets on its way into this host, outermost first:
the kernel's accept queue (net.core.somaxconn) and SYN queue, connection tracking,
nginx's listen backlog, worker connections and open files, the watched processes'
open-file limits, the system's file handles and the local port range. It prints them
as a table and warns where the funnel is inverted: an inner layer tighter than an
outer one fails deep in the stack (a proxied connection holds two files in nginx; an
upstream that accepts fewer connections than nginx may open), where errors are
hardest to read.

Processes are watched by pid (--pid) or by name (--process, matched exactly against
/proc/PID/comm: every process of that name). The nginx configuration is read from
--nginx-conf, or, when a watched process is an nginx master, from its command line
(-p, -c). loadramp run does the same audit when a run starts and records it in
run.json and the report.

Exit codes: 0 the audit ran (warnings included), 1 it could not read what it needs,
2 bad flags (no such pid or process, unreadable --nginx-conf).`,
		Example: `  loadramp limits
  loadramp limits --process nginx
  loadramp limits --process nginx --process eventbus --nginx-conf /etc/nginx/nginx.conf
  loadramp limits --pid 4242`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.limits(cmd, o)
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&o.pids, "pid", nil, "watch the process with this pid (repeatable)")
	f.StringArrayVar(&o.processes, "process", nil, "watch every process with this name in /proc/PID/comm, e.g. nginx (repeatable)")
	f.StringVar(&o.nginxConf, "nginx-conf", "", "nginx configuration to audit (default: from a watched nginx master's command line)")
	return cmd
}

func (a *app) limits(cmd *cobra.Command, o limitsOptions) error {
	var procs []hoststat.Proc
	seen := map[int]bool{}
	watch := func(name string, pid int) {
		if !seen[pid] {
			seen[pid] = true
			procs = append(procs, hoststat.Proc{Name: name, Pid: pid})
		}
	}
	for _, pid := range o.pids {
		if pid <= 0 {
			return usageErr(fmt.Errorf("--pid %d: want a process id > 0", pid))
		}
		name, err := hoststat.Comm(procRoot, pid)
		if err != nil {
			return usageErr(fmt.Errorf("--pid %d: no such process (%w)", pid, err))
		}
		watch(name, pid)
	}
	for _, name := range o.processes {
		if name == "" || strings.Contains(name, "/") {
			return usageErr(fmt.Errorf("--process %q: want a process name as in /proc/PID/comm, such as nginx", name))
		}
		pids, err := hoststat.PidsByComm(procRoot, name)
		if err != nil {
			return withCode(ExitRuntime, err)
		}
		if len(pids) == 0 {
			return usageErr(fmt.Errorf("--process %s: no running process has that name in /proc/PID/comm", name))
		}
		for _, pid := range pids {
			watch(name, pid)
		}
	}
	conf := o.nginxConf
	if conf != "" {
		if _, err := os.Stat(conf); err != nil {
			return usageErr(fmt.Errorf("--nginx-conf: %w", err))
		}
	} else {
		if c, pid, _ := observe.FindNginxConf(procRoot, procs); c != "" {
			conf = c
			fmt.Fprintf(a.io.ErrOut, "nginx configuration: %s (from the command line of pid %d)\n", c, pid)
		}
	}
	audit, err := diagnose.AuditLimits(cmd.Context(), procRoot, procs, conf)
	if err != nil {
		return withCode(ExitRuntime, err)
	}
	if err := audit.Print(a.io.Out); err != nil {
		return withCode(ExitRuntime, err)
	}
	return nil
}
