package middleware_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/internal/testpb"
	"github.com/tcpez/tcpez/protoserver/middleware"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const safety = 10 * time.Second

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	t.Cleanup(cancel)
	return ctx
}

// testServer serves Echo and Chat itself, Split and Join as
// testpb.Streams does, and Other not.
type testServer struct {
	unimplemented
	testpb.Streams
}

type unimplemented struct{ testpb.UnimplementedTestServer }

// Echo fails with the code named by the request's text, if any.
func (testServer) Echo(ctx context.Context, req *testpb.EchoRequest, _ *span.Span) (*testpb.EchoResponse, error) {
	switch req.Text {
	case "missing":
		return nil, protoserver.Errorf(protoserver.NotFound, "no such thing")
	case "broken":
		return nil, errors.New("broken")
	case "whoami":
		who, _ := ctx.Value(userKey{}).(string)
		return &testpb.EchoResponse{Text: who}, nil
	}
	return &testpb.EchoResponse{Text: req.Text}, nil
}

type userKey struct{}

// start serves the Test service with ics on a real server and returns a
// function that makes generated clients with cics.
func start(t *testing.T, ics []protoserver.Interceptor) func(cics ...protoserver.ClientInterceptor) testpb.TestClient {
	newClient := serve(t, protoserver.ServiceConfig{Interceptors: ics, StreamInterceptors: []protoserver.StreamInterceptor{}})
	return func(cics ...protoserver.ClientInterceptor) testpb.TestClient {
		return newClient(protoserver.ClientConfig{Interceptors: cics})
	}
}

