package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/stream"
)

// StreamHandler is implemented by a Handler that also serves streams
// (docs/PROTOCOL.md, "Streams"): calls that carry a sequence of messages
// each way, opened by clients that negotiated version 3 of the
// multiplexed mode. open is the opening payload the client sent (a method
// name, say); it is the handler's to keep. The stream ends when
// ServeStream returns: with nil, the client reads what was sent and then
// io.EOF (with the trailer set by SetTrailer); with an error, the client
// gets it as a *client.ServerError, code 1, as for a request (code 6,
// matching frame.ErrFrameTooLarge, when the error is Recv's of a message
// over the server's frame limit). A Handler
// without the method refuses streams with code 9 ("no handler").
//
// ctx is s.Context(): it ends when the client cancels, the connection
// ends, or ServeStream returns.
type StreamHandler interface {
	ServeStream(ctx context.Context, open []byte, s *Stream) error
}

// ErrStreamDone is the error of a Send, Recv or Read on a stream whose
// handler has returned.
var ErrStreamDone = errors.New("tcpez/server: the stream's handler has returned")

// Stream is the server's end of one stream. Send and Write send
// messages to the client, Recv and Read take the client's; one goroutine
// may send while another receives. Recv returns io.EOF once the client
// has closed its side (CloseSend) and its messages are read. A message is
// at most the server's frame limit for Recv; Read has no limit, for
// blobs. What the client sends ahead of the handler is bounded by the
// stream's window, which is charged to MemoryBudget; the message Recv
// reassembles is not charged: it holds up to the frame limit per stream,
// in a buffer it keeps for the next message. Read holds nothing beyond
// the window.
type Stream struct {
	core   *stream.Core
	m      *muxConn
	id     uint32
	ctx    context.Context
	cancel context.CancelCauseFunc
	// Guarded by m.mu.
	answered bool // its end or error is queued: nothing more goes out
	trailer  []byte
	// windowBack: the window's charge went back to the memory budget,
	// when the stream was cancelled or, failing that, its handler ended.
	windowBack atomic.Bool
}

// giveWindowBack returns the charge for s's window to the memory budget,
// once.
func (s *Stream) giveWindowBack() {
	if s.windowBack.CompareAndSwap(false, true) {
		s.m.acct.Release(int64(s.core.Window()))
	}
}

// Context is the stream's context; see StreamHandler.
func (s *Stream) Context() context.Context { return s.ctx }

// Send sends msg as one message. It waits while the client's window is
// full: a client that does not read holds up only its own stream. Once
// the client cancelled the stream it returns the cancel's cause,
// context.Cause of the stream's context (context.Canceled, or
// context.DeadlineExceeded when the client's deadline passed); once the
// handler returned, ErrStreamDone.
func (s *Stream) Send(msg []byte) error { return s.core.Send(s.ctx, msg) }

// Write sends p, for io.Writer (a message per Write).
func (s *Stream) Write(p []byte) (int, error) { return s.core.Write(s.ctx, p) }

// Recv returns the client's next message, valid until the next Recv.
func (s *Stream) Recv() ([]byte, error) { return s.core.Recv() }

// Read reads the client's bytes whatever their messages, for io.Reader.
func (s *Stream) Read(p []byte) (int, error) { return s.core.Read(p) }

// SetTrailer sets what the end frame carries when ServeStream returns nil
// (the protobuf layer puts its status there). It is the stream's to keep.
func (s *Stream) SetTrailer(p []byte) {
	s.m.mu.Lock()
	s.trailer = p
	s.m.mu.Unlock()
}

// streamSink sends a stream's frames on its connection.
type streamSink Stream

