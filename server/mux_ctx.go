package server

import (
	"context"
	"sync"
	"sync/atomic"
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
//
// Err, cancel and reusable, which every call runs, are atomic loads and
// stores; the lock is only for the done channel, which few handlers ask
// for (BenchmarkProtocols/mux: the lock rounds were 3% of the CPU).
type callCtx struct {
	context.Context // the connection's

	err   atomic.Pointer[error] // set once, by cancel
	asked atomic.Bool           // Done was called: not to be reused

	mu   sync.Mutex
	done chan struct{}
	// onWait runs when a handler first asks for Done: one that runs on
	// the reader's goroutine is about to wait, and the reading passes on
	// at once rather than at the watcher's next looks (see takeOver).
	onWait func()
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// The causes calls end with, kept so that storing one allocates nothing.
var (
	errCtxCanceled error = context.Canceled
	errCtxDeadline error = context.DeadlineExceeded
)

func (c *callCtx) Done() <-chan struct{} {
	c.mu.Lock()
	// Stored before err is loaded: cancel stores err before it loads
	// asked, so either cancel sees asked and closes the channel made
	// here, or this sees err and makes none.
	first := !c.asked.Swap(true)
	if c.done == nil {
		if c.err.Load() != nil {
			c.mu.Unlock()
			return closedChan
		}
		c.done = make(chan struct{})
	}
	done := c.done
	c.mu.Unlock()
	if first && c.onWait != nil {
		c.onWait()
	}
	return done
}

func (c *callCtx) Err() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Value keeps the connection's values (Identity) visible; context's own
// lookup of a cancelCtx parent does not apply to this type.
func (c *callCtx) Value(key any) any { return c.Context.Value(key) }

// cancel ends the context with err, once.
func (c *callCtx) cancel(err error) {
	var p *error
	switch err {
	case context.Canceled:
		p = &errCtxCanceled
	case context.DeadlineExceeded:
		p = &errCtxDeadline
	default:
		p = new(error)
		*p = err
	}
	if !c.err.CompareAndSwap(nil, p) || !c.asked.Load() {
		return
	}
	c.mu.Lock()
	if c.done != nil {
		close(c.done)
	}
	c.mu.Unlock()
}

// reusable reports whether c may serve another call, and readies it if so.
func (c *callCtx) reusable() bool {
	if c.asked.Load() {
		return false
	}
	c.err.Store(nil)
	return true
}
