package server

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/span"
)

func TestYieldPays(t *testing.T) {
	for _, tc := range []struct {
		others int64
		read   int
		want   bool
	}{
		{0, 1, false},   // a lone client, one request at a time
		{1, 0, true},    // a new connection while another is at work
		{1, 1, true},    // a client of many, one request at a time
		{3, 2, false},   // a burst
		{15, 65, false}, // a batch of 64 and its header
	} {
		if got := yieldPays(tc.others, tc.read); got != tc.want {
			t.Errorf("yieldPays(%d, %d) = %v, want %v", tc.others, tc.read, got, tc.want)
		}
	}
}

// TestAwakeCountsBusyConnections checks the count the readers' yield is
// decided by: a connection counts while it does anything but wait for
// bytes, in either protocol, and not once it has ended.
func TestAwakeCountsBusyConnections(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	hold := func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "hold" {
			entered <- struct{}{}
			<-release
		}
		return req, nil
	}
	// One request at a time: the handler holds the reader, which no
	// watcher replaces (TestWatcherSkipsOneAtATime).
	srv, addr := startInternal(t, hold, Config{MaxInFlight: 1})
	awake := func() int64 { return srv.awake.n.Load() }
	asleep := func() bool { return awake() == 0 }

	v1, mux := dialInternal(t, addr), dialInternal(t, addr)
	muxHandshake(t, mux)
	// From cold: each answers its first request, then waits.
	roundTrip(t, v1, frame.AppendFrame(nil, []byte("ping")))
	roundTrip(t, mux, frame.AppendMux(nil, frame.KindRequest, 1, []byte("ping")))
	waitUntil(t, "both connections to wait", asleep)

	if _, err := v1.Write(frame.AppendFrame(nil, []byte("hold"))); err != nil {
		t.Fatal(err)
	}
	<-entered
	if got := awake(); got != 1 {
		t.Fatalf("awake with one handler running: %d, want 1", got)
	}
	release <- struct{}{}
	readFull(t, v1, len(frame.AppendFrame(nil, []byte("hold"))))
	waitUntil(t, "the held connection to wait again", asleep)

	v1.Close()
	mux.Close()
	waitUntil(t, "both connections to end", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.conns) == 0
	})
	if got := awake(); got != 0 {
		t.Fatalf("awake once every connection ended: %d, want 0", got)
	}
}

func roundTrip(t *testing.T, c net.Conn, req []byte) {
	t.Helper()
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	readFull(t, c, len(req))
}

func readFull(t *testing.T, c net.Conn, n int) {
	t.Helper()
	if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
}
