package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/israce"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// batchMuxServer is a hand-written mux server that collects a batch's n
// requests and answers them with the writes answer returns for them, in
// the order the requests came; each write goes out after the one before
// it, late ones after pause.
func batchMuxServer(t *testing.T, n int, pause time.Duration, answer func(reqs []frame.MuxFrame) [][]byte) string {
	t.Helper()
	return rawServer(t, func(nc net.Conn, _ <-chan struct{}) {
		r, ok := greetMux(nc, frame.AppendAck(nil, batchAck))
		if !ok {
			return
		}
		var reqs []frame.MuxFrame
		for {
			f, ok := readMux(r)
			if !ok {
				return
			}
			if reqs = append(reqs, f); len(reqs) < n {
				continue
			}
			for i, w := range answer(reqs) {
				if i > 0 {
					time.Sleep(pause)
				}
				if _, err := nc.Write(w); err != nil {
					return
				}
			}
			reqs = reqs[:0]
		}
	})
}

// batchAck is what the hand-written mux servers here acknowledge.
var batchAck = frame.Ack{Version: frame.MuxVersion, MaxInFlight: 128, MaxFrameSize: 1 << 20}

// readMuxN reads the next n mux frames a client sent; false once the
// connection ended or broke the protocol.
func readMuxN(r *frame.Reader, n int) ([]frame.MuxFrame, bool) {
	reqs := make([]frame.MuxFrame, 0, n)
	for len(reqs) < n {
		f, ok := readMux(r)
		if !ok {
			return nil, false
		}
		reqs = append(reqs, f)
	}
	return reqs, true
}

func answerTo(f frame.MuxFrame) []byte {
	return frame.AppendMux(nil, frame.KindAnswer, f.ID, answerOf(f.Body))
}

// flushMux sends three batches of n requests with FlushAppend on a fresh
// mux client, each into the buffers of the last, and checks that the
// answers come back in request order.
func flushMux(t *testing.T, addr string, n int) {
	t.Helper()
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux})
	flushRounds(t, c, n)
}

