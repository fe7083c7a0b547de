package server_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// The tests here hold handlers on channels and assert what happened while
// they were held: every connection is cold (its first request is part of
// the scenario), and nothing is timed.

// gate holds the handlers of a test until it is opened, at the latest when
// the test ends, so that no handler outlives its test.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// wait blocks until the gate opens, or safety passes.
func (g *gate) wait() bool {
	select {
	case <-g.ch:
		return true
	case <-time.After(safety):
		return false
	}
}

// TestSlowThenFastPipelinedStartAtOnce: the first request of a connection
// is slow and five fast ones follow in the same write. The fast handlers
// all start, and their answers are ready, while the slow one is still held;
// answers then leave in request order.
func TestSlowThenFastPipelinedStartAtOnce(t *testing.T) {
	slow := newGate(t)
	started := make(chan string, 8)
	h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "slow" && !slow.wait() {
			return []byte("timeout"), nil
		}
		started <- string(req)
		return req, nil
	}
	_, addr := startServer(t, h, server.Config{})
	c := dial(t, addr)
	var req []byte
	req = frame.AppendFrame(req, []byte("slow"))
	for _, p := range []string{"f1", "f2", "f3", "f4", "f5"} {
		req = frame.AppendFrame(req, []byte(p))
	}
	write(t, c, req)
	for i := range 5 {
		select {
		case <-started:
		case <-time.After(safety):
			t.Fatalf("only %d fast handlers started while the slow one was held", i)
		}
	}
	slow.open()
	if got := readN(t, c, len(req)); !bytes.Equal(got, req) {
		t.Fatalf("answers %q, want %q", got, req)
	}
}

// meeting lets n handlers finish only once all n are running at once.
func meeting(n int) func() bool {
	var wg sync.WaitGroup
	wg.Add(n)
	return func() bool {
		wg.Done()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			return true
		case <-time.After(safety):
			return false
		}
	}
}

// TestBatchMembersRunConcurrently: a fast request, then a batch of four on
// a cold connection. The members can only finish if all four run at once.
func TestBatchMembersRunConcurrently(t *testing.T) {
	meet := meeting(4)
	h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) != "fast" && !meet() {
			return []byte("timeout"), nil
		}
		return req, nil
	}
	_, addr := startServer(t, h, server.Config{})
	c := dial(t, addr)
	req := frame.AppendFrame(nil, []byte("fast"))
	req = frame.AppendBatch(req, []byte("m1"), []byte("m2"), []byte("m3"), []byte("m4"))
	write(t, c, req)
	if got := readN(t, c, len(req)); !bytes.Equal(got, req) {
		t.Fatalf("answers %q, want %q: batch members did not run concurrently", got, req)
	}
}

// TestLargeRequestsRunConcurrently: four 1 MiB requests pipelined on a
// cold connection, whose handlers can only finish if all run at once. A
// frame larger than the read buffer is read in many reads, which used to
// keep it on the reading goroutine.
func TestLargeRequestsRunConcurrently(t *testing.T) {
	const n, size = 4, 1 << 20
	meet := meeting(n)
	h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if !meet() {
			return []byte("timeout"), nil
		}
		return req[:1], nil
	}
	_, addr := startServer(t, h, server.Config{})
	c := dial(t, addr)
	var req, want []byte
	for i := range n {
		p := bytes.Repeat([]byte{byte('a' + i)}, size)
		req = frame.AppendFrame(req, p)
		want = frame.AppendFrame(want, p[:1])
	}
	go func() { _, _ = c.Write(req) }()
	if got := readN(t, c, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("answers %q, want %q", got, want)
	}
}

// TestHandlerMayWaitForLaterRequest: a long poll waits for a publish sent
// after it on the same connection, as the kvcache example's Listen does.
func TestHandlerMayWaitForLaterRequest(t *testing.T) {
	published := make(chan struct{})
	h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		switch string(req) {
		case "listen":
			select {
			case <-published:
				return []byte("message"), nil
			case <-time.After(safety):
				return []byte("nothing"), nil
			}
		case "publish":
			close(published)
		}
		return req, nil
	}
	_, addr := startServer(t, h, server.Config{})
	c := dial(t, addr)
	r := frame.NewReader(c, frame.Limits{})
	write(t, c, frame.AppendFrame(nil, []byte("listen")))
	write(t, c, frame.AppendFrame(nil, []byte("publish")))
	if got := readFrames(t, r, 2); got[0] != "message" || got[1] != "publish" {
		t.Fatalf("answers %q, want [message publish]", got)
	}
}

