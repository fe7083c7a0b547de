package textcmd

import (
	"errors"
	"fmt"

	"github.com/tcpez/tcpez/frame"
)

// ErrProtocol matches, through errors.Is, every error by which this package
// reports input that breaks the protocol. A connection that returns one is
// out of sync and must be closed.
var ErrProtocol = errors.New("tcpez/textcmd: protocol error")

// Protocol violations. Each matches ErrProtocol as well as itself, and
// frame.ErrProtocol, by which the tcpez server and client count and report
// the protocol errors of every wire codec.
var (
	// ErrLineTooLong is matched by a *SizeError for a line over
	// Limits.MaxLineLength, reported as soon as that many bytes have come
	// without a line ending.
	ErrLineTooLong error = protocolError("line too long")
	// ErrTooManyArgs is matched by a *SizeError for a line with more
	// arguments than Limits.MaxArgs.
	ErrTooManyArgs error = protocolError("too many arguments")
	// ErrDataTooLarge is matched by a *SizeError for a byte count over
	// Limits.MaxDataSize.
	ErrDataTooLarge error = protocolError("data block too large")
	// ErrTooManyParts is matched by a *SizeError for a multi-part response
	// of more than Limits.MaxParts messages.
	ErrTooManyParts error = protocolError("too many response parts")
	// ErrBadByteCount is a byte count that is not a decimal number: the
	// data that follows cannot be found, so nothing after it can be read.
	ErrBadByteCount error = protocolError("byte count is not a decimal number")
	// ErrBadDataEnd is a data block not followed by "\r\n": its byte count
	// was wrong.
	ErrBadDataEnd error = protocolError("data block not followed by CRLF")
	// ErrTruncated is a stream that ended inside a line or a data block,
	// when it also matches io.ErrUnexpectedEOF; or, from a Reader, a read
	// that failed (a deadline, a reset) after part of a message was
	// consumed, which it wraps.
	ErrTruncated error = protocolError("truncated message")
	// ErrBinaryProtocol is a message that opens with the magic byte of
	// memcached's binary protocol (0x80 for a request, 0x81 for a
	// response), which no text line begins with. It is reported at that
	// first byte: a binary peer sends no line ending, so waiting for one
	// would hold it until a timeout.
	ErrBinaryProtocol error = protocolError("memcached binary protocol, not text")
)

// ErrBadToken reports, from Writer and the request builders, a token that
// cannot be sent: empty, or holding a space, "\r" or "\n" (ValidToken), or
// a name that opens with 0x80 or 0x81 (ValidName).
var ErrBadToken = errors.New("tcpez/textcmd: token empty or holding a space, CR or LF, or a name opening with 0x80 or 0x81")

// ErrInvalidLimits reports Limits that Validate rejects.
var ErrInvalidLimits = errors.New("tcpez/textcmd: invalid limits")

type protocolError string

func (e protocolError) Error() string { return "tcpez/textcmd: " + string(e) }

func (e protocolError) Is(target error) bool {
	return target == ErrProtocol || target == frame.ErrProtocol
}

// SizeError reports a size over a limit. It is returned before any memory
// is taken for the announced size.
type SizeError struct {
	// Kind is ErrLineTooLong, ErrTooManyArgs, ErrDataTooLarge or
	// ErrTooManyParts.
	Kind error
	// Limit is the largest value allowed.
	Limit int
	// Size is the size seen or announced: for a line, at least Limit+1.
	Size int64
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("%v: %d, over the limit of %d", e.Kind, e.Size, e.Limit)
}

// Is makes a SizeError match ErrProtocol, frame.ErrProtocol and its Kind.
func (e *SizeError) Is(target error) bool {
	return target == ErrProtocol || target == frame.ErrProtocol || target == e.Kind
}
