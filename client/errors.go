package client

import (
	"errors"
	"fmt"

	"github.com/tcpez/tcpez/frame"
)

var (
	// ErrClosed is returned by every call made after Close or once
	// Shutdown began, and by calls that were still waiting for an answer
	// when Close ran.
	ErrClosed = errors.New("tcpez/client: closed")
	// ErrNoConnection is returned when no address has a usable connection
	// and none is being dialled. It wraps the last dial error when there is
	// one.
	ErrNoConnection = errors.New("tcpez/client: no usable connection")
	// ErrConnLost is matched by every *ConnError: the connection carrying
	// the call broke before its answer arrived.
	ErrConnLost = errors.New("tcpez/client: connection lost")
	// ErrAuthFailed is the dial error of a connection whose
	// Config.AuthToken the server did not accept, or that could not be
	// sent; calls see it wrapped in ErrNoConnection.
	ErrAuthFailed = errors.New("tcpez/client: authentication failed")
	// ErrInvalidConfig wraps every error of Config.Validate.
	ErrInvalidConfig = errors.New("tcpez/client: invalid config")
	// ErrUnexpectedAnswer reports an answer that does not fit the request
	// it would answer: a batch where a single frame was expected, a batch
	// of the wrong size, or an answer with no request outstanding. It
	// matches frame.ErrProtocol, like every other protocol violation.
	ErrUnexpectedAnswer error = protocolError("answer does not match the request")
	// ErrServerSpeaksTLS reports a server that answered with a TLS record:
	// a TLS port, dialled without Config.TLS. It comes inside a ConnError
	// and matches frame.ErrProtocol.
	ErrServerSpeaksTLS error = protocolError("server speaks TLS: set Config.TLS to call it")
	// ErrServerSpeaksHTTP reports a server that answered with an HTTP
	// status line: an HTTP port, not a tcpez one. It comes inside a
	// ConnError and matches frame.ErrProtocol.
	ErrServerSpeaksHTTP error = protocolError("server speaks HTTP, not tcpez")
)

// foreign names the protocol the server speaks when cause, an answer
// header over the limits, is recognisably not tcpez.
func foreign(cause error) error {
	switch frame.SniffError(cause) {
	case frame.TLS:
		return fmt.Errorf("%w (%w)", ErrServerSpeaksTLS, cause)
	case frame.HTTP:
		return fmt.Errorf("%w (%w)", ErrServerSpeaksHTTP, cause)
	}
	return cause
}

// ConnError reports that the connection to Addr broke while a call was on
// it. Err is the cause: an I/O error, io.EOF for a server that closed the
// connection cleanly, or a frame error (matching frame.ErrProtocol) for a
// server that broke the protocol. Every ConnError matches ErrConnLost.
//
// A call that fails with a ConnError may or may not have been executed by
// the server; see WithIdempotent.
type ConnError struct {
	Addr string
	Err  error
}

func (e *ConnError) Error() string {
	return "tcpez/client: connection to " + e.Addr + " lost: " + e.Err.Error()
}

// Unwrap returns the cause, so that errors.Is(err, frame.ErrProtocol) and
// similar checks see through a ConnError.
func (e *ConnError) Unwrap() error { return e.Err }

// Is makes every ConnError match ErrConnLost.
func (e *ConnError) Is(target error) bool { return target == ErrConnLost }

type protocolError string

func (e protocolError) Error() string { return "tcpez/client: " + string(e) }

// Is lets protocol errors of this package match the frame package's
// ErrProtocol, so callers need one check for every protocol violation.
func (e protocolError) Is(target error) bool { return target == frame.ErrProtocol }

// Internal causes; they reach users only inside a ConnError.
var (
	errDrainTimeout = errors.New("tcpez/client: address removed and its connection did not drain in time")
	errDraining     = errors.New("tcpez/client: connection is draining")
)
