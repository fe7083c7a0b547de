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
// WithDeadline context only when Done is first asked for.
//
// It is not pooled: a context derived with context.WithoutCancel never asks
// for Done yet may outlive the method (background work started by the
// handler), and a reused deadlineCtx would hand it another call's values.
// One allocation per call with a deadline is the price.
type deadlineCtx struct {
	context.Context // the call's
	deadline        time.Time

	mu     sync.Mutex
	lazy   context.Context // WithDeadline(Context, deadline), made by Done
	cancel context.CancelFunc
}

// withDeadline returns parent with a deadline at d from now; release
// ends it once the method returned.
func withDeadline(parent context.Context, d time.Duration) *deadlineCtx {
	return &deadlineCtx{Context: parent, deadline: time.Now().Add(d)}
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
// for is cancelled, as WithTimeout's cancel would.
func (c *deadlineCtx) release() {
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}
