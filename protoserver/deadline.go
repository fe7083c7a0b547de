package protoserver

import (
	"context"
	"sync"
	"time"
)

// deadlineCtx is the context of a method whose call carries a deadline.
// context.WithTimeout would cost every such call a timer, a cancelCtx and,
// over the server's own call context, which is not a cancelCtx, a
// goroutine to watch it; asking that context for Done also tells the
// server that the handler is about to wait, and the connection's reading
// moves to another goroutine. Most methods never wait on their context, so
// deadlineCtx answers Deadline and Err by itself and makes the real
// WithDeadline context only when Done is first asked for. One whose Done
// was never asked for goes back to a pool for a later call: nothing can be
// watching it.
type deadlineCtx struct {
	context.Context // the call's
	deadline        time.Time

	mu     sync.Mutex
	lazy   context.Context // WithDeadline(Context, deadline), made by Done
	cancel context.CancelFunc
}

var deadlinePool = sync.Pool{New: func() any { return new(deadlineCtx) }}

// withDeadline returns parent with a deadline at d from now; release
// ends it once the method returned.
func withDeadline(parent context.Context, d time.Duration) *deadlineCtx {
	c := deadlinePool.Get().(*deadlineCtx)
	c.Context, c.deadline = parent, time.Now().Add(d)
	return c
}

func (c *deadlineCtx) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *deadlineCtx) Done() <-chan struct{} {
	return c.materialize().Done()
}

func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	lazy := c.lazy
	c.mu.Unlock()
	if lazy != nil {
		return lazy.Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// materialize returns the WithDeadline context, made on first use.
func (c *deadlineCtx) materialize() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lazy == nil {
		c.lazy, c.cancel = context.WithDeadline(c.Context, c.deadline)
	}
	return c.lazy
}

// release ends c once its method returned: a context whose Done was asked
// for is cancelled, as WithTimeout's cancel would, and left to the garbage
// collector; any other is reused.
func (c *deadlineCtx) release() {
	c.mu.Lock()
	lazy, cancel := c.lazy, c.cancel
	c.mu.Unlock()
	if lazy != nil {
		cancel()
		return
	}
	c.Context = nil
	deadlinePool.Put(c)
}
