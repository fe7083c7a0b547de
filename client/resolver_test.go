package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/stats"
)

// chanResolver hands the client the address sets sent with set, which
// returns once the client has applied them.
type chanResolver struct {
	in  chan []string
	ack chan struct{}
}

func newChanResolver() *chanResolver {
	return &chanResolver{in: make(chan []string), ack: make(chan struct{})}
}

func (r *chanResolver) set(addrs ...string) {
	r.in <- addrs
	<-r.ack
}

func (r *chanResolver) Watch(ctx context.Context, u client.Updater) error {
	for {
		select {
		case addrs := <-r.in:
			u.Update(addrs)
			r.ack <- struct{}{}
		case <-ctx.Done():
			return nil
		}
	}
}

// TestResolverChanges moves the client from one server to another while a
// call is in flight on the first: that call still gets its answer (the old
// connection drains), and new calls go to the new server.
func TestResolverChanges(t *testing.T) {
	gate := make(chan struct{})
	a := newServer(t, func(req []byte) []byte {
		if string(req) == "hold" {
			<-gate
		}
		return answerOf(req)
	})
	var openGate sync.Once
	t.Cleanup(func() { openGate.Do(func() { close(gate) }) }) // before the server's
	b := newServer(t, answerOf)
	r := newChanResolver()
	// v1: the test servers count the frames they read, and a mux preface
	// would be one of them.
	c := newClient(t, nil, client.Config{Protocol: client.ProtocolV1, Resolver: r})
	ctx := ctxFor(t)

	// Calls made before the first address set wait for it.
	early := make(chan error, 1)
	go func() {
		ans, err := c.Call(ctx, []byte("early"))
		if err == nil && string(ans) != "ans:early" {
			err = errors.New("wrong answer " + string(ans))
		}
		early <- err
	}()
	r.set(a.addr)
	if err := <-early; err != nil {
		t.Fatal("early call:", err)
	}

	held := c.Go(ctx, []byte("hold"))
	waitCount(t, &a.requests, 2)
	r.set(b.addr)
	for range 20 {
		if ans, err := c.Call(ctx, []byte("x")); err != nil || string(ans) != "ans:x" {
			t.Fatalf("after the change: %q, %v", ans, err)
		}
	}
	if n := a.requests.Load(); n != 2 {
		t.Fatalf("removed server got %d requests, want 2", n)
	}
	if n := b.requests.Load(); n != 20 {
		t.Fatalf("new server got %d requests, want 20", n)
	}
	openGate.Do(func() { close(gate) })
	if ans, err := held.Wait(); err != nil || string(ans) != "ans:hold" {
		t.Fatalf("call in flight on the removed server: %q, %v", ans, err)
	}
	// Once drained, the old connection closes.
	safety := time.Now().Add(10 * time.Second)
	for {
		a.mu.Lock()
		n := len(a.conns)
		a.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(safety) {
			t.Fatal("drained connection never closed")
		}
		time.Sleep(time.Millisecond)
	}
}

type failingResolver struct{ err error }

func (r failingResolver) Watch(context.Context, client.Updater) error { return r.err }

func TestResolverFails(t *testing.T) {
	boom := errors.New("no such service")
	c := newClient(t, nil, client.Config{Resolver: failingResolver{boom}})
	_, err := c.Call(ctxFor(t), []byte("x"))
	if !errors.Is(err, client.ErrNoConnection) || !errors.Is(err, boom) {
		t.Fatalf("got %v, want ErrNoConnection wrapping the resolver's error", err)
	}
}

// errorsFirstResolver is a user-written Resolver that fails its first
// lookup, reports it, and then finds addr when told to.
type errorsFirstResolver struct {
	err  error
	addr string
	next chan struct{}
}

func (r errorsFirstResolver) Watch(ctx context.Context, u client.Updater) error {
	u.Error(r.err)
	select {
	case <-r.next:
		u.Update([]string{r.addr})
	case <-ctx.Done():
	}
	<-ctx.Done()
	return nil
}

// TestResolverReportsErrors: a Resolver of the user's own reports a
// failed lookup through its Updater: waiting calls fail with it and it is
// counted; the address set that follows supersedes it.
func TestResolverReportsErrors(t *testing.T) {
	srv := newServer(t, nil)
	boom := errors.New("lookup failed")
	next := make(chan struct{})
	mem := stats.NewMemory()
	c := newClient(t, nil, client.Config{Resolver: errorsFirstResolver{boom, srv.addr, next}, Stats: mem})
	_, err := c.Call(ctxFor(t), []byte("x"))
	if !errors.Is(err, client.ErrNoConnection) || !errors.Is(err, boom) {
		t.Fatalf("before any set: %v, want ErrNoConnection wrapping the reported error", err)
	}
	if n := mem.Counter(client.StatResolveErrors); n != 1 {
		t.Errorf("%s = %d, want 1", client.StatResolveErrors, n)
	}
	close(next)
	waitUntil(t, "a call to succeed once the set arrived", func() bool {
		ans, err := c.Call(ctxFor(t), []byte("x"))
		return err == nil && string(ans) == "x"
	})
}

func TestStaticResolver(t *testing.T) {
	srv := newServer(t, nil)
	c := newClient(t, nil, client.Config{Resolver: client.StaticResolver{srv.addr}})
	if ans, err := c.Call(ctxFor(t), []byte("x")); err != nil || string(ans) != "x" {
		t.Fatalf("%q, %v", ans, err)
	}
}

// TestCloseWhileDraining: Close does not wait for the answers a removed
// address still owes; those calls fail with ErrClosed.
func TestCloseWhileDraining(t *testing.T) {
	gate := make(chan struct{})
	a := newServer(t, func(req []byte) []byte {
		<-gate
		return req
	})
	t.Cleanup(func() { close(gate) })
	b := newServer(t, nil)
	r := newChanResolver()
	// ProtocolV1: the test servers speak v1, and a's handler would hold
	// the mux preface, counting it as the held call.
	c, err := client.New(nil, client.Config{Resolver: r, DrainTimeout: time.Hour, Protocol: client.ProtocolV1})
	if err != nil {
		t.Fatal(err)
	}
	r.set(a.addr)
	held := make(chan error, 1)
	go func() {
		_, err := c.Call(ctxFor(t), []byte("held"))
		held <- err
	}()
	waitCount(t, &a.requests, 1)
	r.set(b.addr)
	c.Close()
	if err := <-held; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("call on the draining connection: %v, want ErrClosed", err)
	}
}
