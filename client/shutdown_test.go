package client_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// heldServer answers each request with itself once release is closed,
// telling entered of each request it holds.
func heldServer(t *testing.T) (addr string, entered chan string, release chan struct{}) {
	entered, release = make(chan string, 100), make(chan struct{})
	_, addr = testserver.Start(t, server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		entered <- string(req)
		<-release
		return req, nil
	}), server.Config{})
	return addr, entered, release
}

// startHeldCalls makes a Call, which the server holds, and two Go
// calls queued behind it on the same connection (a connection's first
// request at hand runs on its own goroutine), and reports their errors.
func startHeldCalls(t *testing.T, c *client.Client, entered <-chan string) <-chan error {
	ctx := ctxFor(t)
	results := make(chan error, 3)
	go func() {
		_, err := c.Call(ctx, []byte("sendrecv"))
		results <- err
	}()
	<-entered
	for _, req := range []string{"go1", "go2"} {
		f := c.Go(ctx, []byte(req)) // returns once queued
		go func() {
			_, err := f.Wait()
			results <- err
		}()
	}
	return results
}

// awaitRefusal returns once the client refuses new calls, probing with a
// context that has ended so that no probe is ever sent.
func awaitRefusal(c *client.Client) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		if _, err := c.Go(done, []byte("probe")).Wait(); errors.Is(err, client.ErrClosed) {
			return
		}
		runtime.Gosched()
	}
}

// TestShutdownWaitsForCalls: Shutdown refuses new calls at once, and
// returns only after the calls in flight got their answers.
func TestShutdownWaitsForCalls(t *testing.T) {
	addr, entered, release := heldServer(t)
	// The Observer hears of each call as it completes, before the call
	// counts as done for Shutdown: the order it logs is causal.
	var mu sync.Mutex
	var order []string
	log := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	c := newClient(t, []string{addr}, client.Config{Observer: func(ci client.CallInfo) {
		if ci.Err == nil { // not one of awaitRefusal's probes
			log("call")
		}
	}})
	results := startHeldCalls(t, c, entered)

	shut := make(chan error, 1)
	go func() {
		err := c.Shutdown(ctxFor(t))
		log("shutdown")
		shut <- err
	}()
	awaitRefusal(c)
	if _, err := c.Call(ctxFor(t), []byte("late")); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("call during Shutdown: %v, want ErrClosed", err)
	}
	close(release)
	for range 3 {
		if err := <-results; err != nil {
			t.Fatalf("call in flight during Shutdown: %v", err)
		}
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 4 || order[3] != "shutdown" {
		t.Fatalf("order %v, want the 3 calls in flight, then Shutdown's return", order)
	}
}

// TestShutdownDeadline: when Shutdown's context ends first, the calls
// left fail with ErrClosed and Shutdown returns the context's error itself,
// as server.Shutdown does: it used to return "tcpez/client: call abandoned:
// context canceled", which names no call and is not == ctx.Err().
func TestShutdownDeadline(t *testing.T) {
	addr, entered, release := heldServer(t)
	defer close(release)
	c := newClient(t, []string{addr}, client.Config{})
	results := startHeldCalls(t, c, entered)
	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- c.Shutdown(ctx) }()
	awaitRefusal(c)
	cancel()
	if err := <-shut; err != context.Canceled {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	for range 3 {
		if err := <-results; !errors.Is(err, client.ErrClosed) {
			t.Fatalf("call cut off by Shutdown: %v, want ErrClosed", err)
		}
	}
}

// TestCloseFailsCallsWaitingForSlot: a call waiting for a slot (every
// connection at MaxInFlight) when the client closes fails with ErrClosed,
// as Close says. It got ErrNoConnection: the wait ended with the
// snapshot's change, and the call was judged by the old snapshot. Any
// change did that (an address that came or went, a connection that
// broke), failing calls beside a usable connection.
func TestCloseFailsCallsWaitingForSlot(t *testing.T) {
	addr, entered, release := heldServer(t)
	defer close(release)
	c := newClient(t, []string{addr}, client.Config{MaxInFlight: 1, MaxRetries: -1})
	go func() { _, _ = c.Call(ctxFor(t), []byte("hold")) }()
	<-entered // the call holds the only slot
	waiting := make(chan error, 4)
	for range cap(waiting) {
		go func() {
			_, err := c.Call(ctxFor(t), []byte("waits"))
			waiting <- err
		}()
	}
	time.Sleep(50 * time.Millisecond) // for the calls to wait for the slot; the test holds either way
	_ = c.Close()
	for range cap(waiting) {
		if err := <-waiting; !errors.Is(err, client.ErrClosed) {
			t.Fatalf("a call waiting for a slot when the client closed: %v, want ErrClosed", err)
		}
	}
}
