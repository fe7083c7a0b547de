package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/stats"
)

func TestCallEcho(t *testing.T) {
	srv := newServer(t, nil)
	c := newClient(t, []string{srv.addr}, client.Config{})
	ctx := ctxFor(t)
	for _, size := range []int{0, 1, 100, 40 << 10, 100 << 10, 1 << 20} {
		req := bytes.Repeat([]byte{byte(size)}, size)
		ans, err := c.Call(ctx, req)
		if err != nil || !bytes.Equal(ans, req) {
			t.Fatalf("size %d: got %d bytes, %v", size, len(ans), err)
		}
		if ans == nil {
			t.Fatalf("size %d: nil answer, want an empty slice", size)
		}
		dst := []byte("prefix")
		ans, err = c.CallAppend(ctx, dst, req)
		if err != nil || !bytes.Equal(ans, append([]byte("prefix"), req...)) {
			t.Fatalf("append, size %d: got %d bytes, %v", size, len(ans), err)
		}
	}
}

func TestGoAndNotify(t *testing.T) {
	srv := newServer(t, nil)
	// v1: the test server counts the frames it reads, and a mux preface
	// would be one of them.
	c := newClient(t, []string{srv.addr}, client.Config{Protocol: client.ProtocolV1})
	ctx := ctxFor(t)
	var calls []*client.Future
	for i := range 50 {
		calls = append(calls, c.Go(ctx, fmt.Appendf(nil, "go-%d", i)))
		if err := c.Notify(ctx, fmt.Appendf(nil, "notify-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range calls {
		<-f.Done()
		ans, err := f.Wait()
		if want := fmt.Sprintf("go-%d", i); err != nil || string(ans) != want {
			t.Fatalf("call %d: %q, %v; want %q", i, ans, err, want)
		}
	}
	// The notifies' answers were consumed: the next answer is our own.
	if ans, err := c.Call(ctx, []byte("last")); err != nil || string(ans) != "last" {
		t.Fatalf("after notifies: %q, %v", ans, err)
	}
	if got := srv.requests.Load(); got != 101 {
		t.Fatalf("server read %d requests, want 101", got)
	}
}

func TestGoContextEnds(t *testing.T) {
	gate := make(chan struct{})
	srv := newServer(t, func(req []byte) []byte {
		if string(req) == "hold" {
			<-gate
		}
		return req
	})
	c := newClient(t, []string{srv.addr}, client.Config{})
	ctx, cancel := context.WithCancel(ctxFor(t))
	f := c.Go(ctx, []byte("hold"))
	cancel()
	if _, err := f.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	close(gate)
	if ans, err := c.Call(ctxFor(t), []byte("next")); err != nil || string(ans) != "next" {
		t.Fatalf("after a canceled future: %q, %v", ans, err)
	}
}

func TestPipeline(t *testing.T) {
	srv := newServer(t, nil)
	c := newClient(t, []string{srv.addr}, client.Config{})
	ctx := ctxFor(t)
	p := c.Pipeline()

	// An empty Flush sends nothing: between two calls, the server reads
	// one request, the second call's. (A count from zero would also take in
	// the multiplexed mode's preface, which this v1 server counts as a
	// request, whenever the connection is made before the count.)
	call := func() {
		if _, err := c.Call(ctx, []byte("call")); err != nil {
			t.Fatal(err)
		}
	}
	call()
	before := srv.requests.Load()
	if ans, err := p.Flush(ctx); ans != nil || err != nil {
		t.Fatalf("empty Flush: %q, %v", ans, err)
	}
	call()
	if n := srv.requests.Load() - before; n != 1 {
		t.Fatalf("empty Flush between two calls: the server read %d requests, want 1", n)
	}
	for round := range 3 {
		n := 10 + round
		for i := range n {
			p.Enqueue(fmt.Appendf(nil, "r%d-%d", round, i))
		}
		if p.Len() != n {
			t.Fatalf("Len %d, want %d", p.Len(), n)
		}
		answers, err := p.Flush(ctx)
		if err != nil || len(answers) != n {
			t.Fatalf("round %d: %d answers, %v", round, len(answers), err)
		}
		for i, a := range answers {
			if want := fmt.Sprintf("r%d-%d", round, i); string(a) != want {
				t.Fatalf("round %d answer %d: %q, want %q", round, i, a, want)
			}
		}
		if p.Len() != 0 {
			t.Fatalf("Len %d after Flush", p.Len())
		}
	}
	// Empty and large members.
	p.Enqueue(nil)
	p.Enqueue(bytes.Repeat([]byte("x"), 200<<10))
	p.Enqueue([]byte("y"))
	answers, err := p.Flush(ctx)
	if err != nil || len(answers) != 3 || len(answers[0]) != 0 || len(answers[1]) != 200<<10 || string(answers[2]) != "y" {
		t.Fatalf("mixed batch: %d answers, %v", len(answers), err)
	}
}

func TestPipelineOverBatchLimit(t *testing.T) {
	srv := newServer(t, nil)
	// v1: the test server counts the frames it reads, and a mux preface
	// would be one of them.
	c := newClient(t, []string{srv.addr}, client.Config{Protocol: client.ProtocolV1, Limits: frame.Limits{MaxBatchCount: 4}})
	p := c.Pipeline()
	for range 5 {
		p.Enqueue([]byte("x"))
	}
	_, err := p.Flush(ctxFor(t))
	if !errors.Is(err, frame.ErrBatchTooLarge) {
		t.Fatalf("got %v, want ErrBatchTooLarge", err)
	}
	if n := srv.requests.Load(); n != 0 {
		t.Fatalf("sent %d requests of a refused batch", n)
	}
}

func TestClose(t *testing.T) {
	gate := make(chan struct{})
	srv := newServer(t, func(req []byte) []byte {
		<-gate
		return req
	})
	defer close(gate)
	c, err := client.New([]string{srv.addr}, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Call(ctx, []byte("stuck"))
			errs <- err
		}()
	}
	for srv.requests.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	c.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, client.ErrClosed) {
			t.Fatalf("in-flight call: %v, want ErrClosed", err)
		}
	}
	if _, err := c.Call(ctx, []byte("late")); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
	if err := c.Notify(ctx, []byte("late")); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("notify after Close: %v", err)
	}
	if _, err := c.Go(ctx, []byte("late")).Wait(); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("future after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestMaxInFlight(t *testing.T) {
	gate := make(chan struct{})
	srv := newServer(t, func(req []byte) []byte {
		if string(req) == "hold" {
			<-gate
		}
		return req
	})
	// v1: the test server counts the frames it reads, and a mux preface
	// would be one of them.
	c := newClient(t, []string{srv.addr}, client.Config{Protocol: client.ProtocolV1, MaxInFlight: 1})
	held := c.Go(ctxFor(t), []byte("hold"))

	// The only slot is taken: a second call waits for it, within its ctx.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, []byte("waits")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded while the slot is taken", err)
	}
	if n := srv.requests.Load(); n > 1 {
		t.Fatalf("server saw %d requests with MaxInFlight 1", n)
	}
	close(gate)
	if ans, err := held.Wait(); err != nil || string(ans) != "hold" {
		t.Fatalf("held call: %q, %v", ans, err)
	}
	if ans, err := c.Call(ctxFor(t), []byte("next")); err != nil || string(ans) != "next" {
		t.Fatalf("after the slot freed: %q, %v", ans, err)
	}
}

