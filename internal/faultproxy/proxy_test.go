package faultproxy_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tcpez/tcpez/internal/faultproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// safety bounds every blocking step, so that a bug fails instead of hangs.
const safety = 10 * time.Second

// target is a loopback server: it echoes, or records what it receives.
type target struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
	got      chan []byte   // with record: all a connection sent, at its end
	errs     chan error    // with record: how the connection ended
	record   bool          // record instead of echo
	hold     chan struct{} // closed at cleanup
}

func newTarget(t *testing.T, record bool) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln, record: record, got: make(chan []byte, 16), errs: make(chan error, 16), hold: make(chan struct{})}
	tg.wg.Add(1)
	go func() {
		defer tg.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			tg.accepted.Add(1)
			tg.mu.Lock()
			tg.conns = append(tg.conns, nc)
			tg.mu.Unlock()
			tg.wg.Add(1)
			go func() {
				defer tg.wg.Done()
				defer nc.Close()
				if !tg.record {
					_, _ = io.Copy(nc, nc)
					_ = nc.(*net.TCPConn).CloseWrite()
					<-tg.hold
					return
				}
				_ = nc.SetReadDeadline(time.Now().Add(safety))
				b, err := io.ReadAll(nc)
				tg.got <- b
				tg.errs <- err
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		close(tg.hold)
		tg.mu.Lock()
		for _, c := range tg.conns {
			c.Close()
		}
		tg.mu.Unlock()
		tg.wg.Wait()
	})
	return tg
}

func newProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, safety)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(safety))
	return c.(*net.TCPConn)
}

// echo sends msg and reads it back, returning how long that took.
func echo(t *testing.T, c net.Conn, msg []byte) time.Duration {
	t.Helper()
	start := time.Now()
	go func() { _, _ = c.Write(msg) }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo: got %q, want %q", got, msg)
	}
	return time.Since(start)
}

func TestForwardsBothWaysAndHalfClose(t *testing.T) {
	tg := newTarget(t, false)
	p := newProxy(t, tg.ln.Addr().String())
	c := dial(t, p.Addr())
	echo(t, c, []byte("hello"))
	big := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB: many chunks
	echo(t, c, big)
	// A half-close reaches the target, whose half-close comes back.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after half-close: %q, %v; want a clean end", rest, err)
	}
	if p.Accepted() != 1 {
		t.Fatalf("Accepted = %d", p.Accepted())
	}
}

// TestLatency: a round trip takes at least twice the added latency, and
// switching it off restores the direct path.
func TestLatency(t *testing.T) {
	tg := newTarget(t, false)
	p := newProxy(t, tg.ln.Addr().String())
	c := dial(t, p.Addr())
	const lat = 50 * time.Millisecond
	p.SetLatency(lat)
	for range 3 {
		if rtt := echo(t, c, []byte("ping")); rtt < 2*lat {
			t.Fatalf("round trip %v with %v added each way", rtt, lat)
		}
	}
	p.Clear()
	rtt := echo(t, c, []byte("ping"))
	t.Logf("round trip without latency: %v", rtt)
}

// TestBandwidth: a transfer takes at least its size over the limit.
func TestBandwidth(t *testing.T) {
	tg := newTarget(t, true)
	p := newProxy(t, tg.ln.Addr().String())
	c := dial(t, p.Addr())
	const rate, size = 200 << 10, 100 << 10 // 200 KiB/s, 100 KiB
	p.SetBandwidth(rate)
	start := time.Now()
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	got := <-tg.got
	d := time.Since(start)
	if len(got) != size {
		t.Fatalf("target got %d bytes, want %d", len(got), size)
	}
	// The first 20 ms slice goes at once; the rest waits its turn.
	if min := time.Duration(size-rate/50) * time.Second / rate; d < min {
		t.Fatalf("%d bytes at %d B/s took %v, under %v", size, rate, d, min)
	}
	t.Logf("%d bytes at %d B/s: %v", size, rate, d)
}

