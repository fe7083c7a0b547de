package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
)

// TestConcurrentLargeRequests: callers with large payloads take turns to
// write them from their own slices; every answer must be its own request,
// byte for byte, with small calls mixed in.
func TestConcurrentLargeRequests(t *testing.T) {
	srv := newServer(t, nil)
	c := newClient(t, []string{srv.addr}, client.Config{})
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 3 {
				size := 200<<10 + g*1000 + i
				if g%4 == 0 {
					size = 100 // small calls among the large
				}
				tag := fmt.Appendf(nil, "g%d-%d|", g, i)
				req := bytes.Repeat(tag, size/len(tag)+1)[:size]
				ans, err := c.Call(ctx, req)
				if err != nil || !bytes.Equal(ans, req) {
					t.Errorf("g%d call %d (%d bytes): %d bytes back, %v", g, i, size, len(ans), err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestLargeRequestWaitingToWrite: while a write is stuck on a server that
// does not read, a caller with a large payload waits for its turn to write
// (or is writing itself); either way its context still ends the call.
func TestLargeRequestWaitingToWrite(t *testing.T) {
	addr := rawServer(t, func(nc net.Conn, stop <-chan struct{}) { <-stop })
	c := newClient(t, []string{addr}, client.Config{Limits: frame.Limits{MaxFrameSize: 64 << 20}})
	stuck, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	first := make(chan error, 1)
	go func() {
		_, err := c.Call(stuck, make([]byte, 32<<20)) // more than the sockets hold
		first <- err
	}()
	ctx, cancel2 := context.WithTimeout(ctxFor(t), 50*time.Millisecond)
	defer cancel2()
	if _, err := c.Call(ctx, make([]byte, 1<<20)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("large call behind a stuck write: %v, want DeadlineExceeded", err)
	}
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("stuck call: %v, want Canceled", err)
	}
	c.Close()
}

// TestLargeRequestAmongManySmall: a stream of small calls keeps a writer
// busy; a large request must still get out (waiting out a few writes for
// its turn, then riding along with them).
func TestLargeRequestAmongManySmall(t *testing.T) {
	srv := newServer(t, nil)
	c := newClient(t, []string{srv.addr}, client.Config{})
	ctx := ctxFor(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			req := fmt.Appendf(nil, "small-%d", g)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if ans, err := c.Call(ctx, req); err != nil || !bytes.Equal(ans, req) {
					t.Errorf("small call: %q, %v", ans, err)
					return
				}
			}
		})
	}
	for i := range 10 {
		req := bytes.Repeat([]byte{byte('A' + i)}, 300<<10)
		if ans, err := c.Call(ctx, req); err != nil || !bytes.Equal(ans, req) {
			t.Fatalf("large call %d: %d bytes, %v", i, len(ans), err)
		}
	}
	close(stop)
	wg.Wait()
}

// TestLargeCallersGivingUpInLine: large calls and Pipeline batches share
// one connection, a third of them with contexts that end while they wait
// in line for the writer role or are handed it. Every call that succeeds
// gets its own answer, every other one its context's error, and the
// connection keeps serving afterwards.
func TestLargeCallersGivingUpInLine(t *testing.T) {
	srv := newServer(t, nil)
	c := newClient(t, []string{srv.addr}, client.Config{MaxExtraConns: -1})
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	for g := range 12 {
		wg.Go(func() {
			p := c.Pipeline()
			for i := range 8 {
				callCtx, cancel := ctx, context.CancelFunc(func() {})
				if (g+i)%3 == 0 {
					// Ends in the line, or as the role is handed over.
					callCtx, cancel = context.WithCancel(ctx)
					go cancel()
				}
				tag := fmt.Appendf(nil, "g%d-%d|", g, i)
				req := bytes.Repeat(tag, (100<<10+g*1000)/len(tag))
				var ok bool
				if g%2 == 0 {
					ans, err := c.Call(callCtx, req)
					ok = err == nil && bytes.Equal(ans, req)
					if err != nil && callCtx.Err() != nil && errors.Is(err, callCtx.Err()) {
						ok = true
					}
				} else {
					p.Enqueue(req)
					p.Enqueue(tag)
					answers, err := p.Flush(callCtx)
					ok = err == nil && len(answers) == 2 && bytes.Equal(answers[0], req) && bytes.Equal(answers[1], tag)
					if err != nil && callCtx.Err() != nil && errors.Is(err, callCtx.Err()) {
						ok = true
					}
				}
				cancel()
				if !ok {
					t.Errorf("g%d call %d: wrong answer or error", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
	req := bytes.Repeat([]byte("after"), 30<<10)
	if ans, err := c.Call(ctx, req); err != nil || !bytes.Equal(ans, req) {
		t.Fatalf("call after the rest: %d bytes, %v", len(ans), err)
	}
}
