package textcmd

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/tcpez/tcpez/frame"
)

// Reader reads messages from a buffered stream. It reads through a
// *frame.Reader, the buffered reader of the tcpez connection machinery, so
// that a server or client shares its buffers and burst pool; the frame
// layer's own limits play no part.
//
// A read error (a deadline, a reset) that comes before any byte of a
// message is consumed passes as it is, and a later call reads on as if
// nothing happened. One that comes after part of a message, or of a
// multi-part response, was consumed leaves the stream out of sync: it is
// reported as ErrTruncated, wrapping the read error, and every later read
// returns that error.
type Reader struct {
	r   *frame.Reader
	g   Grammar
	lim Limits
	err error // the stream is out of sync: every read returns it
}

// NewReader returns a Reader over rd with a buffer of
// frame.DefaultBufferSize, or more if lim.MaxLineLength needs it.
func NewReader(rd io.Reader, g Grammar, lim Limits) *Reader {
	return Over(frame.NewReaderSize(rd, max(frame.DefaultBufferSize, lim.LineLimit()), frame.Limits{}), g, lim)
}

// Over returns a Reader that reads from r, whose buffer must hold at least
// lim.MaxLineLength bytes.
func Over(r *frame.Reader, g Grammar, lim Limits) *Reader {
	return &Reader{r: r, g: g, lim: lim}
}

// NextLen waits until the line of the next message has arrived and
// returns the message's length (see the function NextLen), consuming
// nothing. At a clean end of stream it returns io.EOF; a stream that ends
// inside the line is ErrTruncated. Other read errors pass as they are, so
// a caller that gives up on a deadline can call it again later.
func (r *Reader) NextLen() (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for {
		b, _ := r.r.Peek(r.r.Buffered())
		n, ok, err := NextLen(b, r.g, r.lim)
		if ok || err != nil {
			return n, err
		}
		if _, err := r.r.Peek(len(b) + 1); err != nil {
			switch {
			case err == io.EOF && len(b) == 0:
				return 0, io.EOF
			case errors.Is(err, bufio.ErrBufferFull):
				// The buffer is smaller than the line limit: the line is
				// too long for this reader.
				return 0, &SizeError{Kind: ErrLineTooLong, Limit: len(b), Size: int64(len(b)) + 1}
			}
			return 0, truncated(err)
		}
	}
}

// Whole reports whether the next message has arrived whole, so that
// reading it will not block.
func (r *Reader) Whole() bool {
	b, _ := r.r.Peek(r.r.Buffered())
	n, ok, err := NextLen(b, r.g, r.lim)
	return ok && err == nil && n <= len(b)
}

// ReadRaw appends the bytes of the next message to dst: its line and
// line ending, and its data block and "\r\n" when it has one, which it
// checks. A message that fits the buffer is consumed only once it has
// arrived whole, so that a read error on the way (a deadline) consumes
// nothing; a larger one is consumed as it arrives, its memory growing
// with its bytes, and a read error inside it is ErrTruncated (see Reader).
func (r *Reader) ReadRaw(dst []byte) ([]byte, error) {
	n, err := r.NextLen()
	if err != nil {
		return dst, err
	}
	if n > r.r.Buffered() {
		if err := r.await(n); err != nil {
			return dst, err
		}
	}
	p, err := r.r.ReadPayload(dst[len(dst):], n)
	if err != nil {
		return dst, r.fail(err)
	}
	if len(dst)+n <= cap(dst) {
		dst = dst[:len(dst)+n] // read in place
	} else {
		dst = append(dst, p...)
	}
	// A message longer than its line carries a data block, whose end
	// proves its byte count right.
	msg := dst[len(dst)-n:]
	if rest, _, _, _ := ParseLine(msg, r.lim); len(rest) > 0 && (msg[n-2] != '\r' || msg[n-1] != '\n') {
		return dst, r.fail(ErrBadDataEnd)
	}
	return dst, nil
}

// await waits, consuming nothing, until the n bytes of the next message
// have arrived, or the buffer is full of them if it is smaller. Its errors
// are those of NextLen.
func (r *Reader) await(n int) error {
	_, err := r.r.Peek(n)
	if !errors.Is(err, bufio.ErrBufferFull) {
		return truncated(err)
	}
	// Larger than the buffer, which Peek filled unless a read failed: peek
	// one byte past what is buffered to learn which, consuming nothing.
	if _, err := r.r.Peek(r.r.Buffered() + 1); !errors.Is(err, bufio.ErrBufferFull) {
		return truncated(err)
	}
	return nil
}

// fail reports err, met after part of a message was consumed: the stream
// is out of sync, and every later read returns the error.
func (r *Reader) fail(err error) error {
	switch {
	case errors.Is(err, ErrProtocol):
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		err = truncated(err)
	default:
		err = fmt.Errorf("%w (%w)", ErrTruncated, err)
	}
	r.err = err
	return err
}

// ReadMessage reads the next message into dst's storage and parses it into
// m, whose fields alias the returned buffer.
func (r *Reader) ReadMessage(dst []byte, m *Message) ([]byte, error) {
	raw, err := r.ReadRaw(dst[:0])
	if err != nil {
		return raw, err
	}
	if _, ok, err := ParseMessage(raw, r.g, r.lim, m); !ok || err != nil {
		return raw, r.fail(errors.Join(ErrBadDataEnd, err))
	}
	return raw, nil
}

// ReadResponseRaw appends the bytes of one whole response to dst: the
// messages that continue it and the one that closes it.
func (r *Reader) ReadResponseRaw(dst []byte) ([]byte, error) {
	limit := r.lim.partLimit()
	for i := 0; ; i++ {
		if i == limit {
			return dst, r.fail(&SizeError{Kind: ErrTooManyParts, Limit: limit, Size: int64(limit) + 1})
		}
		start := len(dst)
		var err error
		if dst, err = r.ReadRaw(dst); err != nil {
			if i > 0 {
				// The parts before are consumed.
				err = r.fail(err)
			}
			return dst, err
		}
		name, _ := nextToken(lineOf(dst[start:]))
		if !r.g.continues(name) {
			return dst, nil
		}
	}
}

// ReadResponse reads one whole response into dst's storage and parses its
// messages into parts (pass parts[:0] to reuse it), which alias the
// returned buffer.
func (r *Reader) ReadResponse(dst []byte, parts []Message) ([]byte, []Message, error) {
	raw, err := r.ReadResponseRaw(dst[:0])
	if err != nil {
		return raw, parts, err
	}
	_, parts, _, err = ParseResponse(raw, r.g, r.lim, parts)
	return raw, parts, err
}

// lineOf returns the line at the front of msg, which holds it whole.
func lineOf(msg []byte) []byte {
	_, line, _, _ := ParseLine(msg, Limits{MaxLineLength: len(msg) + 1})
	return line
}

// truncated turns an end of stream inside a message into ErrTruncated,
// keeping io.ErrUnexpectedEOF matchable; other errors (timeouts, resets)
// pass as they are, for a caller to read on later when nothing of the
// message is consumed (else see fail).
func truncated(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (%w)", ErrTruncated, io.ErrUnexpectedEOF)
	}
	return err
}
