package loopback

import "syscall"

// setCongestion asks for Reno on the socket; a refusal leaves it as it was.
func setCongestion(rc syscall.RawConn) {
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptString(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CONGESTION, congestion)
	})
}
