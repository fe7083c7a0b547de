//go:build !linux

package loopback

import "syscall"

// setCongestion does nothing where sockets cannot choose their congestion
// control by name.
func setCongestion(syscall.RawConn) {}
