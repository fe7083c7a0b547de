package server_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// muxSpecStreams adds to muxSpecHandler the streams docs/PROTOCOL.md's
// examples assume: ECHO echoes each message, WAIT waits for its context;
// HOLD waits for the handler's release, whatever its context says.
type muxSpecStreams struct{ *muxSpecHandler }

func (h muxSpecStreams) Respond(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
	return h.respond(ctx, req, sp)
}

func (h muxSpecStreams) ServeStream(ctx context.Context, open []byte, s *server.Stream) error {
	switch string(open) {
	case "WAIT":
		<-ctx.Done()
		return ctx.Err()
	case "HOLD":
		<-h.release
		return nil
	}
	for {
		m, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(m); err != nil {
			return err
		}
	}
}

// TestStreamProtocolErrors: what breaks the rules of streams closes the
// connection with a protocol error.
func TestStreamProtocolErrors(t *testing.T) {
	open := frame.AppendMux(nil, frame.KindOpen, 1, []byte("ECHO"))
	over := frame.AppendMux(nil, frame.KindData, 1, make([]byte, frame.StreamWindow))
	cases := map[string][]byte{
		"data over the window": append(append([]byte{}, open...), over...),
		"a grant of 0":         append(append([]byte{}, open...), frame.AppendWindow(nil, 1, 0)...),
		"a grant past 2^31-1":  append(append([]byte{}, open...), frame.AppendWindow(nil, 1, 1<<31)...),
		// The handler waits rather than echoes: an echo could return after
		// the end and the stream be gone before the data is read, and data
		// for a stream that ended here is dropped, not an error.
		"data after the end": append(append(frame.AppendMux(nil, frame.KindOpen, 1, []byte("WAIT")), frame.AppendMux(nil, frame.KindEnd, 1, nil)...),
			frame.AppendMux(nil, frame.KindData, 1, []byte("x"))...),
		"an open on an id in flight": append(append([]byte{}, open...), open...),
	}
	h := newMuxSpecHandler()
	defer close(h.release)
	_, addr := testserver.Start(t, muxSpecStreams{h}, server.Config{})
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			c, r, _ := dialMux(t, addr)
			write(t, c, bad)
			for {
				f := readMux(t, r)
				if f.Kind == frame.KindError && f.ID == 0 {
					if code, _ := f.ErrorCode(); code != frame.CodeProtocol {
						t.Fatalf("got %+v, want a protocol error", f)
					}
					break
				}
			}
			if _, err := r.ReadFrame(nil); err == nil {
				t.Fatal("the connection stayed open")
			}
		})
	}
}

// TestStreamOldVersionsSeeNoStreams: a client that negotiated version 2
// may not open a stream.
func TestStreamOldVersionsSeeNoStreams(t *testing.T) {
	h := newMuxSpecHandler()
	defer close(h.release)
	_, addr := testserver.Start(t, muxSpecStreams{h}, server.Config{})
	c := dial(t, addr)
	preface := frame.AppendPreface(nil)
	preface[frame.HeaderSize+8] = 2
	write(t, c, preface)
	r := frame.NewReader(c, frame.Limits{})
	p, err := r.ReadFrame(nil)
	if ack, ok := frame.ParseAck(p); err != nil || !ok || ack.Version != 2 {
		t.Fatalf("ack %+v, %v", ack, err)
	}
	write(t, c, frame.AppendMux(nil, frame.KindOpen, 1, []byte("ECHO")))
	f := readMux(t, r)
	if code, _ := f.ErrorCode(); f.Kind != frame.KindError || code != frame.CodeProtocol {
		t.Fatalf("got %+v, want a protocol error", f)
	}
}

// TestStreamOpenOverLimit: an open over the frame limit is refused with
// code 6 and skipped, as a request is; late frames of a stream that has
// ended are dropped.
func TestStreamOpenOverLimit(t *testing.T) {
	h := newMuxSpecHandler()
	defer close(h.release)
	_, addr := testserver.Start(t, muxSpecStreams{h}, server.Config{Limits: frame.Limits{MaxFrameSize: 64}})
	c, r, _ := dialMux(t, addr)
	var req []byte
	req = frame.AppendMux(req, frame.KindOpen, 3, make([]byte, 100))
	req = frame.AppendMux(req, frame.KindData, 3, []byte("late")) // for the refused stream: dropped
	req = frame.AppendMux(req, frame.KindRequest, 4, []byte("PING"))
	write(t, c, req)
	f := readMux(t, r)
	if code, _ := f.ErrorCode(); f.Kind != frame.KindError || f.ID != 3 || code != frame.CodeTooLarge {
		t.Fatalf("got %+v, want %v for id 3", f, frame.CodeTooLarge)
	}
	if f := readMux(t, r); f.Kind != frame.KindAnswer || f.ID != 4 {
		t.Fatalf("got %+v, want the answer to id 4", f)
	}
}

