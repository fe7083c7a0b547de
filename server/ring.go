package server

import (
	"time"

	"github.com/tcpez/tcpez/span"
)

// maxRetainedBuffer is the largest request buffer a slot keeps for reuse;
// a larger one, left by an occasional large frame, goes back to the
// server's largeBuffers after use so that idle connections do not pin it.
const maxRetainedBuffer = 64 << 10

// slot is one request of a connection on its way from being read to its
// answer being written. Slots are reused, with their buffers and spans.
type slot struct {
	req  []byte
	resp []byte
	err  error
	done bool

	// batch > 0 marks the header of a batch of that many frames: it has no
	// handler and is written as the batch header in its place in the order.
	batch   int
	inBatch bool

	sp    *span.Span
	start time.Duration // a clock reading
}

func (s *slot) release(large *largeBuffers) {
	if cap(s.req) > maxRetainedBuffer {
		large.put(s.req)
		s.req = nil
	}
	s.resp, s.err, s.done, s.batch, s.inBatch = nil, nil, false, 0, false
}

// ring holds a connection's slots in request order: the reader adds at the
// tail, the writer removes from the head once answers are written. Its size
// is MaxInFlight, which is what bounds a connection's read-ahead. Slots are
// allocated as the ring first reaches them, so a connection that is never
// pipelined deeply stays small.
type ring struct {
	large *largeBuffers // where released slots leave large buffers
	slots []*slot
	head  int // index of the oldest slot
	n     int // slots in use
}

func newRing(size int, large *largeBuffers) ring {
	return ring{large: large, slots: make([]*slot, size)}
}

func (r *ring) full() bool { return r.n == len(r.slots) }

// tail is the slot the next request will use. Only the reader adds, and the
// writer's removals do not move the tail's index, so the reader may fill it
// outside the lock before publishing it with push.
func (r *ring) tail() *slot {
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

func (r *ring) pop(k int) {
	for i := range k {
		r.at(i).release(r.large)
	}
	r.head = (r.head + k) % len(r.slots)
	r.n -= k
}
