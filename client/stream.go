package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/stream"
)

// ErrNoStreams is the error of Stream on a connection whose server did
// not negotiate version 3 of the multiplexed mode (or a v1 connection).
var ErrNoStreams = errors.New("tcpez/client: the server does not speak streams (multiplexed mode version 3)")

// ErrSendClosed is the error of Send and Write on a stream after its
// CloseSend.
var ErrSendClosed = stream.ErrSendClosed

// Stream is a call that carries a sequence of messages each way
// (docs/PROTOCOL.md, "Streams"): the client's end, from Client.Stream.
// It is shaped like grpc.ClientStream: Send and Recv move messages, and
// CloseSend says the client sends no more; Read and Write make it an
// io.ReadWriter for blobs, whose bytes may then arrive in other pieces
// than they were written. One goroutine may send while another receives.
//
// Flow control is per stream: Send waits while the server's window for
// it is full, and the server sends no more than the client's window
// (Config.StreamWindow) ahead of Recv, so a side that stops reading holds
// up only its own stream, and what waits unread is bounded by the window
// whatever the size. Recv also holds the message it reassembles, up to
// the frame limit (Config.Limits), in a buffer it keeps for the next;
// Read holds nothing beyond the window.
//
// Recv returns io.EOF once the server's handler has returned nil and its
// messages are read (Trailer then holds what it set); a *ServerError once
// the messages it sent before it failed are read. The stream ends, and its connection slot is freed, when the
// server ends it or when the context given to Client.Stream ends, which
// cancels it on the server: a caller that leaves a stream early must
// cancel that context.
type Stream struct {
	c   *Client
	ctx context.Context

	mu   sync.Mutex
	stop func() bool // stops the watch on ctx; under mu

	// Set by bind, under the connection's mu, before the open is sent.
	core *stream.Core
	cn   *conn
	id   uint32
	rq   *request

	finishOnce sync.Once
	done       chan struct{}
	err        error // why it ended; nil for the server's end or error frame
}

// Stream opens a stream on a connection of the client; open is the
// opening payload the server's StreamHandler is given (a method name,
// say). ctx governs the whole stream: when it ends, the stream is
// cancelled on both sides.
//
// A stream holds one of its connection's in-flight slots until it ends,
// like a call (Config.MaxInFlight; over the multiplexed mode also at most
// twice the MaxInFlight the server announced, 256 against a default
// server). When every slot is taken, Stream waits for one as long as ctx
// allows, as gRPC does at a connection's stream limit; ConnsPerAddr adds
// connections, and so slots.
func (c *Client) Stream(ctx context.Context, open []byte) (*Stream, error) {
	if err := c.begin(); err != nil {
		return nil, err
	}
	if err := c.checkRequest(len(open)); err != nil {
		c.end()
		return nil, err
	}
	s := &Stream{c: c, ctx: ctx, done: make(chan struct{})}
	s.rq = &request{mode: modeStream, stream: s, done: make(chan struct{}, 1)}
	var o outcome
	if err := c.submit(ctx, s.rq, open, &o); err != nil {
		c.end()
		return nil, err
	}
	if g := s.core.InitialGrant(); g > 0 {
		(*streamSink)(s).Window(g)
	}
	s.mu.Lock()
	select {
	case <-s.done: // ended already: nothing to watch
	default:
		s.stop = context.AfterFunc(ctx, s.abandon)
	}
	s.mu.Unlock()
	return s, nil
}

// bind ties s to the connection its open goes out on. Called with cn.mu
// held, as the open is queued; a retry on another connection binds anew.
func (s *Stream) bind(cn *conn, id uint32) {
	maxMsg := s.c.cfg.Limits.MaxFrameSize
	if maxMsg == 0 {
		maxMsg = frame.DefaultMaxFrameSize
	}
	s.cn, s.id = cn, id
	s.core = stream.New((*streamSink)(s), stream.Config{
		Window:     s.c.cfg.StreamWindow,
		MaxMessage: maxMsg,
		MaxChunk:   cn.mux.maxBody,
	})
}

// Context is the stream's context.
func (s *Stream) Context() context.Context { return s.ctx }

// Send sends msg as one message; see Stream for when it waits. After the
// server ended the stream, whether its handler succeeded or failed, it
// returns io.EOF: Recv then says how it ended, as with gRPC's SendMsg.
// After CloseSend, while the server has not ended the stream, it returns
// ErrSendClosed.
func (s *Stream) Send(msg []byte) error { return s.core.Send(s.ctx, msg) }

// Write sends p, for io.Writer (a message per Write).
func (s *Stream) Write(p []byte) (int, error) { return s.core.Write(s.ctx, p) }

// Recv returns the server's next message, valid until the next Recv. A
// message over the client's frame limit (Config.Limits) is a
// *frame.SizeError, and cancels the stream on the server.
func (s *Stream) Recv() ([]byte, error) {
	m, err := s.core.Recv()
	if _, tooBig := errors.AsType[*frame.SizeError](err); tooBig {
		s.cn.cancelOnWire(context.Background(), s.rq, s.id)
	}
	return m, err
}

// Read reads the server's bytes whatever their messages, for io.Reader.
func (s *Stream) Read(p []byte) (int, error) { return s.core.Read(p) }

