package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/israce"
)

// TestPipelineFlushAppend: the answers land after what dst and answers
// held, in order, the empty and the large ones too, and a batch into the
// buffers of the last one reads right. From a cold client, in v1 (the
// test server) and in the multiplexed mode (the tcpez server).
func TestPipelineFlushAppend(t *testing.T) {
	t.Run("v1", func(t *testing.T) { testFlushAppend(t, newServer(t, nil).addr, client.ProtocolV1) })
	t.Run("mux", func(t *testing.T) { testFlushAppend(t, tcpezServer(t), client.ProtocolMux) })
}

func testFlushAppend(t *testing.T, addr string, proto client.Protocol) {
	c := newClient(t, []string{addr}, client.Config{Protocol: proto})
	ctx := ctxFor(t)
	p := c.Pipeline()

	dst, answers, err := p.FlushAppend(ctx, []byte("pre"), [][]byte{[]byte("old")})
	if err != nil || string(dst) != "pre" || len(answers) != 1 {
		t.Fatalf("empty FlushAppend: %q, %q, %v", dst, answers, err)
	}
	reqs := [][]byte{[]byte("a"), nil, bytes.Repeat([]byte("x"), 200<<10), []byte("b")}
	for _, r := range reqs {
		p.Enqueue(r)
	}
	dst, answers, err = p.FlushAppend(ctx, dst, answers)
	if err != nil || len(answers) != 1+len(reqs) || !bytes.HasPrefix(dst, []byte("pre")) || string(answers[0]) != "old" {
		t.Fatalf("FlushAppend: %d answers, %v", len(answers), err)
	}
	for i, r := range reqs {
		if !bytes.Equal(answers[1+i], r) {
			t.Fatalf("answer %d: %d bytes, want %d", i, len(answers[1+i]), len(r))
		}
	}
	for round := range 3 {
		for i := range 64 {
			p.Enqueue(fmt.Appendf(nil, "r%d-%d", round, i))
		}
		dst, answers, err = p.FlushAppend(ctx, dst[:0], answers[:0])
		if err != nil || len(answers) != 64 {
			t.Fatalf("round %d: %d answers, %v", round, len(answers), err)
		}
		for i, a := range answers {
			if want := fmt.Sprintf("r%d-%d", round, i); string(a) != want {
				t.Fatalf("round %d answer %d: %q, want %q", round, i, a, want)
			}
		}
	}
}

// TestPipelineFlushAppendAbandoned: a caller that gives up gets its
// buffers back as it gave them, and the answer that arrives later is not
// written into them.
func TestPipelineFlushAppendAbandoned(t *testing.T) {
	gate := make(chan struct{})
	srv := newServer(t, func(req []byte) []byte {
		if string(req) == "slow" {
			<-gate
		}
		return req
	})
	c := newClient(t, []string{srv.addr}, client.Config{})
	p := c.Pipeline()
	p.Enqueue([]byte("slow"))
	p.Enqueue([]byte("slow"))
	dst := bytes.Repeat([]byte{'='}, 64)[:0]
	answers := make([][]byte, 0, 4)
	ctx, cancel := context.WithCancel(ctxFor(t))
	cancel()
	got, gotAnswers, err := p.FlushAppend(ctx, dst, answers)
	if !errors.Is(err, context.Canceled) || len(got) != 0 || len(gotAnswers) != 0 {
		t.Fatalf("abandoned FlushAppend: %q, %d answers, %v", got, len(gotAnswers), err)
	}
	close(gate)
	// The next call's answer comes after the abandoned batch's: once it
	// is here, the late answers have been read.
	if ans, err := c.Call(ctxFor(t), []byte("next")); err != nil || string(ans) != "next" {
		t.Fatalf("after the abandoned batch: %q, %v", ans, err)
	}
	if whole := dst[:cap(dst)]; !bytes.Equal(whole, bytes.Repeat([]byte{'='}, 64)) {
		t.Fatalf("abandoned buffer written: %q", whole)
	}
}

// TestPipelineFlushAppendAllocs: a Pipeline×64 flushed into the buffers
// of the last batch allocates nothing, client and test server together.
// (The tcpez server may start a goroutine for a request of a batch, which
// can allocate.)
func TestPipelineFlushAppendAllocs(t *testing.T) {
	if israce.Enabled {
		t.Skip("the race detector allocates")
	}
	srv := newServer(t, nil)
	checkPipelineAllocs(t, newClient(t, []string{srv.addr}, client.Config{}))
}

// checkPipelineAllocs fails t unless a warm Pipeline×64 of 4 KiB on c,
// flushed into the buffers of the last batch, allocates nothing.
func checkPipelineAllocs(t *testing.T, c *client.Client) {
	t.Helper()
	req := make([]byte, 4<<10)
	ctx := context.Background()
	p := c.Pipeline()
	var dst []byte
	var answers [][]byte
	batch := func() {
		for range 64 {
			p.Enqueue(req)
		}
		var err error
		dst, answers, err = p.FlushAppend(ctx, dst[:0], answers[:0])
		if err != nil || len(answers) != 64 {
			t.Fatal(len(answers), err)
		}
	}
	for range 100 {
		batch()
	}
	if n := testing.AllocsPerRun(200, batch); n != 0 {
		t.Fatalf("%v allocations per batch, want 0", n)
	}
}

// TestPipelineFlushAppendAbandonedMidBatch: a batch answer is read into
// the caller's buffer, by the caller itself (a lone caller, the batch
// arriving at once) or by the connection's reader (the batch arriving
// after the caller's read grace); when the caller's context ends after
// part of the batch arrived, the rest, read later by the connection, is
// not written into that buffer, and the connection then serves the next
// call.
func TestPipelineFlushAppendAbandonedMidBatch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration // before the batch's first part
	}{{"by the caller", 0}, {"by the reader", 50 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) { abandonMidBatch(t, tc.delay) })
	}
}

