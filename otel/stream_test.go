package tcpezotel_test

import (
	"context"
	"io"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tcpez/tcpez/client"
	tcpezotel "github.com/tcpez/tcpez/otel"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/stats"
)

type (
	str          = *wrapperspb.StringValue
	serverStream = protoserver.ServerStream[str, str]
)

// TestStreamTrace: a server-streaming and a failing bidirectional stream
// each export a client span and a server span, in one trace, the
// client's the server's parent, each ended with its stream: the server's
// when the method returned, before the trailer, the client's when it
// read the trailer.
func TestStreamTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(tcpezotel.IDGenerator()))
	defer tp.Shutdown(context.Background())

	svc := protoserver.NewService(protoserver.ServiceConfig{
		Interceptors:       []protoserver.Interceptor{tcpezotel.ServerInterceptor(tp)},
		StreamInterceptors: []protoserver.StreamInterceptor{tcpezotel.ServerStreamInterceptor(tp)},
	})
	svc.HandleStream("Letters", protoserver.ServerStreamMethod(func(req str, s *serverStream) error {
		for _, r := range req.GetValue() {
			if err := s.Send(wrapperspb.String(string(r))); err != nil {
				return err
			}
		}
		return nil
	}))
	svc.HandleStream("Refuse", protoserver.BidiStreamMethod(func(s *serverStream) error {
		if _, err := s.Recv(); err != nil {
			return err
		}
		return protoserver.Errorf(protoserver.FailedPrecondition, "no")
	}))
	c, err := client.New([]string{listen(t, svc, stats.Nop{})}, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	pc := protoserver.NewClient(c, protoserver.ClientConfig{
		StreamInterceptors: []protoserver.ClientStreamInterceptor{tcpezotel.ClientStreamInterceptor(tp)},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	letters, err := protoserver.OpenServerStream[str, str](ctx, pc, "Letters", wrapperspb.String("abc"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; ; n++ {
		if _, err := letters.Recv(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if n != 3 {
		t.Fatalf("%d letters", n)
	}
	refuse, err := protoserver.OpenStream[str, str](ctx, pc, "Refuse")
	if err != nil {
		t.Fatal(err)
	}
	if err := refuse.Send(wrapperspb.String("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := refuse.Recv(); protoserver.CodeOf(err) != protoserver.FailedPrecondition {
		t.Fatal(err)
	}

	spans := exp.GetSpans() // in the order they ended: each server span before its client's
	if len(spans) != 4 {
		t.Fatalf("%d spans exported, want 4: %v", len(spans), spans)
	}
	for i, name := range []string{"Letters", "Refuse"} {
		srvSpan, cliSpan := spans[2*i], spans[2*i+1]
		if srvSpan.Name != name || srvSpan.SpanKind != trace.SpanKindServer || cliSpan.Name != name || cliSpan.SpanKind != trace.SpanKindClient {
			t.Fatalf("%s: spans %q %v, %q %v", name, srvSpan.Name, srvSpan.SpanKind, cliSpan.Name, cliSpan.SpanKind)
		}
		if srvSpan.SpanContext.TraceID() != cliSpan.SpanContext.TraceID() || srvSpan.Parent.SpanID() != cliSpan.SpanContext.SpanID() {
			t.Fatalf("%s: server span %v (parent %v), client span %v", name, srvSpan.SpanContext, srvSpan.Parent, cliSpan.SpanContext)
		}
		if cliSpan.Parent.IsValid() {
			t.Fatalf("%s: the client's span has a parent %v", name, cliSpan.Parent)
		}
		wantStatus := codes.Unset
		if name == "Refuse" {
			wantStatus = codes.Error
		}
		if srvSpan.Status.Code != wantStatus || cliSpan.Status.Code != wantStatus {
			t.Fatalf("%s: statuses %v, %v, want %v", name, srvSpan.Status, cliSpan.Status, wantStatus)
		}
	}
}
