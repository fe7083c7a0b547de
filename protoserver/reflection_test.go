package protoserver_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tcpez/tcpez/client"
	tcpezv1 "github.com/tcpez/tcpez/proto/tcpez/v1"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// TestReflection: the reflection method lists every method with its types,
// streaming ones with which way they stream, and the files that define
// them, each after its imports.
func TestReflection(t *testing.T) {
	svc := protoserver.NewService(protoserver.ServiceConfig{Logger: quietLogger()})
	svc.Handle("Upper", protoserver.Method(func(_ context.Context, req *wrapperspb.StringValue, _ *span.Span) (*wrapperspb.StringValue, error) {
		return req, nil
	}))
	svc.HandleStream("Ticks", protoserver.ServerStreamMethod(func(*wrapperspb.Int64Value, *protoserver.ServerStream[*wrapperspb.Int64Value, *wrapperspb.StringValue]) error {
		return nil
	}))
	svc.HandleStream("Chat", protoserver.BidiStreamMethod(func(*protoserver.ServerStream[*wrapperspb.StringValue, *wrapperspb.StringValue]) error {
		return nil
	}))
	svc.HandleStream("Sum", protoserver.ClientStreamMethod(func(*protoserver.ServerStream[*wrapperspb.Int64Value, *wrapperspb.Int64Value]) error {
		return nil
	}))
	svc.Handle(protoserver.ReflectionMethod, protoserver.ReflectionHandler(svc))
	_, addr := serve(t, svc, server.Config{})
	c := protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{})
	resp, err := protoserver.Call[tcpezv1.ReflectionResponse](ctxFor(t), c, protoserver.ReflectionMethod, &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	var methods []string
	for _, m := range resp.GetMethods() {
		methods = append(methods, fmt.Sprint(m.GetName(), " ", m.GetRequestType(), " ", m.GetResponseType(), " ", m.GetClientStreaming(), " ", m.GetServerStreaming()))
	}
	want := []string{
		"Chat google.protobuf.StringValue google.protobuf.StringValue true true",
		"Sum google.protobuf.Int64Value google.protobuf.Int64Value true false",
		"Ticks google.protobuf.Int64Value google.protobuf.StringValue false true",
		"Upper google.protobuf.StringValue google.protobuf.StringValue false false",
		protoserver.HealthMethod + " google.protobuf.Empty google.protobuf.Empty false false",
		protoserver.ReflectionMethod + " google.protobuf.Empty tcpez.v1.ReflectionResponse false false",
	}
	slices.Sort(want)
	if !slices.Equal(methods, want) {
		t.Fatalf("methods %q, want %q", methods, want)
	}
	var files []string
	for _, f := range resp.GetFiles().GetFile() {
		files = append(files, f.GetName())
	}
	desc, refl := slices.Index(files, "google/protobuf/descriptor.proto"), slices.Index(files, "proto/tcpez/v1/reflection.proto")
	if desc < 0 || refl < 0 || desc > refl || !slices.Contains(files, "google/protobuf/wrappers.proto") {
		t.Fatalf("files %q", files)
	}
}
