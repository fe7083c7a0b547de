package client

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"time"

	"github.com/tcpez/tcpez/frame"
)

// readGrace is how long a caller reading its own answer waits in the read
// before the reading passes to the reader goroutine, so that a caller
// whose context is cancelled returns within readGrace.
const readGrace = 10 * time.Millisecond

// readRole says who holds a connection's reading role. A caller that finds
// nobody reading reads its own answer, as a hand-written loop would, and
// the reader goroutine reads only while others have calls in flight or a
// caller's wait runs long: handing each answer to its caller's goroutine
// cost as much as the round trip itself (docs/DESIGN.md, "Reading").
type readRole uint8

const (
	roleFree   readRole = iota // nothing in flight; the next caller reads
	roleReader                 // the reader goroutine reads
	roleCaller                 // a caller is reading its own answer
)

// takeReadLocked gives the reading of a connection nobody reads to the
// request being queued: to its caller when it waits for a single answer,
// or for a batch into its buffers (FlushAppend), else to the reader
// goroutine. The queue is empty.
func (cn *conn) takeReadLocked(rq *request) {
	cn.in.takes++
	if rq.fut == nil && (rq.mode == modeOwned || rq.mode == modeAppend || rq.mode == modeBatchAppend) {
		cn.in.role = roleCaller
		rq.direct = cn
		return
	}
	cn.in.role = roleReader
	cn.wakeReader()
}

// wakeReader tells the reader goroutine that it reads now, or that the
// connection failed.
func (cn *conn) wakeReader() {
	select {
	case cn.in.wake <- struct{}{}:
	default:
	}
}

// idleWatch is how long a connection may go unread while nobody calls
// before the reader goroutine reads it again, to notice within about twice
// that a server closed it or broke the protocol, as it does at once on a
// connection it always reads.
const idleWatch = 10 * time.Millisecond

// awaitRead blocks the reader goroutine until it is to read; false once the
// connection has failed.
func (cn *conn) awaitRead(watch *time.Timer) bool {
	cn.mu.Lock()
	takes := cn.in.takes
	for cn.in.role != roleReader && cn.err == nil {
		cn.mu.Unlock()
		watch.Reset(idleWatch)
		select {
		case <-cn.in.wake:
		case <-watch.C:
		}
		cn.mu.Lock()
		if cn.in.role == roleFree && cn.in.takes == takes {
			cn.in.role = roleReader // idle for a whole idleWatch
		}
		takes = cn.in.takes
	}
	ok := cn.err == nil
	cn.mu.Unlock()
	if ok && !cn.in.deadline.IsZero() {
		// A caller's read left a deadline; the reader waits as long as
		// it takes.
		cn.in.deadline = time.Time{}
		_ = cn.nc.SetReadDeadline(cn.in.deadline)
	}
	return ok
}

// passRead hands a caller's reading to the reader goroutine before the
// caller's own answer has come.
func (cn *conn) passRead() {
	cn.mu.Lock()
	if cn.err == nil {
		cn.in.role = roleReader
		cn.wakeReader()
	}
	cn.mu.Unlock()
}

// readOwn reads the answer of rq, the caller's own call at the head of the
// queue, on the caller's goroutine. It waits only for an answer that fits
// in the read buffer to arrive whole, so that giving up (the deadline or
// readGrace passes) consumes nothing and the reader goroutine can take
// over where it stands. On return rq is completed, or the reader goroutine
// owns it and the caller waits as usual.
func (cn *conn) readOwn(ctx context.Context, rq *request) {
	if cn.mux != nil {
		cn.muxReadOwn(ctx, rq)
		return
	}
	if rq.mode.batch() {
		cn.readOwnBatch(ctx, rq)
		return
	}
	h, err := cn.peekAnswer(ctx)
	if cn.ownReadFailed(err) {
		return
	}
	_, _ = cn.in.r.ReadHeader() // cannot fail: peekAnswer buffered it
	// rq heads the queue: it took the reading when the queue was empty.
	// Only fail takes it out first, and completes it.
	if cn.pop() == nil {
		return
	}
	cn.deliver(rq, h, true)
}

