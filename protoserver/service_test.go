package protoserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	tcpezv1 "github.com/tcpez/tcpez/proto/tcpez/v1"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/internal/testpb"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// TestServiceCalls makes plain, future and pipelined calls through the
// generated client, over a real server and client.
func TestServiceCalls(t *testing.T) {
	tc, _, _ := startService(t, echo, protoserver.ServiceConfig{})
	ctx := ctxFor(t)

	for _, size := range []int{0, 1, 16, 4 << 10, 100 << 10} {
		data := bytes.Repeat([]byte{'x'}, size)
		resp, err := tc.Echo(ctx, &testpb.EchoRequest{Data: data, Text: "hi"})
		if err != nil || !bytes.Equal(resp.GetData(), data) || resp.GetText() != "hi" {
			t.Fatalf("size %d: %v, %v", size, resp, err)
		}
	}

	var futures []*protoserver.Future[testpb.EchoResponse]
	for i := range 20 {
		futures = append(futures, tc.GoEcho(ctx, &testpb.EchoRequest{Text: fmt.Sprint(i)}))
	}
	for i, f := range futures {
		<-f.Done()
		resp, err := f.Wait()
		if err != nil || resp.GetText() != fmt.Sprint(i) {
			t.Fatalf("future %d: %v, %v", i, resp, err)
		}
	}

	p := tc.Pipeline()
	for round := range 2 { // a pipeline can be reused
		a := p.Echo(&testpb.EchoRequest{Text: "a"})
		other := p.Other(&testpb.EchoRequest{Text: "b"})
		c := p.Echo(&testpb.EchoRequest{Text: "c"})
		if p.Len() != 3 {
			t.Fatalf("Len %d, want 3", p.Len())
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatalf("round %d: Flush: %v", round, err)
		}
		if r, err := a.Wait(); err != nil || r.GetText() != "a" {
			t.Fatalf("round %d: a: %v, %v", round, r, err)
		}
		// One failed call does not fail the batch.
		if _, err := other.Wait(); protoserver.CodeOf(err) != protoserver.Unimplemented {
			t.Fatalf("round %d: Other: %v, want Unimplemented", round, err)
		}
		if r, err := c.Wait(); err != nil || r.GetText() != "c" {
			t.Fatalf("round %d: c: %v, %v", round, r, err)
		}
	}
	if err := p.Flush(ctx); err != nil || p.Len() != 0 {
		t.Fatalf("empty Flush: %v", err)
	}
}

// TestServiceWithoutCodegen registers methods with the builder and calls
// them with Client.Call, Go and Enqueue.
func TestServiceWithoutCodegen(t *testing.T) {
	upper := func(_ context.Context, req *wrapperspb.StringValue, sp *span.Span) (*wrapperspb.StringValue, error) {
		return wrapperspb.String(strings.ToUpper(req.GetValue())), nil
	}
	double := func(_ context.Context, req *wrapperspb.Int64Value, _ *span.Span) (*wrapperspb.Int64Value, error) {
		return wrapperspb.Int64(2 * req.GetValue()), nil
	}
	svc := protoserver.NewService(protoserver.ServiceConfig{}).
		Handle("Upper", protoserver.Method(upper)).
		Handle("Double", protoserver.Method(double))
	if got := svc.Methods(); len(got) != 3 || got[0] != protoserver.HealthMethod || got[1] != "Double" || got[2] != "Upper" {
		t.Fatalf("Methods: %q", got)
	}
	_, addr := serve(t, svc, server.Config{})
	c := protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{})
	ctx := ctxFor(t)

	var s wrapperspb.StringValue
	if err := c.Call(ctx, "Upper", wrapperspb.String("abc"), &s); err != nil || s.GetValue() != "ABC" {
		t.Fatalf("Upper: %q, %v", s.GetValue(), err)
	}
	f := protoserver.Go[wrapperspb.Int64Value](ctx, c, "Double", wrapperspb.Int64(21))
	if r, err := f.Wait(); err != nil || r.GetValue() != 42 {
		t.Fatalf("Double: %v, %v", r, err)
	}
	p := c.Pipeline()
	f1 := protoserver.Enqueue[wrapperspb.StringValue](p, "Upper", wrapperspb.String("x"))
	f2 := protoserver.Enqueue[wrapperspb.Int64Value](p, "Double", wrapperspb.Int64(-1))
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := f1.Wait(); err != nil || r.GetValue() != "X" {
		t.Fatalf("pipelined Upper: %v, %v", r, err)
	}
	if r, err := f2.Wait(); err != nil || r.GetValue() != -2 {
		t.Fatalf("pipelined Double: %v, %v", r, err)
	}
	// An unknown method.
	err := c.Call(ctx, "Triple", wrapperspb.Int64(1), &s)
	wantCode(t, err, protoserver.Unimplemented)
}

