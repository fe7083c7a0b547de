package protoserver_test

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/protoserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// aliasBytes is a BytesValue with the methods of vtprotobuf's
// unmarshal_unsafe and pool features, done here by hand and counted in
// aliasCalls (Method makes requests with new): UnmarshalVTUnsafe points
// Value into the buffer it decodes.
type aliasBytes struct{ wrapperspb.BytesValue }

var aliasCalls struct{ unsafe, resetVT atomic.Int64 }

func (m *aliasBytes) UnmarshalVTUnsafe(b []byte) error {
	aliasCalls.unsafe.Add(1)
	if err := proto.Unmarshal(b, &m.BytesValue); err != nil {
		return err
	}
	if n := len(m.Value); n > 0 {
		m.Value = b[len(b)-n:] // the only field, so the last bytes
	}
	return nil
}

func (m *aliasBytes) ResetVT() {
	aliasCalls.resetVT.Add(1)
	m.Reset()
}

// TestRequestAliased: with RequestReuse, a request with UnmarshalVTUnsafe
// is decoded with it, and large concurrent echoes, answered from the
// aliased bytes, stay intact. It is emptied as a new message is, never
// with ResetVT, which would keep the aliased slice for a later decoding
// to append into. Without RequestReuse it is decoded as any message. Both
// forms of method, whose requests take different paths, do so.
func TestRequestAliased(t *testing.T) {
	for _, form := range []string{"Method", "MethodInto"} {
		for _, reuse := range []bool{true, false} {
			aliasCalls.unsafe.Store(0)
			aliasCalls.resetVT.Store(0)
			kept := make(chan *aliasBytes, 1)
			keep := func(req *aliasBytes) {
				select {
				case kept <- req:
				default:
				}
			}
			h := protoserver.Method(func(_ context.Context, req *aliasBytes, _ *span.Span) (*wrapperspb.BytesValue, error) {
				keep(req)
				return wrapperspb.Bytes(req.Value), nil
			})
			if form == "MethodInto" {
				h = protoserver.MethodInto(func(_ context.Context, req *aliasBytes, resp *wrapperspb.BytesValue, _ *span.Span) error {
					keep(req)
					resp.Value = req.Value
					return nil
				})
			}
			svc := protoserver.NewService(protoserver.ServiceConfig{RequestReuse: reuse}).Handle("Echo", h)
			echoConcurrently(t, svc, 8)
			want := int64(0)
			if reuse {
				want = 32
			}
			if got := aliasCalls.unsafe.Load(); got != want {
				t.Errorf("%s, reuse %v: %d requests decoded with UnmarshalVTUnsafe, want %d", form, reuse, got, want)
			}
			if n := aliasCalls.resetVT.Load(); n != 0 {
				t.Errorf("%s, reuse %v: ResetVT called %d times", form, reuse, n)
			}
			if req := <-kept; reuse && req.Value != nil {
				t.Errorf("%s: a reused request still holds %d aliased bytes after its call", form, len(req.Value))
			}
		}
	}
}

// echoConcurrently calls svc's Echo, a BytesValue echo, with calls
// different 256 KiB values from each of 4 goroutines, and checks that
// each comes back intact.
func echoConcurrently(t *testing.T, svc *protoserver.Service, calls int) {
	t.Helper()
	_, addr := serve(t, svc, server.Config{})
	c := protoserver.NewClient(newClient(t, addr, client.Config{}), protoserver.ClientConfig{})
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range calls {
				data := bytes.Repeat([]byte{byte(g*calls + i)}, 256<<10)
				var resp wrapperspb.BytesValue
				if err := c.Call(ctx, "Echo", wrapperspb.Bytes(data), &resp); err != nil || !bytes.Equal(resp.Value, data) {
					t.Errorf("call %d/%d: %d bytes, %v", g, i, len(resp.Value), err)
					return
				}
			}
		})
	}
	wg.Wait()
}
