package client

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tcpez/tcpez/frame"
)

// growStep is the largest answer given its full size up front; larger ones
// grow as their bytes arrive, so a server that announces a huge frame and
// stalls makes the client hold only what it sent.
const growStep = 64 << 10

// readLoop is the connection's reader goroutine: it reads answers and
// completes the queued calls in FIFO order until the connection breaks,
// whenever it holds the reading (see readRole).
func (cn *conn) readLoop() {
	watch := time.NewTimer(idleWatch)
	defer watch.Stop()
	// The reader goroutine keeps the reading until it gives it up itself
	// (deliver) or the connection fails, so it asks for it again only then.
	var next *call // popped by deliver: the next answer's header is at hand
	for reading := false; ; {
		if !reading && !cn.awaitRead(watch) {
			return
		}
		h, err := cn.r.ReadHeader()
		if err != nil {
			cn.failWith(next, err)
			return
		}
		cl := next
		if cl == nil {
			cl = cn.pop()
		}
		if cl == nil {
			cn.fail(fmt.Errorf("%w: header %d with no request outstanding", ErrUnexpectedAnswer, h), writeProgress{})
			return
		}
		var alive bool
		if alive, reading, next = cn.deliver(cl, h, false); !alive {
			return
		}
	}
}

// deliver reads the answer that starts with h (its header consumed) into
// cl, just popped from the queue, frees cl's slot and settles who reads
// next (see readRole): byCaller says a caller read its own answer. alive
// is false when the connection has ended; keep, for the reader goroutine,
// that it still holds the reading, and next, when keep, the call of the
// next answer if its header is buffered already: taken under the lock
// deliver holds anyway, which saves the reader one lock per answer when
// answers arrive many to a read.
func (cn *conn) deliver(cl *call, h frame.Header, byCaller bool) (alive, keep bool, next *call) {
	if err := cn.answer(cl, h); err != nil {
		cn.failWith(cl, err)
		return false, false, nil
	}
	cn.release()
	cn.mu.Lock()
	empty := cn.q.len() == 0
	// A draining connection with nothing left to answer closes.
	drained := cn.draining && empty && cn.err == nil
	switch {
	case cn.err != nil || drained:
	case byCaller && !empty:
		cn.role = roleReader
		cn.wakeReader()
	case empty && cn.idle != nil:
		cn.role = roleFree
	}
	keep = !byCaller && cn.role == roleReader
	if keep && cn.r.Buffered() >= frame.HeaderSize {
		next = cn.q.pop()
	}
	cn.mu.Unlock()
	if drained {
		cn.fail(errDraining, writeProgress{})
		return false, false, nil
	}
	return true, keep, next
}

// failWith fails the connection for err, and cl (if any) with it: cl left
// the queue, so fail does not see it, and gets the error every other call
// on the connection gets.
func (cn *conn) failWith(cl *call, err error) {
	cn.fail(err, writeProgress{})
	if cl != nil {
		cl.complete(nil, nil, cn.failure(), false)
		cn.release()
	}
}

func (cn *conn) pop() *call {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.q.pop()
}

// answer reads the answer that starts with h and completes cl with it. On
// error cl is left pending for the caller to fail.
func (cn *conn) answer(cl *call, h frame.Header) error {
	if cl.mode == modeBatch {
		return cn.answerBatch(cl, h)
	}
	if h.IsBatch() {
		return fmt.Errorf("%w: a batch of %d where one frame was expected (%w)",
			ErrUnexpectedAnswer, h.Count(), frame.ErrNegativeLength)
	}
	n := h.Len()
	switch {
	case cl.state.Load() == stateAbandoned:
		// Nobody waits for this answer (a Notify, or a caller that gave
		// up): consume it to stay in sync, and keep nothing.
		if err := cn.r.Discard(n); err != nil {
			return err
		}
		cl.recycle()
		return nil
	case cl.mode == modeAppend:
		return cn.answerAppend(cl, n)
	default:
		ans, err := cn.r.ReadPayload(make([]byte, 0, min(n, growStep)), n)
		if err != nil {
			return err
		}
		cl.complete(ans, nil, nil, false)
		return nil
	}
}