// TestStreamHandlerPanics: a panic fails the stream, not the connection.
func TestStreamHandlerPanics(t *testing.T) {
	_, addr := testserver.Start(t, panicStreams{}, server.Config{})
	c, r, _ := dialMux(t, addr)
	write(t, c, frame.AppendMux(nil, frame.KindOpen, 1, nil))
	for {
		f := readMux(t, r)
		if f.Kind == frame.KindWindow {
			continue
		}
		if code, msg := f.ErrorCode(); f.Kind != frame.KindError || f.ID != 1 || code != frame.CodeHandler || msg != "handler panic" {
			t.Fatalf("got %+v", f)
		}
		break
	}
	write(t, c, frame.AppendMux(nil, frame.KindRequest, 2, []byte("x")))
	if f := readMux(t, r); f.Kind != frame.KindAnswer || f.ID != 2 {
		t.Fatalf("got %+v", f)
	}
}

type panicStreams struct{}

func (panicStreams) Respond(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
	return req, nil
}

func (panicStreams) ServeStream(context.Context, []byte, *server.Stream) error {
	panic(errors.New("stream panic"))
}

// TestMuxFirstRequestCutShort: a connection that ends inside the body of
// its first request is closed, not a panic (a fresh call had no context
// to put back; found by FuzzStreamConn).
func TestMuxFirstRequestCutShort(t *testing.T) {
	h := newMuxSpecHandler()
	defer close(h.release)
	_, addr := testserver.Start(t, muxSpecStreams{h}, server.Config{})
	c, r, _ := dialMux(t, addr)
	req := frame.AppendMux(nil, frame.KindRequest, 1, []byte("PINGPING"))
	write(t, c, req[:len(req)-3])
	_ = c.CloseWrite()
	if _, err := r.ReadFrame(nil); err == nil {
		t.Fatal("an answer to a request cut short")
	}
	c2, r2, _ := dialMux(t, addr)
	write(t, c2, frame.AppendMux(nil, frame.KindRequest, 1, []byte("PING")))
	if f := readMux(t, r2); f.Kind != frame.KindAnswer {
		t.Fatalf("the next connection: %+v", f)
	}
}

// TestStreamMemoryBudget: a stream's window is charged to the memory
// budget for its life; a stream that finds no room within MemoryWait is
// refused (code 4), and the connection goes on.
func TestStreamMemoryBudget(t *testing.T) {
	h := newMuxSpecHandler()
	defer close(h.release)
	_, addr := testserver.Start(t, muxSpecStreams{h}, server.Config{
		MemoryBudget: 2*frame.StreamWindow + frame.StreamWindow/2,
		MemoryWait:   500 * time.Millisecond,
	})
	c, r, _ := dialMux(t, addr)
	write(t, c, frame.AppendMux(nil, frame.KindOpen, 1, []byte("WAIT")))
	write(t, c, frame.AppendMux(nil, frame.KindOpen, 3, []byte("WAIT")))
	write(t, c, frame.AppendMux(nil, frame.KindOpen, 5, []byte("WAIT")))
	f := readMux(t, r)
	if code, _ := f.ErrorCode(); f.Kind != frame.KindError || f.ID != 5 || code != frame.CodeOverloaded {
		t.Fatalf("got %+v (%v), want code %v for id 5", f, code, frame.CodeOverloaded)
	}
	// Cancelling a stream gives its window back.
	write(t, c, frame.AppendMux(nil, frame.KindCancel, 1, nil))
	if f := readMux(t, r); f.Kind != frame.KindError || f.ID != 1 {
		t.Fatalf("got %+v, want the cancel's answer", f)
	}
	write(t, c, frame.AppendMux(nil, frame.KindOpen, 7, []byte("ECHO")))
	write(t, c, frame.AppendMux(nil, frame.KindData, 7, []byte("hi")))
	if f := readMux(t, r); f.Kind != frame.KindData || f.ID != 7 || string(f.Body) != "hi" {
		t.Fatalf("got %+v, want stream 7's echo", f)
	}
}

