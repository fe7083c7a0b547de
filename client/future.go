package client

import (
	"context"
	"sync"
	"time"
)

// Call is a request in flight, returned by Go.
type Call struct {
	cl    call // the request on the wire; never pooled
	c     *Client
	ctx   context.Context
	req   []byte
	start time.Time
	o     outcome
	done  chan struct{}

	mu       sync.Mutex
	stop     func() bool // unregisters the ctx watch
	resolved bool

	ans []byte
	err error
}

// Go sends req without waiting for the answer. It returns once the
// request is queued on a connection (or has failed), like SendRecv waiting
// for a connection or a free slot if it must.
//
// req must not be modified until the Call is done: a retry sends it again.
// When ctx ends before the answer, the Call completes with an error
// matching ctx.Err() and the answer is dropped when it comes.
func (c *Client) Go(ctx context.Context, req []byte) *Call {
	f := &Call{c: c, ctx: ctx, req: req, done: make(chan struct{})}
	f.cl.fut = f
	if c.timed {
		f.start = time.Now()
	}
	if err := checkRequest(req); err != nil {
		f.resolve(nil, err)
		return f
	}
	if err := c.submit(ctx, &f.cl, req, &f.o); err != nil {
		f.resolve(nil, err)
		return f
	}
	f.watch()
	return f
}

// Done is closed when the call has completed.
func (f *Call) Done() <-chan struct{} { return f.done }

// Wait waits for the call to complete and returns its answer or error.
func (f *Call) Wait() ([]byte, error) {
	<-f.done
	return f.ans, f.err
}

// watch completes the call when its context ends first. A goroutine per
// call would cost more than this registration, which Go makes only for
// contexts that can end.
func (f *Call) watch() {
	if f.ctx.Done() == nil {
		return
	}
	stop := context.AfterFunc(f.ctx, f.cancel)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.resolved {
		stop()
		return
	}
	f.stop = stop
}

func (f *Call) cancel() {
	if f.cl.state.CompareAndSwap(statePending, stateAbandoned) {
		f.resolve(nil, ctxError(f.ctx))
	}
}

// completed runs when the connection delivers a result: an answer, or an
// error that may deserve a retry, which then runs in its own goroutine,
// the connection's reader being no place to wait out a backoff.
func (f *Call) completed() {
	cl := &f.cl
	if cl.err != nil && f.c.mayRetry(f.ctx, cl.err, cl.unsent, f.o.attempts) && f.c.spawn(f.retry) {
		return
	}
	f.resolve(cl.ans, cl.err)
}

func (f *Call) retry() {
	if err := f.c.retryWait(f.ctx, f.cl.err, f.cl.unsent, f.o.attempts); err != nil {
		f.resolve(nil, err)
		return
	}
	cl := f.c.getCall(modeOwned, nil)
	var ans []byte
	err := f.c.roundTrip(f.ctx, cl, f.req, &f.o)
	if err == nil {
		ans = cl.ans
	}
	if !f.o.abandoned {
		cl.recycle()
	}
	f.resolve(ans, err)
}

// resolve sets the result; it runs once per Call.
func (f *Call) resolve(ans []byte, err error) {
	f.mu.Lock()
	f.resolved = true
	stop := f.stop
	f.mu.Unlock()
	if stop != nil {
		stop()
	}
	f.ans, f.err = ans, err
	if f.c.timed {
		f.c.record(OpGo, f.start, &f.o, len(f.req), len(ans), err)
	}
	close(f.done)
}

// Notify sends req and does not wait for the answer, which is read and
// dropped when it comes. It returns once the request is queued on a
// connection; nil does not prove that a server received it. Notify retries
// only while the failures prove nothing was sent.
func (c *Client) Notify(ctx context.Context, req []byte) error {
	var start time.Time
	if c.timed {
		start = time.Now()
	}
	var o outcome
	err := checkRequest(req)
	if err == nil {
		cl := c.getCall(modeDiscard, nil)
		// Abandoned from the start: the reader drops the answer and
		// returns the call to the pool.
		cl.state.Store(stateAbandoned)
		if err = c.submit(ctx, cl, req, &o); err != nil {
			cl.recycle() // never queued, so still ours
		}
	}
	if c.timed {
		c.record(OpNotify, start, &o, len(req), 0, err)
	}
	return err
}
