package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/spec"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

func specExamples(t *testing.T) []spec.Example {
	t.Helper()
	examples, err := spec.Load(spec.Path())
	if err != nil {
		t.Fatal(err)
	}
	return examples
}

// TestSpecExamples sends every request of docs/PROTOCOL.md in one write and
// again one byte per write, and requires the documented answer exactly.
func TestSpecExamples(t *testing.T) {
	_, addr := startServer(t, echo, server.Config{})
	for _, ex := range specExamples(t) {
		if ex.Request == nil {
			continue
		}
		t.Run(ex.Name, func(t *testing.T) {
			c := dial(t, addr)
			write(t, c, ex.Request)
			if got := readN(t, c, len(ex.Answer)); !bytes.Equal(got, ex.Answer) {
				t.Fatalf("one write: got % x, want % x", got, ex.Answer)
			}
			c.SetNoDelay(true)
			for _, b := range ex.Request {
				write(t, c, []byte{b})
			}
			if got := readN(t, c, len(ex.Answer)); !bytes.Equal(got, ex.Answer) {
				t.Fatalf("byte by byte: got % x, want % x", got, ex.Answer)
			}
		})
	}
}

// TestBatchesMixedWithFrames also runs with MaxInFlight 1 and 2, where a
// batch header, which holds a slot until its first answer, leaves no room
// or little for its members.
func TestBatchesMixedWithFrames(t *testing.T) {
	for _, inFlight := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("MaxInFlight=%d", inFlight), func(t *testing.T) {
			_, addr := startServer(t, echo, server.Config{MaxInFlight: inFlight})
			c := dial(t, addr)
			var req []byte
			req = frame.AppendFrame(req, []byte("a"))
			req = frame.AppendBatch(req, []byte("b1"), nil, []byte("b3"))
			req = frame.AppendFrame(req, nil)
			req = frame.AppendBatch(req, []byte("c1"))
			req = frame.AppendBatch(req, []byte("e1"), []byte("e2"))
			req = frame.AppendFrame(req, []byte("d"))
			write(t, c, req)
			// An echo server answers with the same bytes: batches as batches.
			if got := readN(t, c, len(req)); !bytes.Equal(got, req) {
				t.Fatalf("got % x\nwant % x", got, req)
			}
		})
	}
}

// TestLargeFrames sends large frames of changing sizes and contents down
// one connection: buffers the server reuses among large frames must never
// show through in an answer.
func TestLargeFrames(t *testing.T) {
	_, addr := startServer(t, echo, server.Config{})
	c := dial(t, addr)
	sizes := []int{1 << 20, 700 << 10, 1<<20 + 1, 200 << 10, 1 << 20, 3 << 20}
	frames := make([][]byte, len(sizes))
	for k, n := range sizes {
		frames[k] = make([]byte, n)
		for i := range frames[k] {
			frames[k][i] = byte(i*7 + k)
		}
	}
	r := frame.NewReader(c, frame.Limits{})
	go func() {
		w := frame.NewWriter(c)
		for _, f := range frames {
			_ = w.WriteFrame(f)
			_ = w.WriteFrame(nil)
		}
		_ = w.Flush()
	}()
	for k, want := range frames {
		got, err := r.ReadFrame(nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("answer %d (%d bytes): %d bytes, %v (equal %v)", k, len(want), len(got), err, bytes.Equal(got, want))
		}
		if got, err := r.ReadFrame(nil); err != nil || len(got) != 0 {
			t.Fatalf("empty answer %d: %q, %v", k, got, err)
		}
	}
}

