package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/loadramp/loadramp/internal/wiring"
	"github.com/loadramp/loadramp/orchestrator/agent"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

type agentOptions struct {
	listen    string
	name      string
	tokenFile string
	tlsCert   string
	tlsKey    string
}

func (a *app) agentCmd() *cobra.Command {
	var o agentOptions
	cmd := &cobra.Command{
		Use:   "agent --listen ADDR [--token-file FILE] [--tls-cert FILE --tls-key FILE]",
		Short: "Serve this host to a loadramp coordinator: generate load and observe the host",
		Long: `agent is a long-running server, one per fleet host. A coordinator (loadramp run)
calls it to generate this host's share of each step's load (the generator role) and
to sample this host over each step's window: its counters, its limits, the log lines
of its processes, and its network devices' statistics (the observer role).

Every call needs the agent's bearer token, from --token-file or the
LOADRAMP_AGENT_TOKEN environment variable; a wrong or missing token gets 401. The
agent refuses to listen on an address that is not loopback without a token. With
--tls-cert and --tls-key it serves TLS (the coordinator trusts the CA given in its
plan or configuration); without them, HTTP/2 in clear text, so use it on a private
network only. The coordinator and the agent must run the same loadramp version.

GET /healthz answers "ready" without a token, for readiness checks.

A step runs at most its warmup, hold and grace; a step or sampling window whose
coordinator has not called for its keepalive (10s by default) is stopped by the
agent itself, so a coordinator that dies leaves no load running.

Stop the agent with SIGINT or SIGTERM: it stops any step's load first.`,
		Example: `  loadramp agent --listen 127.0.0.1:7070
  LOADRAMP_AGENT_TOKEN=$(cat /etc/loadramp/token) loadramp agent --listen 10.0.1.5:7070
  loadramp agent --listen :7070 --token-file /etc/loadramp/token --tls-cert agent.pem --tls-key agent.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.agent(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "", "address to listen on, HOST:PORT (required)")
	f.StringVar(&o.name, "name", "", "the agent's name in findings and messages (default: the host name)")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the bearer token (default: $"+wiring.EnvAgentToken+")")
	f.StringVar(&o.tlsCert, "tls-cert", "", "serve TLS with this PEM certificate (with --tls-key)")
	f.StringVar(&o.tlsKey, "tls-key", "", "the PEM key of --tls-cert")
	return cmd
}

func (a *app) agent(ctx context.Context, o agentOptions) error {
	if o.listen == "" {
		return usageErr(errors.New("--listen is required (HOST:PORT, e.g. 127.0.0.1:7070)"))
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return usageErr(fmt.Errorf("--listen %q: want HOST:PORT (%v)", o.listen, err))
	}
	token, err := wiring.AgentToken(o.tokenFile, a.getenv)
	if err != nil {
		return usageErr(err)
	}
	tlsConf, err := wiring.AgentTLS(o.tlsCert, o.tlsKey)
	if err != nil {
		return usageErr(err)
	}
	netdev := &hoststat.Ethtool{}
	defer netdev.Close()
	engines, observer, auditor := wiring.AgentRoles(o.name, "", a.log) // findings named by the server
	srv, err := agent.New(agent.Config{
		Name: o.name, Version: Version, Token: token, NetDev: netdev, Log: a.log,
		Engines: engines, Observer: observer, Auditor: auditor,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("agent: listen %s: %w", o.listen, err)
	}
	if err := agent.CheckBind(ln.Addr(), token); err != nil {
		ln.Close()
		return usageErr(err)
	}
	if token != "" && tlsConf == nil {
		if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
			a.log.Warn().Msg("agent: serving without TLS on a non-loopback address: the token crosses the network in clear text; use --tls-cert on networks you do not trust")
		}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(a.io.Out, "agent %s listening on %s (loadramp %s)\n", srv.Name(), ln.Addr(), Version)
	return srv.Serve(ctx, ln, tlsConf)
}
