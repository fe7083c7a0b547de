package client_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// TestCallAppendTail: a request sent as a head and a tail arrives as the
// one request of both joined, over v1 and the multiplexed mode, whether
// the tail is copied (small) or written from its own slice (large), and
// however the two split it; the answer is appended to dst.
func TestCallAppendTail(t *testing.T) {
	echo := server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) { return req, nil })
	for _, proto := range []client.Protocol{client.ProtocolV1, client.ProtocolMux} {
		t.Run(proto.String(), func(t *testing.T) {
			_, addr := testserver.Start(t, echo, server.Config{})
			c := newClient(t, []string{addr}, client.Config{Protocol: proto})
			ctx := ctxFor(t)
			for _, size := range [][2]int{{0, 0}, {5, 0}, {0, 9}, {3, 100}, {20, 64 << 10}, {100, 1 << 20}, {70 << 10, 70 << 10}} {
				head, tail := bytes.Repeat([]byte{'h'}, size[0]), bytes.Repeat([]byte{'t'}, size[1])
				ans, err := c.CallAppendTail(ctx, []byte("dst:"), head, tail)
				want := append(append([]byte("dst:"), head...), tail...)
				if err != nil || !bytes.Equal(ans, want) {
					t.Errorf("head %d, tail %d: answer of %d bytes, %v; want %d", size[0], size[1], len(ans), err, len(want))
				}
			}
		})
	}
}

// TestCallAppendTailTooLarge: the limit applies to the request whole.
func TestCallAppendTailTooLarge(t *testing.T) {
	_, addr := testserver.Start(t, server.HandlerFunc(func(context.Context, []byte, *span.Span) ([]byte, error) { return nil, nil }), server.Config{})
	c := newClient(t, []string{addr}, client.Config{Limits: frame.Limits{MaxFrameSize: 1 << 10}})
	_, err := c.CallAppendTail(ctxFor(t), nil, make([]byte, 600), make([]byte, 600))
	if _, ok := errors.AsType[*frame.SizeError](err); !ok {
		t.Fatalf("a request of 1200 bytes under a 1 KiB limit: %v, want a *frame.SizeError", err)
	}
}
