package client

import (
	"context"
	"sync"
	"time"
)

// Future is a request in flight, returned by Go.
type Future struct {
	rq    request // the request on the wire; never pooled
	c     *Client
	ctx   context.Context
	req   []byte
	start time.Time
	o     outcome
	done  chan struct{}

	mu       sync.Mutex
	stop     func() bool // unregisters the ctx watch
	watched  *futureList // the list of the watcher of ctx that holds the future
	resolved bool
	// The future's links in watched, guarded by watched's lock.
	prev, next *Future
	linked     bool

	ans []byte
	err error
}

// Go sends req without waiting for the answer. It returns once the
// request is queued on a connection (or has failed), like Call waiting
// for a connection or a free slot if it must.
//
// req must not be modified until the Future is done: a retry sends it again.
// When ctx ends before the answer, the Future completes with an error
// matching ctx.Err() and the answer is dropped when it comes.
func (c *Client) Go(ctx context.Context, req []byte) *Future {
	f := &Future{c: c, ctx: ctx, req: req, done: make(chan struct{})}
	f.rq.fut = f
	if c.timed {
		f.start = time.Now()
	}
	if err := c.begin(); err != nil {
		f.ans, f.err = nil, err
		close(f.done)
		return f
	}
	if err := c.checkRequest(len(req)); err != nil {
		f.resolve(nil, err)
		return f
	}
	if err := c.submit(ctx, &f.rq, req, &f.o); err != nil {
		f.resolve(nil, err)
		return f
	}
	f.watch()
	return f
}

// Done is closed when the call has completed.
func (f *Future) Done() <-chan struct{} { return f.done }

// Wait waits for the call to complete and returns its answer or error.
func (f *Future) Wait() ([]byte, error) {
	<-f.done
	return f.ans, f.err
}

// watch completes the call when its context ends first. A context that
// calls share and that the client watches (sharedDone) takes the future
// into its watcher's lists, which costs a short lock and no allocation;
// any other that can end gets a context.AfterFunc, which costs three
// allocations and, on a shared context, its lock. A goroutine per call
// would cost more than either.
func (f *Future) watch() {
	done := f.ctx.Done()
	if done == nil {
		return
	}
	if w := f.c.shared.find(done); w != nil && f.watchWith(w) {
		return
	}
	f.watchAlone()
}

// watchWith puts f in w's lists, unless f is resolved or w has ended.
func (f *Future) watchWith(w *doneWatch) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.resolved {
		return true
	}
	f.watched = w.addFuture(f)
	return f.watched != nil
}

// watchAlone watches f's context with an AfterFunc of its own.
func (f *Future) watchAlone() {
	stop := context.AfterFunc(f.ctx, f.cancel)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.resolved {
		stop()
		return
	}
	f.stop = stop
}

func (f *Future) cancel() {
	if f.rq.state.CompareAndSwap(statePending, stateAbandoned) {
		if mc := f.rq.mc; mc != nil {
			mc.cancelOnWire(f.ctx, &f.rq, f.rq.mid)
		}
		f.resolve(nil, ctxError(f.ctx))
	}
}

// completed runs when the connection delivers a result: an answer, or an
// error that may deserve a retry, which then runs in its own goroutine,
// the connection's reader being no place to wait out a backoff.
func (f *Future) completed() {
	rq := &f.rq
	if rq.err != nil && f.c.mayRetry(f.ctx, rq.err, rq.unsent, f.o.attempts) && f.c.spawn(f.retry) {
		return
	}
	f.resolve(rq.ans, rq.err)
}

func (f *Future) retry() {
	if err := f.c.retryWait(f.ctx, f.rq.err, f.rq.unsent, f.o.attempts); err != nil {
		f.resolve(nil, err)
		return
	}
	rq := f.c.getRequest(modeOwned, nil)
	var ans []byte
	err := f.c.roundTrip(f.ctx, rq, f.req, &f.o)
	if err == nil {
		ans = rq.ans
	}
	if !f.o.abandoned {
		rq.recycle()
	}
	f.resolve(ans, err)
}

// resolve sets the result; it runs once per Future.
func (f *Future) resolve(ans []byte, err error) {
	f.mu.Lock()
	f.resolved = true
	stop, watched := f.stop, f.watched
	f.mu.Unlock()
	if stop != nil {
		stop()
	}
	if watched != nil {
		watched.remove(f)
	}
	f.ans, f.err = ans, err
	if f.c.timed {
		f.c.record(OpGo, f.start, &f.o, len(f.req), len(ans), err)
	}
	close(f.done)
	f.c.end()
}

// Notify sends req and does not wait for the answer, which is read and
// dropped when it comes. It returns once the request is queued on a
// connection; nil does not prove that a server received it. Notify retries
// only while the failures prove nothing was sent.
func (c *Client) Notify(ctx context.Context, req []byte) error {
	if err := c.begin(); err != nil {
		return err
	}
	defer c.end()
	var start time.Time
	if c.timed {
		start = time.Now()
	}
	var o outcome
	err := c.checkRequest(len(req))
	if err == nil {
		rq := c.getRequest(modeDiscard, nil)
		// Abandoned from the start: the reader drops the answer and
		// returns the call to the pool.
		rq.state.Store(stateAbandoned)
		if err = c.submit(ctx, rq, req, &o); err != nil {
			rq.recycle() // never queued, so still ours
		}
	}
	if c.timed {
		c.record(OpNotify, start, &o, len(req), 0, err)
	}
	return err
}
