package client

import (
	"context"
	"sync"
	"sync/atomic"
)

// callMode says what the reader does with an answer.
type callMode uint8

const (
	modeOwned   callMode = iota // answer read into a new slice
	modeAppend                  // answer appended to the caller's dst
	modeBatch                   // n answers read into new slices
	modeDiscard                 // answer read and dropped (Notify)
)

// Call states. A call has exactly one owner at a time: the caller until it
// is queued, then the connection, then whoever moves it out of pending.
// The caller abandons a call by moving it to stateAbandoned; the reader then
// owns it for good and returns it to the pool once the answer is consumed,
// so a pooled call is never reused while a late answer may still land in it.
const (
	statePending   uint32 = iota // queued, answer not yet delivered
	stateClaimed                 // reader is copying into the caller's dst
	stateDone                    // result set; done is (being) signalled
	stateAbandoned               // caller gone; reader drops the answer
)

// call is one request on the wire, single frame or batch.
type call struct {
	state atomic.Uint32
	// done carries one token per completion for pooled calls, so that the
	// channel is reused across calls. Futures use fut instead.
	done chan struct{}
	mode callMode
	n    int    // frames in a batch
	dst  []byte // modeAppend: the caller's buffer

	ans     []byte
	answers [][]byte
	err     error
	unsent  bool // err proves the request never left this process

	// Where the request's bytes sit in the connection's write stream;
	// see conn.fail.
	gen uint64
	off int

	// direct is the connection whose reading the caller took with this
	// call: it reads its own answer there (see readRole).
	direct *conn

	fut  *Call      // non-nil for Go's calls
	pool *sync.Pool // nil for calls that are not pooled
}

// complete delivers a result. Only the current owner (the connection, or
// its reader) calls it.
func (cl *call) complete(ans []byte, answers [][]byte, err error, unsent bool) {
	if !cl.state.CompareAndSwap(statePending, stateDone) {
		// Abandoned: the caller left, the result has nobody to go to.
		cl.recycle()
		return
	}
	cl.ans, cl.answers, cl.err, cl.unsent = ans, answers, err, unsent
	cl.signal()
}

// signal tells the waiter that the result is set.
func (cl *call) signal() {
	if cl.fut != nil {
		cl.fut.completed()
		return
	}
	cl.done <- struct{}{}
}

// await is wait for a call that was just queued: when its caller took the
// connection's reading, it reads its own answer first.
func (cl *call) await(ctx context.Context) bool {
	if cn := cl.direct; cn != nil {
		cl.direct = nil
		cn.readOwn(ctx, cl)
	}
	return cl.wait(ctx)
}

// wait blocks until the call completes or ctx ends. It returns false when
// the caller abandoned the call, after which it must not touch it again.
func (cl *call) wait(ctx context.Context) bool {
	done := ctx.Done()
	if done == nil {
		// A context that never ends (Background): a receive is cheaper
		// than a select.
		<-cl.done
		return true
	}
	select {
	case <-cl.done:
		return true
	case <-done:
		if cl.state.CompareAndSwap(statePending, stateAbandoned) {
			return false
		}
		// The reader got there first; its result is moments away.
		<-cl.done
		return true
	}
}

// reuse readies a completed call for another attempt.
func (cl *call) reuse() {
	cl.ans, cl.answers, cl.err, cl.unsent = nil, nil, nil, false
	cl.state.Store(statePending)
}

// recycle returns a pooled call to its pool.
func (cl *call) recycle() {
	if cl.pool == nil {
		return
	}
	cl.reuse()
	cl.dst, cl.n, cl.mode = nil, 0, modeOwned
	cl.pool.Put(cl)
}

// queue is a FIFO ring of calls: the order of their requests on the wire,
// hence of their answers.
type queue struct {
	buf  []*call
	head int
	n    int
}

func (q *queue) len() int { return q.n }

func (q *queue) push(cl *call) {
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = cl
	q.n++
}

func (q *queue) pop() *call {
	if q.n == 0 {
		return nil
	}
	cl := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	return cl
}

// drain empties the queue, returning its calls in order.
func (q *queue) drain() []*call {
	out := make([]*call, 0, q.n)
	for q.n > 0 {
		out = append(out, q.pop())
	}
	return out
}

func (q *queue) grow() {
	// Power-of-two sizes let push and pop wrap with a mask.
	buf := make([]*call, max(16, 2*len(q.buf)))
	for i := range q.n {
		buf[i] = q.buf[(q.head+i)&(len(q.buf)-1)]
	}
	q.buf, q.head = buf, 0
}
