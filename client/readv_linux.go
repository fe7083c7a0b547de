//go:build linux

package client

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// readv reads from a socket into several buffers with one system call,
// through the runtime's poller, so that the read deadline holds as for
// net.Conn.Read.
type readv struct {
	rc  syscall.RawConn
	iov []syscall.Iovec
	f   func(fd uintptr) bool // built once, not a closure per read
	n   int
	err error
}

// newReadv returns nil for connections it cannot read that way (TLS,
// pipes): their callers read through the frame.Reader only.
func newReadv(nc net.Conn) *readv {
	rc := rawConn(nc)
	if rc == nil {
		return nil
	}
	v := &readv{rc: rc}
	v.f = func(fd uintptr) bool {
		for {
			n, _, errno := syscall.Syscall(syscall.SYS_READV, fd, uintptr(unsafe.Pointer(&v.iov[0])), uintptr(len(v.iov)))
			switch errno {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // the poller waits until readable, or the deadline
			case 0:
				v.n = int(n)
			default:
				v.err = os.NewSyscallError("readv", errno)
			}
			return true
		}
	}
	return v
}

// read reads into segs, which hold at least one byte each, and returns how
// many bytes it read, with net.Conn.Read's errors: 0 and io.EOF once the
// peer closed.
func (v *readv) read(segs [][]byte) (int, error) {
	v.iov = v.iov[:0]
	for _, p := range segs {
		iov := syscall.Iovec{Base: &p[0]}
		iov.SetLen(len(p))
		v.iov = append(v.iov, iov)
	}
	v.n, v.err = 0, nil
	err := v.rc.Read(v.f)
	clear(v.iov) // holds no buffer of the caller's past the read
	if err == nil {
		err = v.err
	}
	switch {
	case err != nil:
		var op *net.OpError
		if errors.As(err, &op) {
			op.Op = "read" // as net.Conn.Read says, not "raw-read"
		}
	case v.n == 0:
		err = io.EOF
	}
	return v.n, err
}
