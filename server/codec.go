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
