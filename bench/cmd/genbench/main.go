// Command genbench drives loadramp's builtin generator (orchestrator/loadgen) against
// one URL for one step and prints what it measured on one line of key=value pairs,
// for bench/generator.sh to compare with wrk and vegeta.
//
//	genbench -url http://127.0.0.1:8080/ -rate 0 -connections 64 -duration 10s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/loadgen"
	"github.com/loadramp/loadramp/orchestrator/metrics"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("genbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "target URL (http:// or https://)")
	method := fs.String("method", "", "request method (default GET, or POST with -body)")
	body := fs.String("body", "", "request body")
	rate := fs.Float64("rate", 0, "offered requests/s; 0 = as fast as the connections allow")
	conns := fs.Int("connections", 64, "keep-alive connections")
	duration := fs.Duration("duration", 10*time.Second, "measured hold")
	warmup := fs.Duration("warmup", 0, "warmup before the hold")
	poisson := fs.Bool("poisson", false, "Poisson arrivals")
	name := fs.String("name", "loadramp", "label printed first")
	tick := fs.Duration("tick", 0, "shortest time between two dispatcher wake-ups (0: by the rate)")
	eager := fs.Bool("eager", false, "read every response as it arrives, never at the dispatcher's ticks")
	workers := fs.Bool("workers", false, "each connection's goroutine sends and reads (at the dispatcher's ticks), not the dispatcher's loop")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the step to this file")
	mix := fs.Bool("mix", false, "send a three-request mix (6:3:1, one template variable, one response check) under -url instead of -url itself")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *url == "" {
		fmt.Fprintln(stderr, "genbench: -url is required")
		return 2
	}
	var headers map[string]string
	if *body != "" {
		headers = map[string]string{"Content-Type": "application/json"}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	log := zerolog.New(stderr).With().Timestamp().Logger()
	target := loadgen.Target{URL: *url, Method: *method, Body: []byte(*body), Headers: headers}
	if *mix {
		target = mixTarget(*url)
	}
	opts := []loadgen.Option{loadgen.WithLogger(log), loadgen.WithDispatchTick(*tick)}
	if *eager {
		opts = append(opts, loadgen.WithEagerReads())
	}
	if *workers {
		opts = append(opts, loadgen.WithWorkerReads())
	}
	g, err := loadgen.New(target, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "genbench:", err)
		return 2
	}
	defer g.Close()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "genbench:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "genbench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	w, err := g.Run(ctx, loadgen.Step{Rate: *rate, Connections: *conns, Warmup: *warmup, Hold: *duration, Poisson: *poisson})
	if err != nil {
		fmt.Fprintln(stderr, "genbench:", err)
		if w == nil {
			return 1
		}
	}
	m := w.Metrics()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Fprintf(stdout, "%s rps=%.1f offered=%.1f requests=%d errors=%d gen_errors=%d "+
		"latency_p50_ms=%.3f latency_p99_ms=%.3f service_p99_ms=%.3f lag_p50_ms=%.3f lag_p99_ms=%.3f "+
		"blocked=%.4f cpu=%.3f starved=%.3f starved_peak=%.3f steal=%.3f steal_peak=%.3f gc_pause_max_ms=%.3f peak_rss_mb=%.1f\n",
		*name, m[metrics.ThroughputRPS], m[metrics.ThroughputOffered], w.Requests, w.Errors, w.GeneratorErrors,
		m[metrics.LatencyP50]*1e3, m[metrics.LatencyP99]*1e3, m[metrics.ServiceP99]*1e3,
		m[metrics.GeneratorLagP50]*1e3, m[metrics.GeneratorLagP99]*1e3,
		m[metrics.GeneratorBlockedRatio], m[metrics.GeneratorCPU], m[metrics.GeneratorStarvedRatio], m[metrics.GeneratorStarvedPeak],
		m[metrics.GeneratorStealRatio], m[metrics.GeneratorStealPeak], m[metrics.GeneratorGCPauseMax]*1e3,
		float64(ru.Maxrss)/1024)
	if *mix {
		fmt.Fprintf(stdout, "%s mix%s\n", *name, mixShares(w))
	}
	if err != nil {
		return 1
	}
	return 0
}
