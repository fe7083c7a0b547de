package server

import (
	"errors"
	"fmt"
	"net"

	"github.com/tcpez/tcpez/frame"
)

var (
	// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown
	// or Close.
	ErrServerClosed = errors.New("tcpez/server: closed")
	// ErrInvalidConfig wraps every error of Config.Validate.
	ErrInvalidConfig = errors.New("tcpez/server: invalid config")
	// ErrHandlerPanic is matched by the *PanicError of a recovered panic.
	ErrHandlerPanic = errors.New("tcpez/server: handler panic")
	// ErrHandlerTimeout is the error a request is answered as failing with
	// when its handler outlasted Config.HandlerTimeout. It also matches
	// context.DeadlineExceeded.
	ErrHandlerTimeout = errors.New("tcpez/server: handler timeout")
	// ErrHandler wraps a handler's error when it ends the connection.
	ErrHandler = errors.New("tcpez/server: handler error")
	// ErrMemoryBudget ends a connection whose frame found no room in the
	// server's memory budget within MemoryWait, or is larger than the
	// whole budget.
	ErrMemoryBudget = errors.New("tcpez/server: memory budget exhausted")
	// ErrHandshakeEvicted ends a connection still in its TLS handshake or
	// authentication when MaxHandshakes newer ones arrived.
	ErrHandshakeEvicted = errors.New("tcpez/server: handshake evicted by newer connections")

	// ErrClientSpeaksTLS ends a connection on a plain port whose first
	// bytes are a TLS ClientHello: a client configured for TLS.
	ErrClientSpeaksTLS = errors.New("tcpez/server: the client speaks TLS on a plain port")
	// ErrClientSpeaksHTTP ends a connection whose first bytes are an HTTP
	// request line, on a plain or a TLS port.
	ErrClientSpeaksHTTP = errors.New("tcpez/server: the client speaks HTTP, not tcpez")
	// ErrClientNotTLS ends a connection on a TLS port whose first bytes
	// are not TLS: a plain tcpez client. The server answers with a TLS
	// alert record, which such a client reports as a server speaking TLS.
	ErrClientNotTLS = errors.New("tcpez/server: the client does not speak TLS on a TLS port")
)

// The timeouts that end a connection. Each is also a net.Error whose
// Timeout is true, as the net package's deadline errors are, so code that
// asks a net.Error whether it timed out gets the right answer.
var (
	// ErrIdleTimeout ends a connection that sent nothing for IdleTimeout.
	ErrIdleTimeout error = &timeoutError{"tcpez/server: idle timeout"}
	// ErrReadTimeout ends a connection that started a frame and did not
	// finish it within ReadTimeout.
	ErrReadTimeout error = &timeoutError{"tcpez/server: read timeout"}
	// ErrWriteTimeout ends a connection whose peer did not take its answers
	// within WriteTimeout.
	ErrWriteTimeout error = &timeoutError{"tcpez/server: write timeout"}
)

// timeoutError is a timeout sentinel; errors.Is matches it by identity.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }

// Timeout reports true: the error is a deadline that passed.
func (e *timeoutError) Timeout() bool { return true }

// Temporary reports false: the connection the timeout ended is gone.
func (e *timeoutError) Temporary() bool { return false }

var _ net.Error = (*timeoutError)(nil)

// foreign names the protocol a client speaks when err, the failure of its
// first header, shows it is not tcpez; otherwise it returns err.
func foreign(err error) error {
	switch frame.SniffError(err) {
	case frame.TLS:
		return fmt.Errorf("%w (%w)", ErrClientSpeaksTLS, err)
	case frame.HTTP:
		return fmt.Errorf("%w (%w)", ErrClientSpeaksHTTP, err)
	}
	return err
}
