package protoserver_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/internal/testpb"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// journal is a concurrency-safe list of events.
type journal struct {
	mu     sync.Mutex
	events []string
}

func (j *journal) add(format string, a ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, fmt.Sprintf(format, a...))
}

func (j *journal) take() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	e := j.events
	j.events = nil
	return e
}

func TestServerInterceptors(t *testing.T) {
	var j journal
	named := func(name string) protoserver.Interceptor {
		return func(ctx context.Context, info *protoserver.MethodInfo, req proto.Message, sp *span.Span, next protoserver.Next) (proto.Message, error) {
			j.add("%s before %s", name, info.Name)
			resp, err := next(ctx, req, sp)
			j.add("%s after %v", name, protoserver.CodeOf(err))
			return resp, err
		}
	}
	// The inner interceptor rewrites requests and answers, and refuses
	// some calls outright.
	rewrite := func(ctx context.Context, info *protoserver.MethodInfo, req proto.Message, sp *span.Span, next protoserver.Next) (proto.Message, error) {
		r := req.(*testpb.EchoRequest)
		switch r.Text {
		case "refuse":
			return nil, protoserver.Errorf(protoserver.PermissionDenied, "refused")
		case "interceptor panic":
			panic("in the interceptor")
		}
		r.Text = "<" + r.Text + ">"
		resp, err := next(ctx, req, sp)
		if err != nil {
			return nil, err
		}
		resp.(*testpb.EchoResponse).Data = []byte("rewritten")
		return resp, nil
	}
	c, _, _ := startService(t, func(ctx context.Context, req *testpb.EchoRequest, sp *span.Span) (*testpb.EchoResponse, error) {
		j.add("handler %s", req.Text)
		if req.Text == "<panic>" {
			panic("in the handler")
		}
		return echo(ctx, req, sp)
	}, protoserver.ServiceConfig{
		Interceptors:       []protoserver.Interceptor{named("outer"), named("inner"), rewrite},
		StreamInterceptors: []protoserver.StreamInterceptor{}, // none, on purpose
	})
	ctx := ctxFor(t)

	resp, err := c.Echo(ctx, &testpb.EchoRequest{Text: "x"})
	if err != nil || resp.Text != "<x>" || string(resp.Data) != "rewritten" {
		t.Fatalf("%v, %v", resp, err)
	}
	m := testpb.Test_Echo_FullMethodName
	want := []string{"outer before " + m, "inner before " + m, "handler <x>", "inner after OK", "outer after OK"}
	if got := j.take(); !slices.Equal(got, want) {
		t.Fatalf("events %q\nwant %q", got, want)
	}

	_, err = c.Echo(ctx, &testpb.EchoRequest{Text: "refuse"})
	wantCode(t, err, protoserver.PermissionDenied)
	want = []string{"outer before " + m, "inner before " + m, "inner after PermissionDenied", "outer after PermissionDenied"}
	if got := j.take(); !slices.Equal(got, want) {
		t.Fatalf("events %q\nwant %q", got, want)
	}

	// A handler's panic reaches the interceptors as Internal.
	_, err = c.Echo(ctx, &testpb.EchoRequest{Text: "panic"})
	wantCode(t, err, protoserver.Internal)
	want = []string{"outer before " + m, "inner before " + m, "handler <panic>", "inner after Internal", "outer after Internal"}
	if got := j.take(); !slices.Equal(got, want) {
		t.Fatalf("events %q\nwant %q", got, want)
	}

	// So is an interceptor's, to the ones outside it.
	_, err = c.Echo(ctx, &testpb.EchoRequest{Text: "interceptor panic"})
	if st := wantCode(t, err, protoserver.Internal); !strings.Contains(st.Message, "in the interceptor") {
		t.Fatal(st.Message)
	}
}