// TestCutAfter: exactly n bytes get through, then both ends are closed.
func TestCutAfter(t *testing.T) {
	tg := newTarget(t, true)
	p := newProxy(t, tg.ln.Addr().String())
	p.CutAfter(faultproxy.Upstream, 10)
	c := dial(t, p.Addr())
	msg := bytes.Repeat([]byte("abcdefghij"), 10)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if got := <-tg.got; !bytes.Equal(got, msg[:10]) {
		t.Fatalf("target got %q, want %q", got, msg[:10])
	}
	if err := <-tg.errs; err != nil {
		t.Fatalf("target's connection ended with %v, want a clean close", err)
	}
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client: %v, want the connection closed", err)
	}
	// The cut applies to new connections too, until Clear.
	c2 := dial(t, p.Addr())
	if _, err := c2.Write(msg); err != nil {
		t.Fatal(err)
	}
	if got := <-tg.got; len(got) != 10 {
		t.Fatalf("second connection: target got %d bytes, want 10", len(got))
	}
	<-tg.errs
	p.Clear()
	c3 := dial(t, p.Addr())
	c3.Write(msg)
	c3.CloseWrite()
	if got := <-tg.got; !bytes.Equal(got, msg) {
		t.Fatalf("after Clear: target got %d bytes, want %d", len(got), len(msg))
	}
}

// TestCutDownstream cuts the answers, not the requests.
func TestCutDownstream(t *testing.T) {
	tg := newTarget(t, false)
	p := newProxy(t, tg.ln.Addr().String())
	c := dial(t, p.Addr())
	echo(t, c, []byte("before"))
	p.CutAfter(faultproxy.Downstream, 3)
	if _, err := c.Write([]byte("abcdef")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if string(got) != "abc" || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("got %q, %v; want %q then the end", got, err, "abc")
	}
}

// TestBlackhole: nothing flows and no new connection reaches the target
// while the black hole is on; afterwards what was held flows on.
func TestBlackhole(t *testing.T) {
	tg := newTarget(t, false)
	p := newProxy(t, tg.ln.Addr().String())
	c := dial(t, p.Addr())
	echo(t, c, []byte("before"))
	p.SetBlackhole(true)
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	fresh := dial(t, p.Addr()) // accepted, held
	if _, err := fresh.Write([]byte("fresh")); err != nil {
		t.Fatal(err)
	}
	for _, conn := range []net.Conn{c, fresh} {
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := conn.Read(make([]byte, 16))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read %d bytes, %v through a black hole; want nothing", n, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(safety))
	}
	if n := tg.accepted.Load(); n != 1 {
		t.Fatalf("target accepted %d connections through a black hole, want 1", n)
	}
	p.SetBlackhole(false)
	for conn, want := range map[net.Conn]string{c: "held", fresh: "fresh"} {
		got := make([]byte, len(want))
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != want {
			t.Fatalf("after the black hole: %q, %v; want %q", got, err, want)
		}
	}
}

// TestResetAll: both peers see a reset.
func TestResetAll(t *testing.T) {
	tg := newTarget(t, true)
	p := newProxy(t, tg.ln.Addr().String())
	c := dial(t, p.Addr())
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(safety)
	for p.Open() != 1 || tg.accepted.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("connection not established")
		}
		time.Sleep(time.Millisecond)
	}
	p.ResetAll()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read: %v, want ECONNRESET", err)
	}
	<-tg.got
	if err := <-tg.errs; !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("target read: %v, want ECONNRESET", err)
	}
}

// TestDeadTarget: a connection to a target that refuses is reset.
func TestDeadTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	p := newProxy(t, dead)
	// The reset may come before connect returns, or on the first read.
	c, err := net.DialTimeout("tcp", p.Addr(), safety)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial: %v, want ECONNRESET", err)
		}
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(safety))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read through a proxy to a dead target: %v, want the connection ended", err)
	}
}

// TestCloseEndsEverything: Close returns with connections open in every
// state (forwarding, held in a black hole, delayed); goleak checks that
// no goroutine is left.
func TestCloseEndsEverything(t *testing.T) {
	tg := newTarget(t, false)
	p, err := faultproxy.New(tg.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := dial(t, p.Addr())
	echo(t, a, []byte("a"))
	p.SetLatency(time.Hour)
	a.Write([]byte("delayed"))
	p.SetBlackhole(true)
	b := dial(t, p.Addr())
	b.Write([]byte("held"))
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(safety):
		t.Fatal("Close did not return")
	}
	for _, c := range []net.Conn{a, b} {
		if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("a connection stayed open after Close")
		}
	}
}