// TestAnswerNotHeldByPartialHeader: a request followed by two bytes of the
// next header, then nothing. The first answer arrives while the header is
// still incomplete (ReadTimeout is an hour, far past the test's safety
// deadline); so do a batch header and the answers of its members that
// arrived whole.
func TestAnswerNotHeldByPartialHeader(t *testing.T) {
	_, addr := startServer(t, echo, server.Config{ReadTimeout: time.Hour})
	c := dial(t, addr)
	r := frame.NewReader(c, frame.Limits{})
	next := frame.AppendFrame(nil, []byte("next"))
	write(t, c, append(frame.AppendFrame(nil, []byte("PING")), next[:2]...))
	if got := readFrames(t, r, 1); got[0] != "PING" {
		t.Fatalf("answer %q, want PING", got)
	}
	write(t, c, next[2:])
	if got := readFrames(t, r, 1); got[0] != "next" {
		t.Fatalf("answer %q, want next", got)
	}

	batch := frame.AppendBatch(nil, []byte("one"), []byte("two"))
	cut := len(batch) - 5 // inside the second member's header
	write(t, c, batch[:cut])
	if h, err := r.ReadHeader(); err != nil || h.Count() != 2 {
		t.Fatalf("batch header %d, %v", h, err)
	}
	if got := readFrames(t, r, 1); got[0] != "one" {
		t.Fatalf("first member's answer %q", got)
	}
	write(t, c, batch[cut:])
	if got := readFrames(t, r, 1); got[0] != "two" {
		t.Fatalf("second member's answer %q", got)
	}
}

// TestAnswerNotHeldBySlowNextWithMaxInFlight1: with MaxInFlight 1 and no
// HandlerTimeout, a fast request and a slow one arrive in one write. The
// fast answer arrives while the slow handler is still held, as it does with
// MaxInFlight 2: a slow handler delays the answers after its own, not the
// ones before. So does a batch's header and its fast first member's answer.
func TestAnswerNotHeldBySlowNextWithMaxInFlight1(t *testing.T) {
	for _, tc := range []struct {
		name  string
		req   []byte
		batch bool
	}{
		{"pipelined", frame.AppendFrame(frame.AppendFrame(nil, []byte("fast")), []byte("slow")), false},
		{"batch", frame.AppendBatch(nil, []byte("fast"), []byte("slow")), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slow := newGate(t)
			var returned atomic.Bool
			h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
				if string(req) == "slow" {
					slow.wait()
					returned.Store(true)
				}
				return req, nil
			}
			_, addr := startServer(t, h, server.Config{MaxInFlight: 1})
			c := dial(t, addr)
			r := frame.NewReader(c, frame.Limits{})
			write(t, c, tc.req)
			if tc.batch {
				if h, err := r.ReadHeader(); err != nil || h.Count() != 2 {
					t.Fatalf("batch header %d, %v", h, err)
				}
			}
			if got := readFrames(t, r, 1); got[0] != "fast" {
				t.Fatalf("answer %q, want fast", got)
			}
			if returned.Load() {
				t.Fatal("the fast answer arrived only once the slow handler returned")
			}
			slow.open()
			if got := readFrames(t, r, 1); got[0] != "slow" {
				t.Fatalf("answer %q, want slow", got)
			}
		})
	}
}

