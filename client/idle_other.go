//go:build !unix

package client

import (
	"net"

	"github.com/tcpez/tcpez/frame"
)

// idleCheck needs a peek at the socket; without one the reader goroutine
// always reads.
type idleCheck struct{}

func newIdleCheck(net.Conn) *idleCheck { return nil }

func (*idleCheck) check(*frame.Reader) error { return nil }
