package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// pushClient is a client of addr configured by cfg.
func pushClient(t testing.TB, addr string, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// callBack is a server handler that calls its client back with "in:"+req
// and answers "out:" and what the client answered.
func callBack(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
	r, ok := server.RemoteFromContext(ctx)
	if !ok {
		return nil, errors.New("no remote")
	}
	ans, err := r.Call(ctx, append([]byte("in:"), req...))
	if err != nil {
		return nil, err
	}
	return append([]byte("out:"), ans...), nil
}

// TestNestedCall: client → server → client → answer → answer, from a cold
// client, on one connection.
func TestNestedCall(t *testing.T) {
	_, addr, _ := startMux(t, server.HandlerFunc(callBack), server.Config{})
	c := pushClient(t, addr, client.Config{Handler: client.HandlerFunc(func(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
		if sp == nil || sp.ID() == 0 {
			return nil, errors.New("no span")
		}
		return append([]byte("client:"), req...), nil
	})})
	for i := range 20 {
		req := []byte("x" + strconv.Itoa(i))
		got, err := c.Call(ctxFor(t), req)
		if err != nil {
			t.Fatal(err)
		}
		if want := "out:client:in:" + string(req); string(got) != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestCallBacksAtTheCallLimit: handlers that call their client back all
// get its answers when the client keeps as many calls on the connection
// as it may, for a server of MaxInFlight 1 and of 2. (With MaxInFlight
// calls waiting, the server stopped reading: the answers to its calls
// went unread, and the handlers and the client's calls waited for ever.)
func TestCallBacksAtTheCallLimit(t *testing.T) {
	for _, inFlight := range []int{1, 2} {
		t.Run(fmt.Sprintf("MaxInFlight=%d", inFlight), func(t *testing.T) {
			_, addr, _ := startMux(t, server.HandlerFunc(callBack), server.Config{MaxInFlight: inFlight})
			c := pushClient(t, addr, client.Config{Handler: client.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
				return req, nil
			})})
			var wg sync.WaitGroup
			errs := make(chan error, 4*inFlight)
			for i := range 4 * inFlight {
				wg.Go(func() {
					req := []byte(strconv.Itoa(i))
					got, err := c.Call(ctxFor(t), req)
					if err == nil && string(got) != "out:in:"+string(req) {
						err = fmt.Errorf("answer %q to %q", got, req)
					}
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestClientHandlerErrors: what a client's handler does wrong reaches the
// server's caller as a *server.RemoteError, and the connection goes on.
func TestClientHandlerErrors(t *testing.T) {
	_, addr, _ := startMux(t, server.HandlerFunc(callBack), server.Config{
		// The handler's error goes back to the client as an answer,
		// so that the test can see it.
		EncodeError: func(_ context.Context, err error, _ *span.Span) ([]byte, bool) {
			var re *server.RemoteError
			if !errors.As(err, &re) || !errors.Is(err, server.ErrRemote) {
				return []byte("not a RemoteError: " + err.Error()), true
			}
			return fmt.Appendf(nil, "%d %s", re.Code, re.Message), true
		},
		Limits: frame.Limits{MaxFrameSize: 64 << 10},
	})
	c := pushClient(t, addr, client.Config{Handler: client.HandlerFunc(func(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
		switch string(req) {
		case "in:fail":
			return nil, errors.New("boom")
		case "in:panic":
			panic("oops")
		case "in:big":
			return make([]byte, 100<<10), nil
		}
		return req, nil
	})})
	tooBig := fmt.Sprintf("1 an answer of %d bytes, over the server's limit of %d", 100<<10, 64<<10-frame.MuxHeaderSize)
	// In this order, so that a big answer that ended the connection fails
	// the calls after it.
	for _, req := range []string{"fail", "panic", "big", "ok"} {
		want := map[string]string{"fail": "1 boom", "panic": "1 handler panic", "big": tooBig, "ok": "out:in:ok"}[req]
		got, err := c.Call(ctxFor(t), []byte(req))
		if err != nil || string(got) != want {
			t.Errorf("%s: got %q, %v; want %q", req, got, err, want)
		}
	}

	// A client without a Handler refuses: CodeNoHandler, which NotRun.
	bare := pushClient(t, addr, client.Config{})
	got, err := bare.Call(ctxFor(t), []byte("x"))
	if want := fmt.Sprintf("%d no handler", frame.CodeNoHandler); err != nil || string(got) != want {
		t.Errorf("no handler: got %q, %v; want %q", got, err, want)
	}
}

// TestServerCancelReachesClientHandler: a server's caller that gives up
// ends the client handler's context, and gets its own ctx's error.
func TestServerCancelReachesClientHandler(t *testing.T) {
	started, ended := make(chan struct{}), make(chan error, 1)
	srv, addr, _ := startMux(t, server.HandlerFunc(func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
		return req, nil
	}), server.Config{})
	c := pushClient(t, addr, client.Config{Handler: client.HandlerFunc(func(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
		close(started)
		select {
		case <-ctx.Done():
			ended <- context.Cause(ctx)
		case <-time.After(safety):
			ended <- errors.New("not cancelled")
		}
		return nil, ctx.Err()
	})})
	if _, err := c.Call(ctxFor(t), []byte("hello")); err != nil { // connects
		t.Fatal(err)
	}
	remotes := srv.Remotes()
	if len(remotes) != 1 {
		t.Fatalf("%d remotes, want 1", len(remotes))
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := remotes[0].Go(ctx, []byte("wait"))
	<-started
	cancel()
	if _, err := f.Result(); !errors.Is(err, context.Canceled) {
		t.Fatalf("server's call: %v, want context.Canceled", err)
	}
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("client handler's context: %v, want context.Canceled", err)
	}
	// The connection goes on.
	if got, err := c.Call(ctxFor(t), []byte("again")); err != nil || string(got) != "again" {
		t.Fatalf("after the cancel: %q, %v", got, err)
	}
}

// notifications collects what a client is pushed.
type notifications struct {
	mu   sync.Mutex
	got  [][]byte
	more chan struct{}
}

func newNotifications() *notifications { return &notifications{more: make(chan struct{}, 1)} }

func (n *notifications) add(x client.Notification) {
	n.mu.Lock()
	n.got = append(n.got, x.Payload)
	n.mu.Unlock()
	select {
	case n.more <- struct{}{}:
	default:
	}
}

// await waits until k notifications came, and returns them.
func (n *notifications) await(t testing.TB, k int) [][]byte {
	t.Helper()
	deadline := time.After(safety)
	for {
		n.mu.Lock()
		got := n.got
		n.mu.Unlock()
		if len(got) >= k {
			return got
		}
		select {
		case <-n.more:
		case <-deadline:
			t.Fatalf("%d notifications, want %d", len(got), k)
		}
	}
}

// TestNotifyInOrder: notifications to one client arrive all and in order,
// while it has no call in flight.
func TestNotifyInOrder(t *testing.T) {
	srv, addr, _ := startMux(t, server.HandlerFunc(func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
		return req, nil
	}), server.Config{})
	n := newNotifications()
	c := pushClient(t, addr, client.Config{OnNotify: n.add})
	if _, err := c.Call(ctxFor(t), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	r := srv.Remotes()[0]
	const count = 5000
	for i := range count {
		if err := r.Notify([]byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range n.await(t, count) {
		if string(p) != strconv.Itoa(i) {
			t.Fatalf("notification %d is %q", i, p)
		}
	}
}

// TestBroadcastThousand: one broadcast reaches 1,000 clients, each on its
// own connection.
func TestBroadcastThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	srv, addr, _ := startMux(t, server.HandlerFunc(func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
		return req, nil
	}), server.Config{})
	const listeners = 1000
	ns := make([]*notifications, listeners)
	for i := range ns {
		ns[i] = newNotifications()
		c := pushClient(t, addr, client.Config{OnNotify: ns[i].add})
		if _, err := c.Call(ctxFor(t), []byte("hi")); err != nil {
			t.Fatal(err)
		}
	}
	remotes := srv.Remotes()
	if len(remotes) != listeners {
		t.Fatalf("%d remotes, want %d", len(remotes), listeners)
	}
	for round := range 3 {
		if sent, dropped := server.Broadcast(remotes, []byte("news"+strconv.Itoa(round))); sent != listeners || dropped != 0 {
			t.Fatalf("sent %d, dropped %d", sent, dropped)
		}
	}
	for i, n := range ns {
		got := n.await(t, 3)
		for round, p := range got {
			if string(p) != "news"+strconv.Itoa(round) {
				t.Fatalf("listener %d got %q as notification %d", i, p, round)
			}
		}
	}
}

// TestStalledListenerDelaysNobody: a client that negotiated version 2 and
// then reads nothing does not hold up a broadcast to the others: they get
// every notification while it has read none, and what does not fit its
// backlog is dropped and counted.
func TestStalledListenerDelaysNobody(t *testing.T) {
	srv, addr, rec := startMux(t, server.HandlerFunc(func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
		return req, nil
	}), server.Config{PushBacklog: 64 << 10})

	// The stalled listener: a raw connection that negotiates, then reads
	// nothing more until the end of the test.
	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if tc, ok := stalled.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10) // fill up soon
	}
	if _, err := stalled.Write(frame.AppendPreface(nil)); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, frame.HeaderSize+frame.AckSize)
	if _, err := io.ReadFull(stalled, ack); err != nil {
		t.Fatal(err)
	}
	// One call answered: the server serves the connection in the
	// multiplexed mode, so it is among the remotes (the acknowledgement
	// goes out before that).
	call := frame.AppendMux(nil, frame.KindRequest, 1, []byte("hi"))
	if _, err := stalled.Write(call); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(stalled, make([]byte, len(call))); err != nil {
		t.Fatal(err)
	}

	n := newNotifications()
	c := pushClient(t, addr, client.Config{OnNotify: n.add})
	if _, err := c.Call(ctxFor(t), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	remotes := srv.Remotes()
	if len(remotes) != 2 {
		t.Fatalf("%d remotes, want 2", len(remotes))
	}
	// 8 MiB to each: far past what the stalled one's socket buffers and
	// backlog hold, so its writer blocks for good; yet the other listener
	// gets each notification before the next is broadcast.
	const rounds = 512
	payload := bytes.Repeat([]byte{'x'}, 16<<10)
	dropped := 0
	for i := range rounds {
		binaryPutIndex(payload, i)
		_, d := server.Broadcast(remotes, payload)
		dropped += d
		n.await(t, i+1)
	}
	got := n.await(t, rounds)
	for i, p := range got {
		if readIndex(p) != i {
			t.Fatalf("notification %d carries %d", i, readIndex(p))
		}
	}
	if dropped == 0 {
		t.Fatal("nothing dropped for the stalled listener")
	}
	if d := rec.Counter(server.StatErrPushDropped); d != int64(dropped) {
		t.Errorf("%s = %d, want %d", server.StatErrPushDropped, d, dropped)
	}
}

func binaryPutIndex(p []byte, i int) { copy(p, fmt.Sprintf("%08d", i)) }

func readIndex(p []byte) int {
	i, _ := strconv.Atoi(string(p[:8]))
	return i
}

// TestKeepOpenSparesListener: IdleTimeout closes an idle mux connection,
// but not one whose Remote is kept open, which is still pushed to after
// the other was closed.
func TestKeepOpenSparesListener(t *testing.T) {
	srv, addr, _ := startMux(t, server.HandlerFunc(echoHandler), server.Config{IdleTimeout: 20 * time.Millisecond})
	kept := newNotifications()
	c := pushClient(t, addr, client.Config{OnNotify: kept.add})
	if _, err := c.Call(ctxFor(t), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	remotes := srv.Remotes()
	if len(remotes) != 1 {
		t.Fatalf("%d remotes, want 1", len(remotes))
	}
	listener := remotes[0]
	listener.KeepOpen(true)

	// Another connection, opened later and not kept open, is closed for
	// idling: the listener then idled at least as long.
	other := pushClient(t, addr, client.Config{OnNotify: func(client.Notification) {}})
	if _, err := other.Call(ctxFor(t), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	var idler *server.Remote
	for _, r := range srv.Remotes() {
		if r != listener {
			idler = r
		}
	}
	select {
	case <-idler.Done():
	case <-time.After(safety):
		t.Fatal("IdleTimeout did not close the idle connection")
	}
	select {
	case <-listener.Done():
		t.Fatal("the kept-open connection was closed")
	default:
	}
	if err := listener.Notify([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	if got := kept.await(t, 1); string(got[0]) != "still here" {
		t.Fatalf("got %q", got[0])
	}
}

// TestServerCallsBounded: a client runs at most MaxInFlight calls from the
// server on a connection; past it they are refused, not run, with
// CodeTooMany.
func TestServerCallsBounded(t *testing.T) {
	srv, addr, _ := startMux(t, server.HandlerFunc(echoHandler), server.Config{})
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	c := pushClient(t, addr, client.Config{MaxInFlight: 2, Handler: client.HandlerFunc(func(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
		started <- struct{}{}
		<-release
		return req, nil
	})})
	if _, err := c.Call(ctxFor(t), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	r := srv.Remotes()[0]
	a, b := r.Go(ctxFor(t), []byte("a")), r.Go(ctxFor(t), []byte("b"))
	<-started
	<-started
	_, err := r.Call(ctxFor(t), []byte("c"))
	var re *server.RemoteError
	if !errors.As(err, &re) || re.Code != frame.CodeTooMany {
		t.Fatalf("third call: %v, want CodeTooMany", err)
	}
	close(release)
	for _, f := range []*server.Future{a, b} {
		if _, err := f.Result(); err != nil {
			t.Fatal(err)
		}
	}
}
