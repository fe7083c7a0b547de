package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// safety bounds every blocking step of a test, so that a bug fails the test
// instead of hanging it. It is a net, never the thing asserted.
const safety = 10 * time.Second

func echo(_ context.Context, req []byte, _ *span.Span) ([]byte, error) { return req, nil }

// quietLogger keeps test output readable; tests that check logs use a hook.
func quietLogger() *logrus.Logger { return testserver.QuietLogger() }

// startServer serves h on a fresh loopback port until the test ends.
func startServer(t testing.TB, h server.HandlerFunc, cfg server.Config) (*server.Server, string) {
	t.Helper()
	return testserver.Start(t, h, cfg)
}

func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, safety)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(safety))
	return c.(*net.TCPConn)
}

func write(t testing.TB, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// readN reads exactly n bytes.
func readN(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return buf
}

// readFrames reads n single-frame answers.
func readFrames(t testing.TB, r *frame.Reader, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for range n {
		p, err := r.ReadFrame(nil)
		if err != nil {
			t.Fatalf("answer %d of %d: %v", len(out)+1, n, err)
		}
		out = append(out, string(p))
	}
	return out
}

// expectClosed requires the server to close c: a read ends in EOF or a
// reset, not the safety deadline.
func expectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", safety)
	}
}

// expectRefused checks that a connection the server will not serve (over
// MaxConns or MaxConnsPerPeer) ends. The server resets it, and on loopback
// the reset can reach the dial itself.
func expectRefused(t testing.TB, c net.Conn, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatal(err)
		}
		return
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(safety))
	expectClosed(t, c)
}

// roundTrip checks that a fresh connection to addr is served.
func roundTrip(t testing.TB, addr string, payload string) {
	t.Helper()
	c := dial(t, addr)
	write(t, c, frame.AppendFrame(nil, []byte(payload)))
	want := frame.AppendFrame(nil, []byte(payload))
	if got := readN(t, c, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("echo of %q: got % x", payload, got)
	}
}
