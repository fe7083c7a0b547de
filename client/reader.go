package client

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tcpez/tcpez/frame"
)

// readBufferSize is also the largest answer delivered to a caller's
// buffer straight from the read buffer, without a copy through scratch.
// It holds a whole burst of answers from a tcpez server, which writes up
// to 64 KiB plus the frame that overflows them (frame.Writer): at 64 KiB
// a burst could take two reads, the second for the few bytes over
// (BenchmarkPipeline64x4KiB/mux's reads/op, client and server: 10.8 a
// batch, 8.8 now); at 32 KiB, three. A client has few connections, so the buffer is
// its own rather than borrowed for bursts as the server's.
const readBufferSize = 128 << 10

// growStep is the largest answer given its full size up front; larger ones
// grow as their bytes arrive, so a server that announces a huge frame and
// stalls makes the client hold only what it sent.
const growStep = 64 << 10

// readSide is the read half of a conn. Answers complete the queued
// requests in FIFO order. The reading role, the right to read from nc,
// belongs to the reader goroutine (readLoop), or to a caller reading its
// own answer (direct.go), or to nobody while nothing is in flight.
type readSide struct {
	// Set by newConn, then read-only.
	// wake hands the reading to the reader goroutine, or tells it that
	// the connection failed; it waits on wake while it does not read.
	wake chan struct{}
	// idle is set for connections whose callers may read their own
	// answers (plain sockets): it checks that the peer has not closed or
	// sent anything unasked while nobody was reading. Where it is nil the
	// reader goroutine always reads.
	idle *idleCheck

	// Guarded by conn.mu.
	role  readRole // who holds the reading role
	takes uint64   // times a caller took the reading of an idle connection

	// Owned by the reading role's holder; while nobody holds it, by the
	// caller that takes it under conn.mu (idleCheck looks at r's buffer).
	r        *frame.Reader
	straight *straight // nil where callers do not read their own answers
	deadline time.Time // the read deadline set on nc
	scratch  []byte    // answers over readBufferSize for callers' buffers
	ends     []int     // where each answer of a batch ends (see partBatch)
	// part is a batch answer its caller began to read and passed on to
	// the reader goroutine, which reads the rest (see readOwnBatch).
	part partBatch

	// waiting is set while the reading role's holder reads the socket
	// (socketReader), where it may wait: frames left unwritten then would
	// wait with it (see leaveLocked).
	waiting atomic.Bool
}

// socketReader is the connection as its reader reads it: before each
// read of the socket, where the reader may wait for the peer, it writes
// the frames a writer left to it (see leaveLocked).
type socketReader struct{ cn *conn }

func (r socketReader) Read(p []byte) (int, error) {
	cn := r.cn
	// Stored before left is loaded, as leaveLocked stores left before it
	// loads waiting: either the writer sees the reader waiting, and has
	// the frames written in time, or the reader sees them here.
	cn.in.waiting.Store(true)
	if cn.out.left.Load() {
		cn.writeLeft()
	}
	n, err := cn.nc.Read(p)
	cn.in.waiting.Store(false)
	return n, err
}

// partBatch is a batch answer read in part: the answers of rq read so far,
// in the caller's buffer dst from start on, each ending where ends says
// (counted from start), as fillBatch keeps them.
type partBatch struct {
	rq    *request
	dst   []byte
	start int
	ends  []int
}

// readerTurn says what the reader goroutine does after an answer.
type readerTurn uint8

const (
	readerYield readerTurn = iota // it gave the reading up: wait for it
	readerKeep                    // it still holds the reading: read on
	readerStop                    // the connection ended: exit
)

