//go:build !linux

package loopback

import (
	"errors"
	"syscall"
)

// setCongestion does nothing where sockets cannot choose their congestion
// control by name.
func setCongestion(syscall.RawConn) {}

// Congestion reports the congestion control of a TCP socket: not known
// where sockets cannot choose it by name.
func Congestion(syscall.Conn) (string, error) {
	return "", errors.ErrUnsupported
}

// HostDefault is the host's default congestion control: not known where
// sockets cannot choose it by name.
func HostDefault() (string, error) {
	return "", errors.ErrUnsupported
}
