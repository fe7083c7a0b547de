package protoserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/internal/testpb"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

type tapKey struct{}

// ctxServer's Chat answers each request with its text, the tapKey value
// of the stream's context and the caller's metadata "k".
type ctxServer struct{ streamServer }

func (ctxServer) Chat(s testpb.Test_ChatServer) error {
	for {
		req, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		tap, _ := s.Context().Value(tapKey{}).(string)
		text := req.Text + "|" + tap + "|" + protoserver.IncomingMetadata(s.Context())["k"]
		if err := s.Send(&testpb.EchoResponse{Text: text}); err != nil {
			return err
		}
	}
}

// describe names a message for a journal.
func describe(m proto.Message) string {
	switch m := m.(type) {
	case *testpb.EchoRequest:
		return "req:" + m.Text + string(m.Data)
	case *testpb.EchoResponse:
		return "resp:" + m.Text + string(m.Data)
	}
	return fmt.Sprintf("%T", m)
}

// outcome names a message's error for a journal.
func outcome(err error) string {
	if err == io.EOF {
		return "EOF"
	}
	return protoserver.CodeOf(err).String()
}

// tapped is a server stream that notes every message in j.
type tapped struct {
	protoserver.MessageStream
	j *journal
}

func (t tapped) SendMsg(m proto.Message) error {
	t.j.add("send %s", describe(m))
	return t.MessageStream.SendMsg(m)
}

func (t tapped) RecvMsg(m proto.Message) error {
	if err := t.MessageStream.RecvMsg(m); err != nil {
		t.j.add("recv %s", outcome(err))
		return err
	}
	t.j.add("recv %s", describe(m))
	return nil
}

// clientTapped is a client stream that notes every message in j.
type clientTapped struct {
	protoserver.ClientMessageStream
	j *journal
}

func (t clientTapped) SendMsg(m proto.Message) error {
	t.j.add("send %s", describe(m))
	return t.ClientMessageStream.SendMsg(m)
}

func (t clientTapped) RecvMsg(m proto.Message) error {
	if err := t.ClientMessageStream.RecvMsg(m); err != nil {
		t.j.add("recv %s", outcome(err))
		return err
	}
	t.j.add("recv %s", describe(m))
	return nil
}

func (t clientTapped) CloseSend() error {
	t.j.add("close")
	return t.ClientMessageStream.CloseSend()
}

func shortName(method string) string { return method[strings.LastIndexByte(method, '/')+1:] }

