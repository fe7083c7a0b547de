package protoserver_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/internal/testpb"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// No test may leave a goroutine behind: not the servers', the clients', nor
// those of futures and intercepted pipelines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// safety bounds every blocking step of a test, so that a bug fails the
// test instead of hanging it. It is a net, never the thing asserted.
const safety = 10 * time.Second

func quietLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	t.Cleanup(cancel)
	return ctx
}

// serve runs h on a real server on a fresh loopback port until the test
// ends, and returns the server and its address.
func serve(t testing.TB, h server.Handler, cfg server.Config) (*server.Server, string) {
	t.Helper()
	return testserver.Start(t, h, cfg)
}

// newClient returns a byte client for addr, closed when the test ends.
func newClient(t testing.TB, addr string, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoFunc is the signature of the test service's Echo.
type echoFunc = func(context.Context, *testpb.EchoRequest, *span.Span) (*testpb.EchoResponse, error)

// testServer implements the Test service with echo; Other and Old stay
// unimplemented.
type testServer struct {
	testpb.UnimplementedTestServer
	echo echoFunc
}

func (s testServer) Echo(ctx context.Context, req *testpb.EchoRequest, sp *span.Span) (*testpb.EchoResponse, error) {
	return s.echo(ctx, req, sp)
}

func echo(_ context.Context, req *testpb.EchoRequest, _ *span.Span) (*testpb.EchoResponse, error) {
	return &testpb.EchoResponse{Data: req.Data, Text: req.Text}, nil
}

// startService serves the Test service with fn as Echo and returns a
// generated client for it. cfg.Logger defaults to a quiet one.
func startService(t testing.TB, fn echoFunc, cfg protoserver.ServiceConfig) (testpb.TestClient, *protoserver.Service, string) {
	t.Helper()
	return startServer(t, testServer{echo: fn}, cfg)
}

// startServer is startService serving impl.
func startServer(t testing.TB, impl testpb.TestServer, cfg protoserver.ServiceConfig) (testpb.TestClient, *protoserver.Service, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	svc := protoserver.NewService(cfg)
	testpb.RegisterTest(svc, impl)
	_, addr := serve(t, svc, server.Config{})
	return testpb.NewTestClient(protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{})), svc, addr
}

// wantCode fails unless err is a *Status with code.
func wantCode(t testing.TB, err error, code protoserver.Code) *protoserver.Status {
	t.Helper()
	st, ok := errors.AsType[*protoserver.Status](err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *Status; want code %v", err, err, code)
	}
	if st.Code != code {
		t.Fatalf("code %v (%v), want %v", st.Code, err, code)
	}
	return st
}