func flushRounds(t *testing.T, c *client.Client, n int) {
	t.Helper()
	p := c.Pipeline()
	var dst []byte
	var answers [][]byte
	for round := range 3 {
		var err error
		if dst, answers, err = flushChecked(ctxFor(t), p, round, n, dst[:0], answers[:0]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMuxPipelineAnswersOutOfOrder: in the multiplexed mode a batch's
// answers may come in any order; FlushAppend returns them in request
// order, whether the caller reads them all itself (at once, reversed) or
// the connection's reader goroutine reads the ones that come after the
// caller's read grace.
func TestMuxPipelineAnswersOutOfOrder(t *testing.T) {
	const n = 8
	t.Run("reversed", func(t *testing.T) {
		addr := batchMuxServer(t, n, 0, func(reqs []frame.MuxFrame) [][]byte {
			var out []byte
			for i := len(reqs) - 1; i >= 0; i-- {
				out = append(out, answerTo(reqs[i])...)
			}
			return [][]byte{out}
		})
		flushMux(t, addr, n)
	})
	t.Run("half late", func(t *testing.T) {
		// The odd members at once, the even ones after the caller's read
		// grace (10 ms): the reader goroutine reads those.
		addr := batchMuxServer(t, n, 50*time.Millisecond, func(reqs []frame.MuxFrame) [][]byte {
			var odd, even []byte
			for i, r := range reqs {
				if i%2 == 1 {
					odd = append(odd, answerTo(r)...)
				} else {
					even = append(even, answerTo(r)...)
				}
			}
			return [][]byte{odd, even}
		})
		flushMux(t, addr, n)
	})
	t.Run("late, in order then reversed", func(t *testing.T) {
		// All after the caller's read grace, so that the reader goroutine
		// reads them: the first half in request order, which it puts
		// straight into the caller's buffer, the rest reversed, which wait
		// in the arena.
		addr := batchMuxServer(t, n, 50*time.Millisecond, func(reqs []frame.MuxFrame) [][]byte {
			var out []byte
			for _, r := range reqs[:n/2] {
				out = append(out, answerTo(r)...)
			}
			for i := n - 1; i >= n/2; i-- {
				out = append(out, answerTo(reqs[i])...)
			}
			return [][]byte{nil, out}
		})
		flushMux(t, addr, n)
	})
}

// TestMuxPipelineFlushAppendAbandonedMidBatch is
// TestPipelineFlushAppendAbandonedMidBatch in the multiplexed mode: the
// reader goroutine puts the batch's first answer into the caller's buffer
// (it comes in request order after the caller's read grace), the caller
// gives up, and the second answer, which comes after that, is not written
// into the buffer; the connection then serves the next call.
func TestMuxPipelineFlushAppendAbandonedMidBatch(t *testing.T) {
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	addr := rawServer(t, func(nc net.Conn, stop <-chan struct{}) {
		r, ok := greetMux(nc, frame.AppendAck(nil, batchAck))
		if !ok {
			return
		}
		reqs, ok := readMuxN(r, 2)
		if !ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
		if _, err := nc.Write(answerTo(reqs[0])); err != nil {
			return
		}
		if !giveUpBeforeRest(cancel, stop) {
			return
		}
		if _, err := nc.Write(answerTo(reqs[1])); err != nil {
			return
		}
		for { // the caller's cancels, then the next call
			f, ok := readMux(r)
			if !ok {
				return
			}
			if f.Kind != frame.KindRequest {
				continue
			}
			if _, err := nc.Write(answerTo(f)); err != nil {
				return
			}
		}
	})
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux, ConnsPerAddr: 1, MaxExtraConns: -1})
	flushAbandoned(t, ctx, c, "ans:next")
}

// TestMuxPipelineMemberError: an error frame for one member of a batch
// fails the batch with that ServerError, after some answers were read by
// the caller, and the connection goes on serving.
func TestMuxPipelineMemberError(t *testing.T) {
	const n = 6
	addr := batchMuxServer(t, n, 0, func(reqs []frame.MuxFrame) [][]byte {
		var out []byte
		for i, r := range reqs {
			if i == 3 && string(r.Body) == "q3" {
				out = frame.AppendMuxError(out, frame.KindError, r.ID, frame.CodeHandler, "no q3")
				continue
			}
			out = append(out, answerTo(r)...)
		}
		return [][]byte{out}
	})
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux, MaxRetries: -1})
	p := c.Pipeline()
	for i := range n {
		p.Enqueue(fmt.Appendf(nil, "q%d", i))
	}
	dst, answers, err := p.FlushAppend(ctxFor(t), []byte("pre"), nil)
	var se *client.ServerError
	if !errors.As(err, &se) || se.Message != "no q3" || string(dst) != "pre" || len(answers) != 0 {
		t.Fatalf("FlushAppend: %q, %d answers, %v; want the member's ServerError and the buffers as given", dst, len(answers), err)
	}
	for i := range n {
		p.Enqueue(fmt.Appendf(nil, "r%d", i))
	}
	_, answers, err = p.FlushAppend(ctxFor(t), nil, nil)
	if err != nil || len(answers) != n || string(answers[0]) != "ans:r0" {
		t.Fatalf("the next batch: %d answers, %v", len(answers), err)
	}
}

// TestMuxPipelineFlushAppendAllocs: in the multiplexed mode, which the
// default Protocol speaks to a tcpez server, a Pipeline×64 of 4 KiB
// flushed into the buffers of the last batch allocates nothing. (Each
// answer took an allocation of its own.) The server is a hand-written
// echo that allocates nothing either; the tcpez server may start a
// goroutine for a request, which can allocate.
func TestMuxPipelineFlushAppendAllocs(t *testing.T) {
	if israce.Enabled {
		t.Skip("the race detector allocates")
	}
	addr := echoMuxServer(t)
	for _, proto := range []client.Protocol{client.ProtocolAuto, client.ProtocolMux} {
		t.Run(proto.String(), func(t *testing.T) {
			// Not newClient, which makes ProtocolAuto v1 for the test
			// servers that speak only v1.
			c, err := client.New([]string{addr}, client.Config{Protocol: proto})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			checkPipelineAllocs(t, c)
		})
	}
}

