package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
)

// dropFirst is a server that closes the connection, unanswered, the first
// time it reads each request starting with "drop", and echoes the rest.
type dropFirst struct {
	mu   sync.Mutex
	seen map[string]int
}

func (d *dropFirst) serve(nc net.Conn, _ <-chan struct{}) {
	r := frame.NewReader(nc, frame.Limits{})
	for {
		reqs, _, err := readRequest(r)
		if err != nil {
			return
		}
		req := string(reqs[0])
		d.mu.Lock()
		d.seen[req]++
		first := d.seen[req] == 1
		d.mu.Unlock()
		if first && bytes.HasPrefix(reqs[0], []byte("drop")) {
			return
		}
		if _, err := nc.Write(frame.AppendFrame(nil, reqs[0])); err != nil {
			return
		}
	}
}

func (d *dropFirst) count(req string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen[req]
}

// TestNoSilentDuplicates: a request that may have reached the server is
// not sent again unless the caller said it is idempotent.
func TestNoSilentDuplicates(t *testing.T) {
	d := &dropFirst{seen: make(map[string]int)}
	addr := rawServer(t, d.serve)
	c := newClient(t, []string{addr}, fast(client.Config{MaxRetries: 3}))
	ctx := ctxFor(t)

	_, err := c.Call(ctx, []byte("drop-plain"))
	if !errors.Is(err, client.ErrConnLost) || !errors.Is(err, io.EOF) {
		t.Fatalf("plain call: got %v, want ErrConnLost (EOF)", err)
	}
	if n := d.count("drop-plain"); n != 1 {
		t.Fatalf("plain call reached the server %d times, want 1", n)
	}
	_, err = c.Go(ctx, []byte("drop-future")).Wait()
	if !errors.Is(err, client.ErrConnLost) || d.count("drop-future") != 1 {
		t.Fatalf("plain future: got %v after %d sends, want ErrConnLost after 1", err, d.count("drop-future"))
	}

	idem := client.WithIdempotent(ctx)
	ans, err := c.Call(idem, []byte("drop-idempotent"))
	if err != nil || string(ans) != "drop-idempotent" {
		t.Fatalf("idempotent call: %q, %v", ans, err)
	}
	if n := d.count("drop-idempotent"); n != 2 {
		t.Fatalf("idempotent call reached the server %d times, want 2", n)
	}
	ans, err = c.Go(idem, []byte("drop-idem-future")).Wait()
	if err != nil || string(ans) != "drop-idem-future" || d.count("drop-idem-future") != 2 {
		t.Fatalf("idempotent future: %q, %v after %d sends", ans, err, d.count("drop-idem-future"))
	}
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestNoConnection(t *testing.T) {
	dead := deadAddr(t)
	// New does not dial; WaitConnected fails once the first-connection
	// window (DialTimeout) has passed.
	quick := fast(client.Config{})
	quick.DialTimeout = 50 * time.Millisecond
	c := newClient(t, []string{dead}, quick)
	if err := c.WaitConnected(ctxFor(t)); !errors.Is(err, client.ErrNoConnection) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("WaitConnected: got %v, want ErrNoConnection wrapping ECONNREFUSED", err)
	}

	var attempts int
	quick.LazyDial, quick.MaxRetries = true, 2
	quick.Observer = func(ci client.CallInfo) { attempts = ci.Attempts }
	c = newClient(t, []string{dead}, quick)
	_, err := c.Call(ctxFor(t), []byte("x"))
	if !errors.Is(err, client.ErrNoConnection) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("lazy call: got %v, want ErrNoConnection wrapping ECONNREFUSED", err)
	}
	if attempts != 3 {
		t.Fatalf("%d attempts, want 1 + 2 retries", attempts)
	}
	if err := c.Notify(ctxFor(t), []byte("x")); !errors.Is(err, client.ErrNoConnection) {
		t.Fatalf("notify: got %v, want ErrNoConnection", err)
	}
}

// TestDeadAddressEjected: with one of two addresses dead, every call
// lands on the live one.
func TestDeadAddressEjected(t *testing.T) {
	srv := newServer(t, nil)
	ev := newEvents()
	c := newClient(t, []string{deadAddr(t), srv.addr}, fast(client.Config{OnStateChange: ev.hook}))
	ctx := ctxFor(t)
	for range 100 {
		if ans, err := c.Call(ctx, []byte("x")); err != nil || string(ans) != "x" {
			t.Fatalf("%q, %v", ans, err)
		}
	}
	got, _ := ev.waitFor(t, client.Disconnected, 0)
	if !errors.Is(got.Err, syscall.ECONNREFUSED) {
		t.Fatalf("dead address reported with %v", got.Err)
	}
}

// TestWaitForConnection: a lazy client that may wait gets its answer from
// a server that starts after the call.
func TestWaitForConnection(t *testing.T) {
	addr := deadAddr(t)
	c := newClient(t, []string{addr}, fast(client.Config{LazyDial: true, WaitForConnection: true}))
	callThenServe(t, c, addr)
}

// callThenServe makes a call to addr, where nothing listens yet, then
// starts a server there, and requires the call to get its answer.
func callThenServe(t *testing.T, c *client.Client, addr string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		ans, err := c.Call(ctxFor(t), []byte("early"))
		if err == nil && string(ans) != "early" {
			err = errors.New("wrong answer " + string(ans))
		}
		done <- err
	}()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skip("port taken meanwhile:", err)
	}
	startServer(t, ln, addr, nil, nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestNewBeforeServer: with the default settings, a client made before its
// server listens is no error, and a call made while its dials are refused
// gets its answer once the server is up.
func TestNewBeforeServer(t *testing.T) {
	addr := deadAddr(t)
	ev := newEvents()
	c := newClient(t, []string{addr}, client.Config{OnStateChange: ev.hook})
	got, _ := ev.waitFor(t, client.Disconnected, 0) // a dial was refused
	if !errors.Is(got.Err, syscall.ECONNREFUSED) {
		t.Fatalf("first dial: %v, want ECONNREFUSED", got.Err)
	}
	callThenServe(t, c, addr)
	if err := c.WaitConnected(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
}

func TestLazyDial(t *testing.T) {
	srv := newServer(t, nil)
	c := newClient(t, []string{srv.addr}, client.Config{LazyDial: true})
	srv.mu.Lock()
	conns := len(srv.conns)
	srv.mu.Unlock()
	if conns != 0 {
		t.Fatalf("lazy client dialled %d connections before its first call", conns)
	}
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	if ans, err := c.Call(ctx, []byte("first")); err != nil || string(ans) != "first" {
		t.Fatalf("%q, %v", ans, err)
	}
}
