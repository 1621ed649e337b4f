package probe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/loadramp/loadramp/orchestrator/metrics"
)

// maxBody bounds how much of a response body the http probe reads to look
// for Expect.
const maxBody = 1 << 20

// HTTP is the http probe: periodic GETs of one URL, each judged by status
// and, optionally, body. probe.delay.* is the latency from each request's
// intended send time; probe.lost.ratio is the share of requests that failed.
type HTTP struct {
	cfg Config
	own bool
}

// Step implements Prober.
func (p *HTTP) Step(ctx context.Context, warmup, hold time.Duration) (metrics.Metrics, error) {
	var (
		mu                 sync.Mutex
		hist               = metrics.NewHistogram(metrics.HistDigits)
		sent, failed       int64
		lastErr            error
		wg                 sync.WaitGroup
		start              = time.Now()
		expect             = []byte(p.cfg.Expect)
		inHold             = func(d time.Duration) bool { return d >= warmup }
		reqCtx, cancelReqs = context.WithCancel(context.WithoutCancel(ctx))
		stopOnCancel       = context.AfterFunc(ctx, cancelReqs)
	)
	defer stopOnCancel()
	defer cancelReqs()
	schedule(ctx, start, p.cfg.Rate, warmup+hold, func(_ uint64, intended time.Duration) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.get(reqCtx, expect)
			lat := time.Since(start) - intended
			if !inHold(intended) {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			sent++
			if err != nil {
				failed++
				lastErr = err
				return
			}
			metrics.RecordDuration(hist, lat)
		}()
	})
	wg.Wait()

	m := metrics.Metrics{SentCount: float64(sent), ErrorsCount: float64(failed), LostCount: float64(failed)}
	delayMetrics(m, hist)
	if sent > 0 {
		m[metrics.ProbeLostRatio] = float64(failed) / float64(sent)
	}
	if ctx.Err() != nil {
		return m, ctx.Err()
	}
	if sent > 0 && failed == sent {
		return m, fmt.Errorf("probe: all %d requests to %s failed; last: %w", sent, p.cfg.URL, lastErr)
	}
	return m, nil
}

func (p *HTTP) get(ctx context.Context, expect []byte) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.URL, nil)
	if err != nil {
		return err
	}
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if len(expect) > 0 && !bytes.Contains(body, expect) {
		return fmt.Errorf("answer (%d bytes) does not contain %q", len(body), expect)
	}
	return nil
}

// Close releases the probe's connections.
func (p *HTTP) Close() error {
	if p.own {
		p.cfg.Client.CloseIdleConnections()
	}
	return nil
}
