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
// aliased bytes, stay intact. It is emptied with proto.Reset, never
// ResetVT, which would keep the aliased slice for a later decoding to
// append into. Without RequestReuse it is decoded as any message.
func TestRequestAliased(t *testing.T) {
	for _, reuse := range []bool{true, false} {
		aliasCalls.unsafe.Store(0)
		aliasCalls.resetVT.Store(0)
		kept := make(chan *aliasBytes, 1)
		svc := protoserver.NewService(protoserver.ServiceConfig{RequestReuse: reuse}).
			Handle("Echo", protoserver.Method(func(_ context.Context, req *aliasBytes, _ *span.Span) (*wrapperspb.BytesValue, error) {
				select {
				case kept <- req:
				default:
				}
				return wrapperspb.Bytes(req.Value), nil
			}))
		echoConcurrently(t, svc, 8)
		want := int64(0)
		if reuse {
			want = 32
		}
		if got := aliasCalls.unsafe.Load(); got != want {
			t.Errorf("reuse %v: %d requests decoded with UnmarshalVTUnsafe, want %d", reuse, got, want)
		}
		if n := aliasCalls.resetVT.Load(); n != 0 {
			t.Errorf("reuse %v: ResetVT called %d times", reuse, n)
		}
		if req := <-kept; reuse && req.Value != nil {
			t.Errorf("a reused request still holds %d aliased bytes after its call", len(req.Value))
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
