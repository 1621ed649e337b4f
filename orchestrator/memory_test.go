package orchestrator

import (
	"errors"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

func TestMemoryLimitResolve(t *testing.T) {
	if lim, from := (MemoryLimit{}).resolve(10 << 30); lim != 9<<30 || !strings.Contains(from, "90% of the 10.0 GiB available") {
		t.Errorf("default limit of 10 GiB: %d (%s)", lim, from)
	}
	if lim, _ := (MemoryLimit{Off: true}).resolve(10 << 30); lim != 0 {
		t.Errorf("off: %d", lim)
	}
}

// TestAMemoryLimitEndsTheRunInErrorNotAsAnInterrupt: a run whose loadramp
// goes over its memory limit is stopped, torn down and recorded as an error
// naming the limit (exit 1 in the CLI), not as an interrupt or a crash; the
// runtime's soft limit is restored after it.
func TestAMemoryLimitEndsTheRunInErrorNotAsAnInterrupt(t *testing.T) {
	f := newFakeRun(t, fakePlan, 1e9, 0, 1)
	d := f.deps()
	d.MemoryLimit = MemoryLimit{Bytes: 1 << 20} // less than any Go process holds
	before := debug.SetMemoryLimit(-1)
	res, err := Run(f.ctx, f.p, d, f.opts)
	var me *MemoryError
	if !errors.As(err, &me) || me.Limit != 1<<20 || !strings.Contains(err.Error(), "memory_limit") {
		t.Fatalf("Run: %v, want a *MemoryError naming memory_limit", err)
	}
	if res == nil || res.Interrupted || res.Status != result.StatusError {
		t.Fatalf("result %+v: want status error, not interrupted", res)
	}
	torndown(t, f)
	dir, err := record.Open(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	run, err := dir.ReadRun()
	if err != nil || run.Status != result.StatusError || !strings.Contains(run.Error, "over its limit of 1 MiB") {
		t.Errorf("run.json: %+v, %v", run, err)
	}
	if after := debug.SetMemoryLimit(-1); after != before {
		t.Errorf("soft memory limit after the run %d, want %d as before", after, before)
	}
}
