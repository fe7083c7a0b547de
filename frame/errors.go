package frame

import (
	"errors"
	"fmt"
	"io"
)

// ErrProtocol matches, through errors.Is, every error by which this package
// reports input that breaks the protocol. A connection that returns one is out
// of sync and must be closed.
var ErrProtocol = errors.New("tcpez/frame: protocol error")

// Protocol violations. Each matches ErrProtocol as well as itself.
var (
	// ErrMalformedHeader is the header -2^31, which names neither a frame
	// length nor a batch count.
	ErrMalformedHeader error = protocolError("malformed header -2147483648")
	// ErrNegativeLength is a negative length where a frame must start: inside
	// a batch, or where a single answer is expected. Batches do not nest.
	ErrNegativeLength error = protocolError("negative length where a frame must start")
	// ErrTruncated is a stream that ended inside a header or a payload. It
	// also matches io.ErrUnexpectedEOF.
	ErrTruncated error = protocolError("truncated frame")
	// ErrFrameTooLarge is matched by a *SizeError for a frame length over the limit.
	ErrFrameTooLarge error = protocolError("frame too large")
	// ErrBatchTooLarge is matched by a *SizeError for a batch count over the limit.
	ErrBatchTooLarge error = protocolError("batch too large")
)

// Errors in how this package is called, rather than in what a peer sent.
var (
	// ErrInvalidLimits reports Limits that Validate rejects.
	ErrInvalidLimits = errors.New("tcpez/frame: invalid limits")
	// ErrEmptyBatch reports a batch of no frames, which the wire cannot
	// express: the header 0 is an empty frame.
	ErrEmptyBatch = errors.New("tcpez/frame: a batch needs at least one frame")
)

type protocolError string

func (e protocolError) Error() string { return "tcpez/frame: " + string(e) }

func (e protocolError) Is(target error) bool { return target == ErrProtocol }

// SizeError reports a header that announces more than a limit allows. It is
// returned before any memory is taken for the announced size.
type SizeError struct {
	// Batch is true for a batch count, false for a frame length.
	Batch bool
	// Limit is the largest value allowed.
	Limit int
	// Size is the value the header announced.
	Size int64
}

func (e *SizeError) Error() string {
	if e.Batch {
		return fmt.Sprintf("tcpez/frame: batch of %d frames exceeds the limit of %d", e.Size, e.Limit)
	}
	return fmt.Sprintf("tcpez/frame: frame of %d bytes exceeds the limit of %d", e.Size, e.Limit)
}

// Is makes a SizeError match ErrProtocol and ErrBatchTooLarge or
// ErrFrameTooLarge, whichever it is.
func (e *SizeError) Is(target error) bool {
	if target == ErrProtocol {
		return true
	}
	if e.Batch {
		return target == ErrBatchTooLarge
	}
	return target == ErrFrameTooLarge
}

// Truncated returns err as the frame layer reports an end of stream inside
// a frame: ErrTruncated, still matching io.ErrUnexpectedEOF, when err is
// io.EOF or matches io.ErrUnexpectedEOF; any other error (a timeout, a
// reset) as it is, so that callers can inspect it. Reader's read methods
// apply it. Peek and PeekHeader do not, so that a caller that gives up on
// a deadline can read on later; it applies Truncated once it knows the
// bytes it peeked for were due.
func Truncated(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (%w)", ErrTruncated, io.ErrUnexpectedEOF)
	}
	return err
}
