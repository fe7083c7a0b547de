package client

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// answerMode says what the reader does with an answer.
type answerMode uint8

const (
	modeOwned       answerMode = iota // answer read into a new slice
	modeAppend                        // answer appended to the caller's dst
	modeBatch                         // n answers read into new slices
	modeBatchAppend                   // n answers appended to dst and answers
	modeDiscard                       // answer read and dropped (Notify)
	modeStream                        // a stream's open: its frames go to stream (stream.go)
)

// batch reports whether the request is a batch.
func (m answerMode) batch() bool { return m == modeBatch || m == modeBatchAppend }

// Request states. A request has exactly one owner at a time: the caller
// until it is queued, then the connection, then whoever moves it out of
// pending. The caller abandons a request by moving it to stateAbandoned;
// the reader then owns it for good and returns it to the pool once the
// answer is consumed, so a pooled request is never reused while a late
// answer may still land in it.
const (
	statePending   uint32 = iota // queued, answer not yet delivered
	stateClaimed                 // reader is copying into the caller's dst (see fill)
	stateDone                    // result set; done is (being) signalled
	stateAbandoned               // caller gone; reader drops the answer
)

// request is one request on the wire, single frame or batch. Its fields
// belong to its owner of the moment (see the states above) unless they
// say otherwise.
type request struct {
	// state is the handover between owners; read and changed atomically
	// by the caller and the reader.
	state atomic.Uint32
	// Set when the request is made, then read-only.
	// done carries one token per completion for pooled requests, so that
	// the channel is reused across calls. Futures use fut instead.
	done chan struct{}
	fut  *Future    // non-nil for Go's requests
	pool *sync.Pool // nil for requests that are not pooled

	// Set by the caller before it queues the request.
	mode answerMode
	n    int    // frames in a batch
	dst  []byte // modeAppend, modeBatchAppend: the caller's buffer
	// modeBatchAppend: the caller's slice the answers are appended to.
	into [][]byte
	// tail, when set, is sent right after the payload, in the same
	// request (CallAppendTail).
	tail []byte
	// framed, for a batch, is the payload with the batch header in front
	// of it, which v1 sends from one buffer (see enqueue); the multiplexed
	// mode sends the payload's frames one by one.
	framed []byte
	// muxFramed says that framed's frames carry mux headers, not v1
	// headers (see Pipeline.mux).
	muxFramed bool

	// The result, set by the completing owner before it signals done.
	ans     []byte
	answers [][]byte
	err     error
	unsent  bool // err proves the request never left this process

	// Where the request's bytes sit in the connection's write stream
	// (see writeSide.unsentLocked); guarded by conn.mu.
	gen uint64
	off int

	// direct is the connection whose reading the caller took with this
	// request, set under conn.mu as it is queued and read by the caller
	// only: it reads its own answer there (see readRole).
	direct *conn

	// In the multiplexed mode: the connection and id of the request (set
	// by enqueue under conn.mu, read by the caller for its cancel), and
	// the answers a batch still waits for (the reader's).
	mc   *conn
	mid  uint32
	left int
	// arena holds a multiplexed batch's answers as they arrive, in any
	// order, and at says where each member's lies: the reader's. Both stay
	// with the pooled request, so that batch after batch allocates nothing
	// (an answer each took 65 allocations per Pipeline×64).
	arena []byte
	at    []answerAt
	// For FlushAppend, the reader puts the answers that come in request
	// order straight into the caller's buffer (fill): got is rq.dst with
	// the first inDst members' answers appended; the others wait in the
	// arena until the batch is complete.
	got   []byte
	inDst int

	// stream is set for a stream's open: the request stays in the
	// connection's table, keeping it read, until the stream ends.
	stream *Stream
}

// complete delivers a result. Only the current owner (the connection, or
// its reader) calls it.
func (rq *request) complete(ans []byte, answers [][]byte, err error, unsent bool) {
	if !rq.state.CompareAndSwap(statePending, stateDone) {
		// Abandoned: the caller left, the result has nobody to go to.
		rq.recycle()
		return
	}
	rq.ans, rq.answers, rq.err, rq.unsent = ans, answers, err, unsent
	rq.signal()
}

// signal tells the waiter that the result is set.
func (rq *request) signal() {
	if rq.fut != nil {
		rq.fut.completed()
		return
	}
	rq.done <- struct{}{}
}

