package protoserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// Invoker makes a service-mode call: it sends req to method and decodes the
// answer into resp.
type Invoker func(ctx context.Context, method string, req, resp proto.Message) error

// ClientInterceptor runs around every call of a Client — plain, future or
// pipelined: it may change the context (see WithOutgoingMetadata), the
// request or the response, fail the call without calling next, or time
// it.
type ClientInterceptor func(ctx context.Context, method string, req, resp proto.Message, next Invoker) error

// ClientConfig holds a Client's settings, given to NewClient. The zero
// value of every field means its default.
type ClientConfig struct {
	// Interceptors run around every call, the first outermost; not
	// around streams.
	Interceptors []ClientInterceptor
	// StreamInterceptors run around the opening of every stream
	// (OpenStream, OpenServerStream, a generated streaming method), the
	// first outermost. A client interceptor that sends credentials or
	// metadata (middleware.ClientToken) needs its stream form here too
	// (middleware.ClientTokenStream) for streams to carry them.
	StreamInterceptors []ClientStreamInterceptor
}

// Client makes service-mode calls over a client.Client: each request and
// answer travels in an envelope (proto/tcpez/v1/envelope.proto). Generated
// clients (New<Service>Client) call through one; Call, Go and Pipeline
// serve services registered without generated code.
//
// Every error a call returns is a *Status, unless an interceptor returns
// another: the server's answer, or one the client made for a call that got
// none — DeadlineExceeded or Canceled for the context, Unavailable for a
// lost or missing connection, ResourceExhausted for a frame over the
// limits, Internal for a request that cannot be encoded or an answer that
// cannot be decoded — which wraps its cause.
//
// A call carries the context's deadline, the metadata of
// WithOutgoingMetadata, and as its parent the span of the context
// (span.FromContext: in a handler, the handler's own) or the span id of
// WithSpanID, with the span's trace id.
type Client struct {
	c            *client.Client
	remote       *server.Remote // set instead of c: calls go to a client
	interceptors []ClientInterceptor
	chain        Invoker  // the interceptors around roundTrip; nil without
	streamChain  Streamer // the stream interceptors; nil without
}

// NewClient returns a Client that calls through c. Several Clients may
// share one client.Client. The zero ClientConfig means every default.
func NewClient(c *client.Client, cfg ClientConfig) *Client {
	cc := &Client{c: c, interceptors: slices.Clone(cfg.Interceptors)}
	if len(cc.interceptors) > 0 {
		cc.chain = chain(cc.interceptors, cc.roundTrip)
	}
	cc.streamChain = cc.chainStreamer(slices.Clone(cfg.StreamInterceptors))
	return cc
}

// NewRemoteClient returns a Client that calls the methods a client
// serves on a connection of this server (the multiplexed mode, version
// 2): the client sets a Service as its client.Config.Handler, and a
// handler calls it back through r, from server.RemoteFromContext. Generated
// clients work over it unchanged: NewXxxClient(NewRemoteClient(r)).
// Statuses, deadlines, metadata and span ids flow as they do to a server;
// a client with no Handler answers Unimplemented, one that is gone
// Unavailable.
// Pipeline is not available on it.
func NewRemoteClient(r *server.Remote, cfg ClientConfig) *Client {
	cc := NewClient(nil, cfg)
	cc.remote = r
	return cc
}

// chain returns last with ics around it, the first outermost.
func chain(ics []ClientInterceptor, last Invoker) Invoker {
	next := last
	for i := len(ics) - 1; i >= 0; i-- {
		ic, inner := ics[i], next
		next = func(ctx context.Context, method string, req, resp proto.Message) error {
			return ic(ctx, method, req, resp, inner)
		}
	}
	return next
}

// Call calls method with req and decodes its answer into resp, which it
// resets first. A resp with vtprotobuf's pool feature is reset with its
// ResetVT, which keeps the memory of its bytes and repeated fields for the
// answer: the slices of its previous answer are then overwritten.
func (c *Client) Call(ctx context.Context, method string, req, resp proto.Message) error {
	if c.chain != nil {
		return c.chain(ctx, method, req, resp)
	}
	return c.roundTrip(ctx, method, req, resp)
}

