package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// procRoot is where this host's procfs is mounted.
const procRoot = "/proc"

// debianNginxConf is the configuration Debian's nginx reads without -c.
const debianNginxConf = "/etc/nginx/nginx.conf"

// preflight audits this host's limits funnel once the fleets are up: the
// kernel's accept queues, connection tracking, the target processes' open
// files and, when the target runs nginx, its configuration (found from the
// nginx master's command line). nginx workers are watched beside their master,
// since worker_rlimit_nofile applies to them only.
func (a *app) preflight(ctx context.Context, target []orchestrator.Process) (map[string]any, []string, error) {
	var procs []hoststat.Proc
	conf := ""
	for _, p := range target {
		if p.Pid <= 0 {
			continue
		}
		procs = append(procs, hoststat.Proc{Name: p.Name, Pid: p.Pid})
		c, ok, err := nginxConfOf(procRoot, p.Pid)
		if err != nil {
			a.log.Debug().Err(err).Int("pid", p.Pid).Msg("preflight: reading the command line")
		}
		if !ok {
			continue
		}
		if conf == "" && c != "" {
			conf = c
		}
		for _, w := range childrenOf(procRoot, p.Pid) {
			procs = append(procs, hoststat.Proc{Name: p.Name + " worker", Pid: w})
		}
	}
	if conf != "" {
		if _, err := os.Stat(conf); err != nil {
			a.log.Warn().Err(err).Msg("preflight: nginx configuration not readable; auditing without it")
			conf = ""
		}
	}
	audit, err := diagnose.AuditLimits(ctx, procRoot, procs, conf)
	if err != nil {
		return nil, nil, fmt.Errorf("preflight limits audit: %w", err)
	}
	return audit.Static(), audit.Warnings, nil
}

// cmdline reads a process's command line. nginx rewrites its own (the
// "nginx: master process /usr/sbin/nginx -c ..." title) into one string with
// spaces: such a title is split on blanks.
func cmdline(root string, pid int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("command line of pid %d: %w", pid, err)
	}
	var args []string
	for _, a := range bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}) {
		args = append(args, string(a))
	}
	if len(args) == 1 && strings.HasPrefix(args[0], "nginx: ") {
		args = strings.Fields(args[0])
	}
	return args, nil
}

// nginxConfOf returns the configuration file of nginx process pid, from its
// command line: -c FILE, relative to the -p prefix (itself relative to the
// process's working directory), or Debian's default without -c. ok is false
// when pid is not nginx; conf is "" for a worker or cache process (its title
// no longer holds the master's flags).
func nginxConfOf(root string, pid int) (conf string, ok bool, err error) {
	args, err := cmdline(root, pid)
	if err != nil {
		return "", false, err
	}
	isNginx := false
	start := 0
	for i, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		if filepath.Base(a) == "nginx" || a == "nginx:" {
			isNginx, start = true, i+1
		}
	}
	if !isNginx || len(args) == 0 {
		return "", false, nil
	}
	if args[0] == "nginx:" && (len(args) < 2 || args[1] != "master") {
		return "", true, nil
	}
	var prefix, file string
	for i := start; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "-p" || a == "-c") && i+1 < len(args):
			if a == "-p" {
				prefix = args[i+1]
			} else {
				file = args[i+1]
			}
			i++
		case strings.HasPrefix(a, "-p") && len(a) > 2:
			prefix = a[2:]
		case strings.HasPrefix(a, "-c") && len(a) > 2:
			file = a[2:]
		}
	}
	if file == "" {
		return debianNginxConf, true, nil
	}
	if filepath.IsAbs(file) {
		return filepath.Clean(file), true, nil
	}
	if prefix == "" {
		// Without -p, a relative -c is relative to the compiled-in prefix.
		return filepath.Join(filepath.Dir(debianNginxConf), file), true, nil
	}
	if !filepath.IsAbs(prefix) {
		cwd, err := os.Readlink(filepath.Join(root, strconv.Itoa(pid), "cwd"))
		if err != nil {
			return "", true, fmt.Errorf("working directory of pid %d (for the relative prefix %q): %w", pid, prefix, err)
		}
		prefix = filepath.Join(cwd, prefix)
	}
	return filepath.Join(prefix, file), true, nil
}

// childrenOf lists the pids whose parent is pid, from /proc/*/stat.
func childrenOf(root string, pid int) []int {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 2 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	sort.Ints(out)
	return out
}
