// Command eventbus is loadramp's bundled sample target: an HTTP
// publish/subscribe event bus with tunable limits that logs like any Go
// net/http server. See package internal/eventbus for the endpoints.
//
//	eventbus [--listen 127.0.0.1:8080] [--nofile N] [--max-inflight N] [--work 200us]
//	         [--capacity R] [--max-queue N] [--max-wait 10s] [--max-body 65536]
//	         [--subscriber-buffer N] [--max-topics N] [--heartbeat 15s] [--log-requests]
//	         [--accept-rate R] [--no-keepalive]
//
// SIGTERM or SIGINT shuts it down gracefully (exit 0).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/loadramp/loadramp/internal/eventbus"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stderr))
}

// run parses args, serves until a signal arrives and returns the exit code:
// 0 after a clean shutdown, 1 on a runtime error, 2 on bad usage.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	logger := log.New(stderr, "", log.LstdFlags)
	fs := flag.NewFlagSet("eventbus", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := eventbus.DefaultConfig()
	cfg.Logger = logger
	listen := fs.String("listen", eventbus.DefaultListen, "address to listen on")
	nofile := fs.Uint64("nofile", 0, "set this process's open-file limit (RLIMIT_NOFILE) to `N` at start (0: leave it)")
	fs.IntVar(&cfg.MaxInflight, "max-inflight", 0, "publish/subscribe requests in flight beyond `N` get 503 (0: unlimited)")
	fs.DurationVar(&cfg.Work, "work", 0, "CPU time burnt per publish, e.g. 200us")
	fs.Float64Var(&cfg.Capacity, "capacity", 0, "hard capacity in publishes/s; beyond it publishes queue (0: none)")
	fs.Float64Var(&cfg.AcceptRate, "accept-rate", 0, "accept at most `R` new connections/s; the rest wait in the listen queue, which overflows beyond net.core.somaxconn (0: no limit)")
	fs.BoolVar(&cfg.NoKeepAlive, "no-keepalive", false, "close every connection after one answer (clients connect for every request)")
	fs.IntVar(&cfg.MaxQueue, "max-queue", cfg.MaxQueue, "publishes waiting for capacity beyond `N` get 503")
	fs.DurationVar(&cfg.MaxWait, "max-wait", cfg.MaxWait, "publishes that would wait longer for capacity get 503")
	fs.Int64Var(&cfg.MaxBody, "max-body", cfg.MaxBody, "largest message in `bytes`; larger get 413")
	fs.IntVar(&cfg.SubscriberBuffer, "subscriber-buffer", cfg.SubscriberBuffer, "messages buffered per subscriber; a subscriber with a full buffer is dropped")
	fs.IntVar(&cfg.MaxTopics, "max-topics", cfg.MaxTopics, "topics with subscribers beyond `N` are refused with 503")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", cfg.Heartbeat, "interval of SSE heartbeat comments")
	fs.BoolVar(&cfg.LogRequests, "log-requests", false, "log every publish and subscribe request")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "eventbus: unexpected arguments: %q\n", fs.Args())
		return 2
	}
	for _, f := range []struct {
		name string
		bad  bool
	}{
		{"max-queue", cfg.MaxQueue <= 0}, {"max-wait", cfg.MaxWait <= 0}, {"max-body", cfg.MaxBody <= 0},
		{"subscriber-buffer", cfg.SubscriberBuffer <= 0}, {"max-topics", cfg.MaxTopics <= 0}, {"heartbeat", cfg.Heartbeat <= 0},
	} {
		if f.bad {
			fmt.Fprintf(stderr, "eventbus: --%s must be > 0\n", f.name)
			return 2
		}
	}
	srv, err := eventbus.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *nofile > 0 {
		soft, hard, err := eventbus.SetNofile(*nofile)
		if err != nil {
			logger.Printf("eventbus: %v", err)
			return 1
		}
		logger.Printf("eventbus: open-file limit set to %d (was soft %d, hard %d)", *nofile, soft, hard)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Printf("eventbus: %v", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := srv.Serve(ctx, ln); err != nil {
		logger.Print(err)
		if ctx.Err() != nil {
			// Asked to stop, and stopped, if not all gracefully.
			return 0
		}
		return 1
	}
	return 0
}
