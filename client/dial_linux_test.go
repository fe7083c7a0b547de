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
	if host, err := loopback.HostDefault(); err != nil || host == "reno" {
		t.Skipf("the host's default congestion control (%q, %v) cannot be told from reno", host, err)
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
	name, err := loopback.Congestion(nc.(*net.TCPConn))
	if err != nil {
		t.Fatal(err)
	}
	if name != "reno" {
		t.Fatalf("a connection dialled to loopback uses %q, want reno", name)
	}
}
