package protoserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// Streaming methods (server-, client- and bidirectional streaming) ride
// on the streams of the multiplexed mode, version 3 (docs/PROTOCOL.md,
// "Streams"). The stream's opening payload is the request envelope of an
// ordinary call (method, deadline, metadata, span ids) whose payload is
// the request of a server-streaming method and empty otherwise; each
// message after it is one bare encoded message; the server's trailer is a
// response envelope with the method's Status, empty for OK. The shapes
// follow gRPC's generated streams, so that code moves over with few
// changes. Interceptors do not run around streaming methods.

// StreamMethodHandler is a streaming method, made by BidiStreamMethod,
// ClientStreamMethod or ServerStreamMethod, for Service.HandleStream.
type StreamMethodHandler struct {
	serve func(ctx context.Context, payload []byte, s *server.Stream) error
}

// ServerStream is the server's end of a streaming method: it receives
// Req messages and sends Resp messages. The generated Xxx_YyyServer
// interfaces are subsets of its methods.
type ServerStream[Req, Resp proto.Message] struct {
	ctx context.Context
	s   *server.Stream
	buf []byte
}

// Context is the method's context: it carries the caller's deadline and
// metadata, and ends when the caller cancels or the method returns.
func (x *ServerStream[Req, Resp]) Context() context.Context { return x.ctx }

// Send sends m to the caller.
func (x *ServerStream[Req, Resp]) Send(m Resp) error {
	return sendMessage(x.s.Send, &x.buf, m)
}

// SendAndClose sends the one response of a client-streaming method; the
// method then returns nil.
func (x *ServerStream[Req, Resp]) SendAndClose(m Resp) error { return x.Send(m) }

// Recv returns the caller's next message, or io.EOF once it has sent all.
func (x *ServerStream[Req, Resp]) Recv() (Req, error) {
	return recvMessage[Req](x.s.Recv)
}

// BidiStreamMethod makes fn a bidirectional streaming method.
func BidiStreamMethod[Req, Resp proto.Message](fn func(*ServerStream[Req, Resp]) error) *StreamMethodHandler {
	return &StreamMethodHandler{serve: func(ctx context.Context, _ []byte, s *server.Stream) error {
		return fn(&ServerStream[Req, Resp]{ctx: ctx, s: s})
	}}
}

// ClientStreamMethod makes fn a client-streaming method: it reads the
// caller's messages with Recv and answers with SendAndClose.
func ClientStreamMethod[Req, Resp proto.Message](fn func(*ServerStream[Req, Resp]) error) *StreamMethodHandler {
	return BidiStreamMethod(fn)
}

// ServerStreamMethod makes fn a server-streaming method: it gets the one
// request and sends its responses.
func ServerStreamMethod[Req, Resp proto.Message](fn func(Req, *ServerStream[Req, Resp]) error) *StreamMethodHandler {
	return &StreamMethodHandler{serve: func(ctx context.Context, payload []byte, s *server.Stream) error {
		req := newMessage[Req]()
		if err := unmarshalNew(payload, req); err != nil {
			return Errorf(InvalidArgument, "cannot decode the request: %v", err)
		}
		return fn(req, &ServerStream[Req, Resp]{ctx: ctx, s: s})
	}}
}

