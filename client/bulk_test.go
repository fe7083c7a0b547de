package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// bulkServer serves, with the tcpez server, an echo that holds every bulk
// request (DefaultBulkThreshold bytes or more) until release is called,
// noting the first byte of each in the order they arrive. Server stats
// go to rec.
type bulkServer struct {
	addr    string
	rec     *stats.Memory
	started chan struct{}
	gate    chan struct{}
	once    sync.Once

	mu   sync.Mutex
	seen []byte
}

func newBulkServer(t *testing.T) *bulkServer {
	t.Helper()
	b := &bulkServer{rec: stats.NewMemory(), started: make(chan struct{}, 16), gate: make(chan struct{})}
	h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if len(req) >= client.DefaultBulkThreshold {
			b.mu.Lock()
			b.seen = append(b.seen, req[0])
			b.mu.Unlock()
			b.started <- struct{}{}
			<-b.gate
		}
		return req, nil
	}
	_, b.addr = testserver.Start(t, server.HandlerFunc(h), server.Config{Stats: b.rec})
	t.Cleanup(b.release) // before the server's shutdown, which waits for it
	return b
}

func (b *bulkServer) release() { b.once.Do(func() { close(b.gate) }) }

func (b *bulkServer) arrivals() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.seen)
}

// bulkRequest is a bulk request whose bytes are all tag.
func bulkRequest(tag byte) []byte {
	return bytes.Repeat([]byte{tag}, client.DefaultBulkThreshold)
}

// bulkCall makes a bulk call tagged tag on a goroutine; its error (nil
// when it was answered with its request) comes on the channel returned.
func bulkCall(ctx context.Context, c *client.Client, tag byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		req := bulkRequest(tag)
		ans, err := c.Call(ctx, req)
		if err == nil && !bytes.Equal(ans, req) {
			err = fmt.Errorf("call %c: answer of %d bytes is not its request", tag, len(ans))
		}
		done <- err
	}()
	return done
}

// holdTwo makes two large calls, a then b, and waits until the server
// holds both; it returns how many connections the server accepted for
// them, and a function that releases them and checks their answers. On
// one connection the tcpez server starts the second only once the first
// has run for a tick: that both arrive does not tell one connection from
// two, the count does.
func holdTwo(t *testing.T, ctx context.Context, srv *bulkServer, c *client.Client) (conns int64, finish func()) {
	t.Helper()
	a := bulkCall(ctx, c, 'a')
	waitStarted(t, srv.started)
	b := bulkCall(ctx, c, 'b')
	waitStarted(t, srv.started)
	return srv.rec.Counter(server.StatConnsAccepted), func() {
		t.Helper()
		srv.release()
		for _, done := range []<-chan error{a, b} {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestBulkCallsTakeConnectionsOfTheirOwn: a new client's first two bulk
// calls, made together while the server holds both, go over two
// connections, the second an extra one; in either protocol. Overdue
// routing is off, so only the calls' size moves the second.
func TestBulkCallsTakeConnectionsOfTheirOwn(t *testing.T) {
	for _, proto := range []client.Protocol{client.ProtocolV1, client.ProtocolMux} {
		t.Run(proto.String(), func(t *testing.T) {
			srv := newBulkServer(t)
			rec := stats.NewMemory()
			c := newClient(t, []string{srv.addr}, client.Config{Protocol: proto, OverdueAfter: -1, Stats: rec})
			conns, finish := holdTwo(t, ctxFor(t), srv, c)
			if conns != 2 {
				t.Fatalf("both bulk calls held on %d connection(s), want 2", conns)
			}
			if n := rec.Counter(client.StatExtraDialed); n != 1 {
				t.Errorf("%s = %d, want 1", client.StatExtraDialed, n)
			}
			finish()
		})
	}
}

// TestLargeCallsThatAreNotBulkShareAConnection: with BulkThreshold
// negative, or for keyed calls (Rendezvous), two large calls held
// together go over the one connection, as any calls do: no extra is
// dialled for them.
func TestLargeCallsThatAreNotBulkShareAConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  client.Config
		key  string
	}{
		{"BulkThreshold -1", client.Config{BulkThreshold: -1}, ""},
		{"keyed", client.Config{Balancer: client.Rendezvous}, "k"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newBulkServer(t)
			cfg := tc.cfg
			cfg.OverdueAfter = -1
			c := newClient(t, []string{srv.addr}, cfg)
			ctx := ctxFor(t)
			if tc.key != "" {
				ctx = client.WithKey(ctx, tc.key)
			}
			conns, finish := holdTwo(t, ctx, srv, c)
			if conns != 1 {
				t.Fatalf("two large calls that are not bulk held on %d connections, want 1", conns)
			}
			finish()
		})
	}
}

