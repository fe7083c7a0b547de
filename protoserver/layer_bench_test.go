package protoserver_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/internal/testpb"
	"github.com/tcpez/tcpez/span"
)

// BenchmarkLayer is the protobuf layer's own work for one 16-byte echo,
// with no network: the client's encoding, the service's Respond and the
// client's decoding, through a client.Client stand-in. It is steadier
// than BenchmarkOverhead on a busy machine.
func BenchmarkLayer(b *testing.B) {
	svc := protoserver.NewService(protoserver.ServiceConfig{Logger: quietLogger()})
	testpb.RegisterTest(svc, testServer{echo: echo})
	sp := span.New()
	ctx := context.Background()
	req := &testpb.EchoRequest{Data: make([]byte, 16)}
	env, err := protoserver.AppendRequestForTest(nil, ctx, testpb.Test_Echo_FullMethodName, req)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 64)
		for b.Loop() {
			buf, _ = protoserver.AppendRequestForTest(buf[:0], ctx, testpb.Test_Echo_FullMethodName, req)
		}
	})
	ans, _ := svc.Respond(ctx, env, sp)
	b.Run("respond", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sp.Reset(1)
			if _, err := svc.Respond(ctx, env, sp); err != nil {
				b.Fatal(err)
			}
		}
	})
	reuse := protoserver.NewService(protoserver.ServiceConfig{Logger: quietLogger(), RequestReuse: true})
	testpb.RegisterTest(reuse, testServer{echo: echo})
	into := protoserver.NewService(protoserver.ServiceConfig{Logger: quietLogger(), RequestReuse: true})
	testpb.RegisterTest(into, intoServer{into: func(_ context.Context, req *testpb.EchoRequest, resp *testpb.EchoResponse, _ *span.Span) error {
		resp.Data, resp.Text = req.Data, req.Text
		return nil
	}})
	for _, r := range []struct {
		name string
		svc  *protoserver.Service
	}{{"respond-append", svc}, {"respond-reuse", reuse}, {"respond-into", into}} {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]byte, 0, 64)
			for b.Loop() {
				sp.Reset(1)
				if _, err := r.svc.RespondAppend(ctx, dst, env, sp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := protoserver.DecodeAnswerForTest(ans, new(testpb.EchoResponse), true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-into", func(b *testing.B) {
		b.ReportAllocs()
		resp := new(testpb.EchoResponse)
		for b.Loop() {
			if err := protoserver.DecodeAnswerForTest(ans, resp, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestServiceAppendsToDst: RespondAppend encodes the answer after what
// dst's capacity holds, in place, and answers the same bytes as Respond.
func TestServiceAppendsToDst(t *testing.T) {
	svc := protoserver.NewService(protoserver.ServiceConfig{})
	testpb.RegisterTest(svc, testServer{echo: echo})
	env, err := protoserver.AppendRequestForTest(nil, context.Background(), testpb.Test_Echo_FullMethodName, &testpb.EchoRequest{Data: []byte("hi")})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := svc.Respond(context.Background(), env, span.New())
	dst := make([]byte, 0, 64)
	got, _ := svc.RespondAppend(context.Background(), dst, env, span.New())
	if !bytes.Equal(got, want) || &got[:1][0] != &dst[:1][0] {
		t.Fatalf("RespondAppend: % x (in dst: %v), want % x", got, &got[:1][0] == &dst[:1][0], want)
	}
}
