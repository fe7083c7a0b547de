package pubsub_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/pubsub"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const safety = 10 * time.Second

// inbox collects a client's messages on a channel.
type inbox chan pubsub.Message

func (in inbox) add(m pubsub.Message) { in <- m }

func (in inbox) next(t *testing.T) pubsub.Message {
	t.Helper()
	select {
	case m := <-in:
		return m
	case <-time.After(safety):
		t.Fatal("no message")
	}
	return pubsub.Message{}
}

func dial(t *testing.T, addr string, in inbox, cc client.Config) *pubsub.Client {
	t.Helper()
	c, err := pubsub.Dial(addr, pubsub.Config{OnMessage: in.add, Client: cc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestListenNotifyUnlisten: listeners of a channel get its messages, in
// the order they were published, and nothing of other channels.
func TestListenNotifyUnlisten(t *testing.T) {
	hub := pubsub.NewHub()
	_, addr := testserver.Start(t, hub, server.Config{})
	a, b := make(inbox, 100), make(inbox, 100)
	ca, cb := dial(t, addr, a, client.Config{}), dial(t, addr, b, client.Config{})
	ctx := ctxFor(t)
	for _, err := range []error{ca.Listen(ctx, "news"), cb.Listen(ctx, "news"), cb.Listen(ctx, "other")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"1", "2", "3"} {
		if err := ca.Notify(ctx, "news", []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	hub.Publish("other", []byte("b only"))
	for _, in := range []inbox{a, b} {
		for _, s := range []string{"1", "2", "3"} {
			if m := in.next(t); m.Channel != "news" || string(m.Data) != s {
				t.Fatalf("got %+v, want news %s", m, s)
			}
		}
	}
	if m := b.next(t); m.Channel != "other" || string(m.Data) != "b only" {
		t.Fatalf("got %+v", m)
	}
	if err := cb.Unlisten(ctx, "news"); err != nil {
		t.Fatal(err)
	}
	hub.Publish("news", []byte("4"))
	hub.Publish("other", []byte("5"))
	if m := a.next(t); string(m.Data) != "4" {
		t.Fatalf("a got %+v", m)
	}
	// b's next message is 5 of other: 4 of news did not reach it.
	if m := b.next(t); m.Channel != "other" || string(m.Data) != "5" {
		t.Fatalf("b got %+v, want other 5", m)
	}
	if err := ca.Listen(ctx, "bad channel"); !errors.Is(err, pubsub.ErrBadCommand) {
		t.Fatalf("Listen with a space: %v", err)
	}
}

// TestReconnectedRelistens: after its connection is lost, a client
// listens again on its own and says so with a Reconnected message; what
// is published after that reaches it.
func TestReconnectedRelistens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	serve := func(l net.Listener) (*pubsub.Hub, *server.Server, chan error) {
		hub := pubsub.NewHub()
		srv := server.New(hub, server.Config{Logger: testserver.QuietLogger()})
		done := make(chan error, 1)
		go func() { done <- srv.Serve(l) }()
		return hub, srv, done
	}
	hub, srv, done := serve(l)
	in := make(inbox, 100)
	c := dial(t, addr, in, client.Config{
		ReconnectBackoff: client.Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond},
	})
	ctx := ctxFor(t)
	if err := c.Listen(ctx, "news"); err != nil {
		t.Fatal(err)
	}
	hub.Publish("news", []byte("before"))
	if m := in.next(t); string(m.Data) != "before" {
		t.Fatalf("got %+v", m)
	}

	// The server goes away and comes back, with none of the
	// subscriptions.
	_ = srv.Close()
	<-done
	if l, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	hub, srv, done = serve(l)
	defer func() { _ = srv.Close(); <-done }()
	if m := in.next(t); !m.Reconnected {
		t.Fatalf("got %+v, want Reconnected", m)
	}
	if n := hub.Listeners("news"); n != 1 {
		t.Fatalf("%d listeners after the reconnection, want 1", n)
	}
	hub.Publish("news", []byte("after"))
	if m := in.next(t); string(m.Data) != "after" {
		t.Fatalf("got %+v", m)
	}
}

// hubServer serves a Hub on an address the test can serve again on.
type hubServer struct {
	addr string
	hub  *pubsub.Hub
	srv  *server.Server
	done chan error
	once sync.Once
}

// serveHub serves a new Hub at addr ("127.0.0.1:0" for any port), through
// wrap when it is not nil, until stop or the end of the test.
func serveHub(t *testing.T, addr string, wrap func(*pubsub.Hub) server.HandlerFunc) *hubServer {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &hubServer{addr: l.Addr().String(), hub: pubsub.NewHub(), done: make(chan error, 1)}
	var h server.Handler = s.hub
	if wrap != nil {
		h = wrap(s.hub)
	}
	s.srv = server.New(h, server.Config{Logger: testserver.QuietLogger()})
	go func() { s.done <- s.srv.Serve(l) }()
	t.Cleanup(s.stop)
	return s
}

// stop closes the server, and with it the subscriptions of its clients.
func (s *hubServer) stop() {
	s.once.Do(func() {
		_ = s.srv.Close()
		<-s.done
	})
}

// fastReconnect makes a client dial again at once.
var fastReconnect = client.Config{
	ReconnectBackoff: client.Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond},
}

// listenCmd returns the channel of a LISTEN request, or "".
func listenCmd(req []byte) string {
	if ch, ok := strings.CutPrefix(string(req), "LISTEN "); ok {
		return ch
	}
	return ""
}

// TestFailedListenIsForgotten: a Listen that returned an error is no
// subscription. The client does not listen on its channel again after a
// reconnection, and what the server sends on it, having carried out a
// LISTEN whose caller gave up waiting, does not reach OnMessage.
func TestFailedListenIsForgotten(t *testing.T) {
	arrived, release, executed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	s1 := serveHub(t, "127.0.0.1:0", func(hub *pubsub.Hub) server.HandlerFunc {
		return func(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
			if listenCmd(req) != "late" {
				return hub.Respond(ctx, req, sp)
			}
			close(arrived)
			<-release
			defer close(executed)
			return hub.Respond(ctx, req, sp)
		}
	})
	in := make(inbox, 100)
	c := dial(t, s1.addr, in, fastReconnect)
	ctx := ctxFor(t)
	if err := c.Listen(ctx, "news"); err != nil {
		t.Fatal(err)
	}
	dead, cancelDead := context.WithCancel(ctx)
	cancelDead()
	if err := c.Listen(dead, "gone"); err == nil {
		t.Fatal("Listen with a cancelled context succeeded")
	}

	// The caller of Listen gives up before the server answers; the
	// server carries the LISTEN out all the same.
	lctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- c.Listen(lctx, "late") }()
	<-arrived
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("Listen whose context was cancelled succeeded")
	}
	close(release)
	<-executed
	if sent, _ := s1.hub.Publish("late", []byte("unasked")); sent != 1 {
		t.Fatalf("late was sent to %d listeners, want 1 (the test's premise)", sent)
	}
	s1.hub.Publish("news", []byte("asked"))
	if m := in.next(t); m.Channel != "news" || string(m.Data) != "asked" {
		t.Fatalf("got %+v, want news asked", m)
	}

	s1.stop()
	s2 := serveHub(t, s1.addr, nil)
	if m := in.next(t); !m.Reconnected {
		t.Fatalf("got %+v, want Reconnected", m)
	}
	for ch, want := range map[string]int{"news": 1, "gone": 0, "late": 0} {
		if n := s2.hub.Listeners(ch); n != want {
			t.Errorf("%d listeners on %s after the reconnection, want %d", n, ch, want)
		}
	}
}

