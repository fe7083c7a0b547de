package client_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
)

// A caller that reads its own batch answers into buffers it reuses reads
// them straight into its buffer, guessing that each answer is the size of
// the last (see straight.go). These tests check what it must get right
// when the guess fails or the bytes come in awkward pieces: every batch's
// answers, each exactly its request's.

// sizedRequests returns a batch of requests of the given sizes, each
// unique to round and place.
func sizedRequests(round int, sizes []int) [][]byte {
	reqs := make([][]byte, len(sizes))
	for i, n := range sizes {
		r := make([]byte, n)
		tag := fmt.Appendf(nil, "%d/%d.", round, i)
		for j := range r {
			r[j] = tag[j%len(tag)]
		}
		reqs[i] = r
	}
	return reqs
}

// flushSized sends reqs with FlushAppend into dst and answers and checks
// that the answers are want's, in order.
func flushSized(t *testing.T, p *client.Pipeline, reqs, want [][]byte, dst []byte, answers [][]byte) ([]byte, [][]byte) {
	t.Helper()
	for _, r := range reqs {
		p.Enqueue(r)
	}
	dst, answers, err := p.FlushAppend(ctxFor(t), dst[:0], answers[:0])
	if err != nil {
		t.Fatal(err)
	}
	if len(answers) != len(want) {
		t.Fatalf("%d answers, want %d", len(answers), len(want))
	}
	for i := range want {
		if !bytes.Equal(answers[i], want[i]) {
			t.Fatalf("answer %d: %d bytes %.12q, want %d bytes %.12q", i, len(answers[i]), answers[i], len(want[i]), want[i])
		}
	}
	return dst, answers
}

func repeatSize(n, k int) []int { return slices.Repeat([]int{n}, k) }

// TestStraightReadsAnyAnswerSizes: batches whose answers change size, or
// are too small or too large to read straight, come back whole, in v1 and
// in the multiplexed mode, each batch into the buffers of the one before.
func TestStraightReadsAnyAnswerSizes(t *testing.T) {
	batches := [][]int{
		repeatSize(4096, 64),
		slices.Concat(repeatSize(4096, 20), repeatSize(5000, 20), []int{4096, 3000, 70000, 4096}, repeatSize(2048, 10)),
		{4096, 100, 4096, 0, 4096, 1023, 1024, 1025, 4096},
		slices.Concat(repeatSize(1024, 100), repeatSize(1025, 100)),
		{4096, 200 << 10, 4096, 4096}, // one larger than the read buffer
		repeatSize(16<<10, 12),
	}
	for _, tc := range []struct {
		name  string
		addr  string
		proto client.Protocol
	}{
		{"v1", newServer(t, nil).addr, client.ProtocolV1},
		{"mux", tcpezServer(t), client.ProtocolMux},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, []string{tc.addr}, client.Config{Protocol: tc.proto})
			p := c.Pipeline()
			var dst []byte
			var answers [][]byte
			for round := range 3 {
				for i, sizes := range batches {
					reqs := sizedRequests(round*len(batches)+i, sizes)
					dst, answers = flushSized(t, p, reqs, reqs, dst, answers)
				}
			}
		})
	}
}

// cutAt cuts b into pieces of the sizes given, over and over: they fall
// inside headers, between header and body, inside bodies and on frame
// boundaries.
func cutAt(b []byte, sizes ...int) [][]byte {
	var out [][]byte
	for i := 0; len(b) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// batchV1Server is a hand-written v1 server that answers each batch of n
// frames with the batch its echo would be, written in the pieces cut
// returns, one after the other, pause apart.
func batchV1Server(t *testing.T, n int, pause time.Duration, cut func([]byte) [][]byte) string {
	t.Helper()
	return rawServer(t, func(nc net.Conn, _ <-chan struct{}) {
		r := frame.NewReaderSize(nc, 64<<10, frame.Limits{})
		for {
			h, err := r.ReadHeader()
			if err != nil || h.Count() != n {
				return
			}
			out := frame.AppendHeader(nil, h)
			for range n {
				p, err := r.ReadFrame(nil)
				if err != nil {
					return
				}
				out = frame.AppendFrame(out, p)
			}
			for i, w := range cut(out) {
				if i > 0 {
					time.Sleep(pause)
				}
				if _, err := nc.Write(w); err != nil {
					return
				}
			}
		}
	})
}

// cutFirst cuts b in two, n bytes in.
func cutFirst(n int) func([]byte) [][]byte {
	return func(b []byte) [][]byte { return [][]byte{b[:n], b[n:]} }
}

// TestStraightReadsAnswersInPieces: answers of 4 KiB that arrive in
// pieces cut anywhere, a moment apart, come back whole. In the second
// case the answers stop inside the third one's body for longer than the
// caller's read grace, so that its straight read times out and the
// reader goroutine reads the rest.
func TestStraightReadsAnswersInPieces(t *testing.T) {
	const n = 16
	// 4096 and 4100 keep the pieces from lining up with the frames for
	// long: they end inside headers, between header and body, inside
	// bodies and on frame boundaries.
	pieces := func(b []byte) [][]byte { return cutAt(b, 1, 9, 4096, 4, 6, 4100, 2000, 8193, 3, 10, 12000) }
	muxCut := func(cut func([]byte) [][]byte) func([]frame.MuxFrame) [][]byte {
		return func(reqs []frame.MuxFrame) [][]byte {
			var out []byte
			for _, f := range reqs {
				out = frame.AppendMux(out, frame.KindAnswer, f.ID, f.Body)
			}
			return cut(out)
		}
	}
	const v1Size, muxSize = frame.HeaderSize + 4096, frame.HeaderSize + frame.MuxHeaderSize + 4096
	for _, tc := range []struct {
		name          string
		pause         time.Duration
		v1Cut, muxCut func([]byte) [][]byte
	}{
		{"shortly apart", time.Millisecond, pieces, pieces},
		// A v1 batch answer's header and first answer but its last two
		// bytes, then the rest: the first read has the batch header
		// whole and no answer whole.
		{"first answer cut short", 5 * time.Millisecond, cutFirst(frame.HeaderSize + v1Size - 2), cutFirst(muxSize - 2)},
		{"stall mid-body", 40 * time.Millisecond, cutFirst(2*v1Size + 1000), cutFirst(2*muxSize + 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("v1", func(t *testing.T) {
				addr := batchV1Server(t, n, tc.pause, tc.v1Cut)
				straightRounds(t, newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolV1}), n)
			})
			t.Run("mux", func(t *testing.T) {
				addr := batchMuxServer(t, n, tc.pause, muxCut(tc.muxCut))
				straightRounds(t, newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux}), n)
			})
		})
	}
}

