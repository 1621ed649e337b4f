package cli

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/diagnose"
	"github.com/loadramp/loadramp/orchestrator/hoststat"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// localSampler samples this host's /proc each second during a step, scans the
// fleets' logs and the kernel log for bottleneck signatures, and diagnoses the
// step's hold window.
type localSampler struct {
	root    string
	host    string
	scanner *diagnose.Scanner
}

func newSampler() orchestrator.StepSampler {
	return &localSampler{root: hoststat.DefaultRoot, host: "local", scanner: diagnose.NewScanner()}
}

func procs(ps []orchestrator.Process) []hoststat.Proc {
	out := make([]hoststat.Proc, 0, len(ps))
	for _, p := range ps {
		out = append(out, hoststat.Proc{Name: p.Name, Pid: p.Pid})
	}
	return out
}

func (s *localSampler) Start(ctx context.Context, spec orchestrator.SampleSpec) (func(orchestrator.StepFacts) (metrics.Metrics, []result.Finding), error) {
	target := withChildren(s.root, procs(spec.Target))
	gen := procs(spec.Generator)
	if len(gen) == 0 {
		// The builtin engine runs inside loadramp: loadramp is the generator.
		gen = []hoststat.Proc{{Name: "loadramp", Pid: os.Getpid()}}
	}
	var sources []diagnose.Source
	for _, p := range spec.Target {
		if p.LogPath != "" {
			sources = append(sources, diagnose.Source{Name: p.Name + " output", Path: p.LogPath, Process: p.Name, Side: "target"})
		}
	}
	for _, p := range spec.Generator {
		if p.LogPath != "" {
			sources = append(sources, diagnose.Source{Name: p.Name + " output", Path: p.LogPath, Process: p.Name, Side: "generator"})
		}
	}
	for _, l := range spec.Logs {
		sources = append(sources, diagnose.Source{Name: l.Path, Path: l.Path, Side: l.Side})
	}
	sources = append(sources, diagnose.Source{Name: "kernel", Path: diagnose.KernelLog})
	s.scanner.Mark(ctx, sources)

	sampler := hoststat.New(s.root)
	holdFrom := time.Now().Add(spec.Warmup)
	var (
		mu      sync.Mutex
		samples []hoststat.Sample
		last    *hoststat.Sample
	)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		sampler.Run(runCtx, time.Second, target, gen, func(smp hoststat.Sample) {
			if spec.Sink != nil {
				spec.Sink(smp)
			}
			mu.Lock()
			defer mu.Unlock()
			// The window starts with the last sample of the warmup, so the
			// first hold second has a counter baseline.
			if smp.Time.Before(holdFrom) {
				c := smp
				last = &c
				return
			}
			if last != nil {
				samples = append(samples, *last)
				last = nil
			}
			samples = append(samples, smp)
		})
	}()
	stop := func(f orchestrator.StepFacts) (metrics.Metrics, []result.Finding) {
		// One last sample closes the window at the end of the hold.
		if smp, err := sampler.Sample(context.Background(), target, gen); err == nil {
			mu.Lock()
			samples = append(samples, smp)
			mu.Unlock()
			if spec.Sink != nil {
				spec.Sink(smp)
			}
		}
		cancel()
		<-done
		mu.Lock()
		sum := hoststat.Window(samples)
		mu.Unlock()
		matches, _ := s.scanner.Scan(context.Background(), sources)
		findings := diagnose.Diagnose(diagnose.Input{
			Host:            s.host,
			Summary:         sum,
			Settings:        hoststat.Settings(s.root),
			Logs:            matches,
			GeneratorErrors: f.ErrorClasses,
		})
		return sum.Metrics(), findings
	}
	return stop, nil
}

// withChildren adds the direct children of every process of ps under its
// name: nginx's workers (worker_rlimit_nofile and worker_connections are
// theirs, the master's counts say nothing about them), or the real server
// behind a shell wrapper.
func withChildren(root string, ps []hoststat.Proc) []hoststat.Proc {
	out := append([]hoststat.Proc(nil), ps...)
	for _, p := range ps {
		if p.Pid <= 0 {
			continue
		}
		for _, c := range hoststat.Children(root, p.Pid) {
			out = append(out, hoststat.Proc{Name: p.Name, Pid: c})
		}
	}
	return out
}
