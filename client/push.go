package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/span"
)

// Handler answers the calls a server makes to this client (see
// Config.Handler). It has the shape of server.Handler, so a
// server.HandlerFunc serves as one.
type Handler interface {
	Respond(ctx context.Context, req []byte, sp *span.Span) ([]byte, error)
}

// HandlerFunc lets an ordinary function be a Handler.
type HandlerFunc func(ctx context.Context, req []byte, sp *span.Span) ([]byte, error)

// Respond calls f.
func (f HandlerFunc) Respond(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
	return f(ctx, req, sp)
}

// Notification is what a server pushed to the client (Config.OnNotify).
type Notification struct {
	Addr    string // the server's address
	Payload []byte // the client's to keep
}

// panicMessage is what a server learns of a panic in the Handler.
const panicMessage = "handler panic"

// servedCalls holds the calls a server made to a connection that are
// running, by the server's id, so that a cancel from the server reaches
// its handler. Guarded by the connection's mu.
type servedCalls struct {
	ctx    context.Context // ends when the connection fails
	cancel context.CancelFunc
	calls  map[uint32]context.CancelCauseFunc
}

// pushReader reports whether the client takes traffic from its servers,
// whose connections must then always be read.
func (c *Client) pushReader() bool {
	return c.cfg.Handler != nil || c.cfg.OnNotify != nil
}

// queueFrame queues a frame the client sends of its own accord (an answer
// to the server), written at once by a background writer when nobody is
// writing.
func (cn *conn) queueFrame(build func([]byte) []byte) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	cn.out.buf = build(cn.out.buf)
	if cn.out.writing {
		cn.mu.Unlock()
		return
	}
	cn.out.writing = true
	cn.handOffUnlock(nil, 0, 0)
}

// notified delivers a notification of n bytes, on the reading goroutine,
// so that the notifications of a connection arrive in order.
func (cn *conn) notified(n int) error {
	body, err := cn.in.r.ReadPayload(nil, n)
	if err != nil {
		return frame.Truncated(err)
	}
	if f := cn.c.cfg.OnNotify; f != nil {
		f(Notification{Addr: cn.addr, Payload: body})
	}
	return nil
}

// called starts the Handler on a call of n bytes from the server.
func (cn *conn) called(id uint32, n int) error {
	body, err := cn.in.r.ReadPayload(nil, n)
	if err != nil {
		return frame.Truncated(err)
	}
	h := cn.c.cfg.Handler
	if h == nil {
		cn.queueFrame(func(b []byte) []byte {
			return frame.AppendMuxError(b, frame.KindError, id, frame.CodeNoHandler, "no handler")
		})
		return nil
	}
	cn.mu.Lock()
	s := &cn.served
	if s.calls == nil {
		s.ctx, s.cancel = context.WithCancel(cn.ep.ctx)
		s.calls = make(map[uint32]context.CancelCauseFunc)
	}
	if _, dup := s.calls[id]; dup {
		cn.mu.Unlock()
		return fmt.Errorf("%w: the server's call id %d is already running", ErrUnexpectedAnswer, id)
	}
	if len(s.calls) >= cn.c.cfg.MaxInFlight {
		// A server may not make the client run without bound.
		cn.mu.Unlock()
		cn.queueFrame(func(b []byte) []byte {
			return frame.AppendMuxError(b, frame.KindError, id, frame.CodeTooMany, "too many calls from the server")
		})
		return nil
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	s.calls[id] = cancel
	cn.mu.Unlock()
	if !cn.c.spawn(func() { cn.serveCall(ctx, h, id, body) }) {
		cancel(ErrClosed)
	}
	return nil
}

// serveCall runs the Handler and answers the server, unless the server
// gave the call up meanwhile (it was answered then).
func (cn *conn) serveCall(ctx context.Context, h Handler, id uint32, req []byte) {
	resp, err := respond(ctx, h, req)
	cn.mu.Lock()
	cancel, live := cn.served.calls[id]
	delete(cn.served.calls, id)
	cn.mu.Unlock()
	if !live {
		return
	}
	cancel(context.Canceled)
	if err == nil && len(resp) > cn.mux.maxBody {
		// Sent, it would end the connection: the server refuses a frame
		// over its limit as a protocol error.
		err = fmt.Errorf("an answer of %d bytes, over the server's limit of %d", len(resp), cn.mux.maxBody)
	}
	cn.queueFrame(func(b []byte) []byte {
		if err == nil {
			return frame.AppendMux(b, frame.KindAnswer, id, resp)
		}
		return frame.AppendMuxError(b, frame.KindError, id, frame.CodeHandler, err.Error())
	})
}

func respond(ctx context.Context, h Handler, req []byte) (resp []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = errors.New(panicMessage)
		}
	}()
	return h.Respond(ctx, req, span.New())
}

// cancelled acts on the server's cancel of its call id: the handler's
// context ends (its cause context.DeadlineExceeded when the server's
// deadline passed) and the call is answered at once.
func (cn *conn) cancelled(id uint32, n int) error {
	why := frame.CodeCancelled
	if n == 2 {
		p, err := cn.in.r.Peek(2)
		if err != nil {
			return frame.Truncated(err)
		}
		why = frame.Code(uint16(p[0])<<8 | uint16(p[1]))
		_ = cn.in.r.Discard(2)
	}
	code, cause := frame.CodeCancelled, context.Canceled
	if why == frame.CodeDeadline {
		code, cause = frame.CodeDeadline, context.DeadlineExceeded
	}
	cn.mu.Lock()
	cancel, live := cn.served.calls[id]
	delete(cn.served.calls, id)
	cn.mu.Unlock()
	if !live {
		return nil // answered already
	}
	cancel(cause)
	cn.queueFrame(func(b []byte) []byte {
		return frame.AppendMuxError(b, frame.KindError, id, code, code.String())
	})
	return nil
}
