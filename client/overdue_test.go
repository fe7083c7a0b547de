package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// holdServer serves, with the tcpez server, an echo whose request "hold"
// signals started and then waits until release is closed, which happens
// at the latest when the test ends.
func holdServer(t *testing.T) (addr string, started <-chan struct{}, release func()) {
	t.Helper()
	st := make(chan struct{}, 16)
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "hold" {
			st <- struct{}{}
			<-gate
		}
		return req, nil
	}
	_, addr = testserver.Start(t, server.HandlerFunc(h), server.Config{})
	t.Cleanup(release) // before the server's shutdown, which waits for it
	return addr, st, release
}

func waitStarted(t *testing.T, started <-chan struct{}) {
	t.Helper()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the held handler never started")
	}
}

// TestCallsRouteAroundOverdueAnswer: a new client speaking v1 (where
// answers come in order; the multiplexed mode, the default, has no
// overdue answers to route around), otherwise with default options,
// makes one call the server holds. Once its answer is overdue, fifty fast
// calls are all answered while it is still held, on one extra connection;
// then the held call gets its own answer.
func TestCallsRouteAroundOverdueAnswer(t *testing.T) {
	addr, started, release := holdServer(t)
	rec := stats.NewMemory()
	c := newClient(t, []string{addr}, client.Config{Stats: rec, Protocol: client.ProtocolV1})
	held := c.Go(ctxFor(t), []byte("hold"))
	waitStarted(t, started)
	// The scenario, not an assertion: the held answer becomes overdue.
	time.Sleep(3 * client.DefaultOverdueAfter)
	for i := range 50 {
		want := fmt.Sprint("fast ", i)
		if ans, err := c.Call(ctxFor(t), []byte(want)); err != nil || string(ans) != want {
			t.Fatalf("fast call %d while the first was held: %q, %v", i, ans, err)
		}
	}
	if n := rec.Counter(client.StatExtraDialed); n != 1 {
		t.Errorf("%s = %d, want 1", client.StatExtraDialed, n)
	}
	release()
	if ans, err := held.Wait(); err != nil || string(ans) != "hold" {
		t.Fatalf("held call: %q, %v", ans, err)
	}
}

// TestOneConnectionWhenAsked: with MaxExtraConns -1 the client keeps to
// its one connection, so a call made while an overdue answer is held is
// answered only after it.
func TestOneConnectionWhenAsked(t *testing.T) {
	addr, started, release := holdServer(t)
	rec := stats.NewMemory()
	c := newClient(t, []string{addr}, client.Config{Stats: rec, MaxExtraConns: -1, Protocol: client.ProtocolV1})
	held := c.Go(ctxFor(t), []byte("hold"))
	waitStarted(t, started)
	time.Sleep(3 * client.DefaultOverdueAfter)
	fast := c.Go(ctxFor(t), []byte("fast"))
	release()
	// The connection's reader completes its calls in answer order, so
	// the held call is done by the time the fast one is. (Goroutines
	// waiting on each would record them in either order.)
	if ans, err := fast.Wait(); err != nil || string(ans) != "fast" {
		t.Fatalf("fast call: %q, %v", ans, err)
	}
	select {
	case <-held.Done():
	default:
		t.Fatal("the fast call completed before the held one")
	}
	if ans, err := held.Wait(); err != nil || string(ans) != "hold" {
		t.Fatalf("held call: %q, %v", ans, err)
	}
	if n := rec.Counter(client.StatExtraDialed); n != 0 {
		t.Fatalf("%s = %d with MaxExtraConns -1", client.StatExtraDialed, n)
	}
}

// TestIdleExtraConnectionCloses: the extra connection opened around an
// overdue answer closes once it has been idle for ExtraIdleTimeout, and
// the client goes on serving on the one it keeps.
func TestIdleExtraConnectionCloses(t *testing.T) {
	addr, started, release := holdServer(t)
	rec := stats.NewMemory()
	c := newClient(t, []string{addr}, client.Config{Stats: rec, ExtraIdleTimeout: 20 * time.Millisecond, Protocol: client.ProtocolV1})
	held := c.Go(ctxFor(t), []byte("hold"))
	waitStarted(t, started)
	time.Sleep(3 * client.DefaultOverdueAfter)
	if _, err := c.Call(ctxFor(t), []byte("fast")); err != nil {
		t.Fatal(err)
	}
	release()
	if _, err := held.Wait(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the idle extra connection to close", func() bool { return rec.Counter(client.StatExtraClosed) == 1 })
	if rec.Counter(client.StatExtraDialed) != 1 {
		t.Fatalf("%s = %d, want 1", client.StatExtraDialed, rec.Counter(client.StatExtraDialed))
	}
	for range 20 {
		if _, err := c.Call(ctxFor(t), []byte("after")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHungHandlerDoesNotStopOtherCalls: a handler that never returns (until
// the test ends) holds its connection's answers for good. Calls made right
// after it may queue behind it and end at their deadline; every call after
// the first success is answered.
func TestHungHandlerDoesNotStopOtherCalls(t *testing.T) {
	addr, started, _ := holdServer(t)
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolV1})
	c.Go(ctxFor(t), []byte("hold"))
	waitStarted(t, started)
	failed, succeeded := 0, 0
	for succeeded < 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := c.Call(ctx, []byte("x"))
		cancel()
		switch {
		case err == nil:
			succeeded++
		case succeeded > 0:
			t.Fatalf("call failed after %d succeeded: %v", succeeded, err)
		case !errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("call behind the hung one: %v, want DeadlineExceeded", err)
		default:
			failed++
			if failed > 5 {
				t.Fatalf("%d calls in a row stuck behind the hung handler", failed)
			}
		}
	}
	t.Logf("%d calls stuck behind the hung handler, then %d answered", failed, succeeded)
}

// TestPanicsKeepThroughput: a handler that panics on every tenth request
// makes the server close the connection (as documented) after answering
// the ones before. A client with default options reconnects at once each
// time, since those connections served: exactly the panicking calls fail.
// (Backing off as for a server that drops connections unanswered, it
// waited up to 5 s, past these calls' deadlines.)
func TestPanicsKeepThroughput(t *testing.T) {
	var n atomic.Int64
	h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if n.Add(1)%10 == 0 {
			panic("every tenth")
		}
		return req, nil
	}
	_, addr := testserver.Start(t, server.HandlerFunc(h), server.Config{})
	// v1: a panic costs the connection there; mux answers an error frame.
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolV1})
	ok, lost := 0, 0
	for i := range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Call(ctx, []byte("x"))
		cancel()
		switch {
		case err == nil:
			ok++
		case errors.Is(err, client.ErrConnLost) && (i+1)%10 == 0:
			lost++
		default:
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if ok != 180 || lost != 20 {
		t.Fatalf("%d answered, %d lost; want 180 and 20", ok, lost)
	}
}