// serve serves the Test service with cfg on a real server and returns a
// function that makes generated clients.
func serve(t *testing.T, cfg protoserver.ServiceConfig) func(protoserver.ClientConfig) testpb.TestClient {
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	cfg.Logger = quiet
	svc := protoserver.NewService(cfg)
	testpb.RegisterTest(svc, testServer{})
	srv := server.New(svc, server.Config{Logger: quiet})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return func(ccfg protoserver.ClientConfig) testpb.TestClient {
		c, err := client.New([]string{l.Addr().String()}, client.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return testpb.NewTestClient(protoserver.NewClient(c, ccfg))
	}
}

func TestLogging(t *testing.T) {
	slog, shook := logtest.NewNullLogger()
	slog.SetLevel(logrus.DebugLevel)
	clog, chook := logtest.NewNullLogger()
	clog.SetLevel(logrus.InfoLevel) // successful calls are not logged
	c := start(t, []protoserver.Interceptor{middleware.Logging(slog)})(middleware.ClientLogging(clog))
	ctx := protoserver.WithSpanID(ctxFor(t), 0xabc)

	for _, text := range []string{"fine", "missing", "broken"} {
		_, _ = c.Echo(ctx, &testpb.EchoRequest{Text: text})
	}
	_, _ = c.Other(ctx, &testpb.EchoRequest{})

	entries := shook.AllEntries()
	want := []struct {
		level logrus.Level
		code  string
	}{
		{logrus.DebugLevel, "OK"},
		{logrus.WarnLevel, "NotFound"},
		{logrus.ErrorLevel, "Unknown"},
		{logrus.WarnLevel, "Unimplemented"},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d server entries, want %d", len(entries), len(want))
	}
	for i, w := range want {
		e := entries[i]
		if e.Level != w.level || e.Data["code"] != w.code || e.Data["method"] == nil || e.Data["parent_id"] != span.ID(0xabc).String() {
			t.Errorf("server entry %d: %v %v, want %v %v", i, e.Level, e.Data, w.level, w.code)
		}
	}
	entries = chook.AllEntries()
	if len(entries) != 3 {
		t.Fatalf("%d client entries, want 3 (not the successful call)", len(entries))
	}
	if e := entries[0]; e.Level != logrus.WarnLevel || e.Data["code"] != "NotFound" || e.Data["method"] != testpb.Test_Echo_FullMethodName ||
		e.Data["span_id"] != span.ID(0xabc).String() || e.Data[logrus.ErrorKey] == nil {
		t.Errorf("client entry: %v %v", e.Level, e.Data)
	}
}

func TestTokenAuth(t *testing.T) {
	newClient := start(t, []protoserver.Interceptor{middleware.TokenAuth("old-secret", "secret")})
	ctx := ctxFor(t)
	for _, tc := range []struct {
		name string
		ics  []protoserver.ClientInterceptor
		code protoserver.Code
	}{
		{"no token", nil, protoserver.Unauthenticated},
		{"wrong token", []protoserver.ClientInterceptor{middleware.ClientToken("guess")}, protoserver.Unauthenticated},
		{"prefix of a token", []protoserver.ClientInterceptor{middleware.ClientToken("sec")}, protoserver.Unauthenticated},
		{"token", []protoserver.ClientInterceptor{middleware.ClientToken("secret")}, protoserver.OK},
		{"other token", []protoserver.ClientInterceptor{middleware.ClientToken("old-secret")}, protoserver.OK},
	} {
		c := newClient(tc.ics...)
		_, err := c.Echo(ctx, &testpb.EchoRequest{})
		if got := protoserver.CodeOf(err); got != tc.code {
			t.Errorf("%s: plain call: %v, want %v", tc.name, err, tc.code)
		}
		_, err = c.GoEcho(ctx, &testpb.EchoRequest{}).Wait()
		if got := protoserver.CodeOf(err); got != tc.code {
			t.Errorf("%s: future: %v, want %v", tc.name, err, tc.code)
		}
		p := c.Pipeline()
		f := p.Echo(&testpb.EchoRequest{})
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Wait(); protoserver.CodeOf(err) != tc.code {
			t.Errorf("%s: pipelined: %v, want %v", tc.name, err, tc.code)
		}
	}
}

func TestAuthIdentity(t *testing.T) {
	check := func(ctx context.Context, token string) (context.Context, error) {
		switch token {
		case "ada-token":
			return context.WithValue(ctx, userKey{}, "ada"), nil
		case "banned":
			return nil, protoserver.Errorf(protoserver.PermissionDenied, "banned")
		case "keep":
			return nil, nil
		}
		return nil, errors.New("who are you?")
	}
	newClient := start(t, []protoserver.Interceptor{middleware.Auth(check)})
	ctx := ctxFor(t)
	resp, err := newClient(middleware.ClientToken("ada-token")).Echo(ctx, &testpb.EchoRequest{Text: "whoami"})
	if err != nil || resp.Text != "ada" {
		t.Fatalf("%v, %v", resp, err)
	}
	if _, err := newClient(middleware.ClientToken("keep")).Echo(ctx, &testpb.EchoRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err = newClient(middleware.ClientToken("banned")).Echo(ctx, &testpb.EchoRequest{})
	if protoserver.CodeOf(err) != protoserver.PermissionDenied {
		t.Fatal(err)
	}
	_, err = newClient().Echo(ctx, &testpb.EchoRequest{})
	if st := protoserver.StatusOf(err); st.Code != protoserver.Unauthenticated || st.Message != "who are you?" {
		t.Fatal(err)
	}
}

func TestMetrics(t *testing.T) {
	smem, cmem := stats.NewMemory(), stats.NewMemory()
	c := start(t, []protoserver.Interceptor{middleware.Metrics(smem)})(middleware.ClientMetrics(cmem))
	ctx := ctxFor(t)
	for _, text := range []string{"a", "b", "missing"} {
		_, _ = c.Echo(ctx, &testpb.EchoRequest{Text: text})
	}
	_, _ = c.Other(ctx, &testpb.EchoRequest{})

	for _, side := range []struct {
		name string
		mem  *stats.Memory
	}{{"server", smem}, {"client", cmem}} {
		p := "rpc." + side.name
		counts := map[string]int64{
			p + ".calls":                           4,
			p + ".errors":                          2,
			p + ".errors.NotFound":                 1,
			p + ".errors.Unimplemented":            1,
			p + ".tcpez_test_v1_Test.Echo.calls":   3,
			p + ".tcpez_test_v1_Test.Echo.errors":  1,
			p + ".tcpez_test_v1_Test.Other.calls":  1,
			p + ".tcpez_test_v1_Test.Other.errors": 1,
		}
		for name, want := range counts {
			if got := side.mem.Counter(name); got != want {
				t.Errorf("%s: %s = %d, want %d; names %v", side.name, name, got, want, side.mem.Names())
			}
		}
		if n := len(side.mem.Timings(p + ".call")); n != 4 {
			t.Errorf("%s: %d call timings", side.name, n)
		}
		if n := len(side.mem.Timings(p + ".tcpez_test_v1_Test.Echo")); n != 3 {
			t.Errorf("%s: %d Echo timings", side.name, n)
		}
	}
	// A call that gets no answer counts with the client's code.
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = c.Echo(ctx2, &testpb.EchoRequest{})
	if got := cmem.Counter("rpc.client.errors.Canceled"); got != 1 {
		t.Errorf("rpc.client.errors.Canceled = %d", got)
	}
}

func TestMetricName(t *testing.T) {
	for in, want := range map[string]string{
		"/pkg.v1.Svc/Get": "pkg_v1_Svc.Get",
		"Echo":            "Echo",
		"a:b|c@d e":       "a_b_c_d_e",
	} {
		if got := middleware.MetricName(in); got != want {
			t.Errorf("MetricName(%q) = %q, want %q", in, got, want)
		}
	}
}
