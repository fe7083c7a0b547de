package server

import (
	"context"
	"errors"
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

// heldStreams hands each stream to the test and, once the stream's
// context has ended, holds its handler until told to return.
type heldStreams struct {
	streams chan *Stream
	release chan struct{}
}

func (*heldStreams) Respond(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
	return req, nil
}

func (h *heldStreams) ServeStream(ctx context.Context, open []byte, s *Stream) error {
	h.streams <- s
	if string(open) == "return" {
		return nil
	}
	<-ctx.Done()
	<-h.release
	return ctx.Err()
}

// TestStreamSendCancelled: a Send whose data frame goes out after the
// client cancelled the stream returns the cancel's cause while the
// handler runs, not ErrStreamDone, which is for a stream whose handler
// has returned. Before, about one cancel in a hundred made a running
// handler's Send say "the stream's handler has returned": a Send that
// took its credit before the cancel, or waited behind the writer, found
// the stream answered. The test makes that Send by hand, after the cancel.
func TestStreamSendCancelled(t *testing.T) {
	h := &heldStreams{streams: make(chan *Stream, 2), release: make(chan struct{})}
	_, addr := serveInternal(t, h, Config{})
	c := dialInternal(t, addr)
	var out []byte
	out = frame.AppendPreface(out)
	out = frame.AppendMux(out, frame.KindOpen, 1, []byte("hold"))
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	s := <-h.streams
	if _, err := c.Write(frame.AppendMux(nil, frame.KindCancel, 1, nil)); err != nil {
		t.Fatal(err)
	}
	<-s.Context().Done()
	answered := func() bool {
		s.m.mu.Lock()
		defer s.m.mu.Unlock()
		return s.answered
	}
	waitUntil(t, "the cancel to be answered", answered)
	err := (*streamSink)(s).Data(context.Background(), []byte("late"), false)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrStreamDone) {
		t.Errorf("a data frame after the cancel: %v, want context.Canceled", err)
	}
	if err := s.Send([]byte("late")); !errors.Is(err, context.Canceled) {
		t.Errorf("Send after the cancel: %v, want context.Canceled", err)
	}
	close(h.release)

	// A stream whose handler returned: ErrStreamDone.
	if _, err := c.Write(frame.AppendMux(nil, frame.KindOpen, 3, []byte("return"))); err != nil {
		t.Fatal(err)
	}
	s = <-h.streams
	waitUntil(t, "the stream's end", func() bool {
		s.m.mu.Lock()
		defer s.m.mu.Unlock()
		return s.answered
	})
	if err := (*streamSink)(s).Data(context.Background(), []byte("late"), false); err != ErrStreamDone {
		t.Errorf("a data frame after the handler returned: %v, want ErrStreamDone", err)
	}
	if err := s.Send([]byte("late")); err != ErrStreamDone {
		t.Errorf("Send after the handler returned: %v, want ErrStreamDone", err)
	}
}
