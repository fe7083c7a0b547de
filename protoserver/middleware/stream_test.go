package middleware_test

import (
	"context"
	"io"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/internal/testpb"
	"github.com/tcpez/tcpez/protoserver/middleware"
	"github.com/tcpez/tcpez/stats"
)

// Chat answers each request with the caller's identity.
func (testServer) Chat(s testpb.Test_ChatServer) error {
	for {
		_, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		who, _ := s.Context().Value(userKey{}).(string)
		if err := s.Send(&testpb.EchoResponse{Text: who}); err != nil {
			return err
		}
	}
}

// drain reads s to its end and returns the error that ended it, nil for
// io.EOF.
func drain(s interface {
	Recv() (*testpb.EchoResponse, error)
}) error {
	for {
		if _, err := s.Recv(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// streamAll makes one stream of each kind and returns their outcomes, and
// the identity Chat answered.
func streamAll(t *testing.T, ctx context.Context, c testpb.TestClient) (codes [3]protoserver.Code, who string) {
	t.Helper()
	split, err := c.Split(ctx, &testpb.EchoRequest{Data: []byte("ab")})
	if err != nil {
		t.Fatal(err)
	}
	codes[0] = protoserver.CodeOf(drain(split))

	join, err := c.Join(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = join.Send(&testpb.EchoRequest{Data: []byte("x")}) // io.EOF once refused
	_, err = join.CloseAndRecv()
	codes[1] = protoserver.CodeOf(err)

	chat, err := c.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = chat.Send(&testpb.EchoRequest{})
	m, err := chat.Recv()
	if err == nil {
		who = m.Text
		_ = chat.CloseSend()
		err = drain(chat)
	}
	codes[2] = protoserver.CodeOf(err)
	return codes, who
}

// TestTokenAuthStreams: TokenAuthStream refuses the three kinds of
// streams without the token and admits them with it, sent by
// ClientTokenStream; ClientToken alone does not send it with streams.
func TestTokenAuthStreams(t *testing.T) {
	newClient := serve(t, protoserver.ServiceConfig{
		Interceptors:       []protoserver.Interceptor{middleware.TokenAuth("secret")},
		StreamInterceptors: []protoserver.StreamInterceptor{middleware.TokenAuthStream("old-secret", "secret")},
	})
	ctx := ctxFor(t)
	for _, tc := range []struct {
		name string
		cfg  protoserver.ClientConfig
		code protoserver.Code
	}{
		{"no token", protoserver.ClientConfig{}, protoserver.Unauthenticated},
		{"wrong token", protoserver.ClientConfig{StreamInterceptors: []protoserver.ClientStreamInterceptor{middleware.ClientTokenStream("guess")}}, protoserver.Unauthenticated},
		{"token for calls only", protoserver.ClientConfig{Interceptors: []protoserver.ClientInterceptor{middleware.ClientToken("secret")}}, protoserver.Unauthenticated},
		{"token", protoserver.ClientConfig{StreamInterceptors: []protoserver.ClientStreamInterceptor{middleware.ClientTokenStream("secret")}}, protoserver.OK},
		{"other token", protoserver.ClientConfig{StreamInterceptors: []protoserver.ClientStreamInterceptor{middleware.ClientTokenStream("old-secret")}}, protoserver.OK},
	} {
		codes, _ := streamAll(t, ctx, newClient(tc.cfg))
		for i, kind := range []string{"server-streaming", "client-streaming", "bidirectional"} {
			if codes[i] != tc.code {
				t.Errorf("%s: %s: %v, want %v", tc.name, kind, codes[i], tc.code)
			}
		}
	}
}

// TestAuthStreamIdentity: the context AuthStream's check returns is the
// method's stream.Context().
func TestAuthStreamIdentity(t *testing.T) {
	check := func(ctx context.Context, token string) (context.Context, error) {
		if token == "ada-token" {
			return context.WithValue(ctx, userKey{}, "ada"), nil
		}
		return nil, protoserver.Errorf(protoserver.PermissionDenied, "banned")
	}
	newClient := serve(t, protoserver.ServiceConfig{StreamInterceptors: []protoserver.StreamInterceptor{middleware.AuthStream(check)}})
	ctx := ctxFor(t)
	codes, who := streamAll(t, ctx, newClient(protoserver.ClientConfig{
		StreamInterceptors: []protoserver.ClientStreamInterceptor{middleware.ClientTokenStream("ada-token")},
	}))
	if codes != [3]protoserver.Code{} || who != "ada" {
		t.Fatalf("%v, %q", codes, who)
	}
	if codes, _ := streamAll(t, ctx, newClient(protoserver.ClientConfig{})); codes[2] != protoserver.PermissionDenied {
		t.Fatalf("no token: %v", codes)
	}
}

func TestLoggingStreams(t *testing.T) {
	slog, shook := logtest.NewNullLogger()
	slog.SetLevel(logrus.DebugLevel)
	clog, chook := logtest.NewNullLogger()
	clog.SetLevel(logrus.DebugLevel)
	c := serve(t, protoserver.ServiceConfig{
		StreamInterceptors: []protoserver.StreamInterceptor{middleware.LoggingStream(slog)},
	})(protoserver.ClientConfig{
		StreamInterceptors: []protoserver.ClientStreamInterceptor{middleware.ClientLoggingStream(clog)},
	})
	ctx := ctxFor(t)
	if codes, _ := streamAll(t, ctx, c); codes != [3]protoserver.Code{} {
		t.Fatal(codes)
	}
	split, err := c.Split(ctx, &testpb.EchoRequest{Text: "refused"})
	if err != nil {
		t.Fatal(err)
	}
	_ = drain(split)

	want := []struct {
		level        logrus.Level
		method, kind string
		code         string
	}{
		{logrus.DebugLevel, testpb.Test_Split_FullMethodName, "server", "OK"},
		{logrus.DebugLevel, testpb.Test_Join_FullMethodName, "client", "OK"},
		{logrus.DebugLevel, testpb.Test_Chat_FullMethodName, "bidi", "OK"},
		{logrus.WarnLevel, testpb.Test_Split_FullMethodName, "server", "FailedPrecondition"},
	}
	for side, entries := range map[string][]*logrus.Entry{"server": shook.AllEntries(), "client": chook.AllEntries()} {
		if len(entries) != len(want) {
			t.Fatalf("%s: %d entries, want %d", side, len(entries), len(want))
		}
		for i, w := range want {
			e := entries[i]
			kind := w.kind
			if side == "client" {
				kind = "" // the client's method names no kind
			}
			if e.Level != w.level || e.Message != "tcpez: stream" || e.Data["method"] != w.method || e.Data["code"] != w.code || (e.Data["stream"] != nil) != (kind != "") || (kind != "" && e.Data["stream"] != kind) {
				t.Errorf("%s entry %d: %v %q %v, want %v %v %v", side, i, e.Level, e.Message, e.Data, w.level, w.code, kind)
			}
		}
	}
}

func TestMetricsStreams(t *testing.T) {
	smem, cmem := stats.NewMemory(), stats.NewMemory()
	c := serve(t, protoserver.ServiceConfig{
		StreamInterceptors: []protoserver.StreamInterceptor{middleware.MetricsStream(smem)},
	})(protoserver.ClientConfig{
		StreamInterceptors: []protoserver.ClientStreamInterceptor{middleware.ClientMetricsStream(cmem)},
	})
	ctx := ctxFor(t)
	_, _ = streamAll(t, ctx, c)
	split, err := c.Split(ctx, &testpb.EchoRequest{Text: "refused"})
	if err != nil {
		t.Fatal(err)
	}
	_ = drain(split)

	for side, mem := range map[string]*stats.Memory{"server": smem, "client": cmem} {
		p := "rpc." + side
		for name, want := range map[string]int64{
			p + ".calls":                           4,
			p + ".errors.FailedPrecondition":       1,
			p + ".tcpez_test_v1_Test.Split.calls":  2,
			p + ".tcpez_test_v1_Test.Split.errors": 1,
			p + ".tcpez_test_v1_Test.Join.calls":   1,
			p + ".tcpez_test_v1_Test.Chat.calls":   1,
		} {
			if got := mem.Counter(name); got != want {
				t.Errorf("%s: %s = %d, want %d; names %v", side, name, got, want, mem.Names())
			}
		}
		if n := len(mem.Timings(p + ".call")); n != 4 {
			t.Errorf("%s: %d timings", side, n)
		}
	}
}
