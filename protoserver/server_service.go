package protoserver

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/tcpez/tcpez/span"
)

// Service is the server side of service mode: a server.Handler that serves
// many methods, each request and answer in an envelope. Make one with
// NewService, add methods with Handle (or a generated Register function),
// then serve it with server.New:
//
//	svc := protoserver.NewService(protoserver.ServiceConfig{}).
//		Handle("Echo", protoserver.Method(echo))
//	srv := server.New(svc, server.Config{})
//
// Every failure is an answer: the caller gets a *Status and the connection
// stays open. A Service is safe for concurrent use once serving; methods
// must all be added before.
type Service struct {
	cfg      ServiceConfig
	mu       sync.Mutex // guards methods until the first request
	methods  map[string]*method
	streams  map[string]*streamMethod // see stream.go
	serving  atomic.Bool
	draining atomic.Bool
	active   atomic.Int64
}

// ServiceConfig holds a Service's settings, given to NewService. The zero
// value of every field means its default.
type ServiceConfig struct {
	// Interceptors run around every method, the first outermost; not
	// around streaming methods, which StreamInterceptors guard.
	Interceptors []Interceptor
	// StreamInterceptors run around every streaming method, the first
	// outermost. Interceptors without StreamInterceptors is refused: the
	// first streaming method added panics, because it would run without
	// the service's guards (an Auth interceptor would not run). Give the
	// stream forms of the same interceptors (middleware.TokenAuthStream
	// for middleware.TokenAuth, ...), or an empty, non-nil slice to serve
	// streams with none on purpose.
	StreamInterceptors []StreamInterceptor
	// MaxConcurrency bounds how many calls the service runs at once, over
	// all its connections. A call over the bound is answered
	// ResourceExhausted at once, without running. 0 (the default) means
	// no bound.
	MaxConcurrency int
	// Logger is where handler panics are logged, with their stacks.
	// Default: logrus's standard logger.
	Logger logrus.FieldLogger
	// RequestReuse makes the service reuse request messages: once a method
	// (and its interceptors) returned, its request is reset and decoded
	// into again by a later call. That saves an allocation per call (about
	// 100 ns of CPU for a small message) but a method must then not keep
	// its request message, nor use it from a goroutine that outlives the
	// call; the values of its fields, including sub-messages and byte
	// slices, may be kept. Except for a request with vtprotobuf's pool
	// feature (ResetVT), which is reset with ResetVT: that keeps the
	// memory of its bytes and repeated fields for the next request and
	// returns its pooled sub-messages to their pools, so that decoding
	// allocates nothing, and then no part of the request may be kept.
	// And a request with vtprotobuf's unmarshal_unsafe feature
	// (UnmarshalVTUnsafe) is decoded with it: its bytes and string fields
	// point into the request as the server read it, with no copy, and are
	// valid only until the method returns; no part of it may be kept then
	// either (copy what must outlive the call). Plain messages are
	// decoded as without RequestReuse, unless AliasRequestBytes.
	RequestReuse bool
	// AliasRequestBytes, with RequestReuse, decodes a plain protobuf-go
	// request's one top-level bytes field of 1 KiB or more without copying
	// it, as unmarshal_unsafe decodes a vtprotobuf one: the field points
	// into the request as the server read it and is valid only until the
	// method returns, so that a method that keeps it must copy it. At
	// 1 MiB that saves copying the whole request (BenchmarkUnmarshalRequest:
	// about 720 µs to 0.4 µs). Off by default: a method may keep the field
	// values of a plain request, even a reused one.
	AliasRequestBytes bool
}

// MethodInfo describes a method to interceptors.
type MethodInfo struct {
	// Name is the name the method was registered under, as the envelope
	// carries it: "/package.Service/Method" for generated code.
	Name string
	// IsClientStream and IsServerStream say the kind of a streaming
	// method, as in gRPC's StreamServerInfo: the caller streams, the
	// method streams, or both (bidirectional). Both are false for a
	// plain method.
	IsClientStream, IsServerStream bool
}

// Next calls the rest of an interceptor chain: the next interceptor, or the
// method itself.
type Next func(ctx context.Context, req proto.Message, sp *span.Span) (proto.Message, error)

// Interceptor runs around a method: it may inspect or change the context
// (see IncomingMetadata), the request and the answer, fail the call without
// calling next, or time it. req is the decoded request message; the answer
// is the method's response message, or nil with the error.
type Interceptor func(ctx context.Context, info *MethodInfo, req proto.Message, sp *span.Span, next Next) (proto.Message, error)

