package server

import (
	"time"

	"github.com/tcpez/tcpez/internal/budget"
	"github.com/tcpez/tcpez/span"
)

// maxRetainedBuffer is the largest request buffer a slot keeps for reuse.
// A larger frame is read into a buffer lent by the server's largeBuffers,
// which takes it back once the answer is written, so that an idle
// connection holds at most MaxInFlight buffers this large: memory each
// holds of the budget for as long as the connection lives. 8 KiB rather
// than 4, so that a 4 KiB value with its protocol's framing (a memcached
// set) is read into the slot's own buffer, not one borrowed from the pool
// and given back, which took the pool's lock and the budget's three times
// per request. memoryFloor still holds one buffer of each size.
const maxRetainedBuffer = 8 << 10

// maxRetainedAnswer is the largest answer buffer a slot keeps for an
// AppendHandler's next answer. Small, since every slot of every connection
// may keep one, and no larger than answerFree, so that the buffers kept are
// never memory the budget was charged for; a larger answer costs an
// allocation, as Respond's do.
const maxRetainedAnswer = answerFree

// slot is one request of a connection on its way from being read to its
// answer being written. Slots are reused, with their buffers and spans.
type slot struct {
	reqBuffer // req, the request's payload
	resp      []byte
	tail      []byte // a TailHandler's answer is resp then tail
	ans       []byte // kept for AppendHandler answers; resp may alias it
	lent      []byte // lent for a large AppendHandler answer (see answerDst)
	err       error
	done      bool
	// place is the request while it lies in the connection's read buffer
	// (conn.readPayload), which the reader reads on into once the
	// handler returns: finish copies an answer in it that it does not
	// write at once.
	place []byte

	// run is conn.run for this slot, made once: starting it on a
	// goroutine then allocates no closure per request.
	run func()

	// respHeld is the bytes of the memory budget charged for resp.
	respHeld int64
	// expiry is set, by the goroutine running the handler, while
	// Config.HandlerTimeout applies.
	expiry *expiry

	// batch > 0 marks the header of a batch of that many frames: it has no
	// handler and is written as the batch header in its place in the order.
	batch   int
	inBatch bool

	sp    *span.Span
	start time.Duration // a clock reading
	// ctx is the handler's context: the connection's or the mux call's,
	// carrying sp, so that calls the handler makes are sp's children
	// (span.FromContext). It lives in the slot so that requests do not
	// allocate one; see conn.respond.
	ctx *span.Context
}

// runner returns what runs s's handler for c on a goroutine of its own.
func (s *slot) runner(c *conn) func() {
	if s.run == nil {
		s.run = func() { c.run(s) }
	}
	return s.run
}

// release readies s for the next request once its answer is written. A
// large buffer goes back to the server's pool, and every buffer does once
// the connection has ended, with its share of the budget.
func (s *slot) release(r *ring) {
	r.acct.Release(s.respHeld)
	s.returnLent(r.large, r.acct)
	s.reqBuffer.release(r.large, r.acct, !r.ended)
	s.resp, s.tail, s.respHeld, s.err, s.done, s.batch, s.inBatch, s.expiry = nil, nil, 0, nil, false, 0, false, nil
}

// ring holds a connection's slots in request order: the reader adds at the
// tail, the writer removes from the head once answers are written. Its size
// is MaxInFlight, which is what bounds a connection's read-ahead. Slots are
// allocated as the ring first reaches them, so a connection that is never
// pipelined deeply stays small.
type ring struct {
	large *largeBuffers   // where released slots leave large buffers
	acct  *budget.Account // the connection's share of the memory budget
	ended bool            // the connection ended: slots keep no buffers
	slots []*slot
	head  int // index of the oldest slot
	n     int // slots in use
}

func newRing(size int, large *largeBuffers, acct *budget.Account) ring {
	return ring{large: large, acct: acct, slots: make([]*slot, size)}
}

func (r *ring) full() bool { return r.n == len(r.slots) }

// tail is the slot the next request will use. Only the reader adds, and the
// writer's removals do not move the tail's index, so the reader may fill it
// outside the lock before publishing it with push.
//
// An empty ring starts over at its first slot, so that a connection that
// sends one request at a time uses one slot and one buffer, not all of
// them in turn: each holds its share of the memory budget.
func (r *ring) tail() *slot {
	if r.n == 0 {
		r.head = 0
	}
	i := (r.head + r.n) % len(r.slots)
	if r.slots[i] == nil {
		r.slots[i] = &slot{sp: span.New()}
	}
	return r.slots[i]
}

func (r *ring) push() { r.n++ }

// ready is the number of finished slots at the head, which may be written.
func (r *ring) ready() int {
	k := 0
	for k < r.n && r.at(k).done {
		k++
	}
	return k
}

func (r *ring) at(k int) *slot { return r.slots[(r.head+k)%len(r.slots)] }

// end releases the buffers of the slots not in use, once the connection
// has ended; those in use release theirs when popped.
func (r *ring) end() {
	r.ended = true
	for i := r.n; i < len(r.slots); i++ {
		if s := r.at(i); s != nil {
			s.release(r)
		}
	}
}

func (r *ring) pop(k int) {
	for i := range k {
		r.at(i).release(r)
	}
	r.head = (r.head + k) % len(r.slots)
	r.n -= k
}

// index is the position of s among the slots in use; -1 if it is not one.
func (r *ring) index(s *slot) int {
	for k := range r.n {
		if r.at(k) == s {
			return k
		}
	}
	return -1
}

// replace puts s in the place of the k-th slot in use, which someone else
// now owns for good.
func (r *ring) replace(k int, s *slot) { r.slots[(r.head+k)%len(r.slots)] = s }
