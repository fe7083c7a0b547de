package frame

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
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
type Reader struct {
	br  *bufio.Reader
	lim Limits
}

// NewReader returns a Reader over r with DefaultBufferSize and limits lim.
func NewReader(r io.Reader, lim Limits) *Reader {
	return NewReaderSize(r, DefaultBufferSize, lim)
}

// NewReaderSize returns a Reader over r with a buffer of at least size bytes.
func NewReaderSize(r io.Reader, size int, lim Limits) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, size), lim: lim}
}

// Reset discards buffered data and reads from r next.
func (r *Reader) Reset(rd io.Reader) { r.br.Reset(rd) }

// Buffered is the number of bytes received but not yet consumed. A server
// uses it to tell whether more pipelined requests are already at hand.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Peek returns the next n bytes without consuming them, reading if needed.
func (r *Reader) Peek(n int) ([]byte, error) { return r.br.Peek(n) }

// PeekHeader returns the next header without consuming it, reading until
// its bytes have arrived, and without checking it against the limits. Its
// errors are Peek's, untranslated: a caller that gives up on a deadline
// can read on later as if nothing happened.
func (r *Reader) PeekHeader() (Header, error) {
	b, err := r.br.Peek(HeaderSize)
	if err != nil {
		return 0, err
	}
	return Header(binary.BigEndian.Uint32(b)), nil
}

// NextBuffered reports whether the next message has arrived far enough
// that reading it will not block: its header and, for a single frame, its
// payload (a batch's frames each come with their own header).
func (r *Reader) NextBuffered() bool {
	b := r.br.Buffered()
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
	h, err := r.readHeader()
	if err == io.EOF {
		err = truncated(err)
	}
	if err != nil {
		return dst[:0], err
	}
	if err := r.lim.CheckLength(h); err != nil {
		return dst[:0], err
	}
	return r.ReadPayload(dst, h.Len())
}

// ReadPayload reads the n payload bytes that follow a frame header into dst's
// storage. A payload larger than dst grows with the bytes that arrive, not
// with n, so a peer that announces a large frame and stalls holds little.
func (r *Reader) ReadPayload(dst []byte, n int) ([]byte, error) {
	if n <= cap(dst) {
		dst = dst[:n]
		_, err := io.ReadFull(r.br, dst)
		return dst, truncated(err)
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
		m, err := io.ReadFull(r.br, dst[len(dst):len(dst)+step])
		dst = dst[:len(dst)+m]
		if err != nil {
			return dst, truncated(err)
		}
	}
	return dst, nil
}

// Discard skips n payload bytes without keeping them.
func (r *Reader) Discard(n int) error {
	_, err := r.br.Discard(n)
	return truncated(err)
}

func (r *Reader) readHeader() (Header, error) {
	// Peek avoids copying through a temporary array that would escape.
	b, err := r.br.Peek(HeaderSize)
	if err != nil {
		if len(b) == 0 && err == io.EOF {
			return 0, io.EOF
		}
		return 0, truncated(err)
	}
	h := Header(binary.BigEndian.Uint32(b))
	_, _ = r.br.Discard(HeaderSize)
	return h, nil
}

// truncated turns an end of stream inside a frame into ErrTruncated, keeping
// io.ErrUnexpectedEOF matchable; other errors (timeouts, resets) pass as they
// are so that callers can inspect them.
func truncated(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (%w)", ErrTruncated, io.ErrUnexpectedEOF)
	}
	return err
}