// TestBulkCallsWaitInLine: with no extra connections allowed, bulk calls
// made while one is held wait for it, in the order they came; one whose
// context ends while it waits leaves the line without being sent, and the
// calls behind it still get the connection.
func TestBulkCallsWaitInLine(t *testing.T) {
	for _, proto := range []client.Protocol{client.ProtocolV1, client.ProtocolMux} {
		t.Run(proto.String(), func(t *testing.T) {
			srv := newBulkServer(t)
			rec := stats.NewMemory()
			c := newClient(t, []string{srv.addr}, client.Config{Protocol: proto, OverdueAfter: -1, MaxExtraConns: -1, Stats: rec})
			ctx := ctxFor(t)
			a := bulkCall(ctx, c, 'a')
			waitStarted(t, srv.started)
			cctx, cancel := context.WithCancel(ctx)
			var queued []<-chan error
			for i, tag := range []byte("bcd") {
				callCtx := ctx
				if tag == 'c' {
					callCtx = cctx
				}
				queued = append(queued, bulkCall(callCtx, c, tag))
				waitUntil(t, fmt.Sprint(i+1, " bulk calls waiting"), func() bool {
					return rec.Counter(client.StatBulkWaits) == int64(i+1)
				})
			}
			cancel()
			if err := <-queued[1]; !errors.Is(err, context.Canceled) {
				t.Fatalf("call c, cancelled while it waited: %v", err)
			}
			if got := srv.arrivals(); got != "a" {
				t.Fatalf("the server saw %q while a was held, want only a", got)
			}
			srv.release()
			for _, done := range []<-chan error{a, queued[0], queued[2]} {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			if got := srv.arrivals(); got != "abd" {
				t.Fatalf("the server saw %q, want abd: the calls in line in order, without c", got)
			}
			if n := srv.rec.Counter(server.StatConnsAccepted); n != 1 {
				t.Fatalf("%d connections with MaxExtraConns -1", n)
			}
		})
	}
}

// TestBulkCallsThatWaitForEachOtherAreSent: three bulk calls whose
// handlers each wait until all three have arrived, over one connection:
// the second and third wait in line until no bulk call has ended for
// OverdueAfter, then go anyway, and all three are answered.
func TestBulkCallsThatWaitForEachOtherAreSent(t *testing.T) {
	for _, proto := range []client.Protocol{client.ProtocolV1, client.ProtocolMux} {
		t.Run(proto.String(), func(t *testing.T) {
			var mu sync.Mutex
			arrived := 0
			all := make(chan struct{})
			h := func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
				mu.Lock()
				if arrived++; arrived == 3 {
					close(all)
				}
				mu.Unlock()
				select {
				case <-all:
					return req, nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			_, addr := testserver.Start(t, server.HandlerFunc(h), server.Config{})
			rec := stats.NewMemory()
			c := newClient(t, []string{addr}, client.Config{Protocol: proto, MaxExtraConns: -1, Stats: rec})
			ctx := ctxFor(t)
			var calls []<-chan error
			for _, tag := range []byte("abc") {
				calls = append(calls, bulkCall(ctx, c, tag))
			}
			for _, done := range calls {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			if n := rec.Counter(client.StatBulkImpatient); n < 1 {
				t.Errorf("%s = %d, want at least 1", client.StatBulkImpatient, n)
			}
		})
	}
}

// TestConcurrentBulkPipelines: sixteen goroutines of a new client send
// Pipelines of 64×4 KiB at once, spread over the extra connections and
// waiting in line for them, in either protocol (a batch laid out for one
// goes over the other's connection too); every answer is its request.
func TestConcurrentBulkPipelines(t *testing.T) {
	for _, proto := range []client.Protocol{client.ProtocolV1, client.ProtocolMux} {
		t.Run(proto.String(), func(t *testing.T) {
			_, addr := testserver.Start(t, server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
				return req, nil
			}), server.Config{})
			c := newClient(t, []string{addr}, client.Config{Protocol: proto})
			ctx := ctxFor(t)
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for g := range 16 {
				wg.Go(func() {
					p := c.Pipeline()
					var dst []byte
					var answers [][]byte
					for round := range 8 {
						for i := range 64 {
							p.Enqueue(bytes.Repeat([]byte{byte(g), byte(round), byte(i)}, 4<<10/3))
						}
						var err error
						dst, answers, err = p.FlushAppend(ctx, dst[:0], answers[:0])
						if err != nil {
							errs <- fmt.Errorf("goroutine %d, batch %d: %w", g, round, err)
							return
						}
						for i, ans := range answers {
							if want := bytes.Repeat([]byte{byte(g), byte(round), byte(i)}, 4<<10/3); !bytes.Equal(ans, want) {
								errs <- fmt.Errorf("goroutine %d, batch %d: answer %d is not its request", g, round, i)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
