package loopback

import (
	"os"
	"strings"
	"syscall"
	"unsafe"
)

// setCongestion asks for Reno on the socket; a refusal leaves it as it was.
func setCongestion(rc syscall.RawConn) {
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptString(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CONGESTION, congestion)
	})
}

// Congestion reports the congestion control of a TCP socket (a
// *net.TCPConn or *net.TCPListener), for tests and diagnostics.
func Congestion(c syscall.Conn) (string, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return "", err
	}
	buf := make([]byte, 16) // TCP_CA_NAME_MAX
	n := uint32(len(buf))
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		// The syscall package has no GetsockoptString.
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_CONGESTION,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	}); err != nil {
		return "", err
	}
	if errno != 0 {
		return "", errno
	}
	return strings.TrimRight(string(buf[:n]), "\x00"), nil
}

// HostDefault is the congestion control the host gives sockets that do not
// choose one, for tests and reports: where it is Reno, a socket tuned here
// cannot be told apart from one left alone.
func HostDefault() (string, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