func TestClientInterceptors(t *testing.T) {
	var j journal
	svc := protoserver.NewService(protoserver.ServiceConfig{Logger: quietLogger()})
	testpb.RegisterTest(svc, testServer{echo: func(ctx context.Context, req *testpb.EchoRequest, sp *span.Span) (*testpb.EchoResponse, error) {
		return &testpb.EchoResponse{Text: req.Text + " as " + protoserver.IncomingMetadata(ctx)["who"]}, nil
	}})
	_, addr := serve(t, svc, server.Config{})

	named := func(name string) protoserver.ClientInterceptor {
		return func(ctx context.Context, method string, req, resp proto.Message, next protoserver.Invoker) error {
			text := req.(*testpb.EchoRequest).Text
			j.add("%s before %s %s", name, method[strings.LastIndex(method, "/")+1:], text)
			err := next(protoserver.WithOutgoingMetadata(ctx, "who", name), method, req, resp)
			j.add("%s after %s %v", name, text, protoserver.CodeOf(err))
			return err
		}
	}
	var retries sync.Map
	special := func(ctx context.Context, method string, req, resp proto.Message, next protoserver.Invoker) error {
		switch text := req.(*testpb.EchoRequest).Text; text {
		case "short":
			return protoserver.Errorf(protoserver.Aborted, "short-circuited")
		case "twice":
			// Calls next again, as a retrying interceptor would.
			if err := next(ctx, method, req, resp); err != nil {
				return err
			}
			retries.Store(text, resp.(*testpb.EchoResponse).Text)
			return next(ctx, method, &testpb.EchoRequest{Text: "second"}, resp)
		}
		return next(ctx, method, req, resp)
	}
	cc := protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{Interceptors: []protoserver.ClientInterceptor{named("outer"), named("inner"), special}})
	c := testpb.NewTestClient(cc)
	ctx := ctxFor(t)

	// A plain call.
	resp, err := c.Echo(ctx, &testpb.EchoRequest{Text: "plain"})
	if err != nil || resp.Text != "plain as inner" {
		t.Fatalf("%v, %v", resp, err)
	}
	want := []string{"outer before Echo plain", "inner before Echo plain", "inner after plain OK", "outer after plain OK"}
	if got := j.take(); !slices.Equal(got, want) {
		t.Fatalf("events %q\nwant %q", got, want)
	}

	// A future.
	if resp, err := c.GoEcho(ctx, &testpb.EchoRequest{Text: "future"}).Wait(); err != nil || resp.Text != "future as inner" {
		t.Fatalf("%v, %v", resp, err)
	}
	if got := j.take(); len(got) != 4 {
		t.Fatalf("events %q", got)
	}

	// A pipeline: every call runs the chain, one short-circuits, one calls
	// next twice, one fails on the server.
	p := c.Pipeline()
	a := p.Echo(&testpb.EchoRequest{Text: "a"})
	short := p.Echo(&testpb.EchoRequest{Text: "short"})
	twice := p.Echo(&testpb.EchoRequest{Text: "twice"})
	other := p.Other(&testpb.EchoRequest{Text: "b"})
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := a.Wait(); err != nil || r.Text != "a as inner" {
		t.Fatalf("a: %v, %v", r, err)
	}
	if _, err := short.Wait(); protoserver.CodeOf(err) != protoserver.Aborted {
		t.Fatalf("short: %v", err)
	}
	if r, err := twice.Wait(); err != nil || r.Text != "second as inner" {
		t.Fatalf("twice: %v, %v", r, err)
	}
	if first, _ := retries.Load("twice"); first != "twice as inner" {
		t.Fatalf("twice, first answer: %v", first)
	}
	if _, err := other.Wait(); protoserver.CodeOf(err) != protoserver.Unimplemented {
		t.Fatalf("other: %v", err)
	}
	events := j.take()
	for _, text := range []string{"a", "short", "twice", "b"} {
		if !slices.Contains(events, "outer before Echo "+text) && !slices.Contains(events, "outer before Other "+text) {
			t.Fatalf("no chain for %s: %q", text, events)
		}
	}

	// A pipeline whose calls all stop short sends nothing.
	p.Echo(&testpb.EchoRequest{Text: "short"})
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	j.take()
}

// TestPipelineBatchError: a pipeline whose batch fails gives every
// call that reached the batch the batch's error.
func TestPipelineBatchError(t *testing.T) {
	_, _, addr := startService(t, echo, protoserver.ServiceConfig{})
	for _, intercepted := range []bool{false, true} {
		var cfg protoserver.ClientConfig
		if intercepted {
			cfg.Interceptors = []protoserver.ClientInterceptor{func(ctx context.Context, method string, req, resp proto.Message, next protoserver.Invoker) error {
				return next(ctx, method, req, resp)
			}}
		}
		bc := newClient(t, addr, client.Config{})
		c := testpb.NewTestClient(protoserver.NewClient(bc, cfg))
		p := c.Pipeline()
		f := p.Echo(&testpb.EchoRequest{})
		bad := p.Echo(&testpb.EchoRequest{Text: "\xff"}) // cannot be encoded
		bc.Close()
		err := p.Flush(ctxFor(t))
		wantCode(t, err, protoserver.Unavailable)
		if _, ferr := f.Wait(); !errors.Is(ferr, err) && protoserver.CodeOf(ferr) != protoserver.Unavailable {
			t.Fatalf("intercepted %v: future: %v", intercepted, ferr)
		}
		if _, err := bad.Wait(); protoserver.CodeOf(err) != protoserver.Internal {
			t.Fatalf("intercepted %v: unencodable request: %v", intercepted, err)
		}
	}
}