func TestThousandConnections(t *testing.T) {
	_, addr := startServer(t, echo, server.Config{})
	conns := make([]io.ReadWriter, 1000)
	for i := range conns {
		conns[i] = dial(t, addr)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	for i, c := range conns {
		wg.Go(func() {
			msg := []byte("conn-" + strconv.Itoa(i))
			if _, err := c.Write(frame.AppendFrame(nil, msg)); err != nil {
				errs <- err
				return
			}
			got, err := frame.NewReader(c, frame.Limits{}).ReadFrame(nil)
			if err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("conn %d: %q, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestHalfClose: a client that sends everything and shuts its write side
// gets every answer, then the server closes.
func TestHalfClose(t *testing.T) {
	slow := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		time.Sleep(time.Millisecond)
		return req, nil
	}
	_, addr := startServer(t, slow, server.Config{})
	c := dial(t, addr)
	var req []byte
	for i := range 50 {
		req = frame.AppendFrame(req, []byte(strconv.Itoa(i)))
	}
	write(t, c, req)
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("after %d bytes: %v", len(got), err)
	}
	if !bytes.Equal(got, req) {
		t.Fatalf("got %d bytes of answers, want %d", len(got), len(req))
	}
}

// TestDeepPipeline writes 10,000 requests before reading any answer; the
// server reads ahead only MaxInFlight and pushes back, and every answer
// still arrives in order.
func TestDeepPipeline(t *testing.T) {
	_, addr := startServer(t, echo, server.Config{MaxInFlight: 16})
	c := dial(t, addr)
	const n = 10_000
	written := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		w := frame.NewWriter(c)
		var err error
		for i := range n {
			if i == n/2 {
				close(started) // the reader starts only after half is written
			}
			if err = w.WriteFrame([]byte(strconv.Itoa(i))); err != nil {
				break
			}
		}
		if err == nil {
			err = w.Flush()
		}
		written <- err
	}()
	<-started
	r := frame.NewReader(c, frame.Limits{})
	for i := range n {
		p, err := r.ReadFrame(nil)
		if err != nil || string(p) != strconv.Itoa(i) {
			t.Fatalf("answer %d: %q, %v", i, p, err)
		}
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
}

// TestAnswersInOrderWithConcurrentHandlers gives every request a random
// delay; the answers still leave in request order.
func TestAnswersInOrderWithConcurrentHandlers(t *testing.T) {
	jitter := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		return req, nil
	}
	_, addr := startServer(t, jitter, server.Config{})
	c := dial(t, addr)
	var req []byte
	var want []string
	for i := range 300 {
		p := strconv.Itoa(i)
		want = append(want, p)
		if i%7 == 3 {
			req = frame.AppendBatch(req, []byte(p+"a"), []byte(p+"b"))
			want = append(want[:len(want)-1], p+"a", p+"b")
			continue
		}
		req = frame.AppendFrame(req, []byte(p))
	}
	write(t, c, req)
	if got := readN(t, c, len(req)); !bytes.Equal(got, req) {
		t.Fatalf("answers out of order or wrong")
	}
}

// TestPipelinedRequestsRunConcurrently: requests that wait for each other
// can only all finish if the server runs them at the same time.
func TestPipelinedRequestsRunConcurrently(t *testing.T) {
	const n = 8
	var barrier sync.WaitGroup
	barrier.Add(n)
	meet := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "warm" {
			time.Sleep(time.Millisecond) // mark this connection's handlers slow
			return req, nil
		}
		barrier.Done()
		done := make(chan struct{})
		go func() { barrier.Wait(); close(done) }()
		select {
		case <-done:
			return req, nil
		case <-time.After(safety):
			return []byte("timeout"), nil
		}
	}
	_, addr := startServer(t, meet, server.Config{})
	c := dial(t, addr)
	write(t, c, frame.AppendFrame(nil, []byte("warm")))
	readN(t, c, 8)
	var req []byte
	for i := range n {
		req = frame.AppendFrame(req, []byte{'0' + byte(i)})
	}
	write(t, c, req)
	if got := readN(t, c, len(req)); !bytes.Equal(got, req) {
		t.Fatalf("got % x: handlers did not run concurrently", got)
	}
}

// TestMaxInFlightBoundsReadAhead: with stuck handlers, the server reads no
// more than MaxInFlight requests of a connection.
func TestMaxInFlightBoundsReadAhead(t *testing.T) {
	var (
		mu      sync.Mutex
		started int
	)
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	hold := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "warm" {
			time.Sleep(time.Millisecond) // mark this connection's handlers slow
			return req, nil
		}
		mu.Lock()
		started++
		mu.Unlock()
		<-release
		return req, nil
	}
	_, addr := startServer(t, hold, server.Config{MaxInFlight: 4})
	c := dial(t, addr)
	write(t, c, frame.AppendFrame(nil, []byte("warm")))
	readN(t, c, 8)
	var req []byte
	for i := range 20 {
		req = frame.AppendFrame(req, []byte{byte(i)})
	}
	write(t, c, req)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return started
	}
	waitFor(t, func() bool { return count() >= 4 }, "4 handlers to start")
	// Give the server every chance to over-read, then check it did not.
	time.Sleep(50 * time.Millisecond)
	n := count()
	releaseOnce.Do(func() { close(release) })
	if n != 4 {
		t.Fatalf("%d handlers started with MaxInFlight 4", n)
	}
	if got := readN(t, c, len(req)); !bytes.Equal(got, req) {
		t.Fatal("wrong answers after release")
	}
}

// TestRequestTimeExcludesItsArrival: a request whose bytes arrive in two
// parts, a pause apart, is timed from when it has arrived whole. Timed from
// its first bytes, the pause would count as handler time: a fast handler
// would be logged and counted as slow, and would make the connection hand
// its requests to goroutines as if handlers were slow.
func TestRequestTimeExcludesItsArrival(t *testing.T) {
	const pause = 100 * time.Millisecond
	rec := stats.NewMemory()
	_, addr := startServer(t, echo, server.Config{Stats: rec})
	c := dial(t, addr)
	req := frame.AppendFrame(nil, []byte("split in two"))
	write(t, c, req[:6])
	time.Sleep(pause) // the scenario: the rest comes later
	write(t, c, req[6:])
	if got := readN(t, c, len(req)); !bytes.Equal(got, req) {
		t.Fatalf("got %q", got)
	}
	c.Close()
	timings := rec.Timings("request")
	if len(timings) != 1 || timings[0] >= pause {
		t.Fatalf("request timings %v, want one well under the %v pause", timings, pause)
	}
}
