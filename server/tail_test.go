package server_test

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// tailEcho answers a request with itself in two parts: its first bytes
// copied to dst, the rest as the tail, which lies in the request buffer,
// so the server must keep that buffer until the answer is written.
type tailEcho struct{ appends, tails atomic.Int64 }

func (h *tailEcho) Respond(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
	return h.RespondAppend(ctx, nil, req, sp)
}

func (h *tailEcho) RespondAppend(_ context.Context, dst, req []byte, _ *span.Span) ([]byte, error) {
	h.appends.Add(1)
	return append(dst, req...), nil
}

func (h *tailEcho) RespondTail(_ context.Context, dst, req []byte, _ *span.Span) (head, tail []byte, err error) {
	h.tails.Add(1)
	k := min(len(req), 7)
	return append(dst, req[:k]...), req[k:], nil
}

// TestTailHandler: a TailHandler's answers are its head then its tail, one
// frame, over v1 (single calls and pipelined batches) and the multiplexed
// mode, for tails small enough to be copied and large enough to be written
// from the request buffer they lie in, from concurrent callers whose
// requests all differ; RespondAppend is not called.
func TestTailHandler(t *testing.T) {
	for _, proto := range []client.Protocol{client.ProtocolV1, client.ProtocolMux} {
		t.Run(proto.String(), func(t *testing.T) {
			h := new(tailEcho)
			_, addr := testserver.Start(t, h, server.Config{})
			c, err := client.New([]string{addr}, client.Config{Protocol: proto})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), safety)
			defer cancel()
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i, size := range []int{0, 3, 100, 20 << 10, 300 << 10, 1 << 20} {
						req := bytes.Repeat([]byte{byte(g*16 + i)}, size)
						if ans, err := c.Call(ctx, req); err != nil || !bytes.Equal(ans, req) {
							t.Errorf("caller %d, %d bytes: answer of %d bytes, %v", g, size, len(ans), err)
						}
					}
				})
			}
			wg.Wait()
			p := c.Pipeline()
			reqs := [][]byte{[]byte("a"), bytes.Repeat([]byte("b"), 100<<10), []byte("0123456789")}
			for _, r := range reqs {
				p.Enqueue(r)
			}
			answers, err := p.Flush(ctx)
			if err != nil || len(answers) != len(reqs) {
				t.Fatalf("pipeline: %d answers, %v", len(answers), err)
			}
			for i := range reqs {
				if !bytes.Equal(answers[i], reqs[i]) {
					t.Errorf("pipeline answer %d: %q…, want %q…", i, answers[i][:min(len(answers[i]), 10)], reqs[i][:min(len(reqs[i]), 10)])
				}
			}
			if n := h.appends.Load(); n != 0 {
				t.Errorf("RespondAppend called %d times beside RespondTail", n)
			}
			if h.tails.Load() == 0 {
				t.Error("RespondTail never called")
			}
		})
	}
}

// lineCodec frames requests as lines ending in '\n', answered as they are.
type lineCodec struct{}

func (lineCodec) RequestLen(r *frame.Reader) (int, error) {
	for n := 1; ; n++ {
		b, err := r.Peek(n)
		if err != nil {
			return 0, err
		}
		if b[n-1] == '\n' {
			return n, nil
		}
	}
}

func (lineCodec) Whole(r *frame.Reader) (int, bool) {
	b, _ := r.Peek(r.Buffered())
	n := bytes.IndexByte(b, '\n')
	return n + 1, n >= 0
}

func (lineCodec) WriteAnswer(w *frame.Writer, answer []byte) error {
	_, err := w.Write(answer)
	return err
}

// TestTailHandlerUnderCodec: a connection of another wire codec, which
// writes answers whole, asks a TailHandler for RespondAppend's answer.
func TestTailHandlerUnderCodec(t *testing.T) {
	h := new(tailEcho)
	_, addr := testserver.Start(t, h, server.Config{Codec: lineCodec{}})
	c := dial(t, addr)
	if _, err := c.Write([]byte("a line longer than the head\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("a line longer than the head\n"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "a line longer than the head\n" {
		t.Fatalf("answered %q, %v", got, err)
	}
	if h.tails.Load() != 0 || h.appends.Load() != 1 {
		t.Errorf("RespondTail called %d times, RespondAppend %d; want 0 and 1", h.tails.Load(), h.appends.Load())
	}
}

var _ server.TailHandler = (*tailEcho)(nil)