// TestBatchHeaderGoesWithItsFirstAnswer: a batch header read before its
// members waits for the first member's answer and goes out in the same
// write, not in a write of its own. Over net.Pipe each read returns one of
// the server's writes, and a write blocks until it is read, so a header
// written alone would be what the client reads first.
func TestBatchHeaderGoesWithItsFirstAnswer(t *testing.T) {
	client, sc := net.Pipe()
	defer client.Close()
	srv := server.New(server.HandlerFunc(echo), server.Config{Logger: quietLogger()})
	res := make(chan error, 1)
	go func() { res <- srv.ServeConn(context.Background(), sc) }()
	_ = client.SetDeadline(time.Now().Add(safety))
	buf := make([]byte, 1<<10)
	nextWrite := func() []byte {
		t.Helper()
		n, err := client.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	// A first exchange, so that the batch header arrives on a connection
	// with nothing left to answer.
	go func() { _, _ = client.Write(frame.AppendFrame(nil, []byte("A"))) }()
	if got, want := nextWrite(), frame.AppendFrame(nil, []byte("A")); !bytes.Equal(got, want) {
		t.Fatalf("first answer % x, want % x", got, want)
	}
	go func() {
		// The header, then, once the server has read it, the members.
		_, _ = client.Write(frame.AppendHeader(nil, frame.BatchHeader(2)))
		_, _ = client.Write(frame.AppendFrame(frame.AppendFrame(nil, []byte("one")), []byte("two")))
	}()
	want := frame.AppendFrame(frame.AppendHeader(nil, frame.BatchHeader(2)), []byte("one"))
	if got := nextWrite(); !bytes.HasPrefix(got, want) {
		t.Fatalf("the batch's first write % x, want the header and the first answer, % x…", got, want)
	}
	client.Close()
	if err := result(t, res); err != nil {
		t.Fatalf("ServeConn = %v", err)
	}
}

// TestHandlerTimeoutAnswersInPlace: with HandlerTimeout, a handler that
// ignores its context no longer holds up its connection. Its request is
// answered, in its place, as EncodeError says for ErrHandlerTimeout, the
// request after it is answered too, all while the handler is still held;
// its late result is dropped. A handler that heeds its context sees it
// cancelled.
func TestHandlerTimeoutAnswersInPlace(t *testing.T) {
	stuck := newGate(t)
	cancelled := make(chan error, 1)
	h := func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
		switch string(req) {
		case "stuck":
			stuck.wait()
			return []byte("late"), nil
		case "heed":
			<-ctx.Done()
			cancelled <- context.Cause(ctx)
			return nil, ctx.Err()
		}
		return req, nil
	}
	rec := stats.NewMemory()
	encode := func(_ context.Context, err error, _ *span.Span) ([]byte, bool) {
		if errors.Is(err, server.ErrHandlerTimeout) && errors.Is(err, context.DeadlineExceeded) {
			return []byte("timed out"), true
		}
		return []byte("error: " + err.Error()), true
	}
	_, addr := startServer(t, h, server.Config{HandlerTimeout: 20 * time.Millisecond, EncodeError: encode, Stats: rec})
	c := dial(t, addr)
	r := frame.NewReader(c, frame.Limits{})
	var req []byte
	for _, p := range []string{"stuck", "after", "heed", "last"} {
		req = frame.AppendFrame(req, []byte(p))
	}
	write(t, c, req)
	got := readFrames(t, r, 4)
	if got[0] != "timed out" || got[1] != "after" || got[2] != "timed out" || got[3] != "last" {
		t.Fatalf("answers %q, want [timed out, after, timed out, last]", got)
	}
	if cause := <-cancelled; cause != server.ErrHandlerTimeout {
		t.Fatalf("the handler's context ended with cause %v, want ErrHandlerTimeout", cause)
	}
	stuck.open()
	// The stuck handler's late answer must not reach the wire.
	write(t, c, frame.AppendFrame(nil, []byte("again")))
	if got := readFrames(t, r, 1); got[0] != "again" {
		t.Fatalf("answer after the late result %q, want again", got)
	}
	if n := rec.Counter(server.StatErrHandlerTimeout); n != 2 {
		t.Fatalf("errors.handler_timeout %d, want 2", n)
	}
}

// TestHandlerTimeoutClosesByDefault: without EncodeError, a request whose
// handler times out closes the connection after the answers before it.
func TestHandlerTimeoutClosesByDefault(t *testing.T) {
	_, addr := startServer(t, echoUnlessStuck(newGate(t)), server.Config{HandlerTimeout: 20 * time.Millisecond, Logger: quietLogger()})
	expectFirstThenClosed(t, addr)
}

// echoUnlessStuck echoes every request but "stuck", whose handler waits
// for stuck to open, ignoring its context.
func echoUnlessStuck(stuck *gate) server.HandlerFunc {
	return func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "stuck" {
			stuck.wait()
		}
		return req, nil
	}
}

// expectFirstThenClosed sends "first" then "stuck" to addr, and expects
// the answer to first, then the connection closed by the timeout of
// stuck's handler.
func expectFirstThenClosed(t *testing.T, addr string) {
	t.Helper()
	c := dial(t, addr)
	r := frame.NewReader(c, frame.Limits{})
	write(t, c, frame.AppendFrame(frame.AppendFrame(nil, []byte("first")), []byte("stuck")))
	if got := readFrames(t, r, 1); got[0] != "first" {
		t.Fatalf("answer %q, want first", got)
	}
	expectClosed(t, c)
}