// TestStreamInterceptors runs interceptors on both sides around the three
// kinds of streaming methods, through generated code: they run in order,
// the first outermost, with the method's kind; a wrapped stream sees
// every message, the server-streaming request included; the context an
// interceptor passes on is the method's stream.Context(); metadata a
// client interceptor adds reaches the method.
func TestStreamInterceptors(t *testing.T) {
	var sj, cj journal
	named := func(name string) protoserver.StreamInterceptor {
		return func(ctx context.Context, info *protoserver.MethodInfo, ms protoserver.MessageStream, next protoserver.StreamNext) error {
			sj.add("%s before %s client=%v server=%v", name, shortName(info.Name), info.IsClientStream, info.IsServerStream)
			err := next(ctx, ms)
			sj.add("%s after %v", name, protoserver.CodeOf(err))
			return err
		}
	}
	tap := func(ctx context.Context, info *protoserver.MethodInfo, ms protoserver.MessageStream, next protoserver.StreamNext) error {
		return next(context.WithValue(ctx, tapKey{}, "tapped"), tapped{ms, &sj})
	}
	cnamed := func(name string) protoserver.ClientStreamInterceptor {
		return func(ctx context.Context, method string, req proto.Message, next protoserver.Streamer) (protoserver.ClientMessageStream, error) {
			r := "none"
			if req != nil {
				r = describe(req)
			}
			cj.add("%s open %s %s", name, shortName(method), r)
			return next(protoserver.WithOutgoingMetadata(ctx, "k", name), method, req)
		}
	}
	ctap := func(ctx context.Context, method string, req proto.Message, next protoserver.Streamer) (protoserver.ClientMessageStream, error) {
		ms, err := next(ctx, method, req)
		if err != nil {
			return nil, err
		}
		return clientTapped{ms, &cj}, nil
	}
	svc := protoserver.NewService(protoserver.ServiceConfig{
		Logger:             quietLogger(),
		StreamInterceptors: []protoserver.StreamInterceptor{named("outer"), named("inner"), tap},
	})
	testpb.RegisterTest(svc, ctxServer{streamServer{testServer: testServer{echo: echo}}})
	_, addr := serve(t, svc, server.Config{})
	c := testpb.NewTestClient(protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{
		StreamInterceptors: []protoserver.ClientStreamInterceptor{cnamed("outer"), cnamed("inner"), ctap},
	}))
	ctx := ctxFor(t)
	check := func(t *testing.T, side string, j *journal, want []string) {
		t.Helper()
		if got := j.take(); !slices.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", side, got, want)
		}
	}

	t.Run("server-streaming", func(t *testing.T) {
		s, err := c.Split(ctx, &testpb.EchoRequest{Data: []byte("ab")})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := s.Recv(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
		check(t, "server", &sj, []string{
			"outer before Split client=false server=true", "inner before Split client=false server=true",
			"recv req:ab", "send resp:a", "send resp:b",
			"inner after OK", "outer after OK",
		})
		check(t, "client", &cj, []string{"outer open Split req:ab", "inner open Split req:ab", "recv resp:a", "recv resp:b", "recv EOF"})
	})
	t.Run("client-streaming", func(t *testing.T) {
		s, err := c.Join(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"x", "y"} {
			if err := s.Send(&testpb.EchoRequest{Data: []byte(p)}); err != nil {
				t.Fatal(err)
			}
		}
		if resp, err := s.CloseAndRecv(); err != nil || string(resp.Data) != "xy" {
			t.Fatalf("%v, %v", resp, err)
		}
		check(t, "server", &sj, []string{
			"outer before Join client=true server=false", "inner before Join client=true server=false",
			"recv req:x", "recv req:y", "recv EOF", "send resp:xy",
			"inner after OK", "outer after OK",
		})
		check(t, "client", &cj, []string{"outer open Join none", "inner open Join none", "send req:x", "send req:y", "close", "recv resp:xy", "recv EOF"})
	})
	t.Run("bidirectional", func(t *testing.T) {
		s, err := c.Chat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(&testpb.EchoRequest{Text: "one"}); err != nil {
			t.Fatal(err)
		}
		// The tap's context is the method's; the inner client
		// interceptor's metadata replaced the outer's.
		if m, err := s.Recv(); err != nil || m.Text != "one|tapped|inner" {
			t.Fatalf("%v, %v", m, err)
		}
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != io.EOF {
			t.Fatal(err)
		}
		check(t, "server", &sj, []string{
			"outer before Chat client=true server=true", "inner before Chat client=true server=true",
			"recv req:one", "send resp:one|tapped|inner", "recv EOF",
			"inner after OK", "outer after OK",
		})
		check(t, "client", &cj, []string{"outer open Chat none", "inner open Chat none", "send req:one", "recv resp:one|tapped|inner", "close", "recv EOF"})
	})
}

