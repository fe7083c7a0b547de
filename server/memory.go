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
const answerFree = 4 << 10

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

// room makes s's request buffer large enough for n bytes, taking them from
// the memory budget first: while the budget is spent the connection waits,
// unread, which pushes back on its peer. A small request grows the slot's
// own buffer; a larger one borrows one from the server's pool.
func (c *conn) room(s *slot, n int) error {
	if n <= cap(s.req) {
		return nil
	}
	if n > maxRetainedBuffer {
		size := largeSize(n)
		if err := c.acquire(int64(size)); err != nil {
			return err
		}
		s.req = c.srv.large.get(size)
		return nil
	}
	size := max(minSlotBuffer, 1<<bits.Len(uint(n-1)))
	if err := c.acquire(int64(size)); err != nil {
		return err
	}
	c.acct.Release(s.ownHeld)
	s.own, s.ownHeld = make([]byte, 0, size), int64(size)
	s.req = s.own
	return nil
}

// acquire takes n bytes of the memory budget for the connection, waiting
// up to MemoryWait for them.
func (c *conn) acquire(n int64) error {
	if c.acct.TryAcquire(n) {
		return nil
	}
	err := c.waitFor(n)
	switch {
	case err == nil:
		// The wait was the server's, not the peer's: the rest of the frame
		// has a whole ReadTimeout.
		return c.rearmRead()
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

// chargeAnswer records s's answer in the memory budget, unless it is small
// or the request's own buffer. It was allocated already, so it does not
// wait: it makes the connection's next frames wait instead.
func (c *conn) chargeAnswer(s *slot) {
	if len(s.resp) <= answerFree || (cap(s.req) > 0 && &s.resp[0] == &s.req[:1][0]) {
		return
	}
	s.respHeld = int64(len(s.resp))
	c.acct.Charge(s.respHeld)
}
