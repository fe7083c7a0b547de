package main

import (
	"runtime"
	"sync"
	"testing"

	"github.com/tcpez/tcpez/internal/israce"
)

// TestCountersSurviveCollections: blocks the pool lets go at a collection
// keep their counts, and are reused rather than replaced, so the number of
// blocks stays bounded however often the garbage collector runs.
func TestCountersSurviveCollections(t *testing.T) {
	var c counters
	const rounds, perRound, workers = 50, 100, 8
	for range rounds {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range perRound {
					c.add(cmdGet)
					r := c.hold()
					r.add(getHits)
					r.add(getHits)
					c.release(r)
				}
			})
		}
		wg.Wait()
		runtime.GC() // the pool keeps its objects for one collection more
		runtime.GC()
	}
	if got, want := c.sum(cmdGet), uint64(rounds*perRound*workers); got != want {
		t.Errorf("cmd_get = %d, want %d", got, want)
	}
	if got, want := c.sum(getHits), uint64(2*rounds*perRound*workers); got != want {
		t.Errorf("get_hits = %d, want %d", got, want)
	}
	c.mu.Lock()
	blocks := len(c.blocks)
	c.mu.Unlock()
	// Each round can hold at most one block per worker; without reuse,
	// every round made new ones. (Under the race detector a sync.Pool
	// drops objects at random, not only at collections.)
	if limit := 2 * workers; blocks > limit && !israce.Enabled {
		t.Errorf("%d blocks after %d rounds of %d workers, want at most %d", blocks, rounds, workers, limit)
	}
	c.reset()
	if n := c.sum(cmdGet) + c.sum(getHits); n != 0 {
		t.Errorf("after reset: %d counted", n)
	}
}