// CloseSend tells the server that the client sends no more: its Recv
// returns io.EOF once it has read what came before.
func (s *Stream) CloseSend() error {
	if !s.core.CloseSend() {
		return nil
	}
	id := s.id
	s.cn.queueFrame(func(b []byte) []byte { return frame.AppendMux(b, frame.KindEnd, id, nil) })
	return nil
}

// Trailer is what the server's handler set with SetTrailer, once Recv
// returned io.EOF.
func (s *Stream) Trailer() []byte { return s.core.Trailer() }

// Done is closed once the stream has ended: the server ended it, it
// failed, or it was cancelled.
func (s *Stream) Done() <-chan struct{} { return s.done }

// abandon cancels the stream when its context ends first.
func (s *Stream) abandon() {
	s.core.Fail(ctxError(s.ctx))
	s.cn.cancelOnWire(s.ctx, s.rq, s.id)
}

// serverFailed ends the stream with the server's error frame: what the
// server sent before it is still to read, Recv then returns serr, and Send
// io.EOF, as after the server's end frame.
func (s *Stream) serverFailed(serr *ServerError) {
	s.core.PeerFail(serr)
	s.finish(nil)
}

// finish ends the stream, once: with nil for the server's end (what it
// sent is still to read), else failing it both ways.
func (s *Stream) finish(err error) {
	s.finishOnce.Do(func() {
		s.err = err
		if err != nil {
			s.core.Fail(err)
		} else {
			s.core.StopSending(io.EOF)
		}
		s.mu.Lock()
		close(s.done)
		stop := s.stop
		s.mu.Unlock()
		if stop != nil {
			stop()
		}
		s.c.end()
	})
}

// streamSink sends a stream's frames on its connection.
type streamSink Stream

func (ss *streamSink) Data(ctx context.Context, body []byte, more bool) error {
	return ss.cn.sendData(ctx, ss.id, body, more)
}

func (ss *streamSink) Window(n uint32) {
	id := ss.id
	ss.cn.queueFrame(func(b []byte) []byte { return frame.AppendWindow(b, id, n) })
}

// sendData writes a data frame of a stream as enqueue writes a request:
// a large body goes from the caller's slice, with no copy, once nobody
// else writes.
func (cn *conn) sendData(ctx context.Context, id uint32, body []byte, more bool) error {
	cn.mu.Lock()
	// Behind a write in progress, queue at most a chunk: credit alone
	// would let a server that grants 2 GiB and reads slowly make the
	// client buffer that much. A caller that waited writes the queue
	// itself, its body as the tail: a writer without one would yield to
	// the next waiter before writing anything.
	full := len(cn.out.buf) >= stream.MaxChunk
	owns := false
	if len(body) >= writevMin || full {
		var err error
		if owns, err = cn.awaitWriterLocked(ctx); err != nil {
			cn.mu.Unlock()
			return err
		}
	}
	if cn.err != nil {
		err := cn.err
		cn.unlockWriter(owns)
		return err
	}
	cn.out.buf = frame.AppendData(cn.out.buf, id, more, len(body))
	if full && len(body) > 0 && (owns || !cn.out.writing) {
		cn.out.writing = true
		cn.flushUnlock(callerWriter(ctx), body)
		return nil
	}
	cn.sendUnlock(ctx, body, owns)
	return nil
}

// streamFrame reads a frame of a stream of the client, its body of n
// bytes still to read.
func (cn *conn) streamFrame(f frame.MuxFrame, n int) error {
	if cn.mux.version < 3 {
		return fmt.Errorf("%w: %v before version 3", ErrUnexpectedAnswer, f.Kind)
	}
	cn.mu.Lock()
	rq := cn.mux.get(f.ID)
	cn.mu.Unlock()
	if (rq == nil || rq.stream == nil) && f.Kind == frame.KindWindow {
		return frame.Truncated(cn.in.r.Discard(n)) // for a stream that has ended: ignored
	}
	if rq == nil || rq.stream == nil {
		return fmt.Errorf("%w: %v for id %d, which is no open stream", ErrUnexpectedAnswer, f.Kind, f.ID)
	}
	s := rq.stream
	switch f.Kind {
	case frame.KindData:
		return s.core.ReadFrom(cn.in.r, n, f.Flags&frame.FlagMore != 0)
	case frame.KindWindow:
		p, err := cn.in.r.Peek(4)
		if err != nil {
			return frame.Truncated(err)
		}
		inc, err := frame.WindowIncrement(p, s.core.Credit())
		_ = cn.in.r.Discard(4)
		if err == nil {
			err = s.core.AddCredit(inc)
		}
		return err
	}
	trailer, err := cn.in.r.ReadPayload(nil, n)
	if err != nil {
		return frame.Truncated(err)
	}
	cn.mu.Lock()
	cn.mux.take(f.ID)
	cn.mu.Unlock()
	err = s.core.PeerEnd(trailer)
	s.finish(nil)
	cn.release()
	return err
}

// get returns the request of id while it is in the table.
func (t *muxTable) get(id uint32) *request {
	i := id & idIndexMask
	if int(i) >= len(t.entries) || t.entries[i].id != id {
		return nil
	}
	return t.entries[i].rq
}

var _ io.ReadWriter = (*Stream)(nil)
