//go:build !linux

package client

import "net"

// readv is only on Linux; elsewhere callers read their batch answers
// through the frame.Reader.
type readv struct{}

func newReadv(net.Conn) *readv { return nil }

func (*readv) read([][]byte) (int, error) { panic("tcpez/client: no readv here") }
