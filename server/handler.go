package server

import (
	"context"
	"fmt"

	"github.com/tcpez/tcpez/span"
)

// Handler answers one request.
//
// req is valid only until Respond returns, and the answer must not be
// changed after Respond returns; an answer may be req itself. (A request
// may lie in the connection's read buffer, and the buffer of one over 64
// KiB is mapped memory that the server reuses and whose pages it later
// gives back to the system: a goroutine that reads req after Respond
// returned reads another request's bytes or zeros.) On a v1 connection ctx
// is the connection's: it ends when the connection fails (a read or write
// error), when it closes, and when the server stops. A client's end of
// stream is not a failure: a client may send its requests, close its side
// and read the answers (as `printf … | nc` does), so the handlers of the
// requests read go on with ctx, are answered, and only then does the
// connection close. On a mux connection it is the call's: it also ends
// when the client cancels the call, and when Respond returns; it must not
// be used after that except through contexts derived from it. It carries
// sp (span.FromContext), so that the calls the handler makes with it,
// through clients that propagate spans, are sp's children. sp belongs to
// this request and is reused after Respond returns, and so is the context
// value itself: goroutines the handler starts must finish with both
// before then.
//
// An error (or a panic) is answered as Config.EncodeError says; by default
// the connection is closed after the answers before this one are written,
// which is what the original tcpez clients expect.
type Handler interface {
	Respond(ctx context.Context, req []byte, sp *span.Span) ([]byte, error)
}

// AppendHandler is a Handler that appends its answer to a buffer the
// connection keeps, which saves allocating an answer per request: the
// server calls RespondAppend instead of Respond when its Handler has it.
//
// dst is empty, with some capacity; the answer is dst with the answer
// appended, as append returns it, and nothing else: the connection keeps
// the returned slice and appends a later answer to it once this one is
// written. For a request over 4 KiB, dst is a buffer of about the
// request's size lent from the server's pool of large buffers, within the
// memory budget, so that a large answer is not a new allocation either;
// it goes back to the pool once the answer is written. The rest of Handler's contract holds: req is valid only until
// RespondAppend returns, and an error is answered as Respond's would be.
type AppendHandler interface {
	Handler
	RespondAppend(ctx context.Context, dst, req []byte, sp *span.Span) ([]byte, error)
}

// TailHandler is an AppendHandler whose answer may end with bytes it does
// not copy: RespondTail returns its answer in two parts, head, appended to
// dst as RespondAppend's answer is, and tail, and the answer is head then
// tail, one frame. A large tail goes to the socket from the handler's own
// slice (a gathering write), so an answer that is mostly one big field
// where it already lies, such as a protobuf message's bytes field, is not
// copied into a buffer first: package protoserver answers so. The server
// calls RespondTail instead of RespondAppend when its Handler has it, on
// the connections that speak tcpez frames (not those of a Config.Codec).
//
// tail is an answer as Handler describes one: it may lie in req, and it
// must not change after RespondTail returns. It is ignored when err is
// not nil.
type TailHandler interface {
	AppendHandler
	RespondTail(ctx context.Context, dst, req []byte, sp *span.Span) (head, tail []byte, err error)
}

// HandlerFunc lets an ordinary function be a Handler.
type HandlerFunc func(ctx context.Context, req []byte, sp *span.Span) ([]byte, error)

// Respond calls f.
func (f HandlerFunc) Respond(ctx context.Context, req []byte, sp *span.Span) ([]byte, error) {
	return f(ctx, req, sp)
}

// PanicError is the error a recovered handler panic becomes. It matches
// ErrHandlerPanic.
type PanicError struct {
	Value any    // what the handler panicked with
	Stack []byte // the goroutine's stack at the panic
}

func (e *PanicError) Error() string { return fmt.Sprintf("tcpez/server: handler panic: %v", e.Value) }

// Is makes a PanicError match ErrHandlerPanic.
func (e *PanicError) Is(target error) bool { return target == ErrHandlerPanic }
