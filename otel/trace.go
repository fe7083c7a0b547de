package tcpezotel

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/span"
)

// ScopeName is the instrumentation scope of the tracers and meters this
// package asks for.
const ScopeName = "github.com/tcpez/tcpez/otel"

// ServerInterceptor exports the span of every call a service serves as an
// OpenTelemetry server span named after the method, once the method
// returns.
func ServerInterceptor(tp trace.TracerProvider) protoserver.Interceptor {
	tracer := tp.Tracer(ScopeName)
	return func(ctx context.Context, info *protoserver.MethodInfo, req proto.Message, sp *span.Span, next protoserver.Next) (proto.Message, error) {
		start := time.Now()
		resp, err := next(ctx, req, sp)
		export(tracer, sp, info.Name, trace.SpanKindServer, start, err)
		return resp, err
	}
}

// ClientInterceptor gives every call a client a span of its own, the
// child of the context's span (or a root), which the call carries as its
// server span's parent, and exports it as an OpenTelemetry client span
// once the call returns.
func ClientInterceptor(tp trace.TracerProvider) protoserver.ClientInterceptor {
	tracer := tp.Tracer(ScopeName)
	return func(ctx context.Context, method string, req, resp proto.Message, next protoserver.Invoker) error {
		start := time.Now()
		sp := span.FromContext(ctx).Child()
		err := next(span.NewContext(ctx, sp), method, req, resp)
		export(tracer, sp, method, trace.SpanKindClient, start, err)
		return err
	}
}

// ServerStreamInterceptor exports the span of every streaming method a
// service serves as an OpenTelemetry server span named after the method,
// from the stream's opening until the method returns. Its parent is the
// caller's span, which the opening carries as a call's request does.
func ServerStreamInterceptor(tp trace.TracerProvider) protoserver.StreamInterceptor {
	tracer := tp.Tracer(ScopeName)
	return func(ctx context.Context, info *protoserver.MethodInfo, ms protoserver.MessageStream, next protoserver.StreamNext) error {
		start := time.Now()
		err := next(ctx, ms)
		export(tracer, span.FromContext(ctx), info.Name, trace.SpanKindServer, start, err)
		return err
	}
}

// ClientStreamInterceptor gives every stream a client opens a span of its
// own, the child of the context's span (or a root), which the stream's
// opening carries as its server span's parent, and exports it as an
// OpenTelemetry client span once the stream ends for the caller (see
// protoserver.OnClientStreamEnd): read to its end, failed, or cancelled.
func ClientStreamInterceptor(tp trace.TracerProvider) protoserver.ClientStreamInterceptor {
	tracer := tp.Tracer(ScopeName)
	return func(ctx context.Context, method string, req proto.Message, next protoserver.Streamer) (protoserver.ClientMessageStream, error) {
		start := time.Now()
		sp := span.FromContext(ctx).Child()
		done := func(err error) { export(tracer, sp, method, trace.SpanKindClient, start, err) }
		ms, err := next(span.NewContext(ctx, sp), method, req)
		if err != nil {
			done(err)
			return nil, err
		}
		return protoserver.OnClientStreamEnd(ctx, ms, done), nil
	}
}

// export records sp, which ran from start until now, as an OpenTelemetry
// span with sp's trace, span and parent ids.
func export(tracer trace.Tracer, sp *span.Span, name string, kind trace.SpanKind, start time.Time, err error) {
	tid := trace.TraceID(sp.TraceID())
	ctx := context.Background()
	if p := sp.ParentID(); p != 0 {
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: spanID(p), TraceFlags: trace.FlagsSampled, Remote: true,
		}))
	}
	ctx = context.WithValue(ctx, idsKey{}, ids{tid, spanID(sp.ID())})
	attrs := []attribute.KeyValue{attribute.String("rpc.system", "tcpez"), attribute.String("rpc.method", name)}
	sp.Visit(
		func(k, v string) { attrs = append(attrs, attribute.String(k, v)) },
		func(k string, v int64) { attrs = append(attrs, attribute.Int64(k, v)) },
		func(k string, d time.Duration) { attrs = append(attrs, attribute.Float64(k+".seconds", d.Seconds())) },
	)
	_, otelSpan := tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	if err != nil {
		otelSpan.RecordError(err)
		otelSpan.SetStatus(codes.Error, err.Error())
	}
	otelSpan.End()
}

func spanID(id span.ID) trace.SpanID {
	var s trace.SpanID
	binary.BigEndian.PutUint64(s[:], uint64(id))
	return s
}

type idsKey struct{}

// ids are the ids an exported span must get.
type ids struct {
	trace trace.TraceID
	span  trace.SpanID
}

// IDGenerator returns the generator a TracerProvider needs for the spans
// of this package to keep their tcpez ids (sdktrace.WithIDGenerator). It
// gives every other span random ids, as the SDK's default does.
func IDGenerator() sdktrace.IDGenerator { return idGenerator{} }

type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if v, ok := ctx.Value(idsKey{}).(ids); ok {
		return v.trace, v.span
	}
	var t trace.TraceID
	for !t.IsValid() {
		_, _ = rand.Read(t[:])
	}
	return t, randomSpanID()
}

func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if v, ok := ctx.Value(idsKey{}).(ids); ok {
		return v.span
	}
	return randomSpanID()
}

func randomSpanID() trace.SpanID {
	var s trace.SpanID
	for !s.IsValid() {
		_, _ = rand.Read(s[:])
	}
	return s
}