// HandleStream adds the streaming method name, served by h, and returns
// s; see Handle.
func (s *Service) HandleStream(name string, h *StreamMethodHandler) *Service {
	if name == "" || h == nil {
		panic("tcpez/protoserver: HandleStream needs a name and a StreamMethodHandler")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claimLocked(name)
	if s.streams == nil {
		s.streams = make(map[string]*StreamMethodHandler)
	}
	s.streams[name] = h
	return s
}

// ServeStream serves a streaming method: the Service is a
// server.StreamHandler. Its outcome travels as a Status in the trailer.
func (s *Service) ServeStream(ctx context.Context, open []byte, st *server.Stream) error {
	if !s.serving.Load() {
		s.mu.Lock()
		s.serving.Store(true)
		s.mu.Unlock()
	}
	if err := s.serveStream(ctx, open, st); err != nil {
		sp := span.New()
		st.SetTrailer(s.fail(nil, sp, err))
	}
	return nil
}

func (s *Service) serveStream(ctx context.Context, open []byte, st *server.Stream) (err error) {
	var r request
	if err := r.decode(open); err != nil {
		return Errorf(InvalidArgument, "malformed request envelope: %v", err)
	}
	h := s.streams[string(r.method)]
	switch {
	case h == nil:
		return Errorf(Unimplemented, "unknown streaming method %q", r.method)
	case s.draining.Load():
		return errDraining
	case r.timeout < 0:
		return errExpired
	}
	if limit := s.cfg.MaxConcurrency; limit > 0 {
		if s.active.Add(1) > int64(limit) {
			s.active.Add(-1)
			return errBusy
		}
		defer s.active.Add(-1)
	}
	sp := span.New()
	if r.spanID != 0 {
		sp.SetParentID(span.ID(r.spanID))
	}
	if len(r.traceID) == len(span.TraceID{}) {
		sp.SetTraceID(span.TraceID(r.traceID))
	}
	hctx := span.NewContext(ctx, sp)
	if r.timeout > 0 {
		dc := withDeadline(hctx, time.Duration(r.timeout))
		defer dc.release()
		hctx = dc
	}
	if r.md != nil {
		hctx = context.WithValue(hctx, incomingKey{}, r.md)
	}
	defer func() {
		if v := recover(); v != nil {
			err = s.panicked(&method{info: MethodInfo{Name: string(r.method)}}, v, sp)
		}
	}()
	err = h.serve(hctx, r.payload, st)
	if r.timeout > 0 && hctx.Err() == context.DeadlineExceeded {
		return errDeadline
	}
	return err
}

// ClientStream is the caller's end of a streaming method: it sends Req
// messages and receives Resp messages. The generated Xxx_YyyClient
// interfaces are subsets of its methods. Cancel the context it was opened
// with to give it up early.
type ClientStream[Req, Resp proto.Message] struct {
	ctx context.Context
	s   *client.Stream
	buf []byte
}

// OpenStream opens a client-streaming or bidirectional stream of method.
func OpenStream[Req, Resp proto.Message](ctx context.Context, c *Client, method string) (*ClientStream[Req, Resp], error) {
	return openStream[Req, Resp](ctx, c, method, nil)
}

// OpenServerStream calls the server-streaming method with req; the
// responses are read with Recv.
func OpenServerStream[Req, Resp proto.Message](ctx context.Context, c *Client, method string, req Req) (*ClientStream[Req, Resp], error) {
	x, err := openStream[Req, Resp](ctx, c, method, req)
	if err != nil {
		return nil, err
	}
	if err := x.s.CloseSend(); err != nil {
		return nil, streamError(ctx, err)
	}
	return x, nil
}

func openStream[Req, Resp proto.Message](ctx context.Context, c *Client, method string, req proto.Message) (*ClientStream[Req, Resp], error) {
	if c.c == nil {
		return nil, Errorf(Unimplemented, "streams are not available on a remote client")
	}
	open, err := encodeCall(nil, ctx, method, req)
	if err != nil {
		return nil, err
	}
	s, err := c.c.Stream(ctx, open)
	if err != nil {
		return nil, streamError(ctx, err)
	}
	return &ClientStream[Req, Resp]{ctx: ctx, s: s}, nil
}

// Context is the stream's context.
func (x *ClientStream[Req, Resp]) Context() context.Context { return x.ctx }

// Send sends m. Once the method has ended it returns io.EOF: Recv then
// says how.
func (x *ClientStream[Req, Resp]) Send(m Req) error {
	err := sendMessage(x.s.Send, &x.buf, m)
	if err == nil || err == io.EOF {
		return err
	}
	return streamError(x.ctx, err)
}

// Recv returns the next response, or io.EOF once the method returned
// successfully; its failure as a *Status.
func (x *ClientStream[Req, Resp]) Recv() (Resp, error) {
	m, err := recvMessage[Resp](x.s.Recv)
	if err == io.EOF {
		if t := x.s.Trailer(); len(t) > 0 {
			return m, trailerStatus(t)
		}
		return m, io.EOF
	}
	if err != nil {
		return m, streamError(x.ctx, err)
	}
	return m, nil
}

// CloseSend tells the method that the caller sends no more.
func (x *ClientStream[Req, Resp]) CloseSend() error { return x.s.CloseSend() }

// CloseAndRecv closes the sending side and returns the one response of
// a client-streaming method.
func (x *ClientStream[Req, Resp]) CloseAndRecv() (Resp, error) {
	if err := x.CloseSend(); err != nil {
		var zero Resp
		return zero, err
	}
	m, err := x.Recv()
	if err == io.EOF {
		return m, Errorf(Internal, "the method returned no response")
	}
	if err != nil {
		return m, err
	}
	if _, err := x.Recv(); err != io.EOF {
		if err == nil {
			err = Errorf(Internal, "the method sent more than one response")
		}
		return m, err
	}
	return m, nil
}

// trailerStatus is the Status a failed method's trailer carries.
func trailerStatus(t []byte) error {
	_, st, err := decodeResponse(t)
	switch {
	case err != nil:
		return &Status{Code: Internal, Message: "malformed trailer: " + err.Error(), cause: err}
	case st != nil:
		return st
	}
	return io.EOF
}

// sendMessage encodes m into buf and sends it with send.
func sendMessage(send func([]byte) error, buf *[]byte, m proto.Message) error {
	b, err := marshalAppend((*buf)[:0], m)
	if err != nil {
		return Errorf(Internal, "cannot encode the message: %v", err)
	}
	if cap(b) <= 1<<20 {
		*buf = b
	}
	return send(b)
}

// recvMessage receives a message with recv and decodes it into a new T.
func recvMessage[T proto.Message](recv func() ([]byte, error)) (T, error) {
	var zero T
	b, err := recv()
	if err != nil {
		return zero, err
	}
	m := newMessage[T]()
	if err := unmarshalNew(b, m); err != nil {
		return zero, Errorf(InvalidArgument, "cannot decode the %s message: %v", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return m, nil
}

// newMessage returns a new, empty T (a pointer to a generated message).
func newMessage[T proto.Message]() T {
	var zero T
	return zero.ProtoReflect().Type().New().Interface().(T)
}

// streamError is the Status of a stream that failed below the method.
func streamError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return transportError(ctx.Err())
	}
	if se, ok := errors.AsType[*client.ServerError](err); ok {
		return &Status{Code: wireCode(se.Code, Unknown), Message: err.Error(), cause: err}
	}
	if errors.Is(err, client.ErrNoStreams) {
		return &Status{Code: Unimplemented, Message: err.Error(), cause: err}
	}
	return transportError(fmt.Errorf("stream: %w", err))
}