// MethodHandler is a typed method, made by Method, for Service.Handle.
type MethodHandler struct {
	newReq func() proto.Message
	// zeroReq empties a request of the method's type as new(Req) is
	// empty: for a reused request, it costs less than proto.Reset, whose
	// generated Reset stores the message's type info atomically.
	zeroReq func(proto.Message)
	call    Next
	// serveInto, set by MethodInto, serves a call with no interceptors
	// around it whole (see intoServer); call then serves the intercepted
	// path.
	serveInto serveIntoFunc
	// types are the request and response message types, for reflection.
	types [2]protoreflect.MessageDescriptor
}

// Method makes fn a method for Service.Handle. fn gets the decoded request
// and returns the response, or an error for the caller: a *Status (see
// Errorf) carries its code; any other error is Unknown. A panic is
// recovered and answered Internal.
func Method[Req, Resp any, PReq interface {
	*Req
	proto.Message
}, PResp interface {
	*Resp
	proto.Message
}](fn func(ctx context.Context, req PReq, sp *span.Span) (PResp, error)) *MethodHandler {
	return &MethodHandler{
		newReq: func() proto.Message { return PReq(new(Req)) },
		zeroReq: func(m proto.Message) {
			if r, ok := m.(PReq); ok {
				*r = *new(Req)
			}
		},
		types: [2]protoreflect.MessageDescriptor{
			PReq(new(Req)).ProtoReflect().Descriptor(),
			PResp(new(Resp)).ProtoReflect().Descriptor(),
		},
		call: func(ctx context.Context, req proto.Message, sp *span.Span) (proto.Message, error) {
			r, ok := req.(PReq)
			if !ok {
				return nil, Errorf(Internal, "method got a %T request, wants %T", req, r)
			}
			resp, err := fn(ctx, r, sp)
			if err != nil || resp == nil {
				return nil, err
			}
			return resp, nil
		},
	}
}

type method struct {
	info    MethodInfo
	h       *MethodHandler
	chained Next // the interceptors around h.call
	// bare says that chained has no interceptors: h.call's own recovery
	// is all a panic needs.
	bare bool
	reqs sync.Pool // reused requests, with ServiceConfig.RequestReuse
}

// newRequest returns an empty request message, and whether it goes back
// to m.reqs once the call is over.
func (s *Service) newRequest(m *method) (proto.Message, bool) {
	if !s.cfg.RequestReuse {
		return m.h.newReq(), false
	}
	if req, ok := m.reqs.Get().(proto.Message); ok {
		return req, true
	}
	return m.h.newReq(), true
}

// NewService returns a Service whose only method is HealthMethod. The
// zero ServiceConfig means every default.
func NewService(cfg ServiceConfig) *Service {
	s := &Service{cfg: cfg, methods: make(map[string]*method)}
	s.cfg.Interceptors = slices.Clone(cfg.Interceptors)
	s.cfg.StreamInterceptors = slices.Clone(cfg.StreamInterceptors) // keeps nil apart from empty
	if s.cfg.Logger == nil {
		s.cfg.Logger = logrus.StandardLogger()
	}
	return s.handle(HealthMethod, healthHandler, false)
}

// Handle adds the method name, served by h, and returns s. It panics if
// name is empty or taken, or if s is already serving.
func (s *Service) Handle(name string, h *MethodHandler) *Service {
	return s.handle(name, h, true)
}

// handle adds a method, wrapped in the interceptors when intercepted: the
// health method is not, so that an auth interceptor does not turn probes
// away.
func (s *Service) handle(name string, h *MethodHandler, intercepted bool) *Service {
	if name == "" || h == nil {
		panic("tcpez/protoserver: Handle needs a name and a MethodHandler")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claimLocked(name)
	m := &method{info: MethodInfo{Name: name}, h: h}
	next := m.recovering(s)
	for i := len(s.cfg.Interceptors) - 1; intercepted && i >= 0; i-- {
		ic, inner, info := s.cfg.Interceptors[i], next, &m.info
		next = func(ctx context.Context, req proto.Message, sp *span.Span) (proto.Message, error) {
			return ic(ctx, info, req, sp, inner)
		}
	}
	m.chained = next
	m.bare = !intercepted || len(s.cfg.Interceptors) == 0
	s.methods[name] = m
	return s
}

// claimLocked panics unless name may be added now: it is free among the
// methods and streaming methods, and the service is not yet serving.
func (s *Service) claimLocked(name string) {
	if s.serving.Load() {
		panic("tcpez/protoserver: method " + name + " added after the service started serving")
	}
	if _, dup := s.methods[name]; dup || s.streams[name] != nil {
		panic("tcpez/protoserver: method " + name + " registered twice")
	}
}

// Methods returns the names of the methods, sorted.
func (s *Service) Methods() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(func(yield func(string) bool) {
		for name := range s.methods {
			if !yield(name) {
				return
			}
		}
	})
}

