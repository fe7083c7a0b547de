package server

import (
	"errors"

	"github.com/tcpez/tcpez/frame"
)

// Codec is a wire format for a Server's connections: where the next
// request ends in the stream, and how an answer goes out. Config.Codec nil
// is the tcpez v1 protocol of docs/PROTOCOL.md. Whatever the codec, the
// rest is the connection engine's: listeners, TLS, MaxConns, MaxInFlight,
// the read, idle and write timeouts, answers in request order with
// coalesced writes, Shutdown, spans, stats and logs. docs/DESIGN.md says
// how a codec plugs in; package textcmd/textserver has one.
//
// A connection calls its codec from one goroutine at a time.
type Codec interface {
	// RequestLen waits until the start of the next request has arrived
	// and returns the request's length in bytes, consuming nothing, after
	// checking it against the codec's limits. The engine then reads that
	// many bytes, as it reads a frame's payload (memory growing as they
	// arrive, within ReadTimeout), and hands them to the Handler. A clean
	// end of stream before a request is io.EOF; other errors are read
	// errors, passed as they are (a deadline's included), or protocol
	// errors, which close the connection and should match
	// frame.ErrProtocol.
	RequestLen(r *frame.Reader) (int, error)
	// Whole reports whether the whole next request has arrived, so that
	// reading it will not block, and if so its length, checked as
	// RequestLen checks it: the engine then reads the request without
	// asking RequestLen, so that a request at hand is measured once.
	Whole(r *frame.Reader) (n int, ok bool)
	// WriteAnswer writes one handler's answer, which may be empty: a
	// request that gets no answer on the wire.
	WriteAnswer(w *frame.Writer, answer []byte) error
}

// ErrCloseConnection, returned by a handler (or wrapped in its error),
// closes its connection once the answers before it are written, without
// an answer of its own: a protocol's "quit". It is not logged or counted
// as a failure.
var ErrCloseConnection = errors.New("tcpez/server: close the connection")

// CloseAfter returns an error that answers err as Config.EncodeError
// answers it and then closes the connection, once that answer and the
// ones before it are written: for input after which the stream cannot be
// read on, but whose sender should still learn why (memcached's
// "CLIENT_ERROR bad data chunk"). The engine answers a codec's protocol
// errors this way (Codec.RequestLen); a handler may return one. Without
// EncodeError, or when it has no answer, the connection closes as for
// err alone. It matches err and ErrCloseConnection. The connection's end
// is then a close asked for, as with ErrCloseConnection, unless err is a
// protocol error (frame.ErrProtocol): that is counted and logged as one.
func CloseAfter(err error) error { return &closeAfter{err} }

type closeAfter struct{ err error }

func (e *closeAfter) Error() string   { return e.err.Error() }
func (e *closeAfter) Unwrap() []error { return []error{e.err, ErrCloseConnection} }

// isCloseAfter reports whether err asks for an answer before the close.
func isCloseAfter(err error) bool {
	_, ok := errors.AsType[*closeAfter](err)
	return ok
}

// cleanClose reports whether err, which ends a connection, is an end the
// peer or a handler asked for rather than a fault.
func cleanClose(err error) bool {
	return errors.Is(err, ErrCloseConnection) && !errors.Is(err, frame.ErrProtocol)
}