// TestCancelledStreamsWindowBackAtOnce: the window of a cancelled stream
// goes back to the budget by the time its cancel is answered, though its
// handler, which does not heed its context, still runs.
func TestCancelledStreamsWindowBackAtOnce(t *testing.T) {
	h := newMuxSpecHandler()
	defer close(h.release)
	_, addr := testserver.Start(t, muxSpecStreams{h}, server.Config{
		MemoryBudget: frame.StreamWindow + frame.StreamWindow/2,
		MemoryWait:   500 * time.Millisecond,
	})
	c, r, _ := dialMux(t, addr)
	write(t, c, frame.AppendMux(nil, frame.KindOpen, 1, []byte("HOLD")))
	write(t, c, frame.AppendMux(nil, frame.KindCancel, 1, nil))
	if f := readMux(t, r); f.Kind != frame.KindError || f.ID != 1 {
		t.Fatalf("got %+v, want the cancel's answer", f)
	}
	write(t, c, frame.AppendMux(nil, frame.KindOpen, 3, []byte("ECHO")))
	write(t, c, frame.AppendMux(nil, frame.KindData, 3, []byte("hi")))
	if f := readMux(t, r); f.Kind != frame.KindData || f.ID != 3 || string(f.Body) != "hi" {
		t.Fatalf("got %+v, want stream 3's echo", f)
	}
}

// TestStreamOpenOverBudgetKeepsReading: a stream that finds no room in
// the memory budget is refused at once (code 4), and the connection's
// reader goes on to the data of the streams admitted before it, which
// finish and give their room back. Before, the open waited for room on
// the reader: the admitted streams never got their data, and with no
// MemoryWait limit the connection, and the budget it held, were stuck
// for good.
func TestStreamOpenOverBudgetKeepsReading(t *testing.T) {
	h := newMuxSpecHandler()
	defer close(h.release)
	_, addr := testserver.Start(t, muxSpecStreams{h}, server.Config{
		MemoryBudget: 2*frame.StreamWindow + frame.StreamWindow/2,
		MemoryWait:   -1, // no limit: a wait on the reader would never end
	})
	c, r, _ := dialMux(t, addr)
	var out []byte
	for _, id := range []uint32{1, 3, 5} {
		out = frame.AppendMux(out, frame.KindOpen, id, []byte("ECHO"))
	}
	for _, id := range []uint32{1, 3, 5} {
		out = frame.AppendMux(out, frame.KindData, id, []byte{byte('0' + id)})
		out = frame.AppendMux(out, frame.KindEnd, id, nil)
	}
	write(t, c, out)
	refused, echoed, ended := false, map[uint32]bool{}, map[uint32]bool{}
	for !refused || len(ended) < 2 {
		f := readMux(t, r)
		switch {
		case f.Kind == frame.KindError && f.ID == 5:
			if code, _ := f.ErrorCode(); code != frame.CodeOverloaded {
				t.Fatalf("stream 5: code %v, want %v", code, frame.CodeOverloaded)
			}
			refused = true
		case f.Kind == frame.KindData && (f.ID == 1 || f.ID == 3) && string(f.Body) == string(rune('0'+f.ID)):
			echoed[f.ID] = true
		case f.Kind == frame.KindEnd && (f.ID == 1 || f.ID == 3) && echoed[f.ID]:
			ended[f.ID] = true
		default:
			t.Fatalf("got %+v", f)
		}
	}
	// Their room is back: two more streams fit.
	out = out[:0]
	for _, id := range []uint32{7, 9} {
		out = frame.AppendMux(out, frame.KindOpen, id, []byte("ECHO"))
		out = frame.AppendMux(out, frame.KindEnd, id, nil)
	}
	write(t, c, out)
	for ended := 0; ended < 2; ended++ {
		if f := readMux(t, r); f.Kind != frame.KindEnd || (f.ID != 7 && f.ID != 9) {
			t.Fatalf("got %+v, want the end of stream 7 or 9", f)
		}
	}
}
