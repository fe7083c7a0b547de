package protoserver_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/protoserver"
)

// BenchmarkStreamIntercepted is BenchmarkStream with one pass-through
// stream interceptor on each side, which wraps the stream: the price of
// interception.
func BenchmarkStreamIntercepted(b *testing.B) {
	pass := func(ctx context.Context, _ *protoserver.MethodInfo, ms protoserver.MessageStream, next protoserver.StreamNext) error {
		return next(ctx, struct{ protoserver.MessageStream }{ms})
	}
	cpass := func(ctx context.Context, method string, req proto.Message, next protoserver.Streamer) (protoserver.ClientMessageStream, error) {
		ms, err := next(ctx, method, req)
		if err != nil {
			return nil, err
		}
		return struct {
			protoserver.ClientMessageStream
		}{ms}, nil
	}
	benchStreams(b,
		protoserver.ServiceConfig{Logger: quietLogger(), StreamInterceptors: []protoserver.StreamInterceptor{pass}},
		protoserver.ClientConfig{StreamInterceptors: []protoserver.ClientStreamInterceptor{cpass}})
}
