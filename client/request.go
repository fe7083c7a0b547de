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
//
// A caller that waits with a plain receive (see sharedDone) is woken
// when its context ends by a watcher, which moves the request from
// pending to stateKicked and sends the token the reader would have sent.
// The reader still delivers into a kicked request (claim), without a
// token of its own; the caller, woken, gives the request up, takes the
// answer delivered meanwhile, or waits on if its context has not ended
// (the watcher read a request since reused: see woken).
const (
	statePending   uint32 = iota // queued, answer not yet delivered
	stateClaimed                 // reader is copying into the caller's dst (see fill)
	stateDone                    // result set; done is (being) signalled
	stateAbandoned               // caller gone; reader drops the answer
	stateKicked                  // pending, and its caller woken to see its context ended
)

// request is one request on the wire, single frame or batch. Its fields
// belong to its owner of the moment (see the states above) unless they
// say otherwise.
type request struct {
	// state is the handover between owners; read and changed atomically
	// by the caller and the reader.
	state atomic.Uint32
	// Set when the request is made, then read-only.
	// done carries the tokens that wake the waiting caller (wake), so that
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

	// watch is the watcher of the context the caller waits with, when it
	// waits with a plain receive (see sharedDone); shared is the client's
	// register of them. shared is set when the request is made.
	watch  atomic.Pointer[doneWatch]
	shared *sharedDone
	// from is the state the reader claimed the request from (claim), for
	// finish and unclaim: the reader's while it holds the claim.
	from uint32

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
	if !rq.claim() {
		// Abandoned: the caller left, the result has nobody to go to.
		rq.recycle()
		return
	}
	rq.ans, rq.answers, rq.err, rq.unsent = ans, answers, err, unsent
	rq.finish()
}

// claim takes rq for its reader to set the result, from pending or
// kicked, unless the caller gave up. The caller spins while it is claimed,
// so a claim spans a copy at most, never a read.
func (rq *request) claim() bool {
	for {
		s := rq.state.Load()
		if s != statePending && s != stateKicked {
			return false
		}
		if rq.state.CompareAndSwap(s, stateClaimed) {
			rq.from = s
			return true
		}
	}
}

// finish completes a claimed request, whose result is set, and wakes its
// caller: a kicked one has had its token already.
func (rq *request) finish() {
	rq.state.Store(stateDone)
	if rq.from == statePending {
		rq.signal()
	}
}

// unclaim hands a claimed request back to its caller, its result still to
// come (fill).
func (rq *request) unclaim() { rq.state.Store(rq.from) }

// kick wakes rq's caller, waiting with a plain receive, because the
// context it waits with ended: the token goes with the move to kicked, so
// that exactly one of the watcher and the reader sends it. A request being
// claimed is waited for, so that no kick is lost to a claim handed back.
func (rq *request) kick() {
	for {
		switch rq.state.Load() {
		case statePending:
			if rq.state.CompareAndSwap(statePending, stateKicked) {
				rq.wake()
				return
			}
		case stateClaimed:
			runtime.Gosched()
		default:
			return
		}
	}
}

// signal tells the waiter that the result is set.
func (rq *request) signal() {
	if rq.fut != nil {
		rq.fut.completed()
		return
	}
	rq.wake()
}

// wake puts a token in rq.done unless one is there: the waiter reads the
// request's state on every token, so one suffices, and a token a kick
// left behind for a request since reused (see woken) costs the waiter a
// look rather than blocking the sender, who may be that waiter reading
// its own answer.
func (rq *request) wake() {
	select {
	case rq.done <- struct{}{}:
	default:
	}
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
//
// A context that many calls share (one a worker pool or a request handler
// passes to all of its calls) costs a select on its done channel, whose
// lock the callers of every core then take twice per call: measured at 256
// callers, 10–18% of the client's calls per second. Once sharedDone has a
// watcher for the channel, its callers wait with a plain receive instead,
// and the watcher wakes them (kick) when it closes.
func (rq *request) wait(ctx context.Context) bool {
	done := ctx.Done()
	w := rq.watched(ctx, done)
	for {
		if done == nil || w != nil {
			<-rq.done
		} else {
			select {
			case <-rq.done:
			case <-done:
				return rq.giveUp(ctx)
			}
		}
		ok, again := rq.woken(ctx)
		if !again {
			return ok
		}
		// A kick meant for another context: wait on, selecting if the
		// watcher retired or ctx ended meanwhile, when a kick of ours
		// may have found the request kicked already and left it.
		if w != nil && (w.retired.Load() || ctx.Err() != nil) {
			w = nil
		}
	}
}

// watched returns the watcher of done, registered for rq, when there is
// one that will wake rq's caller when done closes; else nil, and the
// caller selects on done.
func (rq *request) watched(ctx context.Context, done <-chan struct{}) *doneWatch {
	if done == nil || rq.shared == nil {
		return nil
	}
	w := rq.shared.find(done)
	if w == nil {
		return nil
	}
	rq.watch.Store(w)
	// After the store: a watcher that closes or retires later looks
	// through the requests and finds this one; one that did earlier is
	// seen here.
	if w.retired.Load() || ctx.Err() != nil {
		rq.watch.Store(nil)
		return nil
	}
	return w
}

// woken settles what a token received from rq.done means: the result (ok),
// or that the caller gave up on its ended context, or, with again, that it
// was a kick for a context that has not ended and the caller waits on.
func (rq *request) woken(ctx context.Context) (ok, again bool) {
	for {
		switch rq.state.Load() {
		case stateDone:
			return true, false
		case stateClaimed:
			// The reader is delivering, from kicked: moments.
			runtime.Gosched()
		case stateKicked:
			if ctx.Err() == nil {
				if rq.state.CompareAndSwap(stateKicked, statePending) {
					return false, true
				}
			} else if rq.state.CompareAndSwap(stateKicked, stateAbandoned) {
				return false, false
			}
		default:
			// Pending: a token a kick left in the request before this
			// call took it from the pool.
			return false, true
		}
	}
}

// giveUp abandons the call whose context ended while its caller selected
// on it, unless its result is there or on its way; it reports whether the
// caller has the result after all.
func (rq *request) giveUp(ctx context.Context) bool {
	for !rq.state.CompareAndSwap(statePending, stateAbandoned) {
		switch rq.state.Load() {
		case stateDone, stateKicked:
			// The reader got there first, or a kick did: its token is
			// on its way.
			<-rq.done
			ok, _ := rq.woken(ctx) // ctx has ended: no waiting on
			return ok
		case stateClaimed:
			// Claimed: the reader is copying answers that it holds
			// already into dst, which takes moments, and then completes
			// the call or, for a batch whose other answers are still to
			// come, hands it back (fill).
			runtime.Gosched()
		}
	}
	return false
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
	if !rq.claim() {
		return dst, false
	}
	if cap(dst)-len(dst) < len(p) {
		dst = slices.Grow(dst, max(len(p), min(len(p)*left, growStep)))
	}
	dst = append(dst, p...)
	rq.unclaim()
	return dst, true
}

// reuse readies a completed call for another attempt.
func (rq *request) reuse() {
	rq.ans, rq.answers, rq.err, rq.unsent = nil, nil, nil, false
	rq.mc, rq.mid, rq.left = nil, 0, 0
	rq.watch.Store(nil)
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