// echoMuxServer is a hand-written mux echo server that allocates nothing
// once warm: it answers every request it has read when its input runs
// dry, with one write.
func echoMuxServer(t *testing.T) string {
	t.Helper()
	return rawServer(t, func(nc net.Conn, _ <-chan struct{}) {
		r, ok := greetMux(nc, frame.AppendAck(nil, batchAck))
		if !ok {
			return
		}
		var in, out []byte
		for {
			p, err := r.ReadFrame(in[:0])
			if err != nil {
				return
			}
			in = p
			f, err := frame.ParseMuxPayload(p)
			if err != nil {
				return
			}
			out = frame.AppendMux(out, frame.KindAnswer, f.ID, f.Body)
			if r.Buffered() > 0 {
				continue
			}
			if _, err := nc.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	})
}

// TestPipelineLayoutFollowsTheConnection: a Pipeline lays its frames out
// for the multiplexed mode unless the client speaks only v1, so that a
// batch goes out from its buffer as it is; against a v1 server, found as a
// ProtocolAuto client falls back, the first batch is copied into v1 frames
// and the ones after are laid out in v1. Every batch, from a cold client,
// gets its answers in order.
func TestPipelineLayoutFollowsTheConnection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		v1    bool // the server speaks only v1
		proto client.Protocol
	}{
		{"auto against v1", true, client.ProtocolAuto},
		{"v1 against mux", false, client.ProtocolV1},
		{"auto against mux", false, client.ProtocolAuto},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr, _ := startMux(t, server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
				return answerOf(req), nil
			}), server.Config{V1Only: tc.v1})
			c, err := client.New([]string{addr}, client.Config{Protocol: tc.proto})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			flushRounds(t, c, 5)
		})
	}
}

// TestMuxPipelineMemberOverServerLimit: a batch member over the largest
// request the server acknowledged fails the batch before anything is
// sent, with a frame.SizeError naming that limit, and the next batch goes
// out whole.
func TestMuxPipelineMemberOverServerLimit(t *testing.T) {
	_, addr, _ := startMux(t, server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		return req, nil
	}), server.Config{Limits: frame.Limits{MaxFrameSize: 1 << 10}})
	c := muxClient(t, addr, client.Config{MaxRetries: -1})
	p := c.Pipeline()
	p.Enqueue([]byte("small"))
	p.Enqueue(make([]byte, 2<<10))
	_, _, err := p.FlushAppend(ctxFor(t), nil, nil)
	var se *frame.SizeError
	if !errors.As(err, &se) || se.Limit != 1<<10-frame.MuxHeaderSize || se.Size != 2<<10 {
		t.Fatalf("FlushAppend with a member over the limit: %v", err)
	}
	p.Enqueue([]byte("a"))
	p.Enqueue([]byte("b"))
	if _, answers, err := p.FlushAppend(ctxFor(t), nil, nil); err != nil || len(answers) != 2 || string(answers[1]) != "b" {
		t.Fatalf("the next batch: %q, %v", answers, err)
	}
}

// TestMuxPipelineAnotherCallsAnswerMidBatch: a caller reading its own
// batch finds another call's answer between two of its own; the reading
// passes to the reader goroutine, which answers that call and completes
// the batch from where the caller stopped, in order.
func TestMuxPipelineAnotherCallsAnswerMidBatch(t *testing.T) {
	batchIn := make(chan struct{})
	addr := rawServer(t, func(nc net.Conn, stop <-chan struct{}) {
		r, ok := greetMux(nc, frame.AppendAck(nil, batchAck))
		if !ok {
			return
		}
		var reqs []frame.MuxFrame
		for len(reqs) < 3 {
			f, ok := readMux(r)
			if !ok {
				return
			}
			if reqs = append(reqs, f); len(reqs) == 2 {
				close(batchIn) // the call is sent after this
			}
		}
		// The batch's first answer, the call's, the batch's second.
		out := append(answerTo(reqs[0]), answerTo(reqs[2])...)
		if _, err := nc.Write(append(out, answerTo(reqs[1])...)); err != nil {
			return
		}
		<-stop
	})
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux, MaxExtraConns: -1})
	ctx := ctxFor(t)
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	called := make(chan error, 1)
	go func() {
		<-batchIn
		ans, err := c.Call(ctx, []byte("call"))
		if err == nil && string(ans) != "ans:call" {
			err = fmt.Errorf("call answered %q", ans)
		}
		called <- err
	}()
	p := c.Pipeline()
	p.Enqueue([]byte("b0"))
	p.Enqueue([]byte("b1"))
	dst, answers, err := p.FlushAppend(ctx, []byte("pre"), nil)
	if err != nil || len(answers) != 2 || string(answers[0]) != "ans:b0" || string(answers[1]) != "ans:b1" || string(dst[:3]) != "pre" {
		t.Fatalf("FlushAppend: %q, %q, %v", dst, answers, err)
	}
	if err := <-called; err != nil {
		t.Fatal(err)
	}
}

