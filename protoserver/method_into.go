package protoserver

import (
	"context"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/span"
)

// MethodInto makes fn a method for Service.Handle that fills a response
// the service gives it, rather than returning a new one: the service
// reuses its response messages from call to call, so a method that
// allocates nothing else costs no allocation per call (with
// ServiceConfig.RequestReuse for the request). resp is empty; fn sets its
// fields and returns nil, or returns an error for the caller, as Method's
// fn does, and resp is then not sent. A panic is recovered and answered
// Internal.
//
// resp belongs to the service once fn returns: fn must not keep it, nor
// use it from a goroutine that outlives the call. Its field values may
// point anywhere, into the request too: once the answer is encoded, the
// service empties resp as a new message is, dropping them, and never
// writes into them. With interceptors on the service, which may keep the
// response they see, each call gets a new message instead.
//
// Generated servers use it for a unary method M when they also have MInto
// (see protoc-gen-go-tcpez).
func MethodInto[Req, Resp any, PReq interface {
	*Req
	proto.Message
}, PResp interface {
	*Resp
	proto.Message
}](fn func(ctx context.Context, req PReq, resp PResp, sp *span.Span) error) *MethodHandler {
	h := Method(func(ctx context.Context, req PReq, sp *span.Span) (PResp, error) {
		resp := PResp(new(Resp))
		if err := fn(ctx, req, resp, sp); err != nil {
			return nil, err
		}
		return resp, nil
	})
	is := &intoServer[Req, Resp, PReq, PResp]{fn: fn}
	_, is.aliases = any(PReq(new(Req))).(vtAliaser)
	_, is.resets = any(PReq(new(Req))).(vtResetter)
	h.serveInto = is.serve
	return h
}

// serveIntoFunc serves one call of a MethodInto whole: it decodes the
// request payload, runs the method and appends the encoded answer to dst.
// The request envelope's fields come as arguments of their own, not as a
// struct nor a *request: the struct, built and then copied into the
// call's arguments, cost BenchmarkServiceRespondVT 5 ns, and a pointer
// would escape through the call, an allocation each.
type serveIntoFunc func(s *Service, ctx, hctx context.Context, dst, payload []byte, m *method, timeout int64, split bool, sp *span.Span) (head, tail []byte, err error)

// intoServer serves the calls of a MethodInto that no interceptor runs
// around: with messages of the method's own types, from a pool of its own,
// the method called directly, and what the request type can do (aliases,
// resets) asked once. The path interceptors need (Next, proto.Message,
// the method's generic pools and closures) made BenchmarkServiceRespondVT
// 9% slower (97.5 against 89.2 ns, with appendField's single question).
type intoServer[Req, Resp any, PReq interface {
	*Req
	proto.Message
}, PResp interface {
	*Resp
	proto.Message
}] struct {
	fn func(ctx context.Context, req PReq, resp PResp, sp *span.Span) error
	// calls holds the messages of calls past: a response, and with
	// ServiceConfig.RequestReuse a request, in one pooled pair.
	calls sync.Pool
	// aliases and resets: the request type has vtprotobuf's
	// UnmarshalVTUnsafe and ResetVT (see unmarshalRequest, releaseRequest).
	aliases, resets bool
}

// intoCall is the messages of one call, pooled together: one pool's Get
// and Put rather than two.
type intoCall[Req, Resp any] struct {
	req  Req // with ServiceConfig.RequestReuse
	resp Resp
}

// serve is the method's serveIntoFunc.
func (is *intoServer[Req, Resp, PReq, PResp]) serve(s *Service, ctx, hctx context.Context, dst, payload []byte, m *method, timeout int64, split bool, sp *span.Span) (head, tail []byte, err error) {
	call, ok := is.calls.Get().(*intoCall[Req, Resp])
	if !ok {
		call = new(intoCall[Req, Resp])
	}
	reuse := s.cfg.RequestReuse
	req := PReq(&call.req)
	if !reuse {
		req = new(Req)
	}
	var aliased bool
	if reuse && is.aliases {
		aliased, err = true, any(req).(vtAliaser).UnmarshalVTUnsafe(payload)
	} else {
		aliased, err = unmarshalRequest(payload, req, reuse, reuse && s.cfg.AliasRequestBytes)
	}
	if err != nil {
		is.release(call, reuse, aliased)
		return nil, nil, Errorf(InvalidArgument, "cannot decode the %s request: %v", m.info.Name, err)
	}
	// As in Service.invoke: no tail in a reused request's own memory.
	split = split && !(reuse && !aliased && is.resets)
	resp := PResp(&call.resp)
	err = is.run(s, hctx, m, req, resp, sp)
	head, tail, err = answer(ctx, hctx, dst, m, timeout, split, resp, err)
	is.release(call, reuse, aliased)
	return head, tail, err
}

// release empties a call's messages, as releaseRequest does a reused
// request, and puts them back. Emptied as new, the response keeps no
// field memory, which may be the request's, or a tail still to be written.
func (is *intoServer[Req, Resp, PReq, PResp]) release(call *intoCall[Req, Resp], reuse, aliased bool) {
	switch {
	case !reuse:
	case is.resets && !aliased:
		any(PReq(&call.req)).(vtResetter).ResetVT()
	default:
		call.req = *new(Req)
	}
	call.resp = *new(Resp)
	is.calls.Put(call)
}

// run calls the method, turning a panic into an error.
func (is *intoServer[Req, Resp, PReq, PResp]) run(s *Service, ctx context.Context, m *method, req PReq, resp PResp, sp *span.Span) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = s.panicked(m, v, sp)
		}
	}()
	return is.fn(ctx, req, resp, sp)
}
