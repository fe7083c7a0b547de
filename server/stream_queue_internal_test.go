package server

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/stream"
	"github.com/tcpez/tcpez/span"
)

// pumpStreams sends 16 MiB on every stream and checks, after each Send,
// how much of the connection's output waits in memory.
type pumpStreams struct {
	mu   sync.Mutex
	most int
}

func (*pumpStreams) Respond(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
	return req, nil
}

func (p *pumpStreams) ServeStream(_ context.Context, _ []byte, s *Stream) error {
	msg := make([]byte, 1<<20)
	for range 16 {
		if err := s.Send(msg); err != nil {
			return err
		}
		s.m.mu.Lock()
		queued := len(s.m.wbuf)
		s.m.mu.Unlock()
		p.mu.Lock()
		p.most = max(p.most, queued)
		p.mu.Unlock()
	}
	return nil
}

// TestStreamSendWaitsForTheWriter: a client that grants two streams all
// the credit the protocol allows and reads slowly gets no more of the
// server's memory than a chunk or so per stream queued behind the write in
// progress. Before, the stream whose sends found another goroutine writing
// queued everything it sent: up to 2 GiB a stream, 1.9 GiB of heap with
// two streams of 1 GiB and a client that did not read.
func TestStreamSendWaitsForTheWriter(t *testing.T) {
	p := &pumpStreams{}
	_, addr := serveInternal(t, p, Config{})
	c := dialInternal(t, addr)
	var out []byte
	out = frame.AppendPreface(out)
	for _, id := range []uint32{1, 3} {
		out = frame.AppendMux(out, frame.KindOpen, id, []byte("pump"))
		out = frame.AppendWindow(out, id, 1<<31-1-frame.StreamWindow)
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, frame.HeaderSize+frame.AckSize)); err != nil {
		t.Fatal(err)
	}
	r := frame.NewReader(c, frame.Limits{})
	for ended := 0; ended < 2; {
		p, err := r.ReadFrame(nil)
		if err != nil {
			t.Fatal(err)
		}
		f, err := frame.ParseMuxPayload(p)
		if err != nil {
			t.Fatal(err)
		}
		switch f.Kind {
		case frame.KindEnd:
			ended++
		case frame.KindData:
		default:
			t.Fatalf("unexpected %v frame", f.Kind)
		}
	}
	// Each stream may queue a chunk behind the write in progress.
	if bound := 2 * (stream.MaxChunk + frame.HeaderSize + frame.MuxHeaderSize); p.most > bound {
		t.Fatalf("%d bytes queued at most, want at most %d", p.most, bound)
	}
}
