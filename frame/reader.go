package frame

import (
	"bufio"
	"errors"
	"io"
)

// DefaultBufferSize is the buffer size of NewReader and NewWriter: large
// enough that a burst of small pipelined frames costs one syscall.
const DefaultBufferSize = 16 << 10

// growStep is how much memory a frame's payload may take ahead of the bytes
// that have arrived for it: larger payloads grow by at most this much, or by
// what has already arrived, whichever is more.
const growStep = 64 << 10

// Reader reads frames from a buffered stream. Payloads are copied into
// buffers the caller passes in and may keep reusing.
//
// It buffers as bufio.Reader does, with one addition that bufio cannot
// make, as it cannot change buffers while bytes are buffered: given a
// BufferPool (SetPool), a Reader whose reads keep filling its buffer
// borrows a larger one, and gives it back once a read leaves it part empty
// and its bytes are consumed.
type Reader struct {
	rd   io.Reader
	buf  []byte // the buffer in use: own, or borrowed
	own  []byte
	r, w int   // buf[r:w] is buffered
	err  error // from the last read, returned once
	full bool  // the last read filled buf
	loan loan
	lim  Limits
}

// maxEmptyReads is how many reads in a row may return nothing and no error
// before the stream is reported as io.ErrNoProgress, as in bufio.
const maxEmptyReads = 100

// NewReader returns a Reader over r with DefaultBufferSize and limits lim.
func NewReader(r io.Reader, lim Limits) *Reader {
	return NewReaderSize(r, DefaultBufferSize, lim)
}

// NewReaderSize returns a Reader over r with a buffer of at least size bytes.
func NewReaderSize(r io.Reader, size int, lim Limits) *Reader {
	own := make([]byte, max(size, minBufferSize))
	return &Reader{rd: r, buf: own, own: own, lim: lim}
}

// SetPool lets r borrow larger buffers from pool during bursts. Call it
// before the first read.
func (r *Reader) SetPool(pool *BufferPool) {
	if pool != nil && pool.size > len(r.own) {
		r.loan.pool = pool
	}
}

// Reset discards buffered data, gives back a borrowed buffer, and reads
// from rd next.
func (r *Reader) Reset(rd io.Reader) {
	r.loan.give()
	r.rd, r.buf, r.r, r.w, r.err, r.full = rd, r.own, 0, 0, nil, false
}

// SetLimits replaces the limits r checks headers against from now on: for
// a stream whose framing changes, as a connection that negotiates the
// multiplexed mode, whose frames carry a header of their own.
func (r *Reader) SetLimits(lim Limits) { r.lim = lim }

// Room is how many bytes Refill can take: the buffer's size less what is
// buffered.
func (r *Reader) Room() int { return len(r.buf) - (r.w - r.r) }

// Refill puts p after the bytes buffered, as though the Reader's own read
// had returned p and err, and p must fit (Room). It is for a caller that
// read from the stream around the Reader, with a vectored read straight
// into buffers of its own, and hands back the bytes it did not keep: the
// Reader then goes on as if it had read them itself.
func (r *Reader) Refill(p []byte, err error) {
	if len(p) > r.Room() {
		panic("tcpez/frame: Refill of more than Room")
	}
	if len(p) > len(r.buf)-r.w {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	r.w += copy(r.buf[r.w:], p)
	if err != nil {
		r.err = err
		r.full = false
	}
}

// Err is the error that ended the Reader's last read, which it returns
// once the bytes before it are consumed; nil if there is none. A caller
// that reads around the Reader (Refill) must not read on past it.
func (r *Reader) Err() error { return r.err }

// Buffered is the number of bytes received but not yet consumed. A server
// uses it to tell whether more pipelined requests are already at hand.
func (r *Reader) Buffered() int { return r.w - r.r }

// Peek returns the next n bytes without consuming them, reading if needed.
// As bufio.Reader's: fewer than n bytes come with the error that cut them
// short, and n over the buffer's size is bufio.ErrBufferFull.
func (r *Reader) Peek(n int) ([]byte, error) {
	if n <= r.w-r.r {
		return r.buf[r.r : r.r+n], nil
	}
	return r.peekMore(n)
}

func (r *Reader) peekMore(n int) ([]byte, error) {
	for r.w-r.r < n && r.w-r.r < len(r.buf) && r.err == nil {
		r.fill()
	}
	if n > len(r.buf) {
		return r.buf[r.r:r.w], bufio.ErrBufferFull
	}
	if avail := r.w - r.r; avail < n {
		err := r.readErr()
		if err == nil {
			err = bufio.ErrBufferFull
		}
		return r.buf[r.r:r.w], err
	}
	return r.buf[r.r : r.r+n], nil
}

// Read reads into p as bufio.Reader does: from the buffer while it has
// bytes, else with one read, straight into p when p is at least as large
// as the buffer.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		if r.Buffered() > 0 {
			return 0, nil
		}
		return 0, r.readErr()
	}
	if r.r == r.w {
		if r.err != nil {
			return 0, r.readErr()
		}
		if len(p) >= len(r.buf) {
			n, err := r.rd.Read(p)
			if n < 0 {
				panic(errNegativeRead)
			}
			return n, err
		}
		r.fill()
		if r.r == r.w {
			return 0, r.readErr()
		}
	}
	n := copy(p, r.buf[r.r:r.w])
	r.r += n
	return n, nil
}

