package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/loadramp/loadramp/internal/wiring"
	"github.com/loadramp/loadramp/orchestrator"
	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// progress prints the run as it goes: on a terminal a line per step that
// updates every second, otherwise (plain) a line per finished step attempt.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	live  bool
	none  bool
	start time.Time
	// open is true while a live line is on screen without its newline.
	open bool
}

func newObserver(s IO, mode string) *progress {
	p := &progress{w: s.ErrOut, start: time.Now()}
	switch mode {
	case "none":
		p.none = true
	case "auto":
		p.live = s.IsTerminal
	}
	return p
}

var _ orchestrator.Observer = (*progress)(nil)

func (p *progress) printf(format string, args ...any) {
	if p.open {
		fmt.Fprint(p.w, "\r\033[K")
		p.open = false
	}
	fmt.Fprintf(p.w, format, args...)
}

func (p *progress) RunStarted(id, dir string, steps int) {
	if p.none {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.printf("run %s: %d steps scheduled; run directory %s\n", id, steps, dir)
}

func stepLabel(s orchestrator.StepInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "step %2d", s.Index)
	if s.Kind != result.KindRamp {
		fmt.Fprintf(&b, " %s %d", s.Kind, s.Attempt)
	}
	b.WriteString(":")
	for _, name := range s.ParamOrder {
		mark := ""
		if name == s.Changed {
			mark = "*"
		}
		fmt.Fprintf(&b, " %s%s=%s", mark, name, wiring.ParamValue(s.Params[name]))
	}
	return b.String()
}

func (p *progress) StepStarted(s orchestrator.StepInfo) {
	if p.none || !p.live {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.printf("%s  starting", stepLabel(s))
	p.open = true
}

func (p *progress) Second(s orchestrator.StepInfo, sec result.Second) {
	if p.none || !p.live {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.printf("%s  [%d/%ds] %d req/s  p99 %s  errors %d", stepLabel(s), sec.T+1, s.Seconds,
		sec.Requests, metrics.FormatValue(metrics.LatencyP99, sec.P99), sec.Errors)
	p.open = true
}

func (p *progress) StepEnded(s orchestrator.StepInfo, rec *result.Step) {
	if p.none {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m := rec.Metrics
	line := fmt.Sprintf("%s  %s req/s  p99 %s  errors %s  -> %s", stepLabel(s),
		metrics.FormatValue(metrics.ThroughputRPS, m[metrics.ThroughputRPS]),
		metrics.FormatValue(metrics.LatencyP99, m[metrics.LatencyP99]),
		metrics.FormatValue(metrics.ErrorsRatio, m[metrics.ErrorsRatio]), rec.Verdict)
	if rec.Verdict != result.VerdictPass && rec.Reason != "" {
		line += " (" + rec.Reason + ")"
	}
	p.printf("%s\n", line)
}

func (p *progress) Message(format string, args ...any) {
	if p.none {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.printf(format+"\n", args...)
}
