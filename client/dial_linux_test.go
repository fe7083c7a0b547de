package client

import (
	"context"
	"net"
	"testing"

	"github.com/tcpez/tcpez/internal/loopback"
)

// TestDialGivesLoopbackReno: the client's connections to a loopback
// address use Reno (internal/loopback), whatever the host's default.
func TestDialGivesLoopbackReno(t *testing.T) {
	if _, err := loopback.TellableHost(); err != nil {
		t.Skip(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := New([]string{l.Addr().String()}, Config{LazyDial: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nc, err := c.dial(context.Background(), l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := loopback.CheckReno(nc.(*net.TCPConn)); err != nil {
		t.Fatalf("a connection dialled to loopback: %v", err)
	}
}
