package protoserver

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

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
// changes. Interceptors (ServiceConfig.Interceptors,
// ClientConfig.Interceptors) do not run around streaming methods: stream
// interceptors do (ServiceConfig.StreamInterceptors,
// ClientConfig.StreamInterceptors; stream_interceptor.go), and a service
// with the first but not the second refuses streaming methods.

// StreamMethodHandler is a streaming method, made by BidiStreamMethod,
// ClientStreamMethod or ServerStreamMethod, for Service.HandleStream.
type StreamMethodHandler struct {
	clientStreams, serverStreams bool
	// types are the request and response message types, for reflection.
	types [2]protoreflect.MessageDescriptor
	// serve runs the method on st, whose opening carried first, or on
	// ms when interceptors wrap the stream (st and first are then nil).
	serve func(ctx context.Context, st *server.Stream, first []byte, ms MessageStream) error
}

// ServerStream is the server's end of a streaming method: it receives
// Req messages and sends Resp messages. The generated Xxx_YyyServer
// interfaces are subsets of its methods.
type ServerStream[Req, Resp proto.Message] struct {
	ctx context.Context
	s   *server.Stream // without stream interceptors
	buf []byte
	ms  MessageStream // the stream as the interceptors wrapped it
}

// Context is the method's context: it carries the caller's deadline and
// metadata, and ends when the caller cancels or the method returns. With
// stream interceptors, it is the context the innermost one passed on.
func (x *ServerStream[Req, Resp]) Context() context.Context { return x.ctx }

// Send sends m to the caller.
func (x *ServerStream[Req, Resp]) Send(m Resp) error {
	if x.ms != nil {
		return x.ms.SendMsg(m)
	}
	return sendMessage(x.s.Send, &x.buf, m)
}

// SendAndClose sends the one response of a client-streaming method; the
// method then returns nil.
func (x *ServerStream[Req, Resp]) SendAndClose(m Resp) error { return x.Send(m) }

// Recv returns the caller's next message, or io.EOF once it has sent all.
func (x *ServerStream[Req, Resp]) Recv() (Req, error) {
	if x.ms != nil {
		return recvNew[Req](x.ms, nil)
	}
	return recvNew[Req](nil, x.s.Recv)
}

// BidiStreamMethod makes fn a bidirectional streaming method.
func BidiStreamMethod[Req, Resp proto.Message](fn func(*ServerStream[Req, Resp]) error) *StreamMethodHandler {
	return streamMethodOf(fn, true)
}

// ClientStreamMethod makes fn a client-streaming method: it reads the
// caller's messages with Recv and answers with SendAndClose.
func ClientStreamMethod[Req, Resp proto.Message](fn func(*ServerStream[Req, Resp]) error) *StreamMethodHandler {
	return streamMethodOf(fn, false)
}

func streamMethodOf[Req, Resp proto.Message](fn func(*ServerStream[Req, Resp]) error, serverStreams bool) *StreamMethodHandler {
	return &StreamMethodHandler{clientStreams: true, serverStreams: serverStreams, types: messageTypes[Req, Resp](),
		serve: func(ctx context.Context, st *server.Stream, _ []byte, ms MessageStream) error {
			return fn(&ServerStream[Req, Resp]{ctx: ctx, s: st, ms: ms})
		}}
}

// ServerStreamMethod makes fn a server-streaming method: it gets the one
// request and sends its responses. Stream interceptors see the request
// as the stream's first received message.
func ServerStreamMethod[Req, Resp proto.Message](fn func(Req, *ServerStream[Req, Resp]) error) *StreamMethodHandler {
	return &StreamMethodHandler{serverStreams: true, types: messageTypes[Req, Resp](),
		serve: func(ctx context.Context, st *server.Stream, first []byte, ms MessageStream) error {
			x := &ServerStream[Req, Resp]{ctx: ctx, s: st, ms: ms}
			var (
				req Req
				err error
			)
			if ms != nil {
				req, err = recvNew[Req](ms, nil)
			} else {
				req = newMessage[Req]()
				err = decodeMessage(first, req, true)
			}
			if err == io.EOF {
				return Errorf(InvalidArgument, "no request")
			}
			if err != nil {
				return err
			}
			return fn(req, x)
		}}
}

