// Package tcpezotel connects tcpez to OpenTelemetry: tcpez spans become
// OpenTelemetry spans, with the same trace and span ids, and tcpez metrics
// go to an OpenTelemetry meter. It is a module of its own, so that the core
// tcpez module does not depend on OpenTelemetry.
//
// Traces: give the TracerProvider the IDGenerator of this package, then
// add ServerInterceptor and ServerStreamInterceptor to services, and
// ClientInterceptor and ClientStreamInterceptor to clients (interceptors
// do not run around streams, nor stream interceptors around calls):
//
//	tp := sdktrace.NewTracerProvider(
//		sdktrace.WithIDGenerator(tcpezotel.IDGenerator()),
//		sdktrace.WithBatcher(exporter))
//	svc := protoserver.NewService(protoserver.ServiceConfig{
//		Interceptors:       []protoserver.Interceptor{tcpezotel.ServerInterceptor(tp)},
//		StreamInterceptors: []protoserver.StreamInterceptor{tcpezotel.ServerStreamInterceptor(tp)}})
//	pc := protoserver.NewClient(c, protoserver.ClientConfig{
//		Interceptors:       []protoserver.ClientInterceptor{tcpezotel.ClientInterceptor(tp)},
//		StreamInterceptors: []protoserver.ClientStreamInterceptor{tcpezotel.ClientStreamInterceptor(tp)}})
//
// tcpez propagates its spans by itself (a handler's context carries its
// span, and calls made with it are the span's children; see the span and
// protoserver packages). The interceptors export those spans when they
// end: a server span per method call, and a client span per call made, which
// the call carries as the server span's parent; a streaming method's
// spans cover the whole stream, from its opening to its end. Their attributes and
// counters become span attributes, their timings attributes in seconds.
// The IDGenerator is what lets an exported span keep its tcpez ids: spans
// of other instrumentation get random ids, as by default.
//
// Metrics: NewRecorder gives a stats.Recorder (server.Config.Stats,
// client.Config.Stats) that sends gauges to Int64Gauges, timings to
// Float64Histograms in seconds, and counts to Int64Counters (monotonic)
// for the counts tcpez makes itself, which only grow (requests,
// errors.*, client.calls, rpc.server.calls, ...), or to
// Int64UpDownCounters (non-monotonic) for any other name, such as a
// span's counters, which span.Span.Add lets go down; one instrument per
// tcpez metric name.
package tcpezotel
