package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/loadramp/loadramp/orchestrator/hoststat"
)

// DefaultMemoryShare is the share of the memory available to loadramp (the
// machine's, or its cgroup's limit when lower) that a run may use when the
// configuration does not say (memory_limit).
const DefaultMemoryShare = 0.9

// memoryPoll is how often the guard reads the runtime's memory figures.
const memoryPoll = 100 * time.Millisecond

// MemoryLimit bounds the memory loadramp itself uses during a run. Its zero
// value is DefaultMemoryShare of the memory available.
type MemoryLimit struct {
	// Bytes, when > 0, is the limit.
	Bytes int64
	// Share, when > 0 (and Bytes is not set), is the limit as a share of the
	// memory available (0 < Share <= 1).
	Share float64
	// Off turns the guard off.
	Off bool
}

// resolve is the limit in bytes given the memory available (0: unknown),
// with a sentence saying where it comes from; 0 when there is none.
func (m MemoryLimit) resolve(available int64) (int64, string) {
	switch {
	case m.Off:
		return 0, ""
	case m.Bytes > 0:
		return m.Bytes, "memory_limit"
	case available <= 0:
		return 0, ""
	}
	share := m.Share
	if share <= 0 {
		share = DefaultMemoryShare
	}
	return int64(float64(available) * share), fmt.Sprintf("memory_limit: %g%% of the %s available", share*100, formatBytes(available))
}

// MemoryError stops a run whose loadramp process went over its memory limit.
type MemoryError struct {
	Used, Limit int64
	// From says where the limit comes from.
	From string
}

func (e *MemoryError) Error() string {
	return fmt.Sprintf("loadramp's own memory reached %s, over its limit of %s (%s): the run was stopped before the machine ran out; "+
		"lower the load one loadramp process generates (connections, subscribers, users), spread it over agents, or raise memory_limit",
		formatBytes(e.Used), formatBytes(e.Limit), e.From)
}

func formatBytes(b int64) string {
	const mib = 1 << 20
	if b >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%.0f MiB", math.Ceil(float64(b)/mib))
}

// memoryInUse is what the Go runtime holds from the OS and has not given
// back: the process's memory, bar what cgo and the kernel hold for it.
func memoryInUse() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}

// guardMemory bounds this process's memory at limit while a run goes on: it
// sets the runtime's soft limit (debug.SetMemoryLimit), so the collector
// works harder as the limit nears, and if the memory in use still goes over
// it calls over once with a *MemoryError. stop restores the soft limit that
// was set before and ends the watch. A limit <= 0 watches nothing.
func guardMemory(ctx context.Context, lim MemoryLimit, over func(*MemoryError)) (stop func()) {
	limit, from := lim.resolve(hoststat.MemoryFor(hoststat.DefaultRoot, "/sys/fs/cgroup", os.Getpid()))
	if limit <= 0 {
		return func() {}
	}
	prev := debug.SetMemoryLimit(limit)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(memoryPoll)
		defer t.Stop()
		for {
			if used := memoryInUse(); used > limit {
				over(&MemoryError{Used: used, Limit: limit, From: from})
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		debug.SetMemoryLimit(prev)
	}
}

// memoryCause is the *MemoryError ctx was cancelled with, or nil.
func memoryCause(ctx context.Context) *MemoryError {
	var me *MemoryError
	if errors.As(context.Cause(ctx), &me) {
		return me
	}
	return nil
}
