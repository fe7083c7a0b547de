package protoserver_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/internal/israce"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/internal/testpb"
	"github.com/tcpez/tcpez/span"
)

type intoFunc func(ctx context.Context, req *testpb.EchoRequest, resp *testpb.EchoResponse, sp *span.Span) error

// intoServer has only the Into form of Echo: a Register that served Echo
// with Method would answer Unimplemented.
type intoServer struct {
	testpb.UnimplementedTestServer
	into intoFunc
}

func (s intoServer) EchoInto(ctx context.Context, req *testpb.EchoRequest, resp *testpb.EchoResponse, sp *span.Span) error {
	return s.into(ctx, req, resp, sp)
}

// emptyEcho is an EchoInto that fails a call whose response is not
// empty, as a new message is, and then echoes the request.
func emptyEcho(_ context.Context, req *testpb.EchoRequest, resp *testpb.EchoResponse, _ *span.Span) error {
	if resp.Data != nil || resp.Text != "" || resp.ProtoReflect().GetUnknown() != nil {
		return protoserver.Errorf(protoserver.FailedPrecondition, "response not empty: %v", resp)
	}
	resp.Data, resp.Text = req.Data, req.Text
	return nil
}

// startInto serves the Test service with into as EchoInto.
func startInto(t *testing.T, into intoFunc, cfg protoserver.ServiceConfig) testpb.TestClient {
	t.Helper()
	tc, _, _ := startServer(t, intoServer{into: into}, cfg)
	return tc
}

// TestMethodInto: a generated Register serves a method with its Into form
// when the implementation has one, and every call's method finds its
// response empty, whatever the last call set in it.
func TestMethodInto(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("reuse=%v", reuse), func(t *testing.T) {
			tc := startInto(t, emptyEcho, protoserver.ServiceConfig{RequestReuse: reuse})
			for i := range 20 {
				req := &testpb.EchoRequest{Data: bytes.Repeat([]byte{byte(i)}, i), Text: fmt.Sprint(i)}
				resp, err := tc.Echo(context.Background(), req)
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if !bytes.Equal(resp.Data, req.Data) || resp.Text != req.Text {
					t.Fatalf("call %d: answer %v, want the request %v", i, resp, req)
				}
			}
		})
	}
}

// TestMethodIntoFailure: a method that fails, having set fields of its
// response, or that panics, is answered with its error alone, and the next
// call's response is empty again.
func TestMethodIntoFailure(t *testing.T) {
	tc := startInto(t, func(ctx context.Context, req *testpb.EchoRequest, resp *testpb.EchoResponse, sp *span.Span) error {
		switch req.Text {
		case "fail":
			resp.Data, resp.Text = []byte("not sent"), "not sent"
			return protoserver.Errorf(protoserver.NotFound, "no such thing")
		case "panic":
			resp.Data, resp.Text = []byte("not sent"), "not sent"
			panic("handler panic")
		}
		return emptyEcho(ctx, req, resp, sp)
	}, protoserver.ServiceConfig{RequestReuse: true})
	ctx := context.Background()
	for range 3 {
		_, err := tc.Echo(ctx, &testpb.EchoRequest{Text: "fail"})
		wantCode(t, err, protoserver.NotFound)
		_, err = tc.Echo(ctx, &testpb.EchoRequest{Text: "panic"})
		wantCode(t, err, protoserver.Internal)
		resp, err := tc.Echo(ctx, &testpb.EchoRequest{Data: []byte("ok"), Text: "ok"})
		if err != nil || string(resp.Data) != "ok" || resp.Text != "ok" {
			t.Fatalf("call after failures: %v, %v", resp, err)
		}
	}
}

// TestMethodIntoIntercepted: interceptors may keep the response they see,
// so with them each call's method fills a message of its own.
func TestMethodIntoIntercepted(t *testing.T) {
	var mu sync.Mutex
	var kept []*testpb.EchoResponse
	keep := func(ctx context.Context, info *protoserver.MethodInfo, req proto.Message, sp *span.Span, next protoserver.Next) (proto.Message, error) {
		resp, err := next(ctx, req, sp)
		if r, ok := resp.(*testpb.EchoResponse); ok {
			mu.Lock()
			kept = append(kept, r)
			mu.Unlock()
		}
		return resp, err
	}
	tc := startInto(t, emptyEcho, protoserver.ServiceConfig{
		RequestReuse: true, Interceptors: []protoserver.Interceptor{keep}, StreamInterceptors: []protoserver.StreamInterceptor{},
	})
	const calls = 10
	for i := range calls {
		if _, err := tc.Echo(context.Background(), &testpb.EchoRequest{Text: fmt.Sprint(i)}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(kept) != calls {
		t.Fatalf("the interceptor saw %d responses, want %d", len(kept), calls)
	}
	for i, r := range kept {
		if r.Text != fmt.Sprint(i) {
			t.Errorf("response %d kept by the interceptor now holds %q: reused", i, r.Text)
		}
	}
}

// TestMethodIntoAliasesRequest: a response that points into the request,
// decoded in place from the server's read buffer, is answered whole while
// the connection reads and runs more calls, large ones too: the service
// empties it without writing into what it points to.
func TestMethodIntoAliasesRequest(t *testing.T) {
	tc := startInto(t, func(_ context.Context, req *testpb.EchoRequest, resp *testpb.EchoResponse, _ *span.Span) error {
		resp.Data = req.Data
		return nil
	}, protoserver.ServiceConfig{RequestReuse: true, AliasRequestBytes: true})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				n := 2 << 10
				if i%5 == 0 {
					n = 100 << 10 // sent, and answered, from where it lies
				}
				req := &testpb.EchoRequest{Data: bytes.Repeat([]byte{byte(g*20 + i)}, n)}
				resp, err := tc.Echo(ctx, req)
				if err == nil && !bytes.Equal(resp.Data, req.Data) {
					err = fmt.Errorf("caller %d call %d: answer of %d bytes is not its request", g, i, len(resp.Data))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestMethodIntoAllocs: with RequestReuse, a call of a MethodInto
// allocates nothing in the service for its messages. (Decoding a plain
// protobuf-go request's bytes copies them: the call has none.)
func TestMethodIntoAllocs(t *testing.T) {
	if israce.Enabled {
		t.Skip("the race detector drops pooled messages at random")
	}
	svc := protoserver.NewService(protoserver.ServiceConfig{Logger: quietLogger(), RequestReuse: true})
	testpb.RegisterTest(svc, intoServer{into: emptyEcho})
	ctx := context.Background()
	env, err := protoserver.AppendRequestForTest(nil, ctx, testpb.Test_Echo_FullMethodName, &testpb.EchoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	sp := span.New()
	dst := make([]byte, 0, 64)
	var callErr error
	allocs := testing.AllocsPerRun(100, func() {
		sp.Reset(1)
		var ans []byte
		if ans, callErr = svc.RespondAppend(ctx, dst, env, sp); callErr == nil && len(ans) != 0 {
			callErr = fmt.Errorf("answer %x, want an empty one", ans)
		}
	})
	if callErr != nil {
		t.Fatal(callErr)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per call, want 0", allocs)
	}
}