// Data sends a data frame.
func (ss *streamSink) Data(_ context.Context, body []byte, more bool) error {
	s := (*Stream)(ss)
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	// Behind a write in progress, queue at most a chunk: credit alone
	// would let a client that grants 2 GiB and stops reading hold that
	// much of the server's memory.
	for m.writing && len(m.wbuf) >= stream.MaxChunk && !m.broken && !s.answered {
		m.idle.Wait()
	}
	switch {
	case m.broken:
		return ErrRemoteGone
	case s.answered:
		// Cancelled by the client, its cause (the core failed with it
		// as it was answered), or ended by its handler: ErrStreamDone.
		if err := s.core.Err(); err != nil {
			return err
		}
		return ErrStreamDone
	}
	m.wbuf = frame.AppendData(m.wbuf, s.id, more, len(body))
	m.wbuf = append(m.wbuf, body...)
	m.flushLocked()
	return nil
}

// Window grants the client credit.
func (ss *streamSink) Window(n uint32) {
	s := (*Stream)(ss)
	m := s.m
	m.mu.Lock()
	if !m.broken && !s.answered {
		m.wbuf = frame.AppendWindow(m.wbuf, s.id, n)
		m.flushLocked()
	}
	m.mu.Unlock()
}

// streamFrame acts on a frame of version 3's kinds, its body of n bytes
// still to read.
func (m *muxConn) streamFrame(f frame.MuxFrame, n int) error {
	if m.muxVersion < 3 {
		return m.protocolError(fmt.Errorf("%w: %v before version 3", frame.ErrMuxMalformed, f.Kind))
	}
	if f.Kind == frame.KindOpen {
		return m.openStream(f.ID, n)
	}
	m.mu.Lock()
	s := m.streams[f.ID]
	m.mu.Unlock()
	if s == nil {
		// Ended here (answered, cancelled) while the client still sent:
		// what it sent is dropped.
		return m.discard(n)
	}
	var err error
	switch f.Kind {
	case frame.KindData:
		err = s.core.ReadFrom(m.r, n, f.Flags&frame.FlagMore != 0)
	case frame.KindEnd:
		if err = m.discard(n); err == nil {
			err = s.core.PeerEnd(nil)
		}
	case frame.KindWindow:
		var p []byte
		if p, err = m.r.Peek(4); err != nil {
			return m.readError(frame.Truncated(err), false)
		}
		inc, werr := frame.WindowIncrement(p, s.core.Credit())
		_ = m.r.Discard(4)
		if err = werr; err == nil {
			err = s.core.AddCredit(inc)
		}
	}
	if errors.Is(err, frame.ErrProtocol) && !errors.Is(err, frame.ErrTruncated) {
		return m.protocolError(err)
	}
	if err != nil {
		return m.readError(err, false)
	}
	return nil
}

func (m *muxConn) discard(n int) error {
	if err := m.r.Discard(n); err != nil {
		return m.readError(frame.Truncated(err), false)
	}
	return nil
}

// openStream reads an open frame's payload of n bytes and starts the
// stream's handler on a goroutine of its own, or refuses it. A stream
// counts as a call: against the server's bound on running calls, and as
// running for IdleTimeout and Shutdown.
func (m *muxConn) openStream(id uint32, n int) error {
	sh, ok := m.srv.Handler.(StreamHandler)
	m.mu.Lock()
	_, dup := m.calls[id]
	if m.streams[id] != nil {
		dup = true
	}
	if dup {
		m.mu.Unlock()
		return m.protocolError(fmt.Errorf("%w: call id %d already in flight", frame.ErrMuxMalformed, id))
	}
	code, why := frame.CodeNoHandler, "no handler for streams"
	if ok {
		code, why = m.admitLocked()
	}
	if code == 0 {
		m.admitted++ // as a request's: the grace must not cut its open
	}
	m.mu.Unlock()
	open, err := m.r.ReadPayload(nil, n)
	if err != nil {
		if code == 0 {
			m.srv.releaseCall()
			m.mu.Lock()
			m.admitted--
			m.mu.Unlock()
		}
		return m.readError(frame.Truncated(err), false)
	}
	if code != 0 {
		m.refuse(id, code, why)
		return nil
	}
	s := &Stream{m: m, id: id}
	s.core = stream.New((*streamSink)(s), stream.Config{Window: m.cfg.StreamWindow, MaxMessage: m.maxFrame(), MaxChunk: m.maxFrame() - frame.MuxHeaderSize})
	// What the stream may buffer, its window, is charged to the memory
	// budget for its life. Unlike a request's body, an open does not wait
	// for room: this is the connection's reader, and while it waited the
	// streams admitted on the connection could get none of the data they
	// need to finish and give room back. A stream that finds no room is
	// refused at once; the client may open it again.
	if w := int64(s.core.Window()); !m.acct.TryAcquire(w) {
		m.srv.releaseCall()
		m.mu.Lock()
		m.admitted--
		m.startGraceLocked()
		m.mu.Unlock()
		m.refuse(id, frame.CodeOverloaded, fmt.Sprintf("%v: no room for a stream's %d-byte window (budget %d bytes, %d held by this connection)",
			ErrMemoryBudget, w, m.srv.budget.Limit(), m.acct.Held()))
		return nil
	}
	s.ctx, s.cancel = context.WithCancelCause(m.ctx)
	m.mu.Lock()
	if m.streams == nil {
		m.streams = make(map[uint32]*Stream)
	}
	m.streams[id] = s
	if g := s.core.InitialGrant(); g > 0 && !m.broken {
		m.wbuf = frame.AppendWindow(m.wbuf, id, g)
		m.kickLocked()
	}
	m.mu.Unlock()
	m.srv.count(StatRequests)
	go m.serveStream(sh, s, open)
	return nil
}

