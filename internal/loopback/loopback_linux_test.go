package loopback

import (
	"net"
	"strconv"
	"testing"
)

// congestionOf reads the congestion control of c's socket.
func congestionOf(t *testing.T, c net.Conn) string {
	t.Helper()
	name, err := Congestion(c.(*net.TCPConn))
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// needNonRenoHost skips a test on a host whose default is Reno, where
// tuned and untouched sockets look the same; it returns the default.
func needNonRenoHost(t *testing.T) string {
	t.Helper()
	host, err := TellableHost()
	if err != nil {
		t.Skip(err)
	}
	return host
}

// pair dials l with Control and returns both ends.
func pair(t *testing.T, l net.Listener, dialAddr string) (dialled, accepted net.Conn) {
	t.Helper()
	d := net.Dialer{Control: Control}
	c, err := d.Dial("tcp", dialAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	a, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return c, a
}

// TestLoopbackConnectionsUseReno: both ends of a connection to a tuned
// loopback listener use Reno, over IPv4 and IPv6.
func TestLoopbackConnectionsUseReno(t *testing.T) {
	needNonRenoHost(t)
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		l, err := net.Listen("tcp", host+":0")
		if err != nil {
			t.Logf("%s: %v", host, err) // a host without IPv6
			continue
		}
		Listen(l)
		c, a := pair(t, l, l.Addr().String())
		if got := congestionOf(t, c); got != "reno" {
			t.Errorf("%s: dialled end uses %q, want reno", host, got)
		}
		if got := congestionOf(t, a); got != "reno" {
			t.Errorf("%s: accepted end uses %q, want reno", host, got)
		}
		l.Close()
	}
}

// TestOtherSocketsKeepTheHostsChoice: a listener bound to every address is
// left alone, so what it accepts, even from loopback, keeps the host's
// default; and Control leaves a socket dialling elsewhere alone (here a
// wildcard listener reached through its unspecified address, which is
// not a loopback address).
func TestOtherSocketsKeepTheHostsChoice(t *testing.T) {
	host := needNonRenoHost(t)
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	Listen(l)
	port := l.Addr().(*net.TCPAddr).Port
	_, a := pair(t, l, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if got := congestionOf(t, a); got != host {
		t.Errorf("accepted by a wildcard listener: %q, want the host's %q", got, host)
	}
	if CheckReno(a.(*net.TCPConn)) == nil {
		t.Error("CheckReno passed a socket left with the host's default")
	}
	c, _ := pair(t, l, net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	if got := congestionOf(t, c); got != host {
		t.Errorf("dialled to 0.0.0.0: %q, want the host's %q", got, host)
	}
}