// straightRounds sends three batches of n requests of 4 KiB, each into the
// buffers of the one before, and checks their answers, echoes.
func straightRounds(t *testing.T, c *client.Client, n int) {
	t.Helper()
	p := c.Pipeline()
	var dst []byte
	var answers [][]byte
	for round := range 3 {
		reqs := sizedRequests(round, repeatSize(4096, n))
		dst, answers = flushSized(t, p, reqs, reqs, dst, answers)
	}
}

// TestStraightReadFindsAnotherCallsAnswer: in the multiplexed mode another
// call's answer, as large as the batch's, comes between two of them: the
// straight read takes the batch's answers before it and leaves the rest,
// that answer first, to the reader goroutine; both calls get their own.
func TestStraightReadFindsAnotherCallsAnswer(t *testing.T) {
	const n, rounds = 8, 3
	batchIn := make(chan struct{}, rounds)
	addr := rawServer(t, func(nc net.Conn, stop <-chan struct{}) {
		r, ok := greetMux(nc, frame.AppendAck(nil, batchAck))
		if !ok {
			return
		}
		for {
			batch, ok := readMuxN(r, n)
			if !ok {
				return
			}
			batchIn <- struct{}{} // the call is sent after this
			call, ok := readMux(r)
			if !ok {
				return
			}
			var out []byte
			for _, f := range slices.Concat(batch[:3], []frame.MuxFrame{call}, batch[3:]) {
				out = frame.AppendMux(out, frame.KindAnswer, f.ID, f.Body)
			}
			if _, err := nc.Write(out); err != nil {
				return
			}
		}
	})
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux, MaxExtraConns: -1})
	ctx := ctxFor(t)
	p := c.Pipeline()
	var dst []byte
	var answers [][]byte
	for round := range rounds {
		req := sizedRequests(100+round, []int{4096})[0]
		called := make(chan error, 1)
		go func() {
			<-batchIn
			ans, err := c.Call(ctx, req)
			if err == nil && !bytes.Equal(ans, req) {
				err = fmt.Errorf("call answered %.12q", ans)
			}
			called <- err
		}()
		reqs := sizedRequests(round, repeatSize(4096, n))
		dst, answers = flushSized(t, p, reqs, reqs, dst, answers)
		if err := <-called; err != nil {
			t.Fatal(err)
		}
	}
}

// TestStraightReadChecksBatchHeader: in v1 a straight read begins with
// the batch answer's header; a server that answers a batch with a lone
// frame instead fails the batch as it would without straight reads, and
// the frame is not taken for an answer.
func TestStraightReadChecksBatchHeader(t *testing.T) {
	const n = 4
	addr := rawServer(t, func(nc net.Conn, stop <-chan struct{}) {
		r := frame.NewReaderSize(nc, 64<<10, frame.Limits{})
		for round := 0; ; round++ {
			h, err := r.ReadHeader()
			if err != nil || h.Count() != n {
				return
			}
			var reqs [][]byte
			for range n {
				p, err := r.ReadFrame(nil)
				if err != nil {
					return
				}
				reqs = append(reqs, p)
			}
			out := frame.AppendBatch(nil, reqs...)
			if round == 1 {
				// A frame the size of an answer, then answers.
				out = frame.AppendBatch(frame.AppendFrame(nil, reqs[0]), reqs...)
			}
			if _, err := nc.Write(out); err != nil {
				return
			}
		}
	})
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolV1, MaxExtraConns: -1})
	p := c.Pipeline()
	reqs := sizedRequests(0, repeatSize(4096, n))
	dst, answers := flushSized(t, p, reqs, reqs, nil, nil)
	for _, r := range reqs {
		p.Enqueue(r)
	}
	_, got, err := p.FlushAppend(ctxFor(t), dst[:0], answers[:0])
	if !errors.Is(err, client.ErrUnexpectedAnswer) {
		t.Fatalf("a frame for a batch answer: %d answers, %v; want %v", len(got), err, client.ErrUnexpectedAnswer)
	}
}
