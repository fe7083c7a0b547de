package protoserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/protoserver/internal/testpb"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// legacy is the handler of the original reqrep example.
func legacy(_ context.Context, req *testpb.LegacyRequest, _ *span.Span) (*testpb.LegacyResponse, error) {
	switch req.GetCommand() {
	case "SUCCEED":
		return &testpb.LegacyResponse{Status: proto.String("OK"), Message: proto.String("Request Succeeded: " + req.GetArgs())}, nil
	case "ERROR":
		return nil, errors.New("the handler failed")
	case "NIL":
		return nil, nil
	}
	return &testpb.LegacyResponse{Status: proto.String("ERR"), Message: proto.String("Request Failed")}, nil
}

func legacyRequest(cmd, args string) *testpb.LegacyRequest {
	return &testpb.LegacyRequest{Command: proto.String(cmd), Args: proto.String(args)}
}

// partial encodes m even if it lacks required fields.
func partial(t testing.TB, m proto.Message) []byte {
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCompatibleByteClient: an existing ProtoServer client — here a plain
// byte client sending raw protobuf, no envelope — is served.
func TestCompatibleByteClient(t *testing.T) {
	_, addr := serve(t, protoserver.Compatible(legacy, protoserver.CompatibleConfig{}), server.Config{})
	c := newClient(t, addr, client.Config{})
	ans, err := c.Call(ctxFor(t), marshal(t, legacyRequest("SUCCEED", "a")))
	if err != nil {
		t.Fatal(err)
	}
	var resp testpb.LegacyResponse
	if err := proto.Unmarshal(ans, &resp); err != nil || resp.GetStatus() != "OK" || resp.GetMessage() != "Request Succeeded: a" {
		t.Fatalf("answer %v, %v", &resp, err)
	}
	// A pipeline of raw requests is a protocol batch.
	p := c.Pipeline()
	p.Enqueue(marshal(t, legacyRequest("SUCCEED", "b")))
	p.Enqueue(marshal(t, legacyRequest("OTHER", "")))
	answers, err := p.Flush(ctxFor(t))
	if err != nil || len(answers) != 2 {
		t.Fatal(answers, err)
	}
	for i, want := range []string{"OK", "ERR"} {
		var r testpb.LegacyResponse
		if err := proto.Unmarshal(answers[i], &r); err != nil || r.GetStatus() != want {
			t.Fatalf("answer %d: %v, %v", i, &r, err)
		}
	}
}

// TestCompatibleClient: the typed client's plain calls, futures and
// pipelines.
func TestCompatibleClient(t *testing.T) {
	_, addr := serve(t, protoserver.Compatible(legacy, protoserver.CompatibleConfig{}), server.Config{})
	c := protoserver.NewCompatibleClient[testpb.LegacyRequest, testpb.LegacyResponse](newClient(t, addr, client.Config{}))
	ctx := ctxFor(t)

	resp, err := c.Call(ctx, legacyRequest("SUCCEED", "x"))
	if err != nil || resp.GetMessage() != "Request Succeeded: x" {
		t.Fatalf("Call: %v, %v", resp, err)
	}
	var futures []*protoserver.Future[testpb.LegacyResponse]
	for i := range 10 {
		futures = append(futures, c.Go(ctx, legacyRequest("SUCCEED", fmt.Sprint(i))))
	}
	for i, f := range futures {
		if r, err := f.Wait(); err != nil || r.GetMessage() != fmt.Sprint("Request Succeeded: ", i) {
			t.Fatalf("future %d: %v, %v", i, r, err)
		}
	}
	p := c.Pipeline()
	req := legacyRequest("SUCCEED", "1")
	f1 := p.Enqueue(req)
	req.Args = proto.String("2") // Send encoded it already
	f2 := p.Enqueue(req)
	f3 := p.Enqueue(legacyRequest("NIL", ""))
	if p.Len() != 3 {
		t.Fatal(p.Len())
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, f := range []*protoserver.Future[testpb.LegacyResponse]{f1, f2} {
		if r, err := f.Wait(); err != nil || r.GetMessage() != fmt.Sprint("Request Succeeded: ", i+1) {
			t.Fatalf("pipelined %d: %v, %v", i+1, r, err)
		}
	}
	// A nil answer is an empty message, which lacks the required fields.
	if _, err := f3.Wait(); err == nil {
		t.Fatal("an empty LegacyResponse decoded without its required fields")
	}
	// A request without its required fields is not sent.
	if _, err := c.Call(ctx, &testpb.LegacyRequest{}); err == nil {
		t.Fatal("a LegacyRequest without required fields was sent")
	}
}

// TestCompatibleFailures: an undecodable request is not handled, and, like
// a handler error or panic, closes the connection after the answers
// before it — the original tcpez behaviour.
func TestCompatibleFailures(t *testing.T) {
	var handled atomic.Int64
	h := protoserver.Compatible(func(ctx context.Context, req *testpb.LegacyRequest, sp *span.Span) (*testpb.LegacyResponse, error) {
		handled.Add(1)
		if req.GetCommand() == "PANIC" {
			panic("boom")
		}
		return legacy(ctx, req, sp)
	}, protoserver.CompatibleConfig{})
	_, addr := serve(t, h, server.Config{})
	good := marshal(t, legacyRequest("SUCCEED", "first"))
	for _, tc := range []struct {
		name    string
		bad     []byte
		handled int64
	}{
		{"garbage", []byte{0xff, 0xff, 0xff}, 0},
		{"missing required fields", partial(t, &testpb.LegacyRequest{Command: proto.String("SUCCEED")}), 0},
		{"handler error", marshal(t, legacyRequest("ERROR", "")), 1},
		{"panic", marshal(t, legacyRequest("PANIC", "")), 1},
	} {
		handled.Store(0)
		nc, err := net.DialTimeout("tcp", addr, safety)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(safety))
		var out []byte
		out = frame.AppendFrame(out, good)
		out = frame.AppendFrame(out, tc.bad)
		if _, err := nc.Write(out); err != nil {
			t.Fatal(err)
		}
		r := frame.NewReader(nc, frame.Limits{})
		ans, err := r.ReadFrame(nil)
		var resp testpb.LegacyResponse
		if err != nil || proto.Unmarshal(ans, &resp) != nil || resp.GetStatus() != "OK" {
			t.Fatalf("%s: first answer %v, %v", tc.name, &resp, err)
		}
		if _, err := r.ReadHeader(); err != io.EOF {
			t.Fatalf("%s: after the bad request: %v, want the connection closed", tc.name, err)
		}
		nc.Close()
		if got := handled.Load(); got != 1+tc.handled {
			t.Fatalf("%s: handler ran %d times, want %d", tc.name, got, 1+tc.handled)
		}
	}

	// The typed client sees the closed connection as a lost one in v1;
	// in the multiplexed mode the server says what failed instead, and
	// the connection stays.
	c := protoserver.NewCompatibleClient[testpb.LegacyRequest, testpb.LegacyResponse](
		newClient(t, addr, client.Config{MaxRetries: -1, Protocol: client.ProtocolV1}))
	if _, err := c.Call(ctxFor(t), legacyRequest("ERROR", "")); !errors.Is(err, client.ErrConnLost) {
		t.Fatalf("v1: got %v, want client.ErrConnLost", err)
	}
	c = protoserver.NewCompatibleClient[testpb.LegacyRequest, testpb.LegacyResponse](newClient(t, addr, client.Config{MaxRetries: -1}))
	var se *client.ServerError
	if _, err := c.Call(ctxFor(t), legacyRequest("ERROR", "")); !errors.As(err, &se) || se.Code != frame.CodeHandler {
		t.Fatalf("mux: got %v, want a client.ServerError with frame.CodeHandler", err)
	}
	if _, err := c.Call(ctxFor(t), legacyRequest("SUCCEED", "")); err != nil {
		t.Fatalf("mux: after a handler error: %v", err)
	}
}

// TestCompatibleSpanTimings: CompatibleConfig.SpanTimings times the steps as the
// original ProtoServer did, and they reach the server's stats.
func TestCompatibleSpanTimings(t *testing.T) {
	mem := stats.NewMemory()
	_, addr := serve(t, protoserver.Compatible(legacy, protoserver.CompatibleConfig{SpanTimings: true}), server.Config{Stats: mem})
	c := protoserver.NewCompatibleClient[testpb.LegacyRequest, testpb.LegacyResponse](newClient(t, addr, client.Config{}))
	if _, err := c.Call(ctxFor(t), legacyRequest("SUCCEED", "")); err != nil {
		t.Fatal(err)
	}
	// The server records a request's span after writing its answer.
	deadline := time.Now().Add(safety)
	for _, name := range []string{"pb.parse", "pb.response", "pb.encode"} {
		for len(mem.Timings(name)) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no %s timing; names: %v", name, mem.Names())
			}
			time.Sleep(time.Millisecond)
		}
	}
}
