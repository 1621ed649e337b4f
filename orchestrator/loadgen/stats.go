package loadgen

import (
	"math"
	rtmetrics "runtime/metrics"
	"sync"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// secondDigits: the per-second histograms only feed the series' p50/p99, so
// 2 significant digits are enough there and keep one per shard small.
const secondDigits = 2

// shard is one worker group's recorder. Connections share shards (a few per CPU)
// rather than owning one each, so memory does not grow with the connection count;
// the mutex is nearly uncontended.
type shard struct {
	mu sync.Mutex
	// Window (hold only).
	lat, svc   *hdrhistogram.Histogram
	classes    [numClasses]int64
	sent       int64
	outOfRange int64
	// Current second (warmup included); taken and reset by the controller each second.
	secLat      *hdrhistogram.Histogram
	secRequests int64
	secErrors   int64
	// reqs are the window's figures per request of a named mix (empty for a
	// lone unnamed request).
	reqs []reqStats
	_    [64]byte // keep neighbouring shards' mutexes off one cache line
}

// reqStats are one request's window figures in one shard.
type reqStats struct {
	lat     *hdrhistogram.Histogram
	classes [numClasses]int64
	sent    int64
}

// perRequest sizes s's per-request figures for n requests (0: none).
func (s *shard) perRequest(n int) {
	for len(s.reqs) < n {
		s.reqs = append(s.reqs, reqStats{lat: metrics.NewHistogram(metrics.HistDigits)})
	}
	s.reqs = s.reqs[:n]
}

func newShard() *shard {
	return &shard{lat: metrics.NewHistogram(metrics.HistDigits), svc: metrics.NewHistogram(metrics.HistDigits), secLat: metrics.NewHistogram(secondDigits)}
}

func (s *shard) reset() {
	s.lat.Reset()
	s.svc.Reset()
	s.secLat.Reset()
	s.classes = [numClasses]int64{}
	s.sent, s.outOfRange, s.secRequests, s.secErrors = 0, 0, 0, 0
	for i := range s.reqs {
		s.reqs[i].lat.Reset()
		s.reqs[i].classes = [numClasses]int64{}
		s.reqs[i].sent = 0
	}
}

// outcome is one request's result. Times are nanoseconds from the step's start.
type outcome struct {
	intended, sent, done int64
	cls                  class
	wasSent              bool
	inWindow             bool
	req                  int // the request of the mix (index)
}

func (s *shard) record(o outcome) {
	latUS := (o.done - o.intended) / 1e3
	s.mu.Lock()
	s.secRequests++
	if o.cls != clsOK && !o.cls.generatorSide() {
		s.secErrors++
	}
	if !o.cls.generatorSide() {
		_ = s.secLat.RecordValue(clampUS(latUS))
	}
	if o.inWindow {
		s.classes[o.cls]++
		if o.wasSent {
			s.sent++
		}
		if !o.cls.generatorSide() {
			if s.lat.RecordValue(latUS) != nil {
				s.outOfRange++
				_ = s.lat.RecordValue(metrics.HistMaxUS)
			}
		}
		if o.cls.answered() {
			_ = s.svc.RecordValue(clampUS((o.done - o.sent) / 1e3))
		}
		if o.req < len(s.reqs) {
			rs := &s.reqs[o.req]
			rs.classes[o.cls]++
			if o.wasSent {
				rs.sent++
			}
			if !o.cls.generatorSide() {
				_ = rs.lat.RecordValue(clampUS(latUS))
			}
		}
	}
	s.mu.Unlock()
}

// clampUS clamps a duration in microseconds to the histograms' range.
func clampUS(v int64) int64 { return min(max(v, 0), metrics.HistMaxUS) }

const gcPauses = "/sched/pauses/total/gc:seconds"

// gcSnapshot reads the cumulative GC pause histogram.
func gcSnapshot() *rtmetrics.Float64Histogram {
	s := []rtmetrics.Sample{{Name: gcPauses}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindFloat64Histogram {
		return nil
	}
	return s[0].Value.Float64Histogram()
}

// gcPauseStats returns the p99 and max of GC pauses between two snapshots, in
// seconds, from bucket upper bounds (the histogram's resolution).
func gcPauseStats(before, after *rtmetrics.Float64Histogram) (p99, maxv float64) {
	if before == nil || after == nil || len(before.Counts) != len(after.Counts) {
		return 0, 0
	}
	var total uint64
	delta := make([]uint64, len(after.Counts))
	for i := range after.Counts {
		delta[i] = after.Counts[i] - before.Counts[i]
		total += delta[i]
	}
	if total == 0 {
		return 0, 0
	}
	upper := func(i int) float64 {
		u := after.Buckets[i+1]
		if math.IsInf(u, 1) {
			u = after.Buckets[i]
		}
		return u
	}
	want := uint64(math.Ceil(0.99 * float64(total)))
	var seen uint64
	p99 = -1
	for i, n := range delta {
		if n == 0 {
			continue
		}
		seen += n
		if p99 < 0 && seen >= want {
			p99 = upper(i)
		}
		maxv = upper(i)
	}
	return p99, maxv
}