// TestHandlerTimeoutWithMaxInFlight1: a connection of one request at a
// time is bounded by HandlerTimeout as any other. A handler that ignores
// its context is answered in its place as EncodeError says, with its
// context cancelled, and the request after it runs and is answered while
// it is still held; without EncodeError the connection closes after the
// answers before it. Handlers that return still run one at a time.
func TestHandlerTimeoutWithMaxInFlight1(t *testing.T) {
	t.Run("EncodeError", func(t *testing.T) {
		stuck := newGate(t)
		ctxs := make(chan context.Context, 1)
		h := func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
			if string(req) == "stuck" {
				ctxs <- ctx
				stuck.wait()
				return []byte("late"), nil
			}
			return req, nil
		}
		rec := stats.NewMemory()
		encode := func(_ context.Context, err error, _ *span.Span) ([]byte, bool) {
			if errors.Is(err, server.ErrHandlerTimeout) {
				return []byte("timed out"), true
			}
			return []byte("error: " + err.Error()), true
		}
		_, addr := startServer(t, h, server.Config{MaxInFlight: 1, HandlerTimeout: 20 * time.Millisecond, EncodeError: encode, Stats: rec})
		c := dial(t, addr)
		r := frame.NewReader(c, frame.Limits{})
		write(t, c, frame.AppendFrame(frame.AppendFrame(nil, []byte("stuck")), []byte("after")))
		if got := readFrames(t, r, 2); got[0] != "timed out" || got[1] != "after" {
			t.Fatalf("answers %q, want [timed out, after]", got)
		}
		if cause := context.Cause(<-ctxs); cause != server.ErrHandlerTimeout {
			t.Fatalf("the handler's context ended with cause %v, want ErrHandlerTimeout", cause)
		}
		if n := rec.Counter(server.StatErrHandlerTimeout); n != 1 {
			t.Fatalf("errors.handler_timeout %d, want 1", n)
		}
		stuck.open()
		// The stuck handler's late answer must not reach the wire.
		write(t, c, frame.AppendFrame(nil, []byte("again")))
		if got := readFrames(t, r, 1); got[0] != "again" {
			t.Fatalf("answer after the late result %q, want again", got)
		}
	})
	t.Run("closes by default", func(t *testing.T) {
		rec := stats.NewMemory()
		_, addr := startServer(t, echoUnlessStuck(newGate(t)), server.Config{MaxInFlight: 1, HandlerTimeout: 20 * time.Millisecond, Stats: rec, Logger: quietLogger()})
		expectFirstThenClosed(t, addr)
		if n := rec.Counter(server.StatErrHandlerTimeout); n != 1 {
			t.Fatalf("errors.handler_timeout %d, want 1", n)
		}
	})
	t.Run("one at a time", func(t *testing.T) {
		held := newGate(t)
		var mu sync.Mutex
		running, most := 0, 0
		h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			if string(req) == "held" {
				held.wait()
			}
			mu.Lock()
			running--
			mu.Unlock()
			return req, nil
		}
		_, addr := startServer(t, h, server.Config{MaxInFlight: 1, HandlerTimeout: safety})
		c := dial(t, addr)
		r := frame.NewReader(c, frame.Limits{})
		write(t, c, frame.AppendFrame(frame.AppendFrame(nil, []byte("held")), []byte("next")))
		// Time for the watcher to pass the reading on from the held
		// handler many times over (it looks every 500 µs), and for the
		// new reader to start "next" if it wrongly could.
		time.Sleep(20 * time.Millisecond)
		held.open()
		if got := readFrames(t, r, 2); got[0] != "held" || got[1] != "next" {
			t.Fatalf("answers %q, want [held, next]", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if most != 1 {
			t.Fatalf("%d handlers ran at once with MaxInFlight 1", most)
		}
	})
}

// TestServeConnWaitsForTheLastReader: over ServeConn, a slow first request
// makes the reading pass to another goroutine; ServeConn still returns
// only when the connection ends, with why it ended.
func TestServeConnWaitsForTheLastReader(t *testing.T) {
	slow := newGate(t)
	fastDone := make(chan struct{})
	h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "slow" {
			slow.wait()
		} else {
			close(fastDone)
		}
		return req, nil
	}
	client, sc := net.Pipe()
	defer client.Close()
	srv := server.New(server.HandlerFunc(h), server.Config{Logger: quietLogger()})
	res := make(chan error, 1)
	go func() { res <- srv.ServeConn(context.Background(), sc) }()
	req := frame.AppendFrame(frame.AppendFrame(nil, []byte("slow")), []byte("fast"))
	go func() { _, _ = client.Write(req) }()
	select {
	case <-fastDone:
	case <-time.After(safety):
		t.Fatal("the fast request did not run while the slow one was held")
	}
	slow.open()
	if got := readN(t, client, len(req)); !bytes.Equal(got, req) {
		t.Fatalf("answers %q", got)
	}
	select {
	case err := <-res:
		t.Fatalf("ServeConn returned %v while the connection was open", err)
	default:
	}
	client.Close()
	if err := result(t, res); err != nil {
		t.Fatalf("ServeConn after the peer closed = %v, want nil", err)
	}
}