// fill reads once into the free end of the buffer, first moving what is
// buffered to its start, and changing buffers when the traffic says so.
func (r *Reader) fill() {
	if r.r > 0 {
		copy(r.buf, r.buf[r.r:r.w])
		r.w -= r.r
		r.r = 0
	}
	r.pickBuffer()
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf[r.w:])
		if n < 0 {
			panic(errNegativeRead)
		}
		r.w += n
		if err != nil {
			r.err = err
			r.full = false
			return
		}
		if n > 0 {
			r.full = r.w == len(r.buf)
			return
		}
	}
	r.err = io.ErrNoProgress
}

// pickBuffer borrows a large buffer when the last read filled the own one,
// so data is arriving faster than it takes; and gives it back once the
// last read left it part empty and all it held is consumed, so a
// connection that waits for data waits on its own small buffer. (Giving
// it back as soon as the bytes left fit in the own buffer would alternate
// large and small reads while frames larger than the own buffer stream in.)
func (r *Reader) pickBuffer() {
	switch {
	case r.loan.pool == nil:
	case !r.loan.active() && r.full:
		if big, ok := r.loan.take(); ok {
			copy(big, r.buf[:r.w])
			r.buf = big
		}
	case r.loan.active() && !r.full && r.w == 0:
		r.buf = r.own
		r.loan.give()
	}
}

func (r *Reader) readErr() error {
	err := r.err
	r.err = nil
	return err
}

var errNegativeRead = errors.New("tcpez/frame: reader returned negative count from Read")

// PeekHeader returns the next header without consuming it, reading until
// its bytes have arrived, and without checking it against the limits. Its
// errors are Peek's, untranslated: a caller that gives up on a deadline
// can read on later as if nothing happened.
func (r *Reader) PeekHeader() (Header, error) {
	b, err := r.Peek(HeaderSize)
	if err != nil {
		return 0, err
	}
	return decodeHeader(b), nil
}

// NextBuffered reports whether the next message has arrived far enough
// that reading it will not block: its header and, for a single frame, its
// payload (a batch's frames each come with their own header).
func (r *Reader) NextBuffered() bool {
	b := r.Buffered()
	if b < HeaderSize {
		return false
	}
	h, _ := r.PeekHeader()
	return h.IsBatch() || h.Len() <= b-HeaderSize
}

// ReadHeader reads the header that starts a request or an answer and checks
// it against the limits. At a clean end of stream it returns io.EOF; a
// stream that ends inside the header is ErrTruncated.
func (r *Reader) ReadHeader() (Header, error) {
	h, err := r.readHeader()
	if err != nil {
		return h, err
	}
	return h, r.lim.CheckHeader(h)
}

