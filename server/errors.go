package server

import "errors"

var (
	// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown
	// or Close.
	ErrServerClosed = errors.New("tcpez: server closed")
	// ErrInvalidConfig wraps every error of Config.Validate.
	ErrInvalidConfig = errors.New("tcpez: invalid server config")
	// ErrHandlerPanic is matched by the *PanicError of a recovered panic.
	ErrHandlerPanic = errors.New("tcpez: handler panic")
	// ErrIdleTimeout ends a connection that sent nothing for IdleTimeout.
	ErrIdleTimeout = errors.New("tcpez: idle timeout")
	// ErrReadTimeout ends a connection that started a frame and did not
	// finish it within ReadTimeout.
	ErrReadTimeout = errors.New("tcpez: read timeout")
	// ErrWriteTimeout ends a connection whose peer did not take its answers
	// within WriteTimeout.
	ErrWriteTimeout = errors.New("tcpez: write timeout")
	// ErrHandler wraps a handler's error when it ends the connection.
	ErrHandler = errors.New("tcpez: handler error")
	// ErrMemoryBudget ends a connection whose frame found no room in the
	// server's memory budget within MemoryWait, or is larger than the
	// whole budget.
	ErrMemoryBudget = errors.New("tcpez: memory budget exhausted")
	// ErrHandshakeEvicted ends a connection still in its TLS handshake or
	// authentication when MaxHandshakes newer ones arrived.
	ErrHandshakeEvicted = errors.New("tcpez: handshake evicted by newer connections")
)
