package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// procRoot is where this host's procfs is mounted.
const procRoot = hoststat.DefaultRoot

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
		c, ok, err := hoststat.NginxConf(procRoot, p.Pid)
		if err != nil {
			a.log.Debug().Err(err).Int("pid", p.Pid).Msg("preflight: reading the command line")
		}
		if !ok {
			continue
		}
		if conf == "" && c != "" {
			conf = c
		}
		for _, w := range hoststat.Children(procRoot, p.Pid) {
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