// ReadFrame reads a whole frame, as found inside a batch or where a single
// answer is expected, into dst's storage, and returns the payload.
func (r *Reader) ReadFrame(dst []byte) ([]byte, error) {
	n, err := r.ReadLength()
	if err != nil {
		return dst[:0], err
	}
	return r.ReadPayload(dst, n)
}

// ReadLength reads the header of a frame where only a frame may start,
// inside a batch or where a single answer is expected, as ReadFrame does,
// checks it against the limits and returns the payload's length, which
// ReadPayload or Discard reads next: a server learns how much memory the
// frame needs before it takes any. A negative header there is
// ErrNegativeLength (the header -2^31 ErrMalformedHeader), and an end of
// stream ErrTruncated.
func (r *Reader) ReadLength() (int, error) {
	h, err := r.readHeader()
	if err == io.EOF {
		err = Truncated(err)
	}
	if err != nil {
		return 0, err
	}
	if err := r.lim.CheckLength(h); err != nil {
		return 0, err
	}
	return h.Len(), nil
}

// ReadPayload reads the n payload bytes that follow a frame header into dst's
// storage. A payload larger than dst grows with the bytes that arrive, not
// with n, so a peer that announces a large frame and stalls holds little.
func (r *Reader) ReadPayload(dst []byte, n int) ([]byte, error) {
	if n <= cap(dst) {
		dst = dst[:n]
		if n <= r.w-r.r {
			// At hand: the common case for a burst of small frames.
			r.r += copy(dst, r.buf[r.r:])
			return dst, nil
		}
		_, err := io.ReadFull(r, dst)
		return dst, Truncated(err)
	}
	dst = dst[:0]
	for len(dst) < n {
		step := min(n-len(dst), max(len(dst), growStep))
		if cap(dst)-len(dst) < step {
			// Grow to exactly what is needed next, so that the final buffer
			// is no larger than the frame.
			grown := make([]byte, len(dst), len(dst)+step)
			copy(grown, dst)
			dst = grown
		}
		m, err := io.ReadFull(r, dst[len(dst):len(dst)+step])
		dst = dst[:len(dst)+m]
		if err != nil {
			return dst, Truncated(err)
		}
	}
	return dst, nil
}

// Take consumes the next n bytes if they are buffered, and returns them
// where they lie, without a copy; false, and nothing consumed, if fewer
// have arrived. The bytes stay valid until the next call that may read
// (any but Buffered, NextBuffered, Take and Detach), or until Detach: a
// server runs a request from its read buffer this way, and only a handler
// that outlives that (it passed the reading on) costs a copy, Detach's.
func (r *Reader) Take(n int) ([]byte, bool) {
	if n < 0 || n > r.w-r.r {
		return nil, false
	}
	p := r.buf[r.r : r.r+n : r.r+n]
	r.r += n
	return p, true
}

// Detach leaves the buffer to whoever holds bytes Take returned: the
// bytes still buffered move to a new buffer, and the Reader never writes
// the old one again, nor gives it back to its pool. Whatever reads next
// then cannot overwrite them.
func (r *Reader) Detach() {
	var fresh []byte
	if r.loan.active() {
		// Forgotten rather than given back: the pool would lend it again.
		r.loan.box = nil
		fresh, _ = r.loan.take()
	} else {
		fresh = make([]byte, len(r.own))
		r.own = fresh
	}
	r.w = copy(fresh, r.buf[r.r:r.w])
	r.r, r.buf = 0, fresh
}

// Discard skips n payload bytes without keeping them.
func (r *Reader) Discard(n int) error {
	for n > 0 {
		if r.r == r.w {
			if r.err != nil {
				return Truncated(r.readErr())
			}
			r.fill()
			continue
		}
		skip := min(n, r.w-r.r)
		r.r += skip
		n -= skip
	}
	return nil
}

func (r *Reader) readHeader() (Header, error) {
	// Peek avoids copying through a temporary array that would escape.
	b, err := r.Peek(HeaderSize)
	if err != nil {
		if len(b) == 0 && err == io.EOF {
			return 0, io.EOF
		}
		return 0, Truncated(err)
	}
	h := decodeHeader(b)
	r.r += HeaderSize
	return h, nil
}
