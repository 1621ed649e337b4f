package pubsub

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// secTable holds a step's per-second counts. A second's entry is made when
// something first happens in it and freed once it is reported, so memory
// follows the few seconds in flight, not the step's length (a 24 h hold has
// 86,400 seconds; a histogram each, made up front, would be over a gigabyte).
// Its caller serializes access.
type secTable struct {
	total    int // seconds in the step (warmup + hold, rounded up)
	reported int // seconds before this one are reported and freed
	live     map[int]*secStat
	// spare holds the histograms of reported seconds for reuse.
	spare []*hdrhistogram.Histogram
	// late absorbs what happens in a second already reported: it is in no
	// second of the series (as before, when it was added after the fact).
	late secStat
}

func newSecTable(total int) *secTable {
	return &secTable{total: total, live: map[int]*secStat{}, late: secStat{hist: metrics.NewHistogram(2)}}
}

// at returns the counts of the second at d after the step's start (clamped
// to the step).
func (t *secTable) at(d time.Duration) *secStat {
	i := min(max(int(d/time.Second), 0), t.total-1)
	if i < t.reported {
		return &t.late
	}
	s, ok := t.live[i]
	if !ok {
		s = &secStat{}
		if n := len(t.spare); n > 0 {
			s.hist, t.spare = t.spare[n-1], t.spare[:n-1]
		} else {
			s.hist = metrics.NewHistogram(2)
		}
		t.live[i] = s
	}
	return s
}

// take returns second i's counts (zero when nothing happened in it) and frees
// it; what happens in it later goes nowhere.
func (t *secTable) take(i int) secStat {
	t.reported = max(t.reported, i+1)
	s, ok := t.live[i]
	if !ok {
		return secStat{}
	}
	delete(t.live, i)
	out := *s
	return out
}

// recycle hands a taken second's histogram back for reuse.
func (t *secTable) recycle(s secStat) {
	if s.hist != nil {
		s.hist.Reset()
		t.spare = append(t.spare, s.hist)
	}
}