// serverMessages is the MessageStream of a server.Stream under stream
// interceptors.
type serverMessages struct {
	s *server.Stream
	// first is the request of a server-streaming method, which came in
	// the stream's opening; the first RecvMsg returns it.
	first    []byte
	hasFirst bool
	buf      []byte
}

func (b *serverMessages) SendMsg(m proto.Message) error { return sendMessage(b.s.Send, &b.buf, m) }

func (b *serverMessages) RecvMsg(m proto.Message) error {
	p, err := b.next()
	if err != nil {
		return err
	}
	return decodeMessage(p, m, false)
}

// next returns the next message's bytes.
func (b *serverMessages) next() ([]byte, error) {
	if b.hasFirst {
		p := b.first
		b.first, b.hasFirst = nil, false
		return p, nil
	}
	return b.s.Recv()
}

// HandleStream adds the streaming method name, served by h, and returns
// s; see Handle. It panics if the service has Interceptors but no
// StreamInterceptors (see ServiceConfig.StreamInterceptors): the method
// would run without the service's guards.
func (s *Service) HandleStream(name string, h *StreamMethodHandler) *Service {
	if name == "" || h == nil {
		panic("tcpez/protoserver: HandleStream needs a name and a StreamMethodHandler")
	}
	if len(s.cfg.Interceptors) > 0 && s.cfg.StreamInterceptors == nil {
		panic("tcpez/protoserver: streaming method " + name + " added to a service with Interceptors but no StreamInterceptors: " +
			"interceptors do not run around streaming methods, so it would be served unguarded; " +
			"set ServiceConfig.StreamInterceptors (middleware.AuthStream, TokenAuthStream, ...), " +
			"or to an empty, non-nil slice to serve streams without")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claimLocked(name)
	if s.streams == nil {
		s.streams = make(map[string]*streamMethod)
	}
	m := &streamMethod{info: MethodInfo{Name: name, IsClientStream: h.clientStreams, IsServerStream: h.serverStreams}, h: h}
	m.chained = chainStream(s.cfg.StreamInterceptors, &m.info, h)
	s.streams[name] = m
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
	m := s.streams[string(r.method)]
	switch {
	case m == nil:
		return Errorf(Unimplemented, "unknown streaming method %q", r.method)
	case s.draining.Load():
		return errDraining
	case r.timeout < 0:
		return errExpired
	}
	if !s.acquire() {
		return errBusy
	}
	defer s.release()
	sp := span.New()
	if r.spanID != 0 {
		sp.SetParentID(span.ID(r.spanID))
	}
	if len(r.traceID) == len(span.TraceID{}) {
		sp.SetTraceID(span.TraceID(r.traceID))
	}
	hctx, dc := r.methodContext(span.NewContext(ctx, sp))
	if dc != nil {
		defer dc.release()
	}
	defer func() {
		if v := recover(); v != nil {
			err = s.panicked(&method{info: m.info}, v, sp)
		}
	}()
	if m.chained == nil {
		err = m.h.serve(hctx, st, r.payload, nil)
	} else {
		err = m.chained(hctx, &serverMessages{s: st, first: r.payload, hasFirst: !m.h.clientStreams})
	}
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
	msgs clientMessages      // the stream's own messages, when ms is nil; its ctx always
	ms   ClientMessageStream // the stream as the interceptors returned it
}

// OpenStream opens a client-streaming or bidirectional stream of method.
func OpenStream[Req, Resp proto.Message](ctx context.Context, c *Client, method string) (*ClientStream[Req, Resp], error) {
	return openStream[Req, Resp](ctx, c, method, nil)
}

// OpenServerStream calls the server-streaming method with req; the
// responses are read with Recv.
func OpenServerStream[Req, Resp proto.Message](ctx context.Context, c *Client, method string, req Req) (*ClientStream[Req, Resp], error) {
	return openStream[Req, Resp](ctx, c, method, req)
}

func openStream[Req, Resp proto.Message](ctx context.Context, c *Client, method string, req proto.Message) (*ClientStream[Req, Resp], error) {
	if c.streamChain != nil {
		ms, err := c.streamChain(ctx, method, req)
		if err != nil {
			return nil, err
		}
		return &ClientStream[Req, Resp]{msgs: clientMessages{ctx: ctx}, ms: ms}, nil
	}
	x := &ClientStream[Req, Resp]{}
	if err := x.msgs.open(ctx, c, method, req); err != nil {
		return nil, err
	}
	return x, nil
}

// Context is the stream's context.
func (x *ClientStream[Req, Resp]) Context() context.Context { return x.msgs.ctx }

// Send sends m. Once the method has ended it returns io.EOF: Recv then
// says how.
func (x *ClientStream[Req, Resp]) Send(m Req) error {
	if x.ms != nil {
		return x.ms.SendMsg(m)
	}
	return x.msgs.SendMsg(m)
}

// Recv returns the next response, or io.EOF once the method returned
// successfully; its failure as a *Status.
func (x *ClientStream[Req, Resp]) Recv() (Resp, error) {
	if x.ms != nil {
		return recvNew[Resp](x.ms, nil)
	}
	return recvNew[Resp](nil, x.msgs.next)
}

// CloseSend tells the method that the caller sends no more.
func (x *ClientStream[Req, Resp]) CloseSend() error {
	if x.ms != nil {
		return x.ms.CloseSend()
	}
	return x.msgs.CloseSend()
}

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

// clientMessages is the ClientMessageStream of a client.Stream, under
// the interceptors.
type clientMessages struct {
	ctx context.Context // the context it was opened with
	s   *client.Stream
	buf []byte
}

// open opens the stream of method, with req in its opening for a
// server-streaming method, which then sends nothing more.
func (b *clientMessages) open(ctx context.Context, c *Client, method string, req proto.Message) error {
	if c.c == nil {
		return Errorf(Unimplemented, "streams are not available on a remote client")
	}
	open, err := encodeCall(nil, ctx, method, req)
	if err != nil {
		return err
	}
	s, err := c.c.Stream(ctx, open)
	if err != nil {
		return streamError(ctx, err)
	}
	b.ctx, b.s = ctx, s
	if req == nil {
		return nil
	}
	if err := s.CloseSend(); err != nil {
		return streamError(ctx, err)
	}
	return nil
}

func (b *clientMessages) SendMsg(m proto.Message) error {
	err := sendMessage(b.s.Send, &b.buf, m)
	if err == nil || err == io.EOF {
		return err
	}
	return streamError(b.ctx, err)
}

func (b *clientMessages) RecvMsg(m proto.Message) error {
	p, err := b.next()
	if err != nil {
		return err
	}
	return decodeMessage(p, m, false)
}

// next returns the next response's bytes: io.EOF once the method returned
// successfully, its failure as a *Status.
func (b *clientMessages) next() ([]byte, error) {
	p, err := b.s.Recv()
	if err == io.EOF {
		if t := b.s.Trailer(); len(t) > 0 {
			return nil, trailerStatus(t)
		}
		return nil, io.EOF
	}
	if err != nil {
		return nil, streamError(b.ctx, err)
	}
	return p, nil
}

func (b *clientMessages) CloseSend() error { return b.s.CloseSend() }

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

// recvNew receives the next message as a new T: through ms when
// interceptors wrap the stream, from next otherwise, where the message is
// made only once its bytes have come (the end of a stream costs none).
func recvNew[T proto.Message](ms interface{ RecvMsg(proto.Message) error }, next func() ([]byte, error)) (T, error) {
	var zero T
	if ms != nil {
		m := newMessage[T]()
		if err := ms.RecvMsg(m); err != nil {
			return zero, err
		}
		return m, nil
	}
	p, err := next()
	if err != nil {
		return zero, err
	}
	m := newMessage[T]()
	if err := decodeMessage(p, m, true); err != nil {
		return zero, err
	}
	return m, nil
}

// decodeMessage decodes a stream's message p into m, which is empty if
// fresh.
func decodeMessage(p []byte, m proto.Message, fresh bool) error {
	decode := unmarshalReset
	if fresh {
		decode = unmarshalNew
	}
	if err := decode(p, m); err != nil {
		return Errorf(InvalidArgument, "cannot decode the %s message: %v", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}

// messageTypes returns the descriptors of Req and Resp, pointers to
// generated messages (a nil one describes its type).
func messageTypes[Req, Resp proto.Message]() [2]protoreflect.MessageDescriptor {
	var req Req
	var resp Resp
	return [2]protoreflect.MessageDescriptor{req.ProtoReflect().Descriptor(), resp.ProtoReflect().Descriptor()}
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
