//go:build unix

package client

import (
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/tcpez/tcpez/frame"
)

// idleCheck tells whether a connection nobody was reading is still fit
// for a request: the peer has neither closed it nor sent anything. It
// looks without reading, so a request is never written to a connection
// already known to be closed: the call is retried on another, as one that
// provably was not sent.
type idleCheck struct {
	rc  syscall.RawConn
	f   func(fd uintptr) // built once, not a closure per check
	n   int
	err error
	buf [1]byte
}

// newIdleCheck returns nil for connections it cannot look into (TLS, pipes).
func newIdleCheck(nc net.Conn) *idleCheck {
	rc := rawConn(nc)
	if rc == nil {
		return nil
	}
	ic := &idleCheck{rc: rc}
	ic.f = func(fd uintptr) {
		ic.n, _, ic.err = syscall.Recvfrom(int(fd), ic.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}
	return ic
}

// check returns nil when the connection is open with nothing to read.
func (ic *idleCheck) check(r *frame.Reader) error {
	if r.Buffered() > 0 {
		return unasked(r.Buffered())
	}
	// Control, not Read: a read deadline a caller left behind must not
	// stop a look that cannot block.
	if err := ic.rc.Control(ic.f); err != nil {
		return err
	}
	switch {
	case ic.err == syscall.EAGAIN || ic.err == syscall.EWOULDBLOCK:
		return nil
	case ic.err != nil:
		return ic.err
	case ic.n == 0:
		return io.EOF
	}
	return unasked(ic.n)
}

func unasked(n int) error {
	return fmt.Errorf("%w: %d+ bytes with no request outstanding", ErrUnexpectedAnswer, n)
}

// rawConn returns nc's socket, for the system calls net.Conn does not
// make; nil for connections that have none (TLS, pipes).
func rawConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