// Call calls method with req and returns its answer, a new T. Generated
// clients make their plain calls with it.
func Call[T any, PT interface {
	*T
	proto.Message
}](ctx context.Context, c *Client, method string, req proto.Message) (*T, error) {
	resp := new(T)
	var err error
	if c.chain != nil {
		err = c.chain(ctx, method, req, PT(resp))
	} else {
		err = c.exchange(ctx, method, req, PT(resp), true)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Go starts a call of method with req and returns its future. Without
// interceptors the call costs no goroutine; with them, the interceptors
// run on a goroutine of their own. req must not be modified until the
// call completes.
func Go[T any, PT interface {
	*T
	proto.Message
}](ctx context.Context, c *Client, method string, req proto.Message) *Future[T] {
	f := newFuture[T, PT](true)
	if c.chain != nil || c.remote != nil {
		f.start()
		go func() { f.resolve(c.Call(ctx, method, req, f.msg)) }()
		return f
	}
	bufs := getBuffers()
	b, err := encodeCall(bufs.req[:0], ctx, method, req)
	f.send(ctx, c.c, bufs, b, err)
	return f
}

// roundTrip is the end of the interceptor chain, and Call without one.
func (c *Client) roundTrip(ctx context.Context, method string, req, resp proto.Message) error {
	return c.exchange(ctx, method, req, resp, false)
}

// exchange makes one call. fresh says that resp is a new message, into
// which the answer can be decoded without a reset.
func (c *Client) exchange(ctx context.Context, method string, req, resp proto.Message, fresh bool) error {
	bufs := getBuffers()
	defer putBuffers(bufs)
	// A call through a remote (a server calling its client back) goes as
	// one slice; a client's sends a large request's biggest field from
	// where it lies.
	b, tail, err := encodeCallTail(bufs.req[:0], ctx, method, req, c.remote == nil)
	bufs.req = b
	if err != nil {
		return err
	}
	var ans []byte
	if c.remote != nil {
		ans, err = c.remote.Call(ctx, b)
	} else {
		ans, err = c.c.CallAppendTail(ctx, bufs.ans[:0], b, tail)
		bufs.ans = ans
	}
	if err != nil {
		return transportError(err)
	}
	return decodeAnswer(ans, resp, fresh)
}

// encodeCall appends the request envelope of a call made with ctx.
func encodeCall(b []byte, ctx context.Context, method string, req proto.Message) ([]byte, error) {
	b, _, err := encodeCallTail(b, ctx, method, req, false)
	return b, err
}

// encodeCallTail is encodeCall that, with split set, may leave the bytes
// of a large request's biggest field out of b, returning them as the tail
// to send right after it (see callFields.appendRequest).
func encodeCallTail(b []byte, ctx context.Context, method string, req proto.Message, split bool) (out, tail []byte, err error) {
	var c callFields
	if o := outgoingFrom(ctx); o != nil {
		c.spanID, c.md = uint64(o.spanID), o.md
	}
	// A handler's context carries its span: its calls are the span's
	// children, in its trace, with no code of the handler's.
	if sp := span.FromContext(ctx); sp != nil {
		if c.spanID == 0 {
			c.spanID = uint64(sp.ID())
		}
		c.trace = sp.TraceID()
	}
	if d, ok := ctx.Deadline(); ok {
		t := time.Until(d)
		if t <= 0 {
			return b, nil, transportError(context.DeadlineExceeded)
		}
		c.timeout = int64(t)
	}
	b, tail, err = c.appendRequest(b, method, req, split)
	if err != nil {
		return b, nil, &Status{Code: Internal, Message: fmt.Sprintf("cannot encode the %s request: %v", method, err), cause: err}
	}
	return b, tail, nil
}

// decodeAnswer decodes a response envelope: its Status, or its payload
// into resp, which is reset first unless it is fresh.
func decodeAnswer(ans []byte, resp proto.Message, fresh bool) error {
	payload, st, err := decodeResponse(ans)
	switch {
	case err != nil:
		return &Status{Code: Internal, Message: "malformed response envelope: " + err.Error(), cause: err}
	case st != nil:
		return st
	}
	decode := unmarshalReset
	if fresh {
		decode = unmarshalNew
	}
	if err := decode(payload, resp); err != nil {
		return &Status{Code: Internal, Message: fmt.Sprintf("cannot decode the %s response: %v", resp.ProtoReflect().Descriptor().FullName(), err), cause: err}
	}
	return nil
}

// transportError is the Status of a call that got no answer.
func transportError(err error) error {
	if _, ok := errors.AsType[*Status](err); ok {
		return err
	}
	code := Unknown
	_, tooBig := errors.AsType[*frame.SizeError](err)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = Canceled
	case tooBig:
		code = ResourceExhausted
	case errors.Is(err, frame.ErrProtocol):
		code = Internal
	case errors.Is(err, client.ErrConnLost), errors.Is(err, client.ErrNoConnection), errors.Is(err, client.ErrClosed),
		errors.Is(err, server.ErrRemoteGone), errors.Is(err, server.ErrPushDropped):
		code = Unavailable
	}
	if re, ok := errors.AsType[*server.RemoteError](err); ok {
		code = wireCode(re.Code, code)
	}
	return &Status{Code: code, Message: err.Error(), cause: err}
}

// wireCode is the Status code of a call the peer failed with a mux error
// code; otherwise if the code has no match.
func wireCode(c frame.Code, otherwise Code) Code {
	switch c {
	case frame.CodeNoHandler:
		return Unimplemented
	case frame.CodeCancelled:
		return Canceled
	case frame.CodeDeadline:
		return DeadlineExceeded
	case frame.CodeHandler:
		return Internal
	case frame.CodeOverloaded:
		return ResourceExhausted
	case frame.CodeShuttingDown:
		return Unavailable
	}
	return otherwise
}

// HealthProbe returns a client.Probe that calls HealthMethod, for
// client.HealthCheck: an address is healthy while its service answers OK,
// and ejected when it answers anything else (draining, overloaded) or not
// at all.
func HealthProbe() client.Probe {
	return func(ctx context.Context, _ string, call func(context.Context, []byte) ([]byte, error)) error {
		// The probe's deadline travels with it, like any call's.
		var timeout int64
		if d, ok := ctx.Deadline(); ok {
			timeout = max(int64(time.Until(d)), 1)
		}
		req, err := appendRequest(nil, HealthMethod, &emptypb.Empty{}, 0, span.TraceID{}, timeout, nil)
		if err != nil {
			return err
		}
		ans, err := call(ctx, req)
		if err != nil {
			return err
		}
		_, st, err := decodeResponse(ans)
		if err != nil {
			return err
		}
		if st != nil {
			return st
		}
		return nil
	}
}
