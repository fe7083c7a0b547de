package protoserver_test

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tcpez/tcpez/client"
	tcpezv1 "github.com/tcpez/tcpez/proto/tcpez/v1"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// TestLargeMessagesByReference: requests and responses whose big bytes
// field is sent from where it lies (at 64 KiB and more) arrive whole, with
// their other fields, over v1 and the multiplexed mode, from concurrent
// callers, and so do those just under the size where that starts.
func TestLargeMessagesByReference(t *testing.T) {
	svc := protoserver.NewService(protoserver.ServiceConfig{}).
		Handle("Echo", protoserver.Method(func(_ context.Context, req *descriptorpb.UninterpretedOption, _ *span.Span) (*descriptorpb.UninterpretedOption, error) {
			resp := proto.Clone(req).(*descriptorpb.UninterpretedOption)
			resp.StringValue = req.StringValue // the request's bytes, answered by reference
			resp.AggregateValue = proto.String("answered")
			return resp, nil
		}))
	_, addr := serve(t, svc, server.Config{})
	for _, p := range []client.Protocol{client.ProtocolV1, client.ProtocolMux} {
		t.Run(p.String(), func(t *testing.T) {
			c := protoserver.NewClient(newClient(t, addr, client.Config{Protocol: p}), protoserver.ClientConfig{})
			ctx := ctxFor(t)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i, size := range []int{10, 64<<10 - 8, 64 << 10, 300 << 10, 1 << 20} {
						req := &descriptorpb.UninterpretedOption{
							IdentifierValue: proto.String("id"),
							StringValue:     bytes.Repeat([]byte{byte(g*8 + i)}, size),
							DoubleValue:     proto.Float64(float64(i)),
						}
						var resp descriptorpb.UninterpretedOption
						if err := c.Call(ctx, "Echo", req, &resp); err != nil {
							t.Errorf("caller %d, %d bytes: %v", g, size, err)
							return
						}
						want := proto.Clone(req).(*descriptorpb.UninterpretedOption)
						want.AggregateValue = proto.String("answered")
						if !proto.Equal(&resp, want) {
							t.Errorf("caller %d, %d bytes: answered %d bytes, other fields %q %v %q", g, size, len(resp.StringValue), resp.GetIdentifierValue(), resp.GetDoubleValue(), resp.GetAggregateValue())
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// keepBytes is a BytesValue with vtprotobuf's marshalling and pool
// methods, done by hand, but not unmarshal_unsafe: ResetVT keeps Value's
// memory and UnmarshalVT decodes into it, as vtprotobuf's do.
type keepBytes struct{ wrapperspb.BytesValue }

func (m *keepBytes) SizeVT() int { return proto.Size(&m.BytesValue) }

func (m *keepBytes) MarshalToSizedBufferVT(b []byte) (int, error) {
	enc, err := proto.Marshal(&m.BytesValue)
	return copy(b[len(b)-len(enc):], enc), err
}

func (m *keepBytes) UnmarshalVT(b []byte) error {
	var v wrapperspb.BytesValue
	if err := proto.Unmarshal(b, &v); err != nil {
		return err
	}
	m.Value = append(m.Value[:0], v.Value...)
	return nil
}

func (m *keepBytes) ResetVT() {
	keepBytesResets.Add(1)
	m.Value = m.Value[:0]
}

var keepBytesResets atomic.Int64

// TestReusedRequestMemoryNotSentByReference: with RequestReuse, a request
// message that keeps its memory for the next decoding must not have its
// bytes sent by reference: the next call would decode into them before
// they are written. The requests carry their bytes field twice (the
// second, which wins, is echoed), so that the service cannot point the
// field into the frame instead; concurrent large echoes of such requests
// stay intact, with either form of method. Its ResetVT keeps the memory
// between calls.
func TestReusedRequestMemoryNotSentByReference(t *testing.T) {
	t.Run("Method", func(t *testing.T) {
		echoKeptBytes(t, protoserver.Method(func(_ context.Context, req *keepBytes, _ *span.Span) (*wrapperspb.BytesValue, error) {
			return wrapperspb.Bytes(req.Value), nil
		}))
	})
	t.Run("MethodInto", func(t *testing.T) {
		echoKeptBytes(t, protoserver.MethodInto(func(_ context.Context, req *keepBytes, resp *wrapperspb.BytesValue, _ *span.Span) error {
			resp.Value = req.Value
			return nil
		}))
	})
}

// echoKeptBytes is TestReusedRequestMemoryNotSentByReference for h.
func echoKeptBytes(t *testing.T, h *protoserver.MethodHandler) {
	keepBytesResets.Store(0)
	svc := protoserver.NewService(protoserver.ServiceConfig{RequestReuse: true}).Handle("Echo", h)
	_, addr := serve(t, svc, server.Config{})
	c := newClient(t, addr, client.Config{})
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 16 {
				data := bytes.Repeat([]byte{byte(g*16 + i)}, 256<<10)
				first := bytes.Repeat([]byte{'x'}, len(data))
				payload := append(mustMarshal(t, wrapperspb.Bytes(first)), mustMarshal(t, wrapperspb.Bytes(data))...)
				ans, err := c.Call(ctx, mustMarshal(t, &tcpezv1.Request{Method: "Echo", Payload: payload}))
				var env tcpezv1.Response
				var resp wrapperspb.BytesValue
				if err == nil {
					err = proto.Unmarshal(ans, &env)
				}
				if err == nil {
					err = proto.Unmarshal(env.Payload, &resp)
				}
				if err != nil || !bytes.Equal(resp.Value, data) {
					t.Errorf("call %d/%d: %d bytes, %v", g, i, len(resp.Value), err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := keepBytesResets.Load(); n != 64 {
		t.Errorf("ResetVT called %d times, want 64: once a call", n)
	}
}

var mustMarshal = protoserver.MustMarshalForTest