// TestMuxPipelineRequestOverMuxFrame: a request that fits the v1 header but
// not a mux frame (the client's Limits allow the header's maximum) fails
// the batch with a frame.SizeError rather than panicking as it is queued.
// The 2 GiB request is never touched, so the OS never backs it with memory.
func TestMuxPipelineRequestOverMuxFrame(t *testing.T) {
	c, err := client.New([]string{"127.0.0.1:1"}, client.Config{Protocol: client.ProtocolMux, Limits: frame.Limits{MaxFrameSize: frame.MaxFrameSize}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := c.Pipeline()
	p.Enqueue(make([]byte, frame.MaxFrameSize-frame.MuxHeaderSize+1))
	var se *frame.SizeError
	if _, err := p.Flush(ctxFor(t)); !errors.As(err, &se) || se.Limit != frame.MaxFrameSize-frame.MuxHeaderSize {
		t.Fatalf("Flush: %v, want a frame.SizeError at the mux frame's limit", err)
	}
}

// TestPipelineLayoutIsTheClients: a Pipeline made after a batch went out
// lays its frames out as that batch went, so that a Pipeline made for each
// batch is not copied every time against a v1 server that a ProtocolAuto
// client found.
func TestPipelineLayoutIsTheClients(t *testing.T) {
	_, addr, _ := startMux(t, server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		return answerOf(req), nil
	}), server.Config{V1Only: true})
	c, err := client.New([]string{addr}, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	laysOutMux := func() bool {
		p := c.Pipeline()
		p.Enqueue([]byte("x"))
		return client.PipelineLaysOutMux(p)
	}
	if !laysOutMux() {
		t.Fatal("a ProtocolAuto client's first Pipeline is laid out for v1")
	}
	flushRounds(t, c, 3)
	if laysOutMux() {
		t.Fatal("a Pipeline made after batches went out in v1 is laid out for mux")
	}
	flushRounds(t, c, 3)
}

// TestMuxPipelineAnswerCut: the connection fails while the reader
// goroutine reads an answer of a batch. Cut in the last answer the batch
// waits for, whose member is no longer in the connection's table, Flush
// used to wait for its context: nobody was left to fail the batch. Cut in
// an earlier one, the failing connection failed the batch through its
// other members while the reader still wrote its answer into the batch's
// buffers, which the caller could then retry or pool (the race detector
// reported that in TestFaultsUnderLoad). Either way Flush now fails at
// once with the connection's error, once the reader is done with it.
func TestMuxPipelineAnswerCut(t *testing.T) {
	const n = 4
	for _, cut := range []int{n - 1, n - 2} {
		t.Run(fmt.Sprintf("member=%d", cut), func(t *testing.T) {
			addr := rawServer(t, func(nc net.Conn, _ <-chan struct{}) {
				r, ok := greetMux(nc, frame.AppendAck(nil, batchAck))
				if !ok {
					return
				}
				reqs, ok := readMuxN(r, n)
				if !ok {
					return
				}
				var out []byte
				for _, f := range reqs[:cut] {
					out = append(out, answerTo(f)...)
				}
				_, _ = nc.Write(out)
				// After the caller's read grace, so that the reader
				// goroutine reads it: an answer's header and half its
				// body, then the connection closes.
				time.Sleep(50 * time.Millisecond)
				last := frame.AppendMux(nil, frame.KindAnswer, reqs[cut].ID, make([]byte, 1000))
				_, _ = nc.Write(last[:len(last)/2])
			})
			c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux, MaxRetries: -1})
			p := c.Pipeline()
			for i := range n {
				p.Enqueue(fmt.Appendf(nil, "q%d", i))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _, err := p.FlushAppend(ctx, nil, nil)
			var ce *client.ConnError
			if !errors.As(err, &ce) {
				t.Fatalf("FlushAppend: %v; want the connection's error, not a wait for the context", err)
			}
		})
	}
}