// readLoop is the connection's reader goroutine: it reads answers and
// completes the queued requests in FIFO order until the connection breaks,
// whenever it holds the reading (see readRole).
func (cn *conn) readLoop() {
	if cn.mux != nil {
		cn.muxReadLoop()
		return
	}
	watch := time.NewTimer(idleWatch)
	defer watch.Stop()
	// The reader goroutine keeps the reading until it gives it up itself
	// (deliver) or the connection fails, so it asks for it again only then.
	turn := readerYield
	var next *request // popped by deliver: the next answer's header is at hand
	for {
		if turn != readerKeep && !cn.awaitRead(watch) {
			if part := cn.in.part; part.rq != nil {
				// The connection failed before the rest could be read.
				cn.failWith(part.rq, cn.failure())
			}
			return
		}
		if part := cn.in.part; part.rq != nil {
			cn.in.part = partBatch{}
			if turn, next = cn.resumeBatch(part); turn == readerStop {
				return
			}
			continue
		}
		h, err := cn.readStart()
		if err != nil {
			cn.failWith(next, err)
			return
		}
		rq := next
		if rq == nil {
			rq = cn.pop()
		}
		if rq == nil {
			cn.fail(fmt.Errorf("%w: header %d with no request outstanding", ErrUnexpectedAnswer, h), writeProgress{})
			return
		}
		if turn, next = cn.deliver(rq, h, false); turn == readerStop {
			return
		}
	}
}

// deliver reads the answer that starts with h (its header consumed) into
// rq, just popped from the queue, frees rq's slot and settles who reads
// next (see readRole): byCaller says a caller read its own answer. For the
// reader goroutine it returns its turn and, when it keeps the reading and
// the next answer's header is buffered already, that answer's request:
// taken under the lock deliver holds anyway, which saves the reader one
// lock per answer when answers arrive many to a read.
func (cn *conn) deliver(rq *request, h frame.Header, byCaller bool) (readerTurn, *request) {
	if err := cn.answer(rq, h); err != nil {
		cn.failWith(rq, err)
		return readerStop, nil
	}
	return cn.settle(byCaller)
}

// resumeBatch reads the rest of a batch answer its caller began to read,
// and completes it, for the reader goroutine; it returns as deliver does.
func (cn *conn) resumeBatch(part partBatch) (readerTurn, *request) {
	if err := cn.fillBatch(part); err != nil {
		cn.failWith(part.rq, err)
		return readerStop, nil
	}
	return cn.settle(false)
}

// settle frees the slot of the answer just delivered and settles who
// reads next, for deliver.
func (cn *conn) settle(byCaller bool) (readerTurn, *request) {
	cn.release()
	cn.mu.Lock()
	empty := cn.q.len() == 0
	cn.prog.advance(!empty)
	// A draining connection with nothing left to answer closes.
	drained := cn.draining && empty && cn.err == nil
	switch {
	case cn.err != nil || drained:
	case byCaller && !empty:
		cn.in.role = roleReader
		cn.wakeReader()
	case empty && cn.in.idle != nil:
		cn.in.role = roleFree
	}
	turn := readerYield
	var next *request
	if !byCaller && cn.in.role == roleReader {
		turn = readerKeep
		if cn.in.r.Buffered() >= frame.HeaderSize {
			next = cn.q.pop()
		}
	}
	cn.mu.Unlock()
	if drained {
		cn.fail(errDraining, writeProgress{})
		return readerStop, nil
	}
	return turn, next
}

// failWith fails the connection for err, and rq (if any) with it: rq left
// the queue, so fail does not see it, and gets the error every other call
// on the connection gets.
func (cn *conn) failWith(rq *request, err error) {
	cn.fail(err, writeProgress{})
	if rq != nil {
		rq.complete(nil, nil, cn.failure(), false)
		cn.release()
	}
}

func (cn *conn) pop() *request {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.q.pop()
}

// readStart reads the header of the next answer or, with a Codec, waits
// for its first byte.
func (cn *conn) readStart() (frame.Header, error) {
	if cn.c.cfg.Codec == nil {
		return cn.in.r.ReadHeader()
	}
	_, err := cn.in.r.Peek(1)
	return 0, err
}

