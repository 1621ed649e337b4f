package eventbus

import (
	"context"
	"io"
	"net/http"
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
// 3 s: the served rate must stay at the capacity while a backlog exists and
// the latency (from each request's intended send time) must grow as the
// queue builds.
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

	// Open the connections the backlog will need beforehand, so the test's
	// own dialing does not slow the generator below the offered rate.
	backlog := int((offered - capacity) * burst.Seconds())
	var warm sync.WaitGroup
	for range backlog + 100 {
		warm.Go(func() {
			if resp, err := client.Get(ts.url + "/healthz"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	warm.Wait()

	// The served rate is read from the server's counter while its queue
	// is non-empty, which is independent of how fast this client reads
	// the answers.
	type sample struct {
		at        time.Time
		published int64
		queued    int64
	}
	var samples []sample
	samplerDone := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(samplerDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			st := ts.Stats()
			samples = append(samples, sample{time.Now(), st.Published, st.Queued})
			select {
			case <-tick.C:
			case <-stopSampling:
				return
			}
		}
	}()

	type result struct {
		code    int
		latency time.Duration
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	begin := time.Now()
	for i := range n {
		intended := begin.Add(time.Duration(float64(i) / offered * float64(time.Second)))
		if d := time.Until(intended); d > 0 {
			time.Sleep(d) // every request already due is released at once
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
			results[i] = result{code: resp.StatusCode, latency: time.Since(intended)}
		})
	}
	sendLag := time.Since(begin) - burst
	wg.Wait()
	close(stopSampling)
	<-samplerDone

	failed := 0
	for _, r := range results {
		if r.code != http.StatusOK {
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d requests failed; the queue should hold them all", failed, n)
	}

	// The longest run of samples with a backlog at both ends.
	bestFrom, bestTo := 0, 0
	for from := 0; from < len(samples); from++ {
		if samples[from].queued == 0 {
			continue
		}
		to := from
		for to+1 < len(samples) && samples[to+1].queued > 0 {
			to++
		}
		if to-from > bestTo-bestFrom {
			bestFrom, bestTo = from, to
		}
		from = to
	}
	a, b := samples[bestFrom], samples[bestTo]
	window := b.at.Sub(a.at)
	if window < time.Second {
		t.Fatalf("the queue held a backlog for only %v (generator lag %v): the test's client could not offer %.0f/s", window, sendLag, offered)
	}
	served := float64(b.published-a.published) / window.Seconds()
	if served < capacity*0.95 || served > capacity*1.05 {
		t.Errorf("served rate %.1f/s over %v of backlog, want %.0f ± 5%%", served, window.Round(time.Millisecond), capacity)
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
	maxQueued := int64(0)
	for k := range 10 {
		deciles = append(deciles, meanLatency(results[k*tenth:(k+1)*tenth]))
	}
	for _, s := range samples {
		maxQueued = max(maxQueued, s.queued)
	}
	// At 1.5x capacity the last requests wait behind a backlog of about
	// (offered-capacity)*burst requests, i.e. about 1.5 s.
	if !(deciles[0] < deciles[5] && deciles[5] < deciles[9]) || deciles[9]-deciles[0] < time.Second {
		t.Errorf("queueing latency did not grow by more than 1s across the burst: mean latency by tenth %v", deciles)
	}
	t.Logf("served %.1f/s over %v of backlog; max queued %d; generator lag %v; mean latency by tenth %v",
		served, window.Round(time.Millisecond), maxQueued, sendLag.Round(time.Millisecond), deciles)
	if st := ts.Stats(); st.Queued != 0 || st.Published != int64(n) {
		t.Errorf("after the burst: queued %d (want 0), published %d (want %d)", st.Queued, st.Published, n)
	}
}