// serveStream runs the handler of s and ends the stream with its outcome.
func (m *muxConn) serveStream(sh StreamHandler, s *Stream, open []byte) {
	err := m.runStream(sh, s, open)
	s.cancel(context.Canceled)
	s.core.Fail(ErrStreamDone)
	s.giveWindowBack()
	m.srv.releaseCall()
	if err != nil {
		m.srv.count(StatErrHandler)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !s.answered && !m.broken {
		s.answered = true
		if err == nil {
			m.wbuf = frame.AppendMux(m.wbuf, frame.KindEnd, s.id, s.trailer)
		} else {
			code, msg := frame.CodeHandler, err.Error()
			switch {
			case errors.Is(err, ErrHandlerPanic):
				msg = "handler panic"
			case errors.Is(err, frame.ErrFrameTooLarge):
				// Recv met a message over the frame limit: the client
				// gets it as it gets a request over it.
				code = frame.CodeTooLarge
			}
			m.wbuf = frame.AppendMuxError(m.wbuf, frame.KindError, s.id, code, msg)
		}
	}
	if m.streams[s.id] == s {
		delete(m.streams, s.id)
	}
	m.admitted--
	if m.admitted == 0 {
		m.idle.Broadcast()
		m.startGraceLocked()
	}
	m.flushLocked()
}

func (m *muxConn) runStream(sh StreamHandler, s *Stream, open []byte) (err error) {
	if !m.cfg.DisablePanicRecovery {
		defer func() {
			if v := recover(); v != nil {
				m.srv.count(StatErrPanic)
				err = &PanicError{Value: v}
			}
		}()
	}
	return sh.ServeStream(s.ctx, open, s)
}

// cancelStreamLocked acts on the client's cancel of stream id, if it is
// one: its handler's context ends and it is answered at once, as a call.
func (m *muxConn) cancelStreamLocked(id uint32, code frame.Code, cause error, msg string) bool {
	s := m.streams[id]
	if s == nil {
		return false
	}
	delete(m.streams, id)
	if !s.answered && !m.broken {
		s.answered = true
		m.wbuf = frame.AppendMuxError(m.wbuf, frame.KindError, id, code, msg)
	}
	s.cancel(cause)
	s.core.Fail(cause)
	// Failed, the stream buffers nothing more: its window goes back now,
	// before the cancel's answer, so that a client that has the answer
	// finds the room it held, though the handler may not have returned.
	s.giveWindowBack()
	m.idle.Broadcast() // its Send may wait for the writer
	return true
}

// failStreamsLocked ends every stream of a connection that ends.
func (m *muxConn) failStreamsLocked() {
	for _, s := range m.streams {
		s.cancel(ErrRemoteGone)
		s.core.Fail(ErrRemoteGone)
	}
}

var _ io.ReadWriter = (*Stream)(nil)