// Drain makes the service answer every new call Unavailable, without
// running it, while calls already running finish: call it before
// server.Shutdown so that callers go elsewhere. Unavailable tells a caller
// that the method did not run, so the call can be retried on another
// server.
func (s *Service) Drain() { s.draining.Store(true) }

// Errors the service answers without running a method.
var (
	errDraining = &Status{Code: Unavailable, Message: "service is shutting down"}
	errClosing  = &Status{Code: Unavailable, Message: "server is closing"}
	errBusy     = &Status{Code: ResourceExhausted, Message: "too many concurrent calls"}
	errExpired  = &Status{Code: DeadlineExceeded, Message: "deadline exceeded before the call started"}
	errDeadline = &Status{Code: DeadlineExceeded, Message: "deadline exceeded"}
)

// Respond serves one request envelope and answers with a response envelope.
// It never returns an error: failures are answered with a Status.
func (s *Service) Respond(ctx context.Context, b []byte, sp *span.Span) ([]byte, error) {
	return s.RespondAppend(ctx, nil, b, sp)
}

// RespondAppend is Respond appending its answer to dst: the server calls it
// (see server.AppendHandler) so that the answer is encoded straight into a
// buffer the connection reuses.
func (s *Service) RespondAppend(ctx context.Context, dst, b []byte, sp *span.Span) ([]byte, error) {
	out, _ := s.serve(ctx, dst, b, sp, false)
	return out, nil
}

// RespondTail is RespondAppend leaving the bytes of a large response's
// biggest field out of the answer, as its tail, for the server to send
// from where they lie (see server.TailHandler): at 1 MiB that saves a copy
// of the whole response.
func (s *Service) RespondTail(ctx context.Context, dst, b []byte, sp *span.Span) (head, tail []byte, err error) {
	head, tail = s.serve(ctx, dst, b, sp, true)
	return head, tail, nil
}

// serve answers the request envelope b; with split set, the answer may
// end with a tail (RespondTail).
func (s *Service) serve(ctx context.Context, dst, b []byte, sp *span.Span, split bool) (head, tail []byte) {
	if !s.serving.Load() {
		s.mu.Lock()
		s.serving.Store(true)
		s.mu.Unlock()
	}
	r := request{split: split}
	if err := r.decode(b); err != nil {
		return s.fail(dst, sp, Errorf(InvalidArgument, "malformed request envelope: %v", err)), nil
	}
	if r.spanID != 0 {
		sp.SetParentID(span.ID(r.spanID))
	}
	if len(r.traceID) == len(span.TraceID{}) {
		sp.SetTraceID(span.TraceID(r.traceID))
	}
	m := s.methods[string(r.method)]
	if m == nil {
		return s.fail(dst, sp, Errorf(Unimplemented, "unknown method %q", r.method)), nil
	}
	head, tail, err := s.call(ctx, dst, m, &r, sp)
	if err != nil {
		sp.Attr("method", m.info.Name)
		return s.fail(dst, sp, err), nil
	}
	return head, tail
}

// call runs m for r, unless the service or the call's deadline says not to,
// and returns the encoded answer appended to dst, and its tail.
func (s *Service) call(ctx context.Context, dst []byte, m *method, r *request, sp *span.Span) (head, tail []byte, err error) {
	switch {
	case s.draining.Load():
		return nil, nil, errDraining
	case ctx.Err() != nil:
		return nil, nil, errClosing
	case r.timeout < 0:
		return nil, nil, errExpired
	}
	if !s.acquire() {
		return nil, nil, errBusy
	}
	defer s.release()
	return s.invoke(ctx, dst, m, r, sp)
}

// invoke decodes the request, runs the method and encodes its answer. It
// is call's second half so that each function keeps its defers few and
// its returns fewer: the compiler then inlines the defers instead of
// running them through the runtime's defer records.
func (s *Service) invoke(ctx context.Context, dst []byte, m *method, r *request, sp *span.Span) (head, tail []byte, err error) {
	hctx, dc := r.methodContext(ctx)
	if dc != nil {
		defer dc.release()
	}
	if m.h.serveInto != nil && m.bare {
		return m.h.serveInto(s, ctx, hctx, dst, r.payload, m, r.timeout, r.split, sp)
	}
	req, reuse := s.newRequest(m)
	aliased, err := unmarshalRequest(r.payload, req, reuse, reuse && s.cfg.AliasRequestBytes)
	if reuse {
		defer func() {
			releaseRequest(req, aliased, m.h.zeroReq)
			m.reqs.Put(req)
		}()
	}
	if err != nil {
		return nil, nil, Errorf(InvalidArgument, "cannot decode the %s request: %v", m.info.Name, err)
	}
	// A tail must outlive the call until it is written: one in the
	// request buffer (aliased) does, one in a reused request's own memory
	// would be overwritten by the next call's decoding. Only ResetVT keeps
	// that memory; proto.Reset lets it go.
	r.split = r.split && !(reuse && !aliased && keepsMemory(req))
	resp, err := s.run(hctx, m, req, sp)
	// Encoded here, before a reused request is reset: the answer may share
	// its fields, or be the request itself.
	return answer(ctx, hctx, dst, m, r.timeout, r.split, resp, err)
}