func TestBalancers(t *testing.T) {
	for _, b := range []client.Balancer{client.PowerOfTwo, client.RoundRobin, client.Random} {
		t.Run(b.String(), func(t *testing.T) {
			a, z := newServer(t, nil), newServer(t, nil)
			c := newClient(t, []string{a.addr, z.addr}, client.Config{Balancer: b, ConnsPerAddr: 2})
			ctx := ctxFor(t)
			for i := range 200 {
				req := fmt.Appendf(nil, "%d", i)
				if ans, err := c.Call(ctx, req); err != nil || !bytes.Equal(ans, req) {
					t.Fatalf("%q: %q, %v", req, ans, err)
				}
			}
			if a.requests.Load() == 0 || z.requests.Load() == 0 {
				t.Fatalf("load not spread: %d and %d requests", a.requests.Load(), z.requests.Load())
			}
		})
	}
}

func TestStatsAndObserver(t *testing.T) {
	srv := newServer(t, nil)
	mem := stats.NewMemory()
	var mu sync.Mutex
	var infos []client.CallInfo
	c := newClient(t, []string{srv.addr}, client.Config{
		Stats: mem,
		Observer: func(ci client.CallInfo) {
			mu.Lock()
			infos = append(infos, ci)
			mu.Unlock()
		},
	})
	ctx := ctxFor(t)
	if _, err := c.Call(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	p := c.Pipeline()
	p.Enqueue([]byte("a"))
	p.Enqueue([]byte("bc"))
	if _, err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	expired, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Call(expired, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want Canceled", err)
	}

	if got := mem.Counter(client.StatCalls); got != 3 {
		t.Errorf("%s = %d, want 3", client.StatCalls, got)
	}
	if got := mem.Counter(client.StatErrCanceled); got != 1 {
		t.Errorf("%s = %d, want 1", client.StatErrCanceled, got)
	}
	if got := mem.Counter(client.StatConnected); got != 1 {
		t.Errorf("%s = %d, want 1", client.StatConnected, got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(infos) != 3 {
		t.Fatalf("%d observations, want 3", len(infos))
	}
	first, batch := infos[0], infos[1]
	if first.Op != client.OpCall || first.Addr != srv.addr || first.ReqBytes != 5 || first.AnsBytes != 5 || first.Attempts != 1 || first.Err != nil {
		t.Errorf("Call observed as %+v", first)
	}
	if batch.Op != client.OpPipeline || batch.ReqBytes != 3 || batch.AnsBytes != 3 {
		t.Errorf("Flush observed as %+v", batch)
	}
	if first.ID == 0 || first.ID == batch.ID {
		t.Errorf("call IDs %v and %v, want distinct and non-zero", first.ID, batch.ID)
	}
	if infos[2].Err == nil {
		t.Errorf("failed call observed without its error: %+v", infos[2])
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []client.Config{
		{ConnsPerAddr: -1},
		{MaxInFlight: -1},
		{DialTimeout: -1},
		{DrainTimeout: -1},
		{Balancer: 7},
		{Limits: frame.Limits{MaxFrameSize: -1}},
		{RetryBackoff: client.Backoff{Base: time.Second, Max: time.Millisecond}},
		{ReconnectBackoff: client.Backoff{Base: -1}},
	}
	for _, cfg := range bad {
		if err := cfg.Validate(); !errors.Is(err, client.ErrInvalidConfig) {
			t.Errorf("%+v: Validate = %v", cfg, err)
		}
		if _, err := client.New([]string{"127.0.0.1:1"}, cfg); !errors.Is(err, client.ErrInvalidConfig) {
			t.Errorf("%+v: New = %v", cfg, err)
		}
	}
	var zero client.Config
	if err := zero.Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	for _, addrs := range [][]string{nil, {"no-port"}, {"unix:"}} {
		if _, err := client.New(addrs, client.Config{}); !errors.Is(err, client.ErrInvalidConfig) {
			t.Errorf("New(%q) = %v", addrs, err)
		}
	}
	if _, err := client.New([]string{"127.0.0.1:1"}, client.Config{Resolver: client.StaticResolver{"127.0.0.1:1"}}); !errors.Is(err, client.ErrInvalidConfig) {
		t.Errorf("addrs and Resolver: %v", err)
	}
}

// TestNewRejectsBadPort checks that New refuses a port no dial can use: a
// user who typed "127.0.0.1:99999" got a client whose first call waited
// DialTimeout (5 s) before failing with "invalid port".
func TestNewRejectsBadPort(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:", "127.0.0.1:no-such-service"} {
		c, err := client.New([]string{addr}, client.Config{LazyDial: true})
		if !errors.Is(err, client.ErrInvalidConfig) {
			t.Errorf("New(%q) = %v, want ErrInvalidConfig", addr, err)
		}
		if err == nil {
			c.Close()
		}
	}
	for _, addr := range []string{"127.0.0.1:1", "localhost:65535", "[::1]:7070", ":7070"} {
		c, err := client.New([]string{addr}, client.Config{LazyDial: true})
		if err != nil {
			t.Errorf("New(%q) = %v", addr, err)
			continue
		}
		c.Close()
	}
}
