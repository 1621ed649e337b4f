package loadgen

import (
	"sync"
	"sync/atomic"
)

// countChunkSeconds is how many seconds of counts are allocated at once.
const countChunkSeconds = 1024

type countChunk [countChunkSeconds]atomic.Int64

// secondCounts are per-second counters of a step, made as its seconds come:
// a chunk of countChunkSeconds counters (8 KiB) the first time one of its
// seconds is counted, so memory follows the seconds that went by, not the
// length of the hold. Adding is lock-free once the chunk exists.
type secondCounts struct {
	mu     sync.Mutex                    // serializes growth
	chunks atomic.Pointer[[]*countChunk] // by second / countChunkSeconds
}

// chunk returns the chunk of counters holding second sec, making it if create
// is set (else nil when it does not exist yet).
func (c *secondCounts) chunk(sec int64, create bool) *countChunk {
	i := int(sec / countChunkSeconds)
	if p := c.chunks.Load(); p != nil && i < len(*p) && (*p)[i] != nil {
		return (*p)[i]
	}
	if !create {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var old []*countChunk
	if p := c.chunks.Load(); p != nil {
		old = *p
	}
	if i < len(old) && old[i] != nil {
		return old[i]
	}
	grown := make([]*countChunk, max(len(old), i+1))
	copy(grown, old)
	grown[i] = new(countChunk)
	c.chunks.Store(&grown)
	return grown[i]
}

// add counts one at second sec (>= 0).
func (c *secondCounts) add(sec int64) {
	if sec < 0 {
		return
	}
	c.chunk(sec, true)[sec%countChunkSeconds].Add(1)
}

// get returns second sec's count.
func (c *secondCounts) get(sec int64) int64 {
	if sec < 0 {
		return 0
	}
	if ch := c.chunk(sec, false); ch != nil {
		return ch[sec%countChunkSeconds].Load()
	}
	return 0
}

// allocated returns how many seconds of counters are allocated.
func (c *secondCounts) allocated() int {
	n := 0
	if p := c.chunks.Load(); p != nil {
		for _, ch := range *p {
			if ch != nil {
				n += countChunkSeconds
			}
		}
	}
	return n
}
