package eventbus

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestScheduleReserve(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	type step struct {
		now    time.Duration // arrival, after t0
		done   int           // requests leaving the queue before this one arrives
		wantAt time.Duration // slot, after t0
		wantOK bool
	}
	tests := []struct {
		name     string
		rate     float64
		maxQueue int
		maxWait  time.Duration
		steps    []step
	}{
		{"burst is paced at 1/rate", 1000, 100, time.Second, []step{
			{0, 0, 0, true}, {0, 0, 1 * ms, true}, {0, 0, 2 * ms, true}, {0, 0, 3 * ms, true},
		}},
		{"idle server restarts the schedule at now, no saved credit", 1000, 100, time.Second, []step{
			{0, 0, 0, true}, {50 * ms, 1, 50 * ms, true}, {50 * ms, 0, 51 * ms, true}, {51 * ms, 0, 52 * ms, true},
		}},
		{"queue length bound", 1000, 2, time.Second, []step{
			{0, 0, 0, true}, {0, 0, 1 * ms, true}, {0, 0, 0, false}, {0, 1, 2 * ms, true},
		}},
		{"wait bound", 100, 100, 25 * ms, []step{
			{0, 0, 0, true}, {0, 0, 10 * ms, true}, {0, 0, 20 * ms, true}, {0, 0, 0, false}, {5 * ms, 0, 30 * ms, true},
		}},
		{"fractional interval does not drift", 3, 100, 10 * time.Second, []step{
			{0, 0, 0, true}, {0, 0, 333333333, true}, {0, 0, 666666666, true}, {0, 0, 999999999, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSchedule(tt.rate, tt.maxQueue, tt.maxWait)
			for i, st := range tt.steps {
				for range st.done {
					s.done()
				}
				at, ok := s.reserve(t0.Add(st.now))
				if ok != st.wantOK || (ok && at.Sub(t0) != st.wantAt) {
					t.Errorf("step %d: reserve(+%v) = (+%v, %v), want (+%v, %v)", i, st.now, at.Sub(t0), ok, st.wantAt, st.wantOK)
				}
			}
		})
	}
}

// TestCapacityServedRateAndQueueing offers 1.5x the capacity, open loop, for
// 3 s: the served rate must stay at the capacity and the latency (from each
// request's intended send time) must grow as the queue builds.
func TestCapacityServedRateAndQueueing(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 5 s")
	}
	capacity, offered, burst := 1000.0, 1500.0, 3*time.Second
	if raceEnabled {
		capacity, offered = 200, 300
	}
	ts := start(t, Config{Capacity: capacity})
	n := int(offered * burst.Seconds())
	tr := &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	type result struct {
		code      int
		latency   time.Duration
		completed time.Time
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	begin := time.Now()
	maxQueued := int64(0)
	for i := range n {
		intended := begin.Add(time.Duration(float64(i) / offered * float64(time.Second)))
		if d := time.Until(intended); d > 0 {
			time.Sleep(d) // every request already due is released at once
		}
		if i%100 == 0 {
			maxQueued = max(maxQueued, ts.Stats().Queued)
		}
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/publish?topic=cap", strings.NewReader("m"))
			resp, err := client.Do(req)
			if err != nil {
				results[i] = result{code: -1}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			now := time.Now()
			results[i] = result{code: resp.StatusCode, latency: now.Sub(intended), completed: now}
		})
	}
	wg.Wait()

	var done []time.Time
	failed := 0
	for _, r := range results {
		if r.code == http.StatusOK {
			done = append(done, r.completed)
		} else {
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d requests failed; the queue should hold them all", failed, n)
	}
	slices.SortFunc(done, func(a, b time.Time) int { return a.Compare(b) })
	span := done[len(done)-1].Sub(done[0])
	served := float64(len(done)-1) / span.Seconds()
	if served < capacity*0.95 || served > capacity*1.05 {
		t.Errorf("served rate %.1f/s, want %.0f ± 5%%", served, capacity)
	}

	meanLatency := func(rs []result) time.Duration {
		var sum time.Duration
		for _, r := range rs {
			sum += r.latency
		}
		return sum / time.Duration(len(rs))
	}
	tenth := n / 10
	var deciles []time.Duration
	for k := range 10 {
		deciles = append(deciles, meanLatency(results[k*tenth:(k+1)*tenth]))
	}
	for k := 1; k < 10; k++ {
		if deciles[k] <= deciles[k-1] {
			t.Errorf("queueing latency did not grow: decile %d mean %v <= decile %d mean %v", k, deciles[k], k-1, deciles[k-1])
		}
	}
	// At 1.5x capacity the last requests wait for the backlog of about
	// (offered-capacity)*burst requests, i.e. about 1.5 s.
	if first, last := deciles[0], deciles[9]; first > 300*time.Millisecond || last < time.Second {
		t.Errorf("mean latency of the first tenth %v (want < 300ms), of the last tenth %v (want > 1s)", first, last)
	}
	st := ts.Stats()
	t.Logf("served %.1f/s over %v; latency by decile %v; max queued %d; stats %+v", served, span.Round(time.Millisecond), deciles, maxQueued, st)
	if st.Queued != 0 || st.Published != int64(n) {
		t.Errorf("after the burst: queued %d (want 0), published %d (want %d)", st.Queued, st.Published, n)
	}
}