// await is wait for a call that was just queued: when its caller took the
// connection's reading, it reads its own answer first.
func (rq *request) await(ctx context.Context) bool {
	if cn := rq.direct; cn != nil {
		rq.direct = nil
		cn.readOwn(ctx, rq)
	}
	return rq.wait(ctx)
}

// awaitOrCancel is await for a call that, should ctx end first, is given
// up on the wire too: a mux server is sent a cancel, which ends the
// handler's context and frees the call's slot on both sides.
func (rq *request) awaitOrCancel(ctx context.Context) bool {
	// Read before the request may be let go of, and become the reader's.
	mc, mid := rq.mc, rq.mid
	if rq.await(ctx) {
		return true
	}
	if mc != nil {
		mc.cancelOnWire(ctx, rq, mid)
	}
	return false
}

// wait blocks until the call completes or ctx ends. It returns false when
// the caller abandoned the call, after which it must not touch it again.
func (rq *request) wait(ctx context.Context) bool {
	done := ctx.Done()
	if done == nil {
		// A context that never ends (Background): a receive is cheaper
		// than a select.
		<-rq.done
		return true
	}
	select {
	case <-rq.done:
		return true
	case <-done:
		for !rq.state.CompareAndSwap(statePending, stateAbandoned) {
			if rq.state.Load() == stateDone {
				// The reader got there first; its signal is on its way.
				<-rq.done
				return true
			}
			// Claimed: the reader is copying answers that it holds
			// already into dst, which takes moments, and then completes
			// the call or, for a batch whose other answers are still to
			// come, hands it back (fill).
			runtime.Gosched()
		}
		return false
	}
}

// fill appends p, answers already read, to dst, the caller's buffer of a
// batch whose answers are still coming, unless the caller gave up; it
// reports whether it did. The claim spans only the copy, never a read,
// so that a caller who gives up waits for a copy at most, and finds its
// buffer untouched once it has: the reader reads a batch of any size
// straight into the caller's buffer, rather than into a buffer of its
// own to be copied again once whole.
//
// When dst must grow, it grows by room for left more answers like p
// (up to growStep), as a batch of like requests has them: one allocation
// for the batch the first time, none after.
func (rq *request) fill(dst, p []byte, left int) ([]byte, bool) {
	if !rq.state.CompareAndSwap(statePending, stateClaimed) {
		return dst, false
	}
	if cap(dst)-len(dst) < len(p) {
		dst = slices.Grow(dst, max(len(p), min(len(p)*left, growStep)))
	}
	dst = append(dst, p...)
	rq.state.Store(statePending)
	return dst, true
}

// reuse readies a completed call for another attempt.
func (rq *request) reuse() {
	rq.ans, rq.answers, rq.err, rq.unsent = nil, nil, nil, false
	rq.mc, rq.mid, rq.left = nil, 0, 0
	rq.state.Store(statePending)
}

// recycle returns a pooled call to its pool.
func (rq *request) recycle() {
	if rq.pool == nil {
		return
	}
	rq.reuse()
	rq.dst, rq.into, rq.framed, rq.tail, rq.n, rq.mode = nil, nil, nil, nil, 0, modeOwned
	rq.got = nil
	rq.muxFramed = false
	if cap(rq.arena) > maxKeptBuffer {
		rq.arena = nil
	}
	rq.pool.Put(rq)
}

// queue is a FIFO ring of calls: the order of their requests on the wire,
// hence of their answers.
type queue struct {
	buf  []*request
	head int
	n    int
}

func (q *queue) len() int { return q.n }

func (q *queue) push(rq *request) {
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = rq
	q.n++
}

func (q *queue) pop() *request {
	if q.n == 0 {
		return nil
	}
	rq := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	return rq
}

// drain empties the queue, returning its calls in order.
func (q *queue) drain() []*request {
	out := make([]*request, 0, q.n)
	for q.n > 0 {
		out = append(out, q.pop())
	}
	return out
}

func (q *queue) grow() {
	// Power-of-two sizes let push and pop wrap with a mask.
	buf := make([]*request, max(16, 2*len(q.buf)))
	for i := range q.n {
		buf[i] = q.buf[(q.head+i)&(len(q.buf)-1)]
	}
	q.buf, q.head = buf, 0
}
