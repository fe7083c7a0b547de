// Command protoc-gen-go-tcpez is a protoc plugin that generates tcpez
// service-mode clients and servers for the services of .proto files.
//
// For each file with services it writes <name>_tcpez.pb.go next to the
// <name>.pb.go that protoc-gen-go writes, in the same Go package:
//
//	protoc -I . --go_out=. --go_opt=paths=source_relative \
//	  --go-tcpez_out=. --go-tcpez_opt=paths=source_relative kv.proto
//
// For a service KV with a method Get the file holds:
//
//   - KV_ServiceName and KV_Get_FullMethodName, the method's name on the
//     wire, in the gRPC form "/package.KV/Get";
//   - KVClient, an interface with Get (a plain call), GetInto (the same,
//     decoding into the caller's response message, which a loop can reuse),
//     GoGet (a future) and Pipeline (a *KVPipeline, whose Get queues a call for one batch), and
//     NewKVClient, which makes one over a *protoserver.Client;
//   - KVServer, the interface an implementation satisfies, with
//     UnimplementedKVServer to embed, and RegisterKV, which adds an
//     implementation's methods to a *protoserver.Service. An
//     implementation that also has GetInto(ctx, req, resp, sp) error has
//     Get served by it (protoserver.MethodInto): it fills an empty
//     response that the service reuses from call to call, so that a call
//     allocates no response.
//
// Streaming methods (server-, client- and bidirectional streaming) are
// generated in gRPC's shape, over the streams of the multiplexed mode
// (version 3): for a method Watch the client's Watch returns a
// KV_WatchClient (Send, Recv, CloseSend or CloseAndRecv, Context, as its
// kind allows) and the server's Watch takes a KV_WatchServer (Send, Recv,
// SendAndClose, Context); neither has a future nor a pipeline.
//
// The generated code calls through protoserver, which encodes a message
// with the code planetscale/vtprotobuf generates when the message has it,
// and with protobuf-go's reflection otherwise. For the faster path, also
// run protoc-gen-go-vtproto (v0.6.0) into the same package:
//
//	--go-vtproto_out=. --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+unmarshal_unsafe+size+pool
//
// With a service's ServiceConfig.RequestReuse, unmarshal_unsafe lets a
// request's bytes fields point into the frame as read rather than be
// copied, and pool lets reused messages keep their memory; a large
// request echoed back is then copied nowhere in user space (bench/, 1 MiB:
// as fast as the byte layer). marshal+unmarshal+size alone is enough for
// the encoding itself.
//
// The plugin accepts protogen's standard parameters (paths, module, M…).
// The output is deterministic and records no protoc version.
package main
