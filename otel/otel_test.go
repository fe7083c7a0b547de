package tcpezotel_test

import (
	"context"
	"net"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tcpez/tcpez/client"
	tcpezotel "github.com/tcpez/tcpez/otel"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

type echoFunc func(ctx context.Context, req *wrapperspb.StringValue, sp *span.Span) (*wrapperspb.StringValue, error)

// serve runs a service whose method "Echo" is fn, exporting its spans
// through tp and its server metrics to rec; it returns the address.
func serve(t *testing.T, tp trace.TracerProvider, rec stats.Recorder, fn echoFunc) string {
	t.Helper()
	svc := protoserver.NewService(protoserver.ServiceConfig{Interceptors: []protoserver.Interceptor{tcpezotel.ServerInterceptor(tp)}})
	svc.Handle("Echo", protoserver.Method(fn))
	return listen(t, svc, rec)
}

// listen serves svc on loopback, with its server metrics to rec, and
// returns the address.
func listen(t *testing.T, svc *protoserver.Service, rec stats.Recorder) string {
	t.Helper()
	srv := server.New(svc, server.Config{Stats: rec})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// caller returns a traced protoserver client of addr.
func caller(t *testing.T, tp trace.TracerProvider, addr string) *protoserver.Client {
	t.Helper()
	c, err := client.New([]string{addr}, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return protoserver.NewClient(c, protoserver.ClientConfig{Interceptors: []protoserver.ClientInterceptor{tcpezotel.ClientInterceptor(tp)}})
}

// TestOneTrace: a client calls front, whose handler calls back with its
// own context and nothing else; the OpenTelemetry SDK's in-memory exporter
// gets the four spans (client, front server, front's client, back server)
// as one trace, each the parent of the next, with tcpez's ids.
func TestOneTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(tcpezotel.IDGenerator()))
	defer tp.Shutdown(context.Background())

	backIDs := make(chan span.ID, 1)
	back := serve(t, tp, stats.Nop{}, func(_ context.Context, req *wrapperspb.StringValue, sp *span.Span) (*wrapperspb.StringValue, error) {
		sp.Attr("who", "back")
		sp.Increment("rows")
		backIDs <- sp.ID()
		return req, nil
	})
	toBack := caller(t, tp, back)
	front := serve(t, tp, stats.Nop{}, func(ctx context.Context, req *wrapperspb.StringValue, _ *span.Span) (*wrapperspb.StringValue, error) {
		return protoserver.Call[wrapperspb.StringValue](ctx, toBack, "Echo", req)
	})
	toFront := caller(t, tp, front)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := protoserver.Call[wrapperspb.StringValue](ctx, toFront, "Echo", wrapperspb.String("hi"))
	if err != nil || got.GetValue() != "hi" {
		t.Fatalf("%v, %v", got, err)
	}

	spans := exp.GetSpans() // in the order they ended: back first
	if len(spans) != 4 {
		t.Fatalf("%d spans exported, want 4: %v", len(spans), spans)
	}
	wantKinds := []trace.SpanKind{trace.SpanKindServer, trace.SpanKindClient, trace.SpanKindServer, trace.SpanKindClient}
	for i, s := range spans {
		if s.SpanKind != wantKinds[i] || s.Name != "Echo" {
			t.Fatalf("span %d: %v %q, want %v Echo", i, s.SpanKind, s.Name, wantKinds[i])
		}
		if s.SpanContext.TraceID() != spans[3].SpanContext.TraceID() {
			t.Fatalf("span %d in trace %v, the client's is %v", i, s.SpanContext.TraceID(), spans[3].SpanContext.TraceID())
		}
		if i < 3 && s.Parent.SpanID() != spans[i+1].SpanContext.SpanID() {
			t.Fatalf("span %d (%v) has parent %v, want span %d's id %v", i, s.SpanKind, s.Parent.SpanID(), i+1, spans[i+1].SpanContext.SpanID())
		}
	}
	if spans[3].Parent.IsValid() {
		t.Fatalf("the client's span has a parent %v", spans[3].Parent)
	}
	// tcpez's ids are the exported ones, and so are its attributes.
	if id := <-backIDs; spans[0].SpanContext.SpanID().String() != id.String() {
		t.Fatalf("back's tcpez span %v exported as %v", id, spans[0].SpanContext.SpanID())
	}
	attrs := map[string]string{}
	for _, kv := range spans[0].Attributes {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	if attrs["who"] != "back" || attrs["rows"] != "1" || attrs["rpc.system"] != "tcpez" {
		t.Fatalf("back's span attributes %v", attrs)
	}
}

// TestMetrics: a server's metrics reach an OpenTelemetry meter.
func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	tp := sdktrace.NewTracerProvider()
	addr := serve(t, tp, tcpezotel.NewRecorder(mp), func(_ context.Context, req *wrapperspb.StringValue, _ *span.Span) (*wrapperspb.StringValue, error) {
		return req, nil
	})
	c := caller(t, tp, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 5 {
		if _, err := protoserver.Call[wrapperspb.StringValue](ctx, c, "Echo", wrapperspb.String("x")); err != nil {
			t.Fatal(err)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			found[m.Name] = true
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "requests" {
				if n := sum.DataPoints[0].Value; n != 5 {
					t.Fatalf("requests = %d, want 5", n)
				}
			}
		}
	}
	for _, name := range []string{"requests", "request", "conns.accepted", "conns.open"} {
		if !found[name] {
			t.Errorf("no %q among the metrics %v", name, found)
		}
	}
}

// TestSpanCountsMayGoDown: a span's counter that goes down (span.Add with
// a negative delta) is exported as a non-monotonic sum with its true
// total, while tcpez's own counts stay monotonic sums.
func TestSpanCountsMayGoDown(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	tp := sdktrace.NewTracerProvider()
	addr := serve(t, tp, tcpezotel.NewRecorder(mp), func(_ context.Context, req *wrapperspb.StringValue, sp *span.Span) (*wrapperspb.StringValue, error) {
		sp.Add("credits", -3)
		return req, nil
	})
	c := caller(t, tp, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		if _, err := protoserver.Call[wrapperspb.StringValue](ctx, c, "Echo", wrapperspb.String("x")); err != nil {
			t.Fatal(err)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	sums := map[string]metricdata.Sum[int64]{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				sums[m.Name] = sum
			}
		}
	}
	for _, tc := range []struct {
		name      string
		value     int64
		monotonic bool
	}{{"credits", -9, false}, {"requests", 3, true}} {
		sum, ok := sums[tc.name]
		switch {
		case !ok || len(sum.DataPoints) != 1:
			t.Errorf("%s: no single sum among %v", tc.name, sums)
		case sum.DataPoints[0].Value != tc.value || sum.IsMonotonic != tc.monotonic:
			t.Errorf("%s = %d, monotonic %v; want %d, monotonic %v", tc.name, sum.DataPoints[0].Value, sum.IsMonotonic, tc.value, tc.monotonic)
		}
	}
}
