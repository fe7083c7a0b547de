package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
)

// events records state changes and lets a test wait for one.
type events struct {
	mu      sync.Mutex
	list    []client.StateEvent
	changed chan struct{}
}

func newEvents() *events { return &events{changed: make(chan struct{})} }

func (e *events) hook(ev client.StateEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
	close(e.changed)
	e.changed = make(chan struct{})
}

// waitFor waits for an event in state st, after the first from events.
func (e *events) waitFor(t testing.TB, st client.State, from int) (client.StateEvent, int) {
	t.Helper()
	safety := time.After(20 * time.Second)
	for {
		e.mu.Lock()
		for i := from; i < len(e.list); i++ {
			if e.list[i].State == st {
				ev := e.list[i]
				e.mu.Unlock()
				return ev, i + 1
			}
		}
		ch := e.changed
		e.mu.Unlock()
		select {
		case <-ch:
		case <-safety:
			t.Fatalf("no %v event; got %v", st, e.snapshot())
		}
	}
}

func (e *events) snapshot() []client.StateEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]client.StateEvent(nil), e.list...)
}

// TestServerRestart kills the server under load (listener and every
// connection closed) and starts it again on the same port. Every call must
// return its own answer or a typed error before its safety deadline, and
// the client must reconnect by itself.
func TestServerRestart(t *testing.T) {
	srv := newServer(t, answerOf)
	ev := newEvents()
	c := newClient(t, []string{srv.addr}, fast(client.Config{ConnsPerAddr: 2, OnStateChange: ev.hook}))
	ev.waitFor(t, client.Connected, 0)

	var (
		ok, failed atomic.Int64
		stop       = make(chan struct{})
		wg         sync.WaitGroup
		errs       = make(chan error, 100)
	)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req := fmt.Appendf(nil, "g%d-%d", g, i)
				ans, err := restartCall(c, g, req)
				switch {
				case err == nil && bytes.Equal(ans, answerOf(req)):
					ok.Add(1)
				case err == nil:
					report(fmt.Errorf("%s: wrong answer %q", req, ans))
				case errors.Is(err, client.ErrConnLost), errors.Is(err, client.ErrNoConnection):
					failed.Add(1)
				default:
					report(fmt.Errorf("%s: untyped or unexpected error: %w", req, err))
				}
			}
		}()
	}
	waitCount(t, &ok, 200)
	srv.Kill()
	_, next := ev.waitFor(t, client.Disconnected, 0)
	waitCount(t, &failed, 1)
	srv.Restart()
	ev.waitFor(t, client.Reconnected, next)
	ok.Store(0)
	waitCount(t, &ok, 200)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("events: %v", ev.snapshot())
}

// restartCall makes one call of a kind chosen by g, with a safety
// deadline that a working client never reaches.
func restartCall(c *client.Client, g int, req []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch g % 4 {
	case 0, 1:
		return c.Call(ctx, req)
	case 2:
		return c.Go(ctx, req).Wait()
	default:
		p := c.Pipeline()
		p.Enqueue(req)
		answers, err := p.Flush(ctx)
		if err != nil {
			return nil, err
		}
		return answers[0], nil
	}
}

// waitCount waits until n reaches at least want.
func waitCount(t testing.TB, n *atomic.Int64, want int64) {
	t.Helper()
	safety := time.Now().Add(20 * time.Second)
	for n.Load() < want {
		if time.Now().After(safety) {
			t.Fatalf("count stuck at %d, want %d", n.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}
