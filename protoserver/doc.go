// Package protoserver is the protobuf layer of tcpez, in two modes. In
// service mode a Service serves many methods, usually registered by code
// that protoc-gen-go-tcpez generates, and a Client calls them:
//
//	svc := protoserver.NewService(protoserver.ServiceConfig{})
//	kvpb.RegisterKV(svc, impl)
//	srv := server.New(svc, server.Config{})
//	go srv.ListenAndServe(addr)
//
//	c, err := client.New([]string{addr}, client.Config{})
//	kv := kvpb.NewKVClient(protoserver.NewClient(c, protoserver.ClientConfig{}))
//	resp, err := kv.Get(ctx, &kvpb.GetRequest{Key: "k"})
//
// In compatible mode, Compatible serves one request and one response type
// as bare messages, as the original tcpez ProtoServer did, and
// CompatibleClient calls it.
//
// Each mode has a server side and a client side, each in files of its
// own: server_service.go (Service), server_compatible.go (Compatible),
// client_service.go and client_service_pipeline.go (Client, Call, Go,
// Pipeline, Enqueue), stream.go (streaming methods, both sides) and
// stream_interceptor.go (their interceptors), client_compatible.go (CompatibleClient,
// CompatiblePipeline) and client_future.go (the Future both client modes
// return). envelope.go (the service-mode wire envelope), status.go and
// metadata.go are what the two sides share.
//
// # Compatible mode
//
// Compatible is the original tcpez ProtoServer: one request message type and
// one response message type, each frame a bare encoded message. Existing
// ProtoServer clients, in any language, keep working. A request that does not
// decode, or a handler error, closes the connection after the answers before
// it, as the byte server does. CompatibleClient is its typed client.
//
// # Service mode
//
// A Service serves many methods on one server. Each request frame holds a
// tcpez.v1.Request envelope — the method name, the encoded request, the
// caller's span id, its timeout and metadata — and each answer a
// tcpez.v1.Response: a Status or the encoded response
// (proto/tcpez/v1/envelope.proto). Methods are registered by name with
// Handle and Method, or by the Register functions that protoc-gen-go-tcpez
// generates; the generated clients call them through a Client.
//
// Every failure is an answer, never a closed connection, and reaches the
// caller as a *Status with a gRPC-numbered Code: the handler's own Status
// (see Errorf), Unknown for its other errors, Internal for a panic,
// Unimplemented for an unknown method, InvalidArgument for an undecodable
// request, DeadlineExceeded when the caller's deadline passed,
// ResourceExhausted over ServiceConfig.MaxConcurrency or for a streamed message
// over the server's frame limit, Unavailable once Drain was
// called. The client adds DeadlineExceeded, Canceled and Unavailable for
// calls that got no answer; use errors.As, StatusOf or CodeOf.
//
// The caller's deadline travels as a timeout and becomes the handler's
// context deadline. Traces propagate themselves: a call made with a context
// that carries a span (span.NewContext; a handler's context carries the
// handler's span) sends that span's id and trace id, and the server's span
// takes them as its parent and trace ids, so that a handler's downstream
// calls are its children with no code of its own (WithSpanID sets the
// parent id by hand); metadata (WithOutgoingMetadata) is read with
// IncomingMetadata.
//
// # Interceptors
//
// Interceptors run around methods on the server
// (ServiceConfig.Interceptors) and around calls on the client
// (ClientConfig.Interceptors); stream interceptors, in the shape of
// gRPC's, run around streaming methods on the server
// (ServiceConfig.StreamInterceptors: StreamInterceptor, which may wrap the
// method's MessageStream) and around the opening of streams on the client
// (ClientConfig.StreamInterceptors: ClientStreamInterceptor). Neither
// kind runs around the other's methods: a service guarded by an
// authentication interceptor must install its stream form too, or its
// streaming methods are open to anyone. A Service with Interceptors but
// no StreamInterceptors therefore panics when a streaming method is added
// (a generated Register function adds them); set StreamInterceptors to an
// empty, non-nil slice to serve streams without on purpose. The
// middleware package has logging, authentication and metrics
// interceptors in both forms, and the otel module tracing ones.
//
// # Typed calls
//
// Both modes have blocking calls (Call), futures (Go returns a Future) and
// pipelines, which queue calls (Enqueue, or a generated pipeline's
// methods) and send them as one protocol batch (Flush).
//
// # Encoding
//
// Messages are encoded with protobuf-go, except those that also carry the
// methods planetscale/vtprotobuf generates (SizeVT, MarshalToSizedBufferVT,
// UnmarshalVT: run protoc-gen-go-vtproto with
// features=marshal+unmarshal+size next to protoc-gen-go): protoserver uses
// those, which skip protobuf-go's reflection (bench/vtpb measures both).
// On the server, both modes encode the answer straight into a buffer the
// connection keeps (server.AppendHandler); with ServiceConfig.RequestReuse
// request messages are reused too, and those with vtprotobuf's
// unmarshal_unsafe feature are decoded without copying their bytes and
// string fields, which then point into the request as read (valid until
// the method returns); with ServiceConfig.AliasRequestBytes too, any other
// reused request has its one top-level bytes field of 1 KiB or more decoded
// so. A message of 64 KiB or more whose biggest
// top-level bytes field is 64 KiB or more is sent with that field's bytes
// written from where they lie, not copied into the frame, both ways
// (server.TailHandler, client.CallAppendTail): the encoding then carries
// that field last, which every protobuf decoder accepts. On the client, a caller that reuses
// its response message (Client.Call, or a generated client's ...Into
// method) saves its allocation. On the server, a method made with
// MethodInto (a generated server's ...Into method) fills a response the
// service reuses rather than returning a new one, which saves the
// response's allocation: with RequestReuse and vtprotobuf's code, a call
// of a small echo then allocates nothing on either side.
package protoserver
