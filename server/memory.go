package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime/debug"

	"github.com/tcpez/tcpez/internal/budget"
)

// memoryFloor is what each connection may hold of the memory budget even
// when it is spent, so that small requests always progress: a spent budget
// is exceeded by at most this much per connection. It holds one request
// buffer of each size up to maxRetainedBuffer.
const memoryFloor = 16 << 10

// answerFree is the largest answer not charged to the memory budget. The
// answers a connection holds are bounded by MaxInFlight, and charging
// small ones would cost every request a lock that all connections share.
// 8 KiB rather than 4: a 4 KiB value with its protocol's framing (a
// memcached VALUE line) took that lock per request, and its answer buffer
// was not kept for the next (see maxRetainedAnswer).
const answerFree = 8 << 10

// minSlotBuffer is the smallest request buffer: a connection may have
// MaxInFlight (128) of them within memoryFloor.
const minSlotBuffer = 128

// minMemoryBudget is the smallest default budget, for small machines.
const minMemoryBudget = 64 << 20

// DefaultMemoryBudget is the memory budget used when Config.MemoryBudget
// is zero: a sixteenth of the memory the process may use, which is the
// least of the Go memory limit (GOMEMLIMIT, debug.SetMemoryLimit), the
// cgroup's memory limit and the machine's physical memory; at least 64 MiB.
func DefaultMemoryBudget() int64 {
	m := physicalMemory()
	if l := debug.SetMemoryLimit(-1); l > 0 && l < m {
		m = l
	}
	if l := cgroupMemoryLimit(); l > 0 && l < m {
		m = l
	}
	return max(m/16, minMemoryBudget)
}

// newMemory returns the memory budget of limit bytes (negative: none) and
// the pool of large buffers that parks memory in it.
func newMemory(limit int64) (*budget.Budget, *largeBuffers) {
	if limit < 0 {
		limit = math.MaxInt64 / 2
	}
	p := &largeBuffers{cap: min(limit/8, maxPooled), free: make(map[int][]pooledBuffer)}
	p.budget = budget.New(limit, memoryFloor, p.reclaim)
	return p.budget, p
}

// reqBuffer holds one request's payload, within a connection's share of
// the memory budget: in a small buffer of its own, kept for the next
// request, or in a larger one lent by the server's pool while the request
// is in flight. A connection engine keeps one per request it may hold
// (conn's slots; any other engine's calls) and calls room before reading a
// payload into req, release once the answer is written.
type reqBuffer struct {
	req     []byte // own, or lent
	own     []byte
	ownHeld int64 // bytes of the budget charged for own's capacity
}

// room makes req large enough for n bytes, taking them from acct first
// with acquire, which may wait: while the budget is spent the connection
// is not read, which pushes back on its peer.
func (b *reqBuffer) room(n int, large *largeBuffers, acct *budget.Account, acquire func(int64) error) error {
	if n <= cap(b.req) {
		return nil
	}
	if n > maxRetainedBuffer {
		size := largeSize(n)
		if err := acquire(int64(size)); err != nil {
			return err
		}
		b.req = large.get(size)
		return nil
	}
	size := max(minSlotBuffer, 1<<bits.Len(uint(n-1)))
	if err := acquire(int64(size)); err != nil {
		return err
	}
	acct.Release(b.ownHeld)
	b.own, b.ownHeld = make([]byte, 0, size), int64(size)
	b.req = b.own
	return nil
}

// release gives a lent buffer back to the pool, and the own one too unless
// keep (the connection has ended).
func (b *reqBuffer) release(large *largeBuffers, acct *budget.Account, keep bool) {
	if cap(b.req) > maxRetainedBuffer {
		large.put(acct, b.req)
	}
	if !keep {
		acct.Release(b.ownHeld)
		b.own, b.ownHeld = nil, 0
	}
	b.req = b.own
}

// room readies s for a request of n bytes.
func (c *conn) room(s *slot, n int) error {
	return s.room(n, c.srv.large, c.acct, c.acquire)
}

// acquire takes n bytes of the memory budget for the connection, waiting
// up to MemoryWait for them.
func (c *conn) acquire(n int64) error {
	if c.acct.TryAcquire(n) {
		return nil
	}
	c.flushHeld() // no answer waits for the budget
	err := c.waitFor(n)
	switch {
	case err == nil:
		// The wait was the server's, not the peer's: the rest of the frame
		// has a whole ReadTimeout.
		return c.rearmRead()
	case errors.Is(err, budget.ErrExhausted) && n > c.srv.budget.Limit():
		return fmt.Errorf("%w: a %d-byte buffer is larger than the whole budget (%d bytes)", ErrMemoryBudget, n, c.srv.budget.Limit())
	case errors.Is(err, budget.ErrExhausted):
		return fmt.Errorf("%w: no room for a %d-byte buffer within %v (budget %d bytes, %d held by this connection)",
			ErrMemoryBudget, n, c.cfg.MemoryWait, c.srv.budget.Limit(), c.acct.Held())
	case c.isStopping():
		return errStopping
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.endErr != nil {
		return c.endErr
	}
	return err
}

// waitFor waits for n bytes of the memory budget, until MemoryWait, the
// connection's end, or Shutdown's stop. The context stop cancels is made
// only here, so that connections that never wait do not pay for it.
func (c *conn) waitFor(n int64) error {
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	c.dlMu.Lock()
	if c.stopping {
		c.dlMu.Unlock()
		return context.Canceled
	}
	c.unwait = cancel
	c.dlMu.Unlock()
	defer func() {
		c.dlMu.Lock()
		c.unwait = nil
		c.dlMu.Unlock()
	}()
	return c.acct.Acquire(ctx, n, c.cfg.MemoryWait)
}

func (c *conn) rearmRead() error {
	if c.cfg.ReadTimeout <= 0 {
		return nil
	}
	c.idle.disarm()
	return c.setReadDeadline(c.clock.at(c.clock.now(), c.cfg.ReadTimeout))
}

// chargeAnswer records in the memory budget the parts of s's answer the
// connection holds until they are written, unless they are small or lie in
// the request's own buffer or a lent one. They were allocated already, so
// this does not wait: it makes the connection's next frames wait instead.
func (c *conn) chargeAnswer(s *slot, head, tail []byte) {
	s.respHeld = s.unheld(head) + s.unheld(tail)
	c.acct.Charge(s.respHeld)
}

// unheld is what the budget does not hold yet of p, a part of s's answer.
func (s *slot) unheld(p []byte) int64 {
	if len(p) <= answerFree || within(p, s.req) || s.inLent(p) {
		return 0
	}
	return int64(len(p))
}
