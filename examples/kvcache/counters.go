package main

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// counters are the statistics of the memcached listener, counted as
// memcached counts them, per thread: every get and set counts, and one
// set of counters shared by all connections moved its cache line between
// CPUs on nearly every request, most of what a get cost above a single
// CPU's (BenchmarkMemcacheHandlerParallel: get 16 B 349 → 271 ns/op with
// no counting at all). Here a connection counts in a block a sync.Pool
// keeps per P, and stats adds the blocks up.
type counters struct {
	pool sync.Pool // of *counterRef

	mu     sync.Mutex
	blocks []*counterBlock // every block made, for sum and reset
	free   []*counterBlock // blocks the pool let go, counts kept, to reuse
}

type counterBlock struct {
	n [numCounters]atomic.Uint64
	_ [64]byte // its own cache lines, not the next block's
}

// counterRef is what the pool holds. When the pool lets one go and it is
// collected, its block goes back to the free list with its counts, so the
// blocks are as many as Ps ever counted at once, not one per collection.
type counterRef struct{ b *counterBlock }

// hold returns a block to count in until release; nothing else counts in
// it meanwhile.
func (c *counters) hold() *counterRef {
	if r, ok := c.pool.Get().(*counterRef); ok {
		return r
	}
	c.mu.Lock()
	var b *counterBlock
	if n := len(c.free); n > 0 {
		b, c.free = c.free[n-1], c.free[:n-1]
	} else {
		b = new(counterBlock)
		c.blocks = append(c.blocks, b)
	}
	c.mu.Unlock()
	r := &counterRef{b}
	runtime.AddCleanup(r, c.recycle, b)
	return r
}

func (c *counters) release(r *counterRef) { c.pool.Put(r) }

func (c *counters) recycle(b *counterBlock) {
	c.mu.Lock()
	c.free = append(c.free, b)
	c.mu.Unlock()
}

// add counts one of k.
func (c *counters) add(k counter) {
	r := c.hold()
	r.add(k)
	c.release(r)
}

func (r *counterRef) add(k counter) { r.b.n[k].Add(1) }

// sum is the count of k so far.
func (c *counters) sum(k counter) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n uint64
	for _, b := range c.blocks {
		n += b.n[k].Load()
	}
	return n
}

// reset sets every count to 0; counts made meanwhile may survive it, as
// in memcached.
func (c *counters) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.blocks {
		for i := range b.n {
			b.n[i].Store(0)
		}
	}
}