// TestStreamInterceptorFails: an interceptor that refuses a stream, or
// panics, is the stream's outcome, and the method does not run; a client
// interceptor that fails fails the opening.
func TestStreamInterceptorFails(t *testing.T) {
	var j journal
	guard := func(ctx context.Context, info *protoserver.MethodInfo, ms protoserver.MessageStream, next protoserver.StreamNext) error {
		switch protoserver.IncomingMetadata(ctx)["pass"] {
		case "yes":
			return next(ctx, ms)
		case "panic":
			panic("in the interceptor")
		}
		return protoserver.Errorf(protoserver.PermissionDenied, "no pass")
	}
	svc := protoserver.NewService(protoserver.ServiceConfig{
		Logger:             quietLogger(),
		StreamInterceptors: []protoserver.StreamInterceptor{guard},
	})
	svc.HandleStream(testpb.Test_Chat_FullMethodName, protoserver.BidiStreamMethod(func(s *protoserver.ServerStream[*testpb.EchoRequest, *testpb.EchoResponse]) error {
		j.add("method ran")
		return nil
	}))
	_, addr := serve(t, svc, server.Config{})
	c := testpb.NewTestClient(protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{}))
	ctx := ctxFor(t)
	for pass, code := range map[string]protoserver.Code{"": protoserver.PermissionDenied, "panic": protoserver.Internal, "yes": protoserver.OK} {
		s, err := c.Chat(protoserver.WithOutgoingMetadata(ctx, "pass", pass))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Recv()
		if err == io.EOF {
			err = nil
		}
		if got := protoserver.CodeOf(err); got != code {
			t.Errorf("pass %q: %v, want %v", pass, err, code)
		}
	}
	if got := j.take(); !slices.Equal(got, []string{"method ran"}) {
		t.Errorf("the method ran for %q", got)
	}

	refused := errors.New("refused by the client")
	cc := testpb.NewTestClient(protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{
		StreamInterceptors: []protoserver.ClientStreamInterceptor{
			func(context.Context, string, proto.Message, protoserver.Streamer) (protoserver.ClientMessageStream, error) {
				return nil, refused
			},
		},
	}))
	if _, err := cc.Split(ctx, &testpb.EchoRequest{}); !errors.Is(err, refused) {
		t.Fatal(err)
	}
}

// TestUnguardedStreams: a service with Interceptors refuses streaming
// methods unless it has StreamInterceptors, which may be empty on
// purpose.
func TestUnguardedStreams(t *testing.T) {
	pass := func(ctx context.Context, info *protoserver.MethodInfo, req proto.Message, sp *span.Span, next protoserver.Next) (proto.Message, error) {
		return next(ctx, req, sp)
	}
	register := func(cfg protoserver.ServiceConfig) (panicked string) {
		defer func() {
			if v := recover(); v != nil {
				panicked = fmt.Sprint(v)
			}
		}()
		testpb.RegisterTest(protoserver.NewService(cfg), streamServer{testServer: testServer{echo: echo}})
		return ""
	}
	if p := register(protoserver.ServiceConfig{Interceptors: []protoserver.Interceptor{pass}}); !strings.Contains(p, "StreamInterceptors") {
		t.Errorf("Interceptors without StreamInterceptors: panic %q", p)
	}
	for _, cfg := range []protoserver.ServiceConfig{
		{},
		{Interceptors: []protoserver.Interceptor{pass}, StreamInterceptors: []protoserver.StreamInterceptor{}},
		{StreamInterceptors: []protoserver.StreamInterceptor{}},
	} {
		if p := register(cfg); p != "" {
			t.Errorf("%d interceptors, %v stream interceptors: panic %q", len(cfg.Interceptors), cfg.StreamInterceptors, p)
		}
	}
}

// endStream is a ClientMessageStream whose RecvMsg returns err.
type endStream struct {
	protoserver.ClientMessageStream
	err error
}

func (e endStream) RecvMsg(proto.Message) error { return e.err }

// TestOnClientStreamEnd: done runs once, at the first RecvMsg error (nil
// for io.EOF), or when the context ends first.
func TestOnClientStreamEnd(t *testing.T) {
	ends := make(chan error, 4)
	done := func(err error) { ends <- err }
	for _, tc := range []struct{ recv, want error }{{io.EOF, nil}, {protoserver.Errorf(protoserver.NotFound, "x"), protoserver.Errorf(protoserver.NotFound, "x")}} {
		ctx, cancel := context.WithCancel(context.Background())
		ms := protoserver.OnClientStreamEnd(ctx, endStream{err: tc.recv}, done)
		_ = ms.RecvMsg(nil)
		_ = ms.RecvMsg(nil)
		cancel()
		if err := <-ends; protoserver.CodeOf(err) != protoserver.CodeOf(tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("RecvMsg %v: done(%v), want %v", tc.recv, err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	protoserver.OnClientStreamEnd(ctx, endStream{}, done)
	cancel()
	if err := <-ends; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: done(%v)", err)
	}
	if len(ends) != 0 {
		t.Errorf("done ran %d more times", len(ends))
	}
}