func abandonMidBatch(t *testing.T, delay time.Duration) {
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	// The server echoes single frames, and answers a batch in two parts.
	addr := rawServer(t, func(nc net.Conn, stop <-chan struct{}) {
		r := frame.NewReader(nc, frame.Limits{})
		for {
			ps, batch, err := readRequest(r)
			if err != nil {
				return
			}
			if !batch {
				if _, err := nc.Write(frame.AppendFrame(nil, ps[0])); err != nil {
					return
				}
				continue
			}
			time.Sleep(delay)
			first := concat(frame.AppendHeader(nil, frame.BatchHeader(2)), frame.AppendFrame(nil, []byte("first")))
			if _, err := nc.Write(first); err != nil {
				return
			}
			if !giveUpBeforeRest(cancel, stop) {
				return
			}
			if _, err := nc.Write(frame.AppendFrame(nil, []byte("second"))); err != nil {
				return
			}
		}
	})
	// One connection, so that the next call's answer comes after the
	// rest of the batch.
	c := newClient(t, []string{addr}, client.Config{ConnsPerAddr: 1, MaxExtraConns: -1})
	flushAbandoned(t, ctx, c, "next")
}

// giveUpBeforeRest, for a server script that answered part of a batch,
// leaves the caller time to take that part into its buffer (the tests
// hold whether it did or not), cancels the caller's context, and waits a
// little before the rest goes out; false once stop closed.
func giveUpBeforeRest(cancel func(), stop <-chan struct{}) bool {
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case <-time.After(50 * time.Millisecond):
		return true
	case <-stop:
		return false
	}
}

// flushAbandoned sends a batch of two with FlushAppend, which ctx's end
// must fail, and checks that its buffer is not written after it returned:
// not by the time the next call on c, answered after the batch, gets
// wantNext.
func flushAbandoned(t *testing.T, ctx context.Context, c *client.Client, wantNext string) {
	t.Helper()
	p := c.Pipeline()
	p.Enqueue([]byte("a"))
	p.Enqueue([]byte("b"))
	dst := bytes.Repeat([]byte{'='}, 64)[:0]
	got, answers, err := p.FlushAppend(ctx, dst, make([][]byte, 0, 2))
	if !errors.Is(err, context.Canceled) || len(got) != 0 || len(answers) != 0 {
		t.Fatalf("FlushAppend abandoned mid-batch: %q, %d answers, %v", got, len(answers), err)
	}
	// dst may hold what was read before the caller gave up (append may
	// write past len), but nothing after.
	atReturn := bytes.Clone(dst[:cap(dst)])
	if ans, err := c.Call(ctxFor(t), []byte("next")); err != nil || string(ans) != wantNext {
		t.Fatalf("after the abandoned batch: %q, %v", ans, err)
	}
	if whole := dst[:cap(dst)]; !bytes.Equal(whole, atReturn) {
		t.Fatalf("abandoned buffer written after FlushAppend returned: %q, was %q", whole, atReturn)
	}
}

// TestFlushAppendCancelledWhileReadingOwnAnswers: a lone caller reads its
// batch's answers itself. Its context is cancelled after the first answer,
// and the rest come at once: the caller used to read them all (answers
// that keep coming within readGrace never let its read run out) and
// succeed. It now stops at the next answer (TestOwnBatchReadStopsOnceCtxEnded)
// and returns ctx's error, which Flush also does when the reader goroutine
// read the batch and completed it as the caller woke to its cancel.
func TestFlushAppendCancelledWhileReadingOwnAnswers(t *testing.T) {
	const n = 8
	for _, tc := range []struct {
		name  string
		proto client.Protocol
		// serve answers the first member, calls rest, then answers the
		// others, in one batch of n.
		serve func(nc net.Conn, rest func()) bool
	}{
		{"v1", client.ProtocolV1, func(nc net.Conn, rest func()) bool {
			ps, batch, err := readRequest(frame.NewReader(nc, frame.Limits{}))
			if err != nil || !batch || len(ps) != n {
				return false
			}
			first := concat(frame.AppendHeader(nil, frame.BatchHeader(n)), frame.AppendFrame(nil, ps[0]))
			if _, err := nc.Write(first); err != nil {
				return false
			}
			rest()
			var out []byte
			for _, p := range ps[1:] {
				out = frame.AppendFrame(out, p)
			}
			_, err = nc.Write(out)
			return err == nil
		}},
		{"mux", client.ProtocolMux, func(nc net.Conn, rest func()) bool {
			r, ok := greetMux(nc, frame.AppendAck(nil, batchAck))
			if !ok {
				return false
			}
			reqs, ok := readMuxN(r, n)
			if !ok {
				return false
			}
			if _, err := nc.Write(answerTo(reqs[0])); err != nil {
				return false
			}
			rest()
			var out []byte
			for _, f := range reqs[1:] {
				out = append(out, answerTo(f)...)
			}
			_, err := nc.Write(out)
			return err == nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctxFor(t))
			defer cancel()
			addr := rawServer(t, func(nc net.Conn, stop <-chan struct{}) {
				// Cancelled before the rest is written: every answer
				// after the first arrives after the caller gave up.
				if tc.serve(nc, cancel) {
					<-stop
				}
			})
			c := newClient(t, []string{addr}, client.Config{Protocol: tc.proto, MaxRetries: -1})
			p := c.Pipeline()
			for i := range n {
				p.Enqueue(fmt.Appendf(nil, "q%d", i))
			}
			_, answers, err := p.FlushAppend(ctx, nil, nil)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("FlushAppend cancelled after its first answer: %d answers, %v; want context.Canceled", len(answers), err)
			}
		})
	}
}
