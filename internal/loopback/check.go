package loopback

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrHostReno says that the host's default congestion control is Reno
// itself, so that a socket tuned here cannot be told from one left alone.
var ErrHostReno = errors.New("loopback: the host's default congestion control is reno")

// TellableHost returns the host's default congestion control, or why a
// socket tuned here cannot be told from one left alone on this host:
// ErrHostReno, or HostDefault's error. Tests skip on an error.
func TellableHost() (string, error) {
	host, err := HostDefault()
	if err == nil && host == congestion {
		err = ErrHostReno
	}
	return host, err
}

// CheckReno returns an error unless c, a *net.TCPConn or
// *net.TCPListener, uses Reno, as the sockets tuned here do.
func CheckReno(c syscall.Conn) error {
	name, err := Congestion(c)
	if err == nil && name != congestion {
		err = fmt.Errorf("congestion control %q, want %s", name, congestion)
	}
	return err
}
