package server

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/span"
)

// muxBody is the body of request i of TestMuxLargeAnswersByReference:
// large for even i, each filled with its own byte.
func muxBody(i int) []byte {
	if i%2 == 1 {
		return []byte{byte(i)}
	}
	return bytes.Repeat([]byte{byte(i)}, 256<<10)
}

// TestMuxLargeAnswersByReference: large answers, written from the
// request's or a lent buffer, interleaved with small ones, each arrive
// whole and as sent while the client keeps sending: a buffer whose answer
// waits to be written is not reused for a later request. Once all are
// read, the budget holds no large buffer but those parked in the pool.
func TestMuxLargeAnswersByReference(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Handler
	}{
		{"request-buffer", HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) { return req, nil })},
		{"lent-buffer", &lendEcho{dsts: make(chan []byte, 64)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 32
			srv, addr := serveInternal(t, tc.h, Config{MemoryBudget: 64 << 20})
			c := dialInternal(t, addr)
			muxHandshake(t, c)
			sent := make(chan error, 1)
			go func() {
				var err error
				for i := 1; i <= n && err == nil; i++ {
					_, err = c.Write(frame.AppendMux(nil, frame.KindRequest, uint32(i), muxBody(i)))
				}
				sent <- err
			}()
			r := frame.NewReader(c, frame.Limits{})
			seen := make(map[uint32]bool)
			for range n {
				p, err := r.ReadFrame(nil)
				if err != nil {
					t.Fatal(err)
				}
				f, err := frame.ParseMuxPayload(p)
				if err != nil || f.Kind != frame.KindAnswer || seen[f.ID] {
					t.Fatalf("answer %v %d: %v", f.Kind, f.ID, err)
				}
				seen[f.ID] = true
				if !bytes.Equal(f.Body, muxBody(int(f.ID))) {
					t.Fatalf("answer %d: %d bytes, not its request's", f.ID, len(f.Body))
				}
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "only parked buffers to be held", func() bool { return srv.budget.Used()-srv.large.keptBytes() < 256<<10 })
		})
	}
}

func muxHandshake(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := c.Write(frame.AppendPreface(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, frame.HeaderSize+frame.AckSize)); err != nil {
		t.Fatal(err)
	}
}

func (p *largeBuffers) keptBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kept
}
