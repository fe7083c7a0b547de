package protoserver

import (
	"context"
	"io"
	"sync/atomic"

	"google.golang.org/protobuf/proto"
)

// Stream interceptors are the streaming methods' interceptors, in
// gRPC's shape (grpc.StreamServerInterceptor,
// grpc.StreamClientInterceptor): a server's run around the whole method
// and may wrap its stream to see or change every message; a client's run
// around the opening of a stream and may wrap the stream it returns.
// Unary interceptors never run around streams, nor stream interceptors
// around calls: a guard such as middleware.TokenAuth must be installed
// in both forms (middleware.TokenAuthStream), which is why a Service with
// Interceptors but no StreamInterceptors refuses streaming methods.
//
// With no stream interceptors a stream pays nothing for them: the
// generated code's Send and Recv go straight to the connection's stream.

// MessageStream is a streaming method's stream as a StreamInterceptor
// sees it: an interceptor may wrap it to see, change or count the
// messages, and pass the wrapper on to next.
type MessageStream interface {
	// SendMsg sends m, a Resp of the method, to the caller.
	SendMsg(m proto.Message) error
	// RecvMsg decodes the caller's next message, a Req of the method,
	// into m; io.EOF once the caller has sent all. The one request of a
	// server-streaming method is its first message.
	RecvMsg(m proto.Message) error
}

// StreamNext calls the rest of a stream interceptor chain: the next
// interceptor, or the method itself. ctx becomes the method's
// stream.Context().
type StreamNext func(ctx context.Context, ms MessageStream) error

// StreamInterceptor runs around a streaming method: it may inspect or
// change the context (see IncomingMetadata; span.FromContext is the
// method's span), wrap the stream, fail the method without calling next,
// or time it. info says the method's name and kind. Its error is the
// method's outcome, the Status the caller's Recv returns.
type StreamInterceptor func(ctx context.Context, info *MethodInfo, ms MessageStream, next StreamNext) error

// ClientMessageStream is the caller's end of a stream as a
// ClientStreamInterceptor sees it, which it may wrap.
type ClientMessageStream interface {
	// SendMsg sends m, a Req of the method; io.EOF once the method has
	// ended (RecvMsg then says how).
	SendMsg(m proto.Message) error
	// RecvMsg decodes the next response, a Resp of the method, into m;
	// io.EOF once the method returned successfully, its failure as a
	// *Status.
	RecvMsg(m proto.Message) error
	// CloseSend tells the method that the caller sends no more.
	CloseSend() error
}

// Streamer opens a stream of method: the rest of a client stream
// interceptor chain. req is the request of a server-streaming method,
// which travels in the stream's opening (the stream is then closed for
// sending), and nil for the other kinds.
type Streamer func(ctx context.Context, method string, req proto.Message) (ClientMessageStream, error)

// ClientStreamInterceptor runs around the opening of every stream of a
// Client: it may change the context (WithOutgoingMetadata, a span with
// span.NewContext), which the opening carries, fail without calling next,
// or wrap the stream next returns. The stream's end is seen through the
// wrapper: RecvMsg returning an error.
type ClientStreamInterceptor func(ctx context.Context, method string, req proto.Message, next Streamer) (ClientMessageStream, error)

// streamMethod is a streaming method of a Service.
type streamMethod struct {
	info    MethodInfo
	h       *StreamMethodHandler
	chained StreamNext // the interceptors around h; nil without
}

// chainStream returns h with ics around it, the first outermost; nil
// without interceptors, so that the method is called directly.
func chainStream(ics []StreamInterceptor, info *MethodInfo, h *StreamMethodHandler) StreamNext {
	if len(ics) == 0 {
		return nil
	}
	next := StreamNext(func(ctx context.Context, ms MessageStream) error {
		return h.serve(ctx, nil, nil, ms)
	})
	for i := len(ics) - 1; i >= 0; i-- {
		ic, inner := ics[i], next
		next = func(ctx context.Context, ms MessageStream) error {
			return ic(ctx, info, ms, inner)
		}
	}
	return next
}

// chainStreamer returns c's opening of streams with ics around it, the
// first outermost; nil without interceptors.
func (c *Client) chainStreamer(ics []ClientStreamInterceptor) Streamer {
	if len(ics) == 0 {
		return nil
	}
	next := Streamer(func(ctx context.Context, method string, req proto.Message) (ClientMessageStream, error) {
		b := &clientMessages{}
		if err := b.open(ctx, c, method, req); err != nil {
			return nil, err
		}
		return b, nil
	})
	for i := len(ics) - 1; i >= 0; i-- {
		ic, inner := ics[i], next
		next = func(ctx context.Context, method string, req proto.Message) (ClientMessageStream, error) {
			return ic(ctx, method, req, inner)
		}
	}
	return next
}

// OnClientStreamEnd returns ms wrapped so that done runs once, when the
// stream ends for its caller: RecvMsg returns io.EOF (done gets nil) or
// another error, SendMsg an error other than io.EOF, or ctx (the
// stream's context) ends first (done gets its error). It is for client
// stream interceptors that log, count or trace whole streams. A stream
// whose caller neither reads it to its end nor cancels ctx does not end.
func OnClientStreamEnd(ctx context.Context, ms ClientMessageStream, done func(err error)) ClientMessageStream {
	w := &endWatcher{ClientMessageStream: ms, done: done}
	w.stop = context.AfterFunc(ctx, func() { w.end(ctx.Err()) })
	return w
}

// endWatcher is the wrapper of OnClientStreamEnd.
type endWatcher struct {
	ClientMessageStream
	done  func(error)
	stop  func() bool
	ended atomic.Bool
}

func (w *endWatcher) SendMsg(m proto.Message) error {
	err := w.ClientMessageStream.SendMsg(m)
	if err != nil && err != io.EOF {
		w.finish(err)
	}
	return err
}

func (w *endWatcher) RecvMsg(m proto.Message) error {
	err := w.ClientMessageStream.RecvMsg(m)
	switch {
	case err == io.EOF:
		w.finish(nil)
	case err != nil:
		w.finish(err)
	}
	return err
}

// finish ends the stream from its caller's goroutine, which may read stop.
func (w *endWatcher) finish(err error) {
	w.stop()
	w.end(err)
}

// end calls done, the first time only: the caller's end and ctx's may
// race.
func (w *endWatcher) end(err error) {
	if !w.ended.Swap(true) {
		w.done(err)
	}
}