// answer reads the answer that starts with h and completes rq with it. On
// error rq is left pending for the caller to fail.
func (cn *conn) answer(rq *request, h frame.Header) error {
	if cn.c.cfg.Codec != nil {
		return cn.answerCodec(rq)
	}
	if rq.mode.batch() {
		return cn.answerBatch(rq, h)
	}
	if h.IsBatch() {
		return fmt.Errorf("%w: a batch of %d where one frame was expected (%w)",
			ErrUnexpectedAnswer, h.Count(), frame.ErrNegativeLength)
	}
	n := h.Len()
	switch {
	case rq.state.Load() == stateAbandoned:
		// Nobody waits for this answer (a Notify, or a caller that gave
		// up): consume it to stay in sync, and keep nothing.
		if err := cn.in.r.Discard(n); err != nil {
			return err
		}
		rq.recycle()
		return nil
	case rq.mode == modeAppend:
		return cn.answerAppend(rq, n)
	default:
		ans, err := cn.in.r.ReadPayload(make([]byte, 0, min(n, growStep)), n)
		if err != nil {
			return err
		}
		rq.complete(ans, nil, nil, false)
		return nil
	}
}

// answerCodec reads an answer with the Codec and completes rq with it,
// claiming a caller's buffer only once the whole answer is read, as
// answerAppend does.
func (cn *conn) answerCodec(rq *request) error {
	if rq.mode != modeAppend {
		ans, err := cn.c.cfg.Codec.ReadAnswer(cn.in.r, nil)
		if err != nil {
			return err
		}
		rq.complete(ans, nil, nil, false) // or drops it, for a caller gone
		return nil
	}
	p, err := cn.c.cfg.Codec.ReadAnswer(cn.in.r, cn.in.scratch[:0])
	if cap(p) <= maxKeptBuffer {
		cn.in.scratch = p[:0]
	}
	if err != nil {
		return err
	}
	rq.appendAnswer(p)
	return nil
}

// appendAnswer appends a whole answer to the caller's buffer if the caller
// still waits, claiming the request first; else the request is recycled.
func (rq *request) appendAnswer(p []byte) {
	if rq.claim() {
		rq.ans, rq.err = append(rq.dst, p...), nil
		rq.finish()
	} else {
		rq.recycle()
	}
}

// answerAppend appends an n-byte answer to the caller's buffer. The whole
// payload is read first and the call claimed only then, so the caller, who
// may abandon the call at any moment until the claim, never waits on the
// network once it has given up, and never finds its buffer written after.
func (cn *conn) answerAppend(rq *request, n int) error {
	p, err := cn.payload(n)
	if err != nil {
		return err
	}
	rq.appendAnswer(p)
	if inPlace(n) {
		// Cannot fail: Peek buffered these bytes. rq is gone, so no error
		// may reach the caller's error path from here.
		_ = cn.in.r.Discard(n)
	}
	return nil
}

// payload returns the next n bytes: in place in the read buffer when they
// fit (inPlace: still to be discarded after use), else read into scratch.
func (cn *conn) payload(n int) ([]byte, error) {
	if inPlace(n) {
		p, err := cn.in.r.Peek(n)
		return p, frame.Truncated(err)
	}
	p, err := cn.in.r.ReadPayload(cn.in.scratch[:0], n)
	if cap(p) <= maxKeptBuffer {
		cn.in.scratch = p[:0]
	}
	return p, err
}

// inPlace reports whether payload leaves an n-byte answer in the read
// buffer rather than consuming it.
func inPlace(n int) bool { return n <= readBufferSize }

