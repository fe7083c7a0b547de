package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/server"
)

// watchShared makes calls on c with ctx, which they all share, until c
// watches its done channel (a few hundred calls: see sharedDone), and fails
// the test if it never does.
func watchShared(t *testing.T, c *client.Client, ctx context.Context) {
	t.Helper()
	for i := 0; client.WatchedContexts(c) == 0; i++ {
		if i == 100_000 {
			t.Fatal("no watcher for a context every call shares")
		}
		if ans, err := c.Call(ctx, []byte("hi")); err != nil || string(ans) != "hi" {
			t.Fatalf("call %d: %q, %v", i, ans, err)
		}
	}
}

// TestSharedContextCancelWakesEveryCaller: callers that share a context
// wait for their answers with a plain receive once the client watches the
// context; cancelling it must still return every one of them at once with
// its error, leave the connection usable, and end the watcher.
func TestSharedContextCancelWakesEveryCaller(t *testing.T) {
	for _, p := range []client.Protocol{client.ProtocolV1, client.ProtocolMux} {
		t.Run(p.String(), func(t *testing.T) {
			h := newMuxHandler()
			_, addr, _ := startMux(t, h, server.Config{})
			c := muxClient(t, addr, client.Config{Protocol: p})
			shared, cancel := context.WithCancel(ctxFor(t))
			defer cancel()
			watchShared(t, c, shared)

			// v1 answers in order: the first slow call holds the rest
			// on the connection; the mux server starts them all.
			const n = 16
			errs := callSlow(shared, c, n)
			want := n
			if p == client.ProtocolV1 {
				want = 1
			}
			for range want {
				<-h.started
			}
			cancel()
			for range n {
				if err := receive(t, errs); !errors.Is(err, context.Canceled) {
					t.Fatalf("a caller of the cancelled context got %v", err)
				}
			}
			close(h.gate)
			ctx := ctxFor(t)
			if ans, err := c.Call(ctx, []byte("after")); err != nil || string(ans) != "after" {
				t.Fatalf("call after the cancel: %q, %v", ans, err)
			}
			waitUntil(t, "the watcher of the closed channel to end", func() bool { return client.WatchedContexts(c) == 0 })
		})
	}
}

// TestSharedContextDeadline: a shared context that ends by its deadline
// wakes its waiting callers as a cancel does, each with the deadline's
// error.
func TestSharedContextDeadline(t *testing.T) {
	h := newMuxHandler()
	_, addr, _ := startMux(t, h, server.Config{})
	c := muxClient(t, addr, client.Config{Protocol: client.ProtocolV1})
	shared, cancel := context.WithTimeout(ctxFor(t), time.Second)
	defer cancel()
	watchShared(t, c, shared)
	const n = 8
	errs := callSlow(shared, c, n)
	<-h.started
	for range n {
		if err := receive(t, errs); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a caller of the expired context got %v", err)
		}
	}
	close(h.gate)
	waitUntil(t, "the watcher of the expired context to end", func() bool { return client.WatchedContexts(c) == 0 })
}