// ownReadFailed acts on the error of a caller's wait for its own answer:
// the reading passes to the reader goroutine when the next frame is not
// the caller's or the wait ran out, and the connection fails when it
// broke. It reports whether there was an error.
func (cn *conn) ownReadFailed(err error) bool {
	switch {
	case err == nil:
		return false
	case err == errNotOwn:
		cn.passRead()
	case cn.failure() == nil && errors.Is(err, os.ErrDeadlineExceeded):
		cn.passRead()
	case err == io.EOF && cn.in.r.Buffered() == 0:
		cn.fail(err, writeProgress{}) // closed between answers
	default:
		cn.fail(frame.Truncated(err), writeProgress{})
	}
	return true
}

var errNotOwn = errors.New("tcpez/client: answer for the reader goroutine")

// gaveUp reports whether ctx has ended, for a caller reading its own batch
// answer: answers that keep coming within readGrace of each other would
// otherwise keep a caller that gave up reading until the whole batch is
// in. It then passes the reading on, and leaves as a waiting caller does.
func gaveUp(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// peekAnswer waits until a whole single-frame answer is buffered, and
// returns its header.
func (cn *conn) peekAnswer(ctx context.Context) (frame.Header, error) {
	h, _, err := cn.peekFrame(ctx, func(h frame.Header) bool {
		return !h.IsBatch() && cn.c.cfg.Limits.CheckHeader(h) == nil
	})
	return h, err
}

// peekFrame waits until the frame at the head of the read buffer is
// buffered whole, and returns its header and payload, still in the
// buffer. Anything but a frame that fits in the buffer and that own
// accepts is the reader goroutine's to read, check and report: errNotOwn.
func (cn *conn) peekFrame(ctx context.Context, own func(frame.Header) bool) (frame.Header, []byte, error) {
	// A frame at hand needs no read, so no deadline: arming one reads the
	// clock, which a Pipeline's answers did 64 times a batch.
	if !cn.in.r.NextBuffered() {
		if err := cn.armRead(ctx); err != nil {
			return 0, nil, err
		}
	}
	h, err := cn.in.r.PeekHeader()
	if err != nil {
		return 0, nil, err
	}
	if !own(h) || h.Len() > readBufferSize-frame.HeaderSize {
		return 0, nil, errNotOwn
	}
	b, err := cn.in.r.Peek(frame.HeaderSize + h.Len())
	if err != nil {
		return 0, nil, err
	}
	return h, b[frame.HeaderSize:], nil
}

// armRead sets the read deadline of a caller's own read: the caller's
// deadline or readGrace, whichever comes first, kept when the one already
// set is near enough, as armWrite does.
func (cn *conn) armRead(ctx context.Context) error {
	now := time.Now()
	want := now.Add(readGrace)
	if d, ok := ctx.Deadline(); ok && d.Before(want) {
		want = d
	}
	if keepDeadline(cn.in.deadline, want, now, readGrace) {
		return nil
	}
	cn.in.deadline = want
	return cn.nc.SetReadDeadline(want)
}

// readOwnBatch is readOwn for a batch answer, which the caller reads a
// frame at a time: the hand-off to the reader goroutine and back cost a
// Pipeline of 64×4 KiB a sixth of its time. As readOwn does, it waits
// only for a frame that fits in the read buffer to arrive whole, so that
// giving up consumes nothing of it; the reader goroutine then reads the
// rest of the batch from where the caller stopped (conn.in.part), and the
// caller waits as usual.
func (cn *conn) readOwnBatch(ctx context.Context, rq *request) {
	s := cn.in.straight
	whole, led := cn.leadBatch(ctx, rq)
	if !led {
		_, err := cn.peekBatch(ctx, rq)
		if cn.ownReadFailed(err) {
			return
		}
		_, _ = cn.in.r.ReadHeader() // cannot fail: peekBatch buffered it
	}
	// The answers go straight into the caller's buffer, which is this
	// goroutine's: nobody else can claim the call while it reads. That
	// saves copying the batch through scratch.
	dst, ends := rq.dst, cn.in.ends[:0]
	start := len(dst)
	if led {
		dst, ends = s.takeInOrder(cn.in.r, dst, start, ends, whole)
	}
	if cn.pop() == nil {
		return
	}
	for len(ends) < rq.n {
		if whole, ok := s.read(ctx, cn, dst, rq.n-len(ends), frame.HeaderSize, v1AnswerBody, false); ok {
			dst, ends = s.takeInOrder(cn.in.r, dst, start, ends, whole)
			continue
		}
		_, p, err := cn.peekFrame(ctx, func(h frame.Header) bool { return cn.c.cfg.Limits.CheckLength(h) == nil })
		if err == nil && gaveUp(ctx) {
			err = errNotOwn
		}
		switch {
		case err == errNotOwn || (err != nil && cn.failure() == nil && errors.Is(err, os.ErrDeadlineExceeded)):
			// The reader goroutine reads the rest, maybe after the
			// caller returned: into dst too, through fill, which never
			// writes it once the caller gave up.
			cn.passBatch(partBatch{rq: rq, dst: dst, start: start, ends: ends})
			return
		case err != nil:
			cn.failWith(rq, frame.Truncated(err))
			return
		}
		dst = append(dst, p...)
		_ = cn.in.r.Discard(frame.HeaderSize + len(p)) // cannot fail: Peek buffered it
		ends = append(ends, len(dst)-start)
		s.saw(len(p))
	}
	cn.in.ends = ends[:0]
	rq.claimInDst(dst, start, ends)
	cn.settle(true)
}

// v1AnswerBody parses p, a frame header inside a batch answer, as that of
// an answer a caller may read itself, as readOwnBatch's peekFrame does:
// its length.
func v1AnswerBody(cn *conn, p []byte) (int, bool) {
	h := frame.Header(binary.BigEndian.Uint32(p))
	return h.Len(), cn.c.cfg.Limits.CheckLength(h) == nil && h.Len() <= readBufferSize-frame.HeaderSize
}

// leadBatch begins reading a batch answer with a straight read, header
// and first answers at once, when nothing is buffered; led says it read
// rq's batch header and whole answers of it: readOwnBatch takes them. Any
// other read is given back to the Reader whole.
func (cn *conn) leadBatch(ctx context.Context, rq *request) (whole int, led bool) {
	s := cn.in.straight
	whole, ok := s.read(ctx, cn, rq.dst, rq.n, frame.HeaderSize, v1AnswerBody, true)
	if !ok {
		return 0, false
	}
	if h, ok := s.leader(); ok && cn.ownBatch(h, rq) {
		s.takeLead()
		return whole, true
	}
	s.keep(cn.in.r, rq.dst, 0)
	return 0, false
}

// ownBatch says whether h is the header of rq's batch answer.
func (cn *conn) ownBatch(h frame.Header, rq *request) bool {
	return h.IsBatch() && h.Count() == rq.n && cn.c.cfg.Limits.CheckHeader(h) == nil
}

// peekBatch waits until the header of a batch answer is buffered, and
// returns it; errNotOwn for any other header, which the reader goroutine
// reads, checks and reports.
func (cn *conn) peekBatch(ctx context.Context, rq *request) (frame.Header, error) {
	if err := cn.armRead(ctx); err != nil {
		return 0, err
	}
	h, err := cn.in.r.PeekHeader()
	if err != nil {
		return 0, err
	}
	if !cn.ownBatch(h, rq) {
		return 0, errNotOwn
	}
	return h, nil
}

// passBatch hands the reading of a batch answer the caller began to read
// to the reader goroutine, which reads the rest; on a connection that
// failed meanwhile, it fails the call, which left the queue.
func (cn *conn) passBatch(part partBatch) {
	cn.mu.Lock()
	if cn.err == nil {
		cn.in.part = part
		cn.in.role = roleReader
		cn.wakeReader()
		cn.mu.Unlock()
		return
	}
	cn.mu.Unlock()
	part.rq.complete(nil, nil, cn.failure(), false)
	cn.release()
}
