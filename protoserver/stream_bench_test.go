package protoserver_test

import (
	"io"
	"testing"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/internal/testpb"
	"github.com/tcpez/tcpez/server"
)

// The protobuf layer's streams, generated code on both ends, over
// loopback: "exchange" is one message each way on an open bidirectional
// stream (Chat), "open" a server-streaming stream of one message (Split)
// opened and read to its end. "bare" has no stream interceptors, and
// must cost what streams cost before they existed;
// stream_interceptor_bench_test.go adds the intercepted cases.
//
//	go test -run '^$' -bench Stream -benchmem ./protoserver/
func BenchmarkStream(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		benchStreams(b, protoserver.ServiceConfig{Logger: quietLogger()}, protoserver.ClientConfig{})
	})
}

func benchStreams(b *testing.B, scfg protoserver.ServiceConfig, ccfg protoserver.ClientConfig) {
	svc := protoserver.NewService(scfg)
	testpb.RegisterTest(svc, streamServer{testServer: testServer{echo: echo}})
	_, addr := serve(b, svc, server.Config{})
	c := testpb.NewTestClient(protoserver.NewClient(newClient(b, addr, client.Config{}), ccfg))
	ctx := ctxFor(b)

	b.Run("exchange", func(b *testing.B) {
		s, err := c.Chat(ctx)
		if err != nil {
			b.Fatal(err)
		}
		req := &testpb.EchoRequest{Text: "hello"}
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Send(req); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Recv(); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.CloseSend(); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Recv(); err != io.EOF {
			b.Fatal(err)
		}
	})
	b.Run("open", func(b *testing.B) {
		req := &testpb.EchoRequest{Data: []byte("x")}
		b.ReportAllocs()
		for b.Loop() {
			s, err := c.Split(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Recv(); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Recv(); err != io.EOF {
				b.Fatal(err)
			}
		}
	})
}