// TestUnlistenDuringRelisten: an Unlisten made while the client listens
// again after a reconnection has the last word: the re-LISTEN does not
// undo it, whether it had begun on that channel or not.
func TestUnlistenDuringRelisten(t *testing.T) {
	s1 := serveHub(t, "127.0.0.1:0", nil)
	in := make(inbox, 100)
	c := dial(t, s1.addr, in, fastReconnect)
	ctx := ctxFor(t)
	for _, ch := range []string{"x", "y"} {
		if err := c.Listen(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	s1.stop()

	// The new server holds the answer to the first re-LISTEN.
	first, release := make(chan string, 1), make(chan struct{})
	var held atomic.Bool
	s2 := serveHub(t, s1.addr, func(hub *pubsub.Hub) server.HandlerFunc {
		return func(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
			if ch := listenCmd(req); ch != "" && held.CompareAndSwap(false, true) {
				first <- ch
				<-release
			}
			return hub.Respond(ctx, req, sp)
		}
	})
	begun := <-first
	other := map[string]string{"x": "y", "y": "x"}[begun]
	// other is not re-listened yet; begun is, and unanswered.
	if err := c.Unlisten(ctx, other); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Unlisten(ctx, begun) }()
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if m := in.next(t); !m.Reconnected {
		t.Fatalf("got %+v, want Reconnected", m)
	}
	for _, ch := range []string{begun, other} {
		if n := s2.hub.Listeners(ch); n != 0 {
			t.Errorf("%d listeners on %s, unlistened during the re-LISTEN, want 0", n, ch)
		}
	}
}

// TestReconnectedComesFirst: a message that reaches the client on its new
// connection before it has listened again on every channel follows the
// Reconnected message, as do the later ones, in order.
func TestReconnectedComesFirst(t *testing.T) {
	s1 := serveHub(t, "127.0.0.1:0", nil)
	in := make(inbox, 100)
	c := dial(t, s1.addr, in, fastReconnect)
	ctx := ctxFor(t)
	for _, ch := range []string{"a", "b"} {
		if err := c.Listen(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	s1.stop()

	// The new server publishes on each channel as it is listened on,
	// before it answers: the client gets those messages before its
	// re-LISTENs are done.
	var n atomic.Int32
	serveHub(t, s1.addr, func(hub *pubsub.Hub) server.HandlerFunc {
		return func(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
			resp, err := hub.Respond(ctx, req, sp)
			if ch := listenCmd(req); ch != "" {
				hub.Publish(ch, []byte(strconv.Itoa(int(n.Add(1)))))
			}
			return resp, err
		}
	})
	if m := in.next(t); !m.Reconnected {
		t.Fatalf("got %+v, want Reconnected first", m)
	}
	for _, want := range []string{"1", "2"} {
		if m := in.next(t); m.Reconnected || string(m.Data) != want {
			t.Fatalf("got %+v, want message %s", m, want)
		}
	}
}

// TestHeldMessagesBounded: the client holds at most the latest 1024
// messages while it listens again; the older are dropped, and those kept
// follow the Reconnected message in order.
func TestHeldMessagesBounded(t *testing.T) {
	const held, sent = 1024, 1100
	s1 := serveHub(t, "127.0.0.1:0", nil)
	in := make(inbox, sent+10)
	c := dial(t, s1.addr, in, fastReconnect)
	ctx := ctxFor(t)
	if err := c.Listen(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	s1.stop()
	serveHub(t, s1.addr, func(hub *pubsub.Hub) server.HandlerFunc {
		return func(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
			resp, err := hub.Respond(ctx, req, sp)
			if listenCmd(req) == "a" {
				for i := range sent {
					hub.Publish("a", []byte(strconv.Itoa(i)))
				}
			}
			return resp, err
		}
	})
	if m := in.next(t); !m.Reconnected {
		t.Fatalf("got %+v, want Reconnected first", m)
	}
	for i := sent - held; i < sent; i++ {
		if m := in.next(t); string(m.Data) != strconv.Itoa(i) {
			t.Fatalf("got %+v, want message %d", m, i)
		}
	}
}
