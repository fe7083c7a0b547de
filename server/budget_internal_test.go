package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// internalSafety bounds every wait of these tests; it is never asserted.
const internalSafety = 10 * time.Second

// startInternal serves h on a loopback port until the test ends. (The
// server_test helpers cannot be imported from package server.)
func startInternal(t *testing.T, h HandlerFunc, cfg Config) (*Server, string) {
	t.Helper()
	return serveInternal(t, h, cfg)
}

// serveInternal is startInternal for any Handler.
func serveInternal(t *testing.T, h Handler, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Logger = l
	}
	srv := New(h, cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), internalSafety)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-done
	})
	return srv, l.Addr().String()
}

func dialInternal(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, internalSafety)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(internalSafety))
	t.Cleanup(func() { c.Close() })
	return c
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(internalSafety)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// holdLarge is a handler that holds each request over 1 MiB until told
// to let it go, and echoes every request.
type holdLarge struct {
	entered chan string // the first byte of each large request held
	release chan struct{}
}

func newHoldLarge() *holdLarge {
	return &holdLarge{entered: make(chan string, 16), release: make(chan struct{}, 16)}
}

func (h *holdLarge) respond(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
	if len(req) > 1<<20 {
		h.entered <- string(req[:1])
		select {
		case <-h.release:
		case <-ctx.Done():
		}
	}
	return req, nil
}

func largeFrame(tag byte, n int) []byte {
	p := bytes.Repeat([]byte{tag}, n)
	return frame.AppendFrame(nil, p)
}

func pingInternal(t *testing.T, addr string) {
	t.Helper()
	c := dialInternal(t, addr)
	want := frame.AppendFrame(nil, []byte("ping"))
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ping: %q, %v", got, err)
	}
}

// TestBudgetPausesLargeFramesNotSmallOnes: a frame that does not fit the
// budget waits, unread, until memory is released, while small requests of
// other connections are served meanwhile, from cold.
func TestBudgetPausesLargeFramesNotSmallOnes(t *testing.T) {
	const big = 3 << 20
	h := newHoldLarge()
	srv, addr := startInternal(t, h.respond, Config{MemoryBudget: 4 << 20, MemoryWait: -1})
	a := dialInternal(t, addr)
	if _, err := a.Write(largeFrame('a', big)); err != nil {
		t.Fatal(err)
	}
	if got := <-h.entered; got != "a" {
		t.Fatalf("entered %q", got)
	}
	b := dialInternal(t, addr)
	go func() { _, _ = b.Write(largeFrame('b', big)) }()
	waitUntil(t, "b to wait for the budget", func() bool { return srv.budget.Waiting() == 1 })

	pingInternal(t, addr)
	if srv.budget.Waiting() != 1 || len(h.entered) != 0 {
		t.Fatal("b stopped waiting while a held the budget")
	}

	h.release <- struct{}{}
	readEcho(t, a, 'a', big)
	if got := <-h.entered; got != "b" {
		t.Fatalf("entered %q", got)
	}
	h.release <- struct{}{}
	readEcho(t, b, 'b', big)
}

func readEcho(t *testing.T, c net.Conn, tag byte, n int) {
	t.Helper()
	got, err := frame.NewReader(c, frame.Limits{}).ReadFrame(nil)
	if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{tag}, n)) {
		t.Fatalf("answer of %d bytes for %q: %v", len(got), tag, err)
	}
}

// TestBudgetWaitIsBounded: a frame that waits longer than MemoryWait
// closes its connection, counted and logged, after answering the requests
// before it, inside a batch too; the connection that holds the memory is
// served.
func TestBudgetWaitIsBounded(t *testing.T) {
	const big = 3 << 20
	h := newHoldLarge()
	rec := stats.NewMemory()
	logger, hook := test.NewNullLogger()
	_, addr := startInternal(t, h.respond, Config{MemoryBudget: 4 << 20, MemoryWait: 50 * time.Millisecond, Stats: rec, Logger: logger})
	a := dialInternal(t, addr)
	if _, err := a.Write(largeFrame('a', big)); err != nil {
		t.Fatal(err)
	}
	<-h.entered

	b := dialInternal(t, addr)
	var wg sync.WaitGroup
	wg.Go(func() {
		// The server may close b before it took all of this.
		_, _ = b.Write(frame.AppendBatch(nil, []byte("small"), bytes.Repeat([]byte{'b'}, 2<<20)))
	})
	r := frame.NewReader(b, frame.Limits{})
	if hdr, err := r.ReadHeader(); err != nil || hdr.Count() != 2 {
		t.Fatalf("batch header %v, %v", hdr, err)
	}
	if got, err := r.ReadFrame(nil); err != nil || string(got) != "small" {
		t.Fatalf("first member: %q, %v", got, err)
	}
	if _, err := r.ReadFrame(nil); err == nil {
		t.Fatal("the member that found no room was answered")
	}
	wg.Wait()
	waitUntil(t, StatErrMemory, func() bool { return rec.Counter(StatErrMemory) == 1 })
	// The close is counted, then logged: wait for the log too.
	waitUntil(t, "the close logged with ErrMemoryBudget", func() bool {
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.WarnLevel && strings.Contains(e.Message, "memory budget") {
				err, _ := e.Data[logrus.ErrorKey].(error)
				return errors.Is(err, ErrMemoryBudget)
			}
		}
		return false
	})
	h.release <- struct{}{}
	readEcho(t, a, 'a', big)
}

// TestLargeBuffersAreGivenBack: the buffers of large requests stay in the
// budget while pooled, and leave it once unused for poolIdle.
func TestLargeBuffersAreGivenBack(t *testing.T) {
	srv, addr := startInternal(t, echo, Config{MemoryBudget: 64 << 20})
	c := dialInternal(t, addr)
	if _, err := c.Write(largeFrame('x', 1<<20)); err != nil {
		t.Fatal(err)
	}
	readEcho(t, c, 'x', 1<<20)
	waitUntil(t, "the buffer to be parked", func() bool { return srv.budget.Used() == 1<<20 })
	waitUntil(t, "the pool to shrink", func() bool { return srv.budget.Used() == 0 })
}

func echo(_ context.Context, req []byte, _ *span.Span) ([]byte, error) { return req, nil }

func TestPeerKeys(t *testing.T) {
	key := func(s string) peerKey {
		return peerOf(net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)))
	}
	if key("[2001:db8::1]:1") != key("[2001:db8::ffff:2]:2") {
		t.Error("two addresses of one /64 are different peers")
	}
	if key("[2001:db8:0:1::1]:1") == key("[2001:db8::1]:1") {
		t.Error("two /64s are one peer")
	}
	if key("[::ffff:10.0.0.1]:1") != key("10.0.0.1:2") {
		t.Error("an IPv4-mapped address is not its IPv4 peer")
	}
	if key("10.0.0.1:1") == key("10.0.0.2:1") {
		t.Error("two IPv4 addresses are one peer")
	}
	if peerOf(&net.UnixAddr{Name: "/tmp/s", Net: "unix"}).limited() || peerOf(nil).limited() {
		t.Error("a Unix socket peer is limited")
	}
}