// answerBatch reads a batch answer for rq. The answers share a few
// growing chunks rather than taking an allocation each.
func (cn *conn) answerBatch(rq *request, h frame.Header) error {
	switch {
	case !h.IsBatch():
		return fmt.Errorf("%w: a single frame where a batch of %d was expected", ErrUnexpectedAnswer, rq.n)
	case h.Count() != rq.n:
		return fmt.Errorf("%w: a batch of %d where a batch of %d was expected", ErrUnexpectedAnswer, h.Count(), rq.n)
	case rq.state.Load() == stateAbandoned:
		return cn.discardBatch(rq, rq.n)
	case rq.mode == modeBatchAppend:
		return cn.answerBatchAppend(rq)
	}
	answers := make([][]byte, rq.n)
	var chunk []byte
	for i := range answers {
		n, err := cn.in.r.ReadLength()
		if err != nil {
			return err
		}
		if n > growStep {
			if answers[i], err = cn.in.r.ReadPayload(nil, n); err != nil {
				return err
			}
			continue
		}
		if cap(chunk)-len(chunk) < n {
			// Guess that the answers left are the size of this one: right
			// for the common batch of like requests, one allocation.
			chunk = make([]byte, 0, max(min(n*(rq.n-i), growStep), n, 512))
		}
		p, err := cn.in.r.ReadPayload(chunk[len(chunk):], n)
		if err != nil {
			return err
		}
		chunk = chunk[:len(chunk)+n]
		answers[i] = p[:n:n]
	}
	rq.complete(nil, answers, nil, false)
	return nil
}

// answerBatchAppend reads a batch answer for a caller's buffers: rq.dst
// for the bytes, rq.into for the slices. Each answer goes into dst as it
// is read, through fill, so that a caller who gave up never finds its
// buffers written after; the rest of the batch is then dropped.
func (cn *conn) answerBatchAppend(rq *request) error {
	return cn.fillBatch(partBatch{rq: rq, dst: rq.dst, start: len(rq.dst), ends: cn.in.ends[:0]})
}

// fillBatch reads the rest of part's batch answer into the caller's
// buffer, through fill, and completes the call; once the caller gave up,
// it drops the rest of the batch.
func (cn *conn) fillBatch(part partBatch) error {
	rq, dst, start, ends := part.rq, part.dst, part.start, part.ends
	for len(ends) < rq.n {
		n, err := cn.in.r.ReadLength()
		if err != nil {
			return err
		}
		p, err := cn.payload(n)
		if err != nil {
			return err
		}
		var ok bool
		dst, ok = rq.fill(dst, p, rq.n-len(ends))
		if inPlace(n) {
			_ = cn.in.r.Discard(n) // cannot fail: payload buffered it
		}
		if !ok {
			cn.in.ends = ends[:0]
			return cn.discardBatch(rq, rq.n-len(ends)-1)
		}
		ends = append(ends, len(dst)-start)
	}
	cn.in.ends = ends[:0]
	rq.claimInDst(dst, start, ends)
	return nil
}

// claimInDst completes rq with its batch answer in dst, as completeInDst
// does, unless its caller gave up; rq is then recycled.
func (rq *request) claimInDst(dst []byte, start int, ends []int) {
	if rq.claim() {
		rq.completeInDst(dst, start, ends)
	} else {
		rq.recycle()
	}
}

// completeInDst completes rq, claimed, with its batch answer in dst from
// start on, each answer ending where ends says (counted from start).
func (rq *request) completeInDst(dst []byte, start int, ends []int) {
	answers, prev := rq.into, 0
	for _, end := range ends {
		answers = append(answers, dst[start+prev:start+end:start+end])
		prev = end
	}
	rq.ans, rq.answers, rq.err = dst, answers, nil
	rq.finish()
}

// discardBatch reads the next n frames of rq's batch answer, whose
// caller gave up, and drops them with rq.
func (cn *conn) discardBatch(rq *request, n int) error {
	for range n {
		n, err := cn.in.r.ReadLength()
		if err == nil {
			err = cn.in.r.Discard(n)
		}
		if err != nil {
			return err
		}
	}
	rq.recycle()
	return nil
}
