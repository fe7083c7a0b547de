package server

import (
	"context"
	"sync"
)

// callCtx is the context of one mux call: its parent's values and
// deadline, and a cancellation of its own. Unlike context.WithCancel it
// makes its done channel only when a handler asks for it, and registers
// nothing with its parent. A callCtx whose Done was never called is reused
// for the connection's next call: nothing can be waiting on it, and every
// context derived from it that could outlive the handler (WithCancel,
// WithDeadline, AfterFunc) calls Done. So a call whose handler never looks
// allocates nothing for its context. The connection cancels every running call when it ends or its
// context is cancelled (see muxConn.cancelAll), which stands in for the
// propagation context.WithCancel would set up.
type callCtx struct {
	context.Context // the connection's

	mu    sync.Mutex
	done  chan struct{}
	err   error
	asked bool // Done was called: not to be reused
	// onWait runs when a handler first asks for Done: one that runs on
	// the reader's goroutine is about to wait, and the reading passes on
	// at once rather than after inlineBudget (see takeOver).
	onWait func()
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func (c *callCtx) Done() <-chan struct{} {
	c.mu.Lock()
	wait := c.onWait
	if c.asked {
		wait = nil
	}
	c.asked = true
	if c.done == nil {
		if c.err != nil {
			c.mu.Unlock()
			return closedChan
		}
		c.done = make(chan struct{})
	}
	done := c.done
	c.mu.Unlock()
	if wait != nil {
		wait()
	}
	return done
}

func (c *callCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Value keeps the connection's values (Identity) visible; context's own
// lookup of a cancelCtx parent does not apply to this type.
func (c *callCtx) Value(key any) any { return c.Context.Value(key) }

// cancel ends the context with err, once.
func (c *callCtx) cancel(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
}

// reusable reports whether c may serve another call, and readies it if so.
func (c *callCtx) reusable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.asked {
		return false
	}
	c.err = nil
	return true
}
