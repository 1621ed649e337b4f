// Command ssebench holds many Server-Sent Events subscribers open with loadramp's
// pubsub workload (orchestrator/pubsub) against an event bus and prints, on one
// line of key=value pairs, what holding them costs the generator: its resident
// memory per subscriber, and its CPU while the subscribers are idle and while
// messages are delivered to all of them. bench/generator.sh runs it.
//
//	ssebench -bus http://127.0.0.1:8080 -subscribers 20000 -rate 1
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/delivery"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/pubsub"
	"github.com/loadramp/loadramp/orchestrator/result"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// sample is the process's CPU time and resident memory at one second of a step.
type sample struct {
	t   int
	cpu time.Duration
	rss int64
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ssebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bus := fs.String("bus", "", "event bus base URL (http://host:port)")
	subs := fs.Int("subscribers", 20000, "SSE subscribers held open")
	idle := fs.Duration("idle", 10*time.Second, "how long the subscribers are held idle")
	rate := fs.Float64("rate", 1, "messages/s published while delivering (each reaches every subscriber)")
	hold := fs.Duration("hold", 10*time.Second, "how long messages are delivered")
	// Another server than the bundled bus: its publish and subscribe URLs
	// (ws:// for WebSocket subscribers) and how it confirms (plan.md).
	pubURL := fs.String("publish", "", "publish URL instead of the bus's (with -subscribe)")
	subURL := fs.String("subscribe", "", "subscribe URL instead of the bus's: http(s):// for SSE, ws(s):// for WebSocket")
	confirm := fs.String("confirm", `comment ": subscribed"`, "confirmation of the subscriptions (none, first-event, comment PREFIX)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *bus != "" && *pubURL == "" {
		*pubURL, *subURL = *bus+"/publish?topic=ssebench", *bus+"/subscribe?topic=ssebench"
	}
	if *pubURL == "" || *subURL == "" || *subs < 1 || *rate <= 0 || *idle < 3*time.Second || *hold < 3*time.Second {
		fmt.Fprintln(stderr, "ssebench: -bus (or -publish and -subscribe) is required; -subscribers and -rate must be > 0, -idle and -hold >= 3s")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := pubsub.New(pubsub.Config{
		Bus:       delivery.Bus{Publish: *pubURL, Subscribe: *subURL, Confirm: *confirm, Settle: delivery.DefaultSettle},
		BodyBytes: 64,
		Timeout:   30 * time.Second,
		Log:       zerolog.New(stderr).With().Timestamp().Logger(),
	})
	if err != nil {
		fmt.Fprintln(stderr, "ssebench:", err)
		return 2
	}
	defer e.Close()

	runtime.GC()
	base := rss()

	// Idle: one message in the first second of warmup (the first publish is due
	// at once), none in the hold.
	const warmup = 2 * time.Second
	idleS, idleM, err := step(ctx, e, pubsub.Step{Publishers: 1, Subscribers: *subs, Rate: 1 / (warmup + *idle + time.Hour).Seconds(),
		Warmup: warmup, Hold: *idle})
	if err != nil {
		fmt.Fprintln(stderr, "ssebench: idle step:", err)
		return 1
	}
	held := int(idleM[pubsub.Subscribers])
	delS, delM, err := step(ctx, e, pubsub.Step{Publishers: 1, Subscribers: *subs, Rate: *rate, Warmup: warmup, Hold: *hold})
	if err != nil {
		fmt.Fprintln(stderr, "ssebench: delivering step:", err)
		return 1
	}
	// Idle CPU: from the end of the warmup second that delivered the one message.
	idleCPU := cpuShare(idleS, int(warmup/time.Second))
	delCPU := cpuShare(delS, int(warmup/time.Second))
	peakIdle := int64(0)
	for _, s := range idleS {
		peakIdle = max(peakIdle, s.rss)
	}
	perSub := 0.0
	if held > 0 {
		perSub = float64(peakIdle-base) / float64(held) / 1024
	}
	fmt.Fprintf(stdout, "ssebench subscribers=%d held=%d rss_base_mb=%.1f rss_idle_peak_mb=%.1f rss_per_subscriber_kib=%.1f "+
		"cpu_idle=%.3f cpu_delivering=%.3f deliveries_per_s=%.0f delivery_p99_ms=%.1f lost_ratio=%.4f gomaxprocs=%d\n",
		*subs, held, float64(base)/1e6, float64(peakIdle)/1e6, perSub, idleCPU, delCPU,
		delM[pubsub.DeliveredRPS], delM[pubsub.DelayP99]*1e3, delM[pubsub.LostRatio], runtime.GOMAXPROCS(0))
	if held < *subs {
		fmt.Fprintf(stderr, "ssebench: only %d of %d subscribers held\n", held, *subs)
		return 1
	}
	return 0
}

// step runs one step and samples CPU and memory at every second of it.
func step(ctx context.Context, e *pubsub.Engine, s pubsub.Step) ([]sample, metrics.Metrics, error) {
	var mu sync.Mutex
	var samples []sample
	s.OnSecond = func(sec result.Second) {
		v := sample{t: sec.T, cpu: cpuTime(), rss: rss()}
		mu.Lock()
		samples = append(samples, v)
		mu.Unlock()
	}
	res, err := e.Run(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	return samples, res.Metrics, nil
}

// cpuShare is the CPU used from the end of second `from` to the last sample, as a
// share of the CPUs the process may use.
func cpuShare(s []sample, from int) float64 {
	var a, b *sample
	for i := range s {
		if s[i].t == from-1 && a == nil {
			a = &s[i]
		}
		b = &s[i]
	}
	if a == nil || b == nil || b.t <= a.t {
		return 0
	}
	return (b.cpu - a.cpu).Seconds() / float64(b.t-a.t) / float64(runtime.GOMAXPROCS(0))
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss is the process's resident set size in bytes (VmRSS).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
