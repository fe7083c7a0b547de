package main

import (
	"context"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tcpez/tcpez/bench/vtpb"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/span"
)

// BenchmarkServiceRespondVT is the server's share of a "tcpez service
// (vtproto)" call at 16 B, with no network: the service answering one
// request envelope, configured as that system's is. The server runs it
// inline on a connection's reader, where every nanosecond of it delays
// the calls behind it; protoserver's BenchmarkLayer measures the same with
// protobuf-go's messages.
//
//	cd bench && go test -run '^$' -bench ServiceRespondVT -count 6 .
func BenchmarkServiceRespondVT(b *testing.B) {
	svc := protoserver.NewService(protoserver.ServiceConfig{RequestReuse: true, AliasRequestBytes: true})
	vtpb.RegisterEcho(svc, vtEchoServer{})
	p, err := (&vtpb.EchoRequest{Payload: make([]byte, 16)}).MarshalVT()
	if err != nil {
		b.Fatal(err)
	}
	// The request envelope (tcpez.v1.Request): the method, then the payload.
	var env []byte
	env = protowire.AppendTag(env, 1, protowire.BytesType)
	env = protowire.AppendString(env, vtpb.Echo_Unary_FullMethodName)
	env = protowire.AppendTag(env, 2, protowire.BytesType)
	env = protowire.AppendBytes(env, p)
	sp := span.New()
	ctx := context.Background()
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		sp.Reset(1)
		head, _, err := svc.RespondTail(ctx, dst, env, sp)
		// The answer envelope: field 2, 18 bytes (the response's payload
		// field, 16 bytes).
		if err != nil || len(head) != 20 {
			b.Fatalf("answer %x, %v", head, err)
		}
	}
}
