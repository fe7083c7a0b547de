package server_test

import (
	"context"
	"net"
	"testing"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/internal/loopback"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// TestServeGivesLoopbackListenerReno: Serve sets a listener bound to a
// loopback address to Reno, which the connections it accepts inherit
// (internal/loopback); a call answered through it shows that Serve ran.
func TestServeGivesLoopbackListenerReno(t *testing.T) {
	if _, err := loopback.TellableHost(); err != nil {
		t.Skip(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		return req, nil
	}), server.Config{Logger: testserver.QuietLogger()})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	defer func() {
		srv.Close()
		<-done
	}()
	c, err := client.New([]string{l.Addr().String()}, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Call(context.Background(), []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := loopback.CheckReno(l.(*net.TCPListener)); err != nil {
		t.Fatalf("the listener Serve served: %v", err)
	}
}