// idleWatchClient returns a muxHandler's server and a client of it whose
// context watchers end after half a second without calls: long enough
// for a slow call to find the watcher its predecessors kept busy, which
// ends two of these after that.
func idleWatchClient(t *testing.T) (*muxHandler, *client.Client) {
	t.Helper()
	h := newMuxHandler()
	_, addr, _ := startMux(t, h, server.Config{})
	c, err := client.New([]string{addr}, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	client.SetWatchIdle(c, 500*time.Millisecond)
	return h, c
}

// TestSharedContextWatcherRetiresUnderWaitingCall: a watcher whose
// channel stays open but whose calls stop ends, and a call still waiting
// with it must then watch its context itself: its cancellation still
// returns it.
func TestSharedContextWatcherRetiresUnderWaitingCall(t *testing.T) {
	h, c := idleWatchClient(t)
	shared, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	watchShared(t, c, shared)
	errs := callSlow(shared, c, 1)
	<-h.started
	waitUntil(t, "the slow call to wait with the watcher", func() bool { return client.WaitingWithWatcher(c) == 1 })
	waitUntil(t, "the idle watcher to end", func() bool { return client.WatchedContexts(c) == 0 })
	cancel()
	if err := receive(t, errs); !errors.Is(err, context.Canceled) {
		t.Fatalf("the waiting call got %v", err)
	}
	close(h.gate)
}

// TestSharedContextFutures: futures of a watched context are held by its
// watcher rather than each registering with the context; cancelling the
// context resolves them all, and a watcher that ends with the context
// still open hands them over, so that a later cancel still resolves them.
func TestSharedContextFutures(t *testing.T) {
	h, c := idleWatchClient(t)
	shared, cancel := context.WithCancel(ctxFor(t))
	watchShared(t, c, shared)
	const n = 8
	futures := make([]*client.Future, n)
	for i := range futures {
		futures[i] = c.Go(shared, []byte("slow"))
	}
	for range n {
		<-h.started
	}
	if got := client.WatchedFutures(c); got != n {
		t.Fatalf("the watcher holds %d futures, want %d", got, n)
	}
	cancel()
	for i, f := range futures {
		if _, err := waitFuture(t, f); !errors.Is(err, context.Canceled) {
			t.Fatalf("future %d: %v", i, err)
		}
	}
	waitUntil(t, "the watcher of the closed channel to end", func() bool { return client.WatchedContexts(c) == 0 })

	// A watcher that goes idle under a future.
	shared, cancel = context.WithCancel(ctxFor(t))
	defer cancel()
	watchShared(t, c, shared)
	f := c.Go(shared, []byte("slow"))
	<-h.started
	if got := client.WatchedFutures(c); got != 1 {
		t.Fatalf("the watcher holds %d futures, want 1", got)
	}
	waitUntil(t, "the idle watcher to end", func() bool { return client.WatchedContexts(c) == 0 })
	cancel()
	if _, err := waitFuture(t, f); !errors.Is(err, context.Canceled) {
		t.Fatalf("the future of the idle watcher: %v", err)
	}
	close(h.gate)
}

// waitFuture waits for f, failing the test after safety.
func waitFuture(t *testing.T, f *client.Future) ([]byte, error) {
	t.Helper()
	select {
	case <-f.Done():
		return f.Wait()
	case <-time.After(safety):
		t.Fatalf("a future unresolved after %v", safety)
		return nil, nil
	}
}

// TestSharedContextCancelRacesAnswers cancels a shared context while
// answers to calls, futures and batches stream in, over and over: every call gets its own answer or
// the context's error, never another's answer or a hang, and the client
// serves the next context as well. Run it with -race.
func TestSharedContextCancelRacesAnswers(t *testing.T) {
	for _, p := range []client.Protocol{client.ProtocolV1, client.ProtocolMux} {
		t.Run(p.String(), func(t *testing.T) {
			_, addr, _ := startMux(t, newMuxHandler(), server.Config{})
			c := muxClient(t, addr, client.Config{Protocol: p})
			for round := range 8 {
				shared, cancel := context.WithCancel(ctxFor(t))
				watchShared(t, c, shared)
				var wg sync.WaitGroup
				var mu sync.Mutex
				answered := 0
				for g := range 32 {
					wg.Go(func() {
						buf := make([]byte, 0, 64)
						pl := c.Pipeline()
						var answers [][]byte
						for i := 0; ; i++ {
							req := fmt.Appendf(nil, "r%d-g%d-%d", round, g, i)
							var ans []byte
							var err error
							if g%4 == 1 {
								ans, err = c.Go(shared, req).Wait()
							} else if g%4 == 0 {
								// A batch's answers land in the caller's
								// buffer one by one (request.fill).
								pl.Enqueue(req)
								pl.Enqueue(req)
								buf, answers, err = pl.FlushAppend(shared, buf[:0], answers[:0])
								if err == nil && len(answers) == 2 && string(answers[0]) == string(req) {
									ans = answers[1]
								}
							} else {
								ans, err = c.CallAppend(shared, buf[:0], req)
							}
							switch {
							case errors.Is(err, context.Canceled):
								return
							case err != nil || string(ans) != string(req):
								t.Errorf("%s: %q, %v", req, ans, err)
								return
							}
							mu.Lock()
							if answered++; answered == 2000 {
								cancel()
							}
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				cancel()
			}
		})
	}
}

// callSlow starts n calls of "slow" (muxHandler) with ctx, each
// reporting its error on the channel returned.
func callSlow(ctx context.Context, c *client.Client, n int) <-chan error {
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.Call(ctx, []byte("slow"))
			errs <- err
		}()
	}
	return errs
}

// receive receives from errs, failing the test after safety.
func receive(t *testing.T, errs <-chan error) error {
	t.Helper()
	select {
	case err := <-errs:
		return err
	case <-time.After(safety):
		t.Fatalf("no result in %v", safety)
		return nil
	}
}
