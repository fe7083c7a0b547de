package client

import (
	"errors"
	"syscall"
)

// resetByServer reports a connection the server reset before answering the
// mux preface or the credential. A server at MaxConns or MaxConnsPerPeer
// resets new connections before reading from them, so the reset says
// nothing about the credential or the protocol: it is a dial error like a
// refused connection, not ErrAuthFailed or ErrMuxRefused, and not a reason
// to settle on v1. (A server that refuses either reads what was sent
// first, so it closes cleanly: io.EOF.)
func resetByServer(err error) bool {
	return errors.Is(err, syscall.ECONNRESET)
}