// answerAppend appends an n-byte answer to the caller's buffer. The whole
// payload is read first and the call claimed only then, so the caller, who
// may abandon the call at any moment until the claim, never waits on the
// network once it has given up, and never finds its buffer written after.
func (cn *conn) answerAppend(cl *call, n int) error {
	p, peeked, err := cn.payload(n)
	if err != nil {
		return err
	}
	if cl.state.CompareAndSwap(statePending, stateClaimed) {
		cl.ans, cl.err = append(cl.dst, p...), nil
		cl.state.Store(stateDone)
		cl.signal()
	} else {
		cl.recycle()
	}
	if peeked {
		// Cannot fail: Peek buffered these bytes. cl is gone, so no error
		// may reach the caller's error path from here.
		_ = cn.r.Discard(n)
	}
	return nil
}

// payload returns the next n bytes: in place in the read buffer when they
// fit (peeked, to be discarded after use), else read into scratch.
func (cn *conn) payload(n int) (p []byte, peeked bool, err error) {
	if n <= readBufferSize {
		p, err = cn.r.Peek(n)
		return p, true, truncated(err)
	}
	p, err = cn.r.ReadPayload(cn.scratch[:0], n)
	if cap(p) <= maxKeptBuffer {
		cn.scratch = p[:0]
	}
	return p, false, err
}

// answerBatch reads a batch answer for cl. The answers share a few
// growing chunks rather than taking an allocation each.
func (cn *conn) answerBatch(cl *call, h frame.Header) error {
	switch {
	case !h.IsBatch():
		return fmt.Errorf("%w: a single frame where a batch of %d was expected", ErrUnexpectedAnswer, cl.n)
	case h.Count() != cl.n:
		return fmt.Errorf("%w: a batch of %d where a batch of %d was expected", ErrUnexpectedAnswer, h.Count(), cl.n)
	case cl.state.Load() == stateAbandoned:
		return cn.discardBatch(cl)
	}
	answers := make([][]byte, cl.n)
	var chunk []byte
	for i := range answers {
		n, err := cn.readLength()
		if err != nil {
			return err
		}
		if n > growStep {
			if answers[i], err = cn.r.ReadPayload(nil, n); err != nil {
				return err
			}
			continue
		}
		if cap(chunk)-len(chunk) < n {
			// Guess that the answers left are the size of this one: right
			// for the common batch of like requests, one allocation.
			chunk = make([]byte, 0, max(min(n*(cl.n-i), growStep), n, 512))
		}
		p, err := cn.r.ReadPayload(chunk[len(chunk):], n)
		if err != nil {
			return err
		}
		chunk = chunk[:len(chunk)+n]
		answers[i] = p[:n:n]
	}
	cl.complete(nil, answers, nil, false)
	return nil
}

func (cn *conn) discardBatch(cl *call) error {
	for range cl.n {
		n, err := cn.readLength()
		if err == nil {
			err = cn.r.Discard(n)
		}
		if err != nil {
			return err
		}
	}
	cl.recycle()
	return nil
}

// readLength reads a header where only a frame may start: inside a batch.
// Any negative header there is ErrNegativeLength, as frame.ReadFrame has it.
func (cn *conn) readLength() (int, error) {
	h, err := cn.r.ReadHeader()
	switch {
	case err != nil:
		return 0, inBatchError(err)
	case h.IsBatch():
		return 0, frame.ErrNegativeLength
	}
	return h.Len(), nil
}

// inBatchError translates ReadHeader's errors for a header inside a batch.
func inBatchError(err error) error {
	var se *frame.SizeError
	switch {
	case err == io.EOF:
		return truncated(err)
	case errors.Is(err, frame.ErrMalformedHeader), errors.As(err, &se) && se.Batch:
		return frame.ErrNegativeLength
	}
	return err
}

// truncated reports an end of stream inside a frame as frame.ErrTruncated,
// matching io.ErrUnexpectedEOF too, as the frame package does.
func truncated(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (%w)", frame.ErrTruncated, io.ErrUnexpectedEOF)
	}
	return err
}
