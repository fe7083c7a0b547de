package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/stats"
)

// dialFrom dials addr from the loopback address src (all of 127.0.0.0/8
// is the local host on Linux), so that one test can play several peers.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	c, err := dialFromErr(src, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(safety))
	return c
}

func dialFromErr(src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: safety}
	return d.Dial("tcp", addr)
}

// TestPeerLimitDoesNotLockOutOthers: with MaxConnsPerPeer N, one peer
// holding N connections is refused more, counted and logged once, while a
// second peer's PINGs succeed; the first gets room again when one of its
// connections ends.
func TestPeerLimitDoesNotLockOutOthers(t *testing.T) {
	const limit = 3
	rec := stats.NewMemory()
	logger, hook := test.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	_, addr := startServer(t, echo, server.Config{MaxConnsPerPeer: limit, Stats: rec, Logger: logger})

	var held []net.Conn
	for range limit {
		c := dialFrom(t, "127.0.0.1", addr)
		oneRoundTrip(t, c, "first peer")
		held = append(held, c)
	}
	for range 2 {
		c, err := dialFromErr("127.0.0.1", addr)
		expectRefused(t, c, err)
	}
	if got := rec.Counter(server.StatConnsRefusedPeer); got != 2 {
		t.Fatalf("%s = %d, want 2", server.StatConnsRefusedPeer, got)
	}
	warned := 0
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.Contains(e.Message, "MaxConnsPerPeer") {
			warned++
		}
	}
	if warned != 1 {
		t.Errorf("%d warnings for a peer refused twice in a row, want 1", warned)
	}

	// The second peer, while the first holds its limit: served from cold,
	// on several connections.
	for range limit {
		oneRoundTrip(t, dialFrom(t, "127.0.0.2", addr), "second peer")
	}
	for _, c := range held {
		oneRoundTrip(t, c, "first peer still served")
	}

	held[0].Close()
	open := 2*limit - 1 // the first peer's and the second's
	waitFor(t, func() bool { v, _ := rec.GaugeValue("conns.open"); return v == int64(open) }, "the closed connection to end")
	oneRoundTrip(t, dialFrom(t, "127.0.0.1", addr), "room again")
}

// TestHandshakeLimitEvictsTheOldest: connections that stall in their
// authentication cannot lock out new ones: over MaxHandshakes, the oldest
// is closed, and the newcomer authenticates and is served.
func TestHandshakeLimitEvictsTheOldest(t *testing.T) {
	rec := stats.NewMemory()
	cfg := tokenAuth(rec)
	cfg.Auth.Timeout = safety
	cfg.MaxHandshakes = 2
	_, addr := startServer(t, whoami, cfg)

	stalled := []net.Conn{dial(t, addr), dial(t, addr)}
	// The server learns of a connection on accepting it; a round trip on a
	// third makes sure both stalled ones were accepted before it.
	honest := dial(t, addr)
	write(t, honest, frame.AppendFrame(frame.AppendFrame(nil, []byte("s3cret")), []byte("who?")))
	got := readFrames(t, frame.NewReader(honest, frame.Limits{}), 2)
	if got[1] != "alice" {
		t.Fatalf("answers %q", got)
	}
	expectClosed(t, stalled[0])
	waitFor(t, func() bool { return rec.Counter(server.StatConnsHandshakeEvicted) == 1 }, server.StatConnsHandshakeEvicted)

	// The other stalled one is still in its handshake: it may finish.
	write(t, stalled[1], frame.AppendFrame(frame.AppendFrame(nil, []byte("s3cret")), []byte("who?")))
	if got := readFrames(t, frame.NewReader(stalled[1], frame.Limits{}), 2); got[1] != "alice" {
		t.Fatalf("answers %q", got)
	}
}

// TestServeConnIsNotLimitedPerPeer: connections handed to ServeConn, like
// those of Unix sockets, are not counted per peer.
func TestServeConnIsNotLimitedPerPeer(t *testing.T) {
	for range 2 {
		c, res := serveOne(t, echo, server.Config{MaxConnsPerPeer: 1})
		oneRoundTrip(t, c, "not limited")
		c.Close()
		if err := result(t, res); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("ServeConn: %v", err)
		}
	}
}

// TestHandshakeLimitEvictsStalledTLS: half-sent ClientHellos cannot lock
// out TLS clients: over MaxHandshakes, the oldest is closed and a real
// client's handshake and request go through.
func TestHandshakeLimitEvictsStalledTLS(t *testing.T) {
	serverCert, serverPool := selfSigned(t, "server")
	rec := stats.NewMemory()
	_, addr := startServer(t, echo, server.Config{
		TLS:           &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS13},
		MaxHandshakes: 2,
		Stats:         rec,
	})
	var stalled []net.Conn
	for range 2 {
		c := dial(t, addr)
		write(t, c, []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}) // a record header and one byte of a ClientHello
		stalled = append(stalled, c)
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: safety}, "tcp", addr, &tls.Config{RootCAs: serverPool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(safety))
	oneRoundTrip(t, c, "through")
	expectClosed(t, stalled[0])
	waitFor(t, func() bool { return rec.Counter(server.StatConnsHandshakeEvicted) == 1 }, server.StatConnsHandshakeEvicted)
}