// TestCallInto: the generated ...Into call decodes into the caller's
// message, which it resets first: nothing of the previous answer is left.
func TestCallInto(t *testing.T) {
	c, _, _ := startService(t, echo, protoserver.ServiceConfig{})
	ctx := ctxFor(t)
	resp := &testpb.EchoResponse{Data: []byte("stale"), Text: "stale"}
	if err := c.EchoInto(ctx, &testpb.EchoRequest{Data: []byte("one")}, resp); err != nil || string(resp.Data) != "one" || resp.Text != "" {
		t.Fatalf("first: %v, %v", resp, err)
	}
	if err := c.EchoInto(ctx, &testpb.EchoRequest{Text: "two"}, resp); err != nil || resp.Data != nil || resp.Text != "two" {
		t.Fatalf("second: %v, %v", resp, err)
	}
}

// TestRequestReuse: with reused requests, answers that share the
// requests' fields, or are the request, stay intact under concurrent calls.
func TestRequestReuse(t *testing.T) {
	svc := protoserver.NewService(protoserver.ServiceConfig{RequestReuse: true}).
		Handle("Same", protoserver.Method(func(_ context.Context, req *wrapperspb.BytesValue, _ *span.Span) (*wrapperspb.BytesValue, error) {
			return req, nil
		}))
	_, addr := serve(t, svc, server.Config{})
	var same wrapperspb.BytesValue
	if err := protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{}).Call(ctxFor(t), "Same", wrapperspb.Bytes([]byte("me")), &same); err != nil || string(same.Value) != "me" {
		t.Fatalf("%q, %v", same.Value, err)
	}

	c, _, _ := startService(t, echo, protoserver.ServiceConfig{RequestReuse: true})
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() {
			for i := range 50 {
				data := fmt.Appendf(nil, "g%d-i%d", g, i)
				f := c.GoEcho(ctx, &testpb.EchoRequest{Data: data})
				resp, err := c.Echo(ctx, &testpb.EchoRequest{Data: data, Text: "plain"})
				if err != nil || !bytes.Equal(resp.Data, data) || resp.Text != "plain" {
					t.Errorf("%s: %v, %v", data, resp, err)
					return
				}
				if resp, err := f.Wait(); err != nil || !bytes.Equal(resp.Data, data) || resp.Text != "" {
					t.Errorf("%s: future: %v, %v", data, resp, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestRequestReuseKeepsPlainFields: with RequestReuse, a method may keep
// the fields of a plain protobuf-go request, large bytes fields too, as
// ServiceConfig says. (They pointed into the server's read buffer, and a
// kept value turned into the next request's bytes; that is now
// AliasRequestBytes, which a method that keeps them must not set.)
func TestRequestReuseKeepsPlainFields(t *testing.T) {
	var kept [][]byte
	var mu sync.Mutex
	svc := protoserver.NewService(protoserver.ServiceConfig{RequestReuse: true}).
		Handle("Keep", protoserver.Method(func(_ context.Context, req *wrapperspb.BytesValue, _ *span.Span) (*wrapperspb.BytesValue, error) {
			mu.Lock()
			kept = append(kept, req.Value)
			mu.Unlock()
			return &wrapperspb.BytesValue{}, nil
		}))
	_, addr := serve(t, svc, server.Config{})
	c := protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{})
	var want [][]byte
	for i := range 8 {
		v := bytes.Repeat([]byte{'a' + byte(i)}, 4<<10)
		want = append(want, v)
		if err := c.Call(ctxFor(t), "Keep", wrapperspb.Bytes(v), new(wrapperspb.BytesValue)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range want {
		if !bytes.Equal(kept[i], want[i]) {
			t.Fatalf("value %d kept by the method is now %q…, want %q…", i, kept[i][:8], want[i][:8])
		}
	}
}

func TestHandlePanics(t *testing.T) {
	m := protoserver.Method(echo)
	expectPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	svc := protoserver.NewService(protoserver.ServiceConfig{}).Handle("Echo", m)
	expectPanic("duplicate", func() { svc.Handle("Echo", m) })
	expectPanic("empty name", func() { svc.Handle("", m) })
	svc.Respond(context.Background(), nil, span.New())
	expectPanic("after serving", func() { svc.Handle("Late", m) })
}

// TestStatusCodes checks every code that the service produces, as the
// caller sees it through the generated client.
func TestStatusCodes(t *testing.T) {
	detail := durationpb.New(3 * time.Second)
	cases := []struct {
		name    string
		handler echoFunc
		code    protoserver.Code
		message string // a part of the message
	}{
		{"status", func(context.Context, *testpb.EchoRequest, *span.Span) (*testpb.EchoResponse, error) {
			st, err := protoserver.Errorf(protoserver.NotFound, "no key %q", "k").WithDetails(detail)
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("wrapped: %w", st)
		}, protoserver.NotFound, `no key "k"`},
		{"plain error", func(context.Context, *testpb.EchoRequest, *span.Span) (*testpb.EchoResponse, error) {
			return nil, errors.New("disk on fire")
		}, protoserver.Unknown, "disk on fire"},
		{"status OK as an error", func(context.Context, *testpb.EchoRequest, *span.Span) (*testpb.EchoResponse, error) {
			return nil, protoserver.Errorf(protoserver.OK, "confused")
		}, protoserver.Unknown, "confused"},
		{"panic", func(context.Context, *testpb.EchoRequest, *span.Span) (*testpb.EchoResponse, error) {
			panic("the handler exploded")
		}, protoserver.Internal, "the handler exploded"},
		{"panic with an error", func(context.Context, *testpb.EchoRequest, *span.Span) (*testpb.EchoResponse, error) {
			panic(fmt.Errorf("error value %d", 42))
		}, protoserver.Internal, "error value 42"},
		{"context error", func(context.Context, *testpb.EchoRequest, *span.Span) (*testpb.EchoResponse, error) {
			return nil, fmt.Errorf("downstream: %w", context.DeadlineExceeded)
		}, protoserver.DeadlineExceeded, "downstream"},
		{"nil *Status as an error", func(context.Context, *testpb.EchoRequest, *span.Span) (*testpb.EchoResponse, error) {
			var st *protoserver.Status // a mistake, not a success: the error is not nil
			return &testpb.EchoResponse{}, st
		}, protoserver.Internal, "nil *Status"},
		{"invalid response", func(context.Context, *testpb.EchoRequest, *span.Span) (*testpb.EchoResponse, error) {
			return &testpb.EchoResponse{Text: "\xff not UTF-8"}, nil
		}, protoserver.Internal, "cannot encode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := startService(t, tc.handler, protoserver.ServiceConfig{})
			ctx := ctxFor(t)
			_, err := c.Echo(ctx, &testpb.EchoRequest{})
			st := wantCode(t, err, tc.code)
			if !strings.Contains(st.Message, tc.message) {
				t.Fatalf("message %q does not contain %q", st.Message, tc.message)
			}
			if tc.code == protoserver.NotFound {
				if len(st.Details) != 1 {
					t.Fatalf("details %v", st.Details)
				}
				var d durationpb.Duration
				if err := st.Details[0].UnmarshalTo(&d); err != nil || d.AsDuration() != 3*time.Second {
					t.Fatalf("detail %v, %v", &d, err)
				}
			}
			// An error is an answer: the connection goes on.
			if resp, err := c.Other(ctx, &testpb.EchoRequest{}); protoserver.CodeOf(err) != protoserver.Unimplemented {
				t.Fatalf("next call: %v, %v", resp, err)
			}
		})
	}
}

// TestPanicLogged: a recovered panic is logged with its method, value,
// stack and span.
func TestPanicLogged(t *testing.T) {
	logger, hook := logtest.NewNullLogger()
	c, _, _ := startService(t, func(context.Context, *testpb.EchoRequest, *span.Span) (*testpb.EchoResponse, error) {
		panic("logged panic")
	}, protoserver.ServiceConfig{Logger: logger})
	_, err := c.Echo(protoserver.WithSpanID(ctxFor(t), 5), &testpb.EchoRequest{})
	wantCode(t, err, protoserver.Internal)
	e := hook.LastEntry()
	if e == nil || e.Level != logrus.ErrorLevel || e.Data["panic"] != "logged panic" || e.Data["method"] != testpb.Test_Echo_FullMethodName ||
		!strings.Contains(fmt.Sprint(e.Data["stack"]), "panic") || e.Data["parent_id"] != span.ID(5).String() {
		t.Fatalf("log entry %v", e)
	}
}

// rawCall sends env as a bare frame through a byte client and decodes the
// answer with the generated envelope types: the wire format is the
// envelope.proto one.
func rawCall(t *testing.T, c *client.Client, env []byte) *tcpezv1.Response {
	t.Helper()
	ans, err := c.Call(ctxFor(t), env)
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	var resp tcpezv1.Response
	if err := proto.Unmarshal(ans, &resp); err != nil {
		t.Fatalf("answer %x: %v", ans, err)
	}
	return &resp
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEnvelopeOnTheWire calls the service with hand-built envelopes,
// including malformed ones, through a plain byte client.
func TestEnvelopeOnTheWire(t *testing.T) {
	var calls atomic.Int64
	_, _, addr := startService(t, func(ctx context.Context, req *testpb.EchoRequest, sp *span.Span) (*testpb.EchoResponse, error) {
		calls.Add(1)
		return echo(ctx, req, sp)
	}, protoserver.ServiceConfig{})
	c := newClient(t, addr, client.Config{})
	payload := marshal(t, &testpb.EchoRequest{Text: "wire"})

	resp := rawCall(t, c, marshal(t, &tcpezv1.Request{Method: testpb.Test_Echo_FullMethodName, Payload: payload}))
	var out testpb.EchoResponse
	if resp.Status != nil || proto.Unmarshal(resp.Payload, &out) != nil || out.Text != "wire" {
		t.Fatalf("echo: %v", resp)
	}

	for _, tc := range []struct {
		name string
		env  []byte
		code protoserver.Code
	}{
		{"malformed envelope", []byte{0x0a, 0x7f, 'x'}, protoserver.InvalidArgument},
		{"undecodable payload", marshal(t, &tcpezv1.Request{Method: testpb.Test_Echo_FullMethodName, Payload: []byte{0xff, 0xff}}), protoserver.InvalidArgument},
		{"unknown method", marshal(t, &tcpezv1.Request{Method: "/tcpez.test.v1.Test/Nope"}), protoserver.Unimplemented},
		{"empty envelope", nil, protoserver.Unimplemented},
		{"deadline already passed", marshal(t, &tcpezv1.Request{Method: testpb.Test_Echo_FullMethodName, TimeoutNanos: -1}), protoserver.DeadlineExceeded},
	} {
		resp := rawCall(t, c, tc.env)
		if got := protoserver.Code(resp.GetStatus().GetCode()); got != tc.code || len(resp.Payload) != 0 {
			t.Errorf("%s: code %v, want %v (%v)", tc.name, got, tc.code, resp)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1: failed envelopes must not reach it", n)
	}
}

// TestErrorsKeepConnection sends a bad envelope and a good one on one raw
// connection: both are answered, in order, and the connection stays open.
func TestErrorsKeepConnection(t *testing.T) {
	_, _, addr := startService(t, echo, protoserver.ServiceConfig{})
	nc, err := net.DialTimeout("tcp", addr, safety)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(safety))
	good := marshal(t, &tcpezv1.Request{Method: testpb.Test_Echo_FullMethodName, Payload: marshal(t, &testpb.EchoRequest{Text: "ok"})})
	var out []byte
	out = frame.AppendFrame(out, []byte{0xff})
	out = frame.AppendFrame(out, good)
	if _, err := nc.Write(out); err != nil {
		t.Fatal(err)
	}
	r := frame.NewReader(nc, frame.Limits{})
	for i, want := range []protoserver.Code{protoserver.InvalidArgument, protoserver.OK} {
		ans, err := r.ReadFrame(nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		var resp tcpezv1.Response
		if err := proto.Unmarshal(ans, &resp); err != nil || protoserver.Code(resp.GetStatus().GetCode()) != want {
			t.Fatalf("answer %d: %v, %v; want %v", i, &resp, err, want)
		}
	}
	if _, err := nc.Write(frame.AppendFrame(nil, good)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadFrame(nil); err != nil {
		t.Fatalf("connection closed after an error answer: %v", err)
	}
}

// TestDeadline: the caller's deadline becomes the handler's; a handler
// that outlives it sees its context end with DeadlineExceeded, and the
// server answers DeadlineExceeded.
func TestDeadline(t *testing.T) {
	observed := make(chan error, 1)
	deadlines := make(chan time.Duration, 1)
	c, _, addr := startService(t, func(ctx context.Context, req *testpb.EchoRequest, _ *span.Span) (*testpb.EchoResponse, error) {
		d, ok := ctx.Deadline()
		if !ok {
			deadlines <- -1
		} else {
			deadlines <- time.Until(d)
		}
		if req.Text != "wait" {
			return &testpb.EchoResponse{}, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(safety):
		}
		observed <- ctx.Err()
		return &testpb.EchoResponse{Text: "too late"}, nil
	}, protoserver.ServiceConfig{})

	// No deadline: none for the handler either.
	if _, err := c.Echo(context.Background(), &testpb.EchoRequest{}); err != nil {
		t.Fatal(err)
	}
	if d := <-deadlines; d != -1 {
		t.Fatalf("handler had a deadline in %v; the caller had none", d)
	}
	// A deadline travels.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Echo(ctx, &testpb.EchoRequest{}); err != nil {
		t.Fatal(err)
	}
	if d := <-deadlines; d <= 50*time.Second || d > time.Minute {
		t.Fatalf("handler's deadline in %v, want about a minute", d)
	}

	// The generated client's call gives up at its deadline...
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Echo(ctx, &testpb.EchoRequest{Text: "wait"})
	wantCode(t, err, protoserver.DeadlineExceeded)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v does not match context.DeadlineExceeded", err)
	}
	<-deadlines
	// ...and the handler sees its context end, at the same deadline.
	select {
	case err := <-observed:
		if err != context.DeadlineExceeded {
			t.Fatalf("handler's ctx.Err() = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(safety):
		t.Fatal("the handler's context never ended")
	}

	// The server's own answer, read with a byte client that keeps waiting.
	raw := newClient(t, addr, client.Config{})
	env := marshal(t, &tcpezv1.Request{
		Method:       testpb.Test_Echo_FullMethodName,
		Payload:      marshal(t, &testpb.EchoRequest{Text: "wait"}),
		TimeoutNanos: int64(50 * time.Millisecond),
	})
	start := time.Now()
	resp := rawCall(t, raw, env)
	if code := protoserver.Code(resp.GetStatus().GetCode()); code != protoserver.DeadlineExceeded || len(resp.Payload) != 0 {
		t.Fatalf("server answered %v, want DeadlineExceeded and no payload", resp)
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Fatalf("answered after %v, before the deadline", el)
	}
	<-deadlines
	if err := <-observed; err != context.DeadlineExceeded {
		t.Fatalf("handler's ctx.Err() = %v, want context.DeadlineExceeded", err)
	}
}

// TestCanceled: a caller that cancels gets Canceled at once.
func TestCanceled(t *testing.T) {
	release := make(chan struct{})
	c, _, _ := startService(t, func(ctx context.Context, req *testpb.EchoRequest, _ *span.Span) (*testpb.EchoResponse, error) {
		<-release
		return &testpb.EchoResponse{}, nil
	}, protoserver.ServiceConfig{})
	defer close(release)
	ctx, cancel := context.WithCancel(ctxFor(t))
	f := c.GoEcho(ctx, &testpb.EchoRequest{})
	cancel()
	_, err := f.Wait()
	wantCode(t, err, protoserver.Canceled)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v does not match context.Canceled", err)
	}
}

// TestOverload: calls over ServiceConfig.MaxConcurrency are answered
// ResourceExhausted without running.
func TestOverload(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var ran atomic.Int64
	c1, _, addr := startService(t, func(ctx context.Context, req *testpb.EchoRequest, _ *span.Span) (*testpb.EchoResponse, error) {
		ran.Add(1)
		if req.Text == "hold" {
			close(started)
			<-release
		}
		return &testpb.EchoResponse{Text: req.Text}, nil
	}, protoserver.ServiceConfig{MaxConcurrency: 1})
	ctx := ctxFor(t)
	held := c1.GoEcho(ctx, &testpb.EchoRequest{Text: "hold"})
	<-started
	// A second connection, since the first is busy with the held call.
	c2 := testpb.NewTestClient(protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{}))
	_, err := c2.Echo(ctx, &testpb.EchoRequest{Text: "more"})
	wantCode(t, err, protoserver.ResourceExhausted)
	close(release)
	if r, err := held.Wait(); err != nil || r.Text != "hold" {
		t.Fatalf("held call: %v, %v", r, err)
	}
	if r, err := c2.Echo(ctx, &testpb.EchoRequest{Text: "after"}); err != nil || r.Text != "after" {
		t.Fatalf("after the held call: %v, %v", r, err)
	}
	if n := ran.Load(); n != 2 {
		t.Fatalf("handler ran %d times, want 2", n)
	}
}

// TestDrain: a draining service answers Unavailable without running.
func TestDrain(t *testing.T) {
	var ran atomic.Int64
	c, svc, _ := startService(t, func(ctx context.Context, req *testpb.EchoRequest, sp *span.Span) (*testpb.EchoResponse, error) {
		ran.Add(1)
		return echo(ctx, req, sp)
	}, protoserver.ServiceConfig{})
	ctx := ctxFor(t)
	if _, err := c.Echo(ctx, &testpb.EchoRequest{}); err != nil {
		t.Fatal(err)
	}
	svc.Drain()
	_, err := c.Echo(ctx, &testpb.EchoRequest{})
	if st := wantCode(t, err, protoserver.Unavailable); !strings.Contains(st.Message, "shutting down") {
		t.Fatalf("message %q", st.Message)
	}
	if ran.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", ran.Load())
	}
}

// TestServerClosing: calls cut off by a closing server, and calls with no
// server, are Unavailable on the client and match the client's errors.
func TestServerClosing(t *testing.T) {
	started := make(chan struct{})
	svc := protoserver.NewService(protoserver.ServiceConfig{Logger: quietLogger()})
	testpb.RegisterTest(svc, testServer{echo: func(ctx context.Context, _ *testpb.EchoRequest, _ *span.Span) (*testpb.EchoResponse, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	srv, addr := serve(t, svc, server.Config{})
	c := testpb.NewTestClient(protoserver.NewClient(newClient(t, addr, client.Config{MaxRetries: -1}), protoserver.ClientConfig{}))
	f := c.GoEcho(ctxFor(t), &testpb.EchoRequest{})
	<-started
	srv.Close()
	_, err := f.Wait()
	st := wantCode(t, err, protoserver.Unavailable)
	// Over v1 the call dies with its connection; over mux the closing
	// server may first answer it with an error saying so. Either way it
	// is Unavailable and says why.
	if !errors.Is(err, client.ErrConnLost) && !strings.Contains(st.Message, "closing") {
		t.Fatalf("%v neither matches client.ErrConnLost nor says the server is closing", err)
	}
	_, err = c.Echo(ctxFor(t), &testpb.EchoRequest{})
	wantCode(t, err, protoserver.Unavailable)
}

// TestSpanParent: the caller's span id becomes the server span's parent.
func TestSpanParent(t *testing.T) {
	type ids struct{ parent, own span.ID }
	got := make(chan ids, 3)
	c, _, _ := startService(t, func(_ context.Context, _ *testpb.EchoRequest, sp *span.Span) (*testpb.EchoResponse, error) {
		got <- ids{sp.ParentID(), sp.ID()}
		return &testpb.EchoResponse{}, nil
	}, protoserver.ServiceConfig{})
	caller := span.New()
	ctx := protoserver.WithSpanID(ctxFor(t), caller.ID())
	if protoserver.OutgoingSpanID(ctx) != caller.ID() {
		t.Fatal("OutgoingSpanID")
	}
	if _, err := c.Echo(ctx, &testpb.EchoRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GoEcho(ctx, &testpb.EchoRequest{}).Wait(); err != nil {
		t.Fatal(err)
	}
	p := c.Pipeline()
	p.Echo(&testpb.EchoRequest{})
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ids := <-got
		if ids.parent != caller.ID() || ids.own == caller.ID() || ids.own == 0 {
			t.Fatalf("server span %v with parent %v; caller's span is %v", ids.own, ids.parent, caller.ID())
		}
	}
	// Without a span id in the context, no parent.
	if _, err := c.Echo(ctxFor(t), &testpb.EchoRequest{}); err != nil {
		t.Fatal(err)
	}
	if ids := <-got; ids.parent != 0 {
		t.Fatalf("parent %v without a caller span", ids.parent)
	}
}

// TestMetadata: metadata reaches the handler; a call without carries none.
func TestMetadata(t *testing.T) {
	got := make(chan protoserver.Metadata, 1)
	c, _, _ := startService(t, func(ctx context.Context, _ *testpb.EchoRequest, _ *span.Span) (*testpb.EchoResponse, error) {
		got <- protoserver.IncomingMetadata(ctx)
		return &testpb.EchoResponse{}, nil
	}, protoserver.ServiceConfig{})
	ctx := protoserver.WithOutgoingMetadata(ctxFor(t), "user", "ada", "trace", "on")
	ctx = protoserver.WithOutgoingMetadata(ctx, "trace", "off", "empty", "")
	ctx = protoserver.WithSpanID(ctx, 7) // keeps the metadata
	if _, err := c.Echo(ctx, &testpb.EchoRequest{}); err != nil {
		t.Fatal(err)
	}
	md := <-got
	if len(md) != 3 || md["user"] != "ada" || md["trace"] != "off" || md["empty"] != "" {
		t.Fatalf("metadata %v", md)
	}
	if _, err := c.Echo(ctxFor(t), &testpb.EchoRequest{}); err != nil {
		t.Fatal(err)
	}
	if md := <-got; md != nil {
		t.Fatalf("metadata %v for a call without", md)
	}
}

// TestEmptyMessages: empty requests and answers, and a nil answer, are
// legal.
func TestEmptyMessages(t *testing.T) {
	c, _, _ := startService(t, func(_ context.Context, req *testpb.EchoRequest, _ *span.Span) (*testpb.EchoResponse, error) {
		if req.Text == "nil" {
			return nil, nil
		}
		return &testpb.EchoResponse{}, nil
	}, protoserver.ServiceConfig{})
	for _, text := range []string{"", "nil"} {
		resp, err := c.Echo(ctxFor(t), &testpb.EchoRequest{Text: text})
		if err != nil || resp == nil || proto.Size(resp) != 0 {
			t.Fatalf("%q: %v, %v", text, resp, err)
		}
	}
}

// TestStatusHelpers covers StatusOf, CodeOf and the proto conversions.
func TestStatusHelpers(t *testing.T) {
	if protoserver.StatusOf(nil) != nil || protoserver.CodeOf(nil) != protoserver.OK {
		t.Fatal("nil error")
	}
	if c := protoserver.CodeOf(context.Canceled); c != protoserver.Canceled {
		t.Fatal(c)
	}
	if c := protoserver.CodeOf(errors.New("x")); c != protoserver.Unknown {
		t.Fatal(c)
	}
	st := protoserver.Errorf(protoserver.AlreadyExists, "key %d", 1)
	if st.Error() != "tcpez/protoserver: AlreadyExists: key 1" {
		t.Fatal(st.Error())
	}
	a, _ := anypb.New(wrapperspb.String("d"))
	p := &tcpezv1.Status{Code: 9, Message: "m", Details: []*anypb.Any{a}}
	if got := protoserver.FromProto(p); got.Code != protoserver.FailedPrecondition || !proto.Equal(got.Proto(), p) {
		t.Fatalf("round trip: %v", got)
	}
	if protoserver.FromProto(&tcpezv1.Status{}) != nil {
		t.Fatal("code OK is no error")
	}
	if s := protoserver.Code(99).String(); s != "Code(99)" {
		t.Fatal(s)
	}
	if s := protoserver.Unauthenticated.String(); s != "Unauthenticated" {
		t.Fatal(s)
	}
}

// TestTracePropagates: a handler's calls, made with its own context and no
// other code, are its span's children in the caller's trace: client →
// front → back make one trace, each span the parent of the next.
func TestTracePropagates(t *testing.T) {
	type ids struct {
		trace       span.TraceID
		parent, own span.ID
	}
	got := make(chan ids, 2)
	back, _, _ := startService(t, func(_ context.Context, _ *testpb.EchoRequest, sp *span.Span) (*testpb.EchoResponse, error) {
		got <- ids{sp.TraceID(), sp.ParentID(), sp.ID()}
		return &testpb.EchoResponse{}, nil
	}, protoserver.ServiceConfig{})
	front, _, _ := startService(t, func(ctx context.Context, _ *testpb.EchoRequest, sp *span.Span) (*testpb.EchoResponse, error) {
		got <- ids{sp.TraceID(), sp.ParentID(), sp.ID()}
		return back.Echo(ctx, &testpb.EchoRequest{})
	}, protoserver.ServiceConfig{})
	root := span.New()
	if _, err := front.Echo(span.NewContext(ctxFor(t), root), &testpb.EchoRequest{}); err != nil {
		t.Fatal(err)
	}
	f, b := <-got, <-got
	if f.trace != root.TraceID() || f.parent != root.ID() {
		t.Fatalf("front span %+v; root span %v in trace %v", f, root.ID(), root.TraceID())
	}
	if b.trace != root.TraceID() || b.parent != f.own || b.own == f.own {
		t.Fatalf("back span %+v; front span %+v", b, f)
	}
}