// answer encodes a method's result: its response, or why there is none.
// With split set, a large response may be split (splitTail): its tail's
// bytes are then left out of head, returned as tail.
func answer(ctx, hctx context.Context, dst []byte, m *method, timeout int64, split bool, resp proto.Message, err error) (head, tail []byte, _ error) {
	switch {
	case timeout > 0 && hctx.Err() == context.DeadlineExceeded:
		// Whatever the handler made of it, the caller has stopped waiting.
		return nil, nil, errDeadline
	case err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled):
		return nil, nil, errClosing
	case err != nil:
		return nil, nil, err
	case resp == nil:
		return dst, nil, nil
	}
	if head, tail, err = appendField(dst, respPayload, resp, split); err != nil {
		return nil, nil, Errorf(Internal, "cannot encode the %s response: %v", m.info.Name, err)
	}
	return head, tail, nil
}

// run calls m's chain, turning a panic in an interceptor into an error.
func (s *Service) run(ctx context.Context, m *method, req proto.Message, sp *span.Span) (resp proto.Message, err error) {
	if m.bare {
		return m.chained(ctx, req, sp)
	}
	defer func() {
		if v := recover(); v != nil {
			resp, err = nil, s.panicked(m, v, sp)
		}
	}()
	return m.chained(ctx, req, sp)
}

// recovering returns m's handler with panics turned into errors, so that
// interceptors see them as Internal errors.
func (m *method) recovering(s *Service) Next {
	call := m.h.call
	return func(ctx context.Context, req proto.Message, sp *span.Span) (resp proto.Message, err error) {
		defer func() {
			if v := recover(); v != nil {
				resp, err = nil, s.panicked(m, v, sp)
			}
		}()
		return call(ctx, req, sp)
	}
}

// panicked logs a recovered panic and returns its Internal status.
func (s *Service) panicked(m *method, v any, sp *span.Span) error {
	s.cfg.Logger.WithFields(sp.Fields(logrus.Fields{
		"method": m.info.Name,
		"panic":  fmt.Sprint(v),
		"stack":  string(debug.Stack()),
	})).Error("tcpez: method panicked")
	return &Status{Code: Internal, Message: fmt.Sprintf("panic: %v", v)}
}

// fail answers err as a Status and notes its code on the span. (Only
// failed calls touch the span, whose attributes cost a lock: the method and
// the code then show in the server's request logs.)
func (s *Service) fail(dst []byte, sp *span.Span, err error) []byte {
	st := StatusOf(err)
	code := st.Code
	if code == OK {
		code = Unknown
	}
	sp.Attr("code", code.String())
	p := st.Proto()
	p.Code = int32(code)
	return appendStatus(dst, p)
}

// HealthMethod is the standard health method every Service answers: OK
// with an empty message while it serves, Unavailable once it drains, so
// that load balancers stop sending it calls before it goes away.
const HealthMethod = "/tcpez.v1.Health/Check"

// healthHandler answers HealthMethod. Draining is answered before any
// method runs, so serving is all this handler has to say.
var healthHandler = Method(func(context.Context, *emptypb.Empty, *span.Span) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
})

// acquire takes one of MaxConcurrency's places, reporting false when none
// is free; release gives it back.
func (s *Service) acquire() bool {
	limit := s.cfg.MaxConcurrency
	if limit <= 0 {
		return true
	}
	if s.active.Add(1) > int64(limit) {
		s.active.Add(-1)
		return false
	}
	return true
}

func (s *Service) release() {
	if s.cfg.MaxConcurrency > 0 {
		s.active.Add(-1)
	}
}

// methodContext is the context a method runs with: ctx with the call's
// deadline, if it has one, and its metadata. A non-nil dc is released once
// the method returned.
func (r *request) methodContext(ctx context.Context) (hctx context.Context, dc *deadlineCtx) {
	hctx = ctx
	if r.timeout > 0 {
		dc = withDeadline(ctx, time.Duration(r.timeout))
		hctx = dc
	}
	if r.md != nil {
		hctx = context.WithValue(hctx, incomingKey{}, r.md)
	}
	return hctx, dc
}
