package client_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
)

// TestPushWhileIdleKeepsConnection checks that a client without OnNotify
// or Handler takes a server's notification and call that arrive while it
// has no call in flight as version 2 allows, not as unasked answers: a
// user of server.Broadcast(srv.Remotes(), …) saw plain clients lose their
// connection to it, and some of their calls fail with "answer does not
// match the request: 14+ bytes with no request outstanding".
//
// The server sends its notification and call in the same write as the
// acknowledgement, so that they wait in the client's read buffer when the
// first call comes.
func TestPushWhileIdleKeepsConnection(t *testing.T) {
	var conns atomic.Int32
	refused := make(chan frame.MuxFrame, 1)
	greet := func() []byte {
		conns.Add(1)
		out := frame.AppendAck(nil, frame.Ack{Version: 2, MaxInFlight: 128, MaxFrameSize: frame.DefaultMaxFrameSize})
		out = frame.AppendMux(out, frame.KindNotify, 0, []byte("tick"))
		return frame.AppendMux(out, frame.KindCall, 1, []byte("PING"))
	}
	addr := rawMuxServer(t, greet, func(f frame.MuxFrame) []byte {
		switch f.Kind {
		case frame.KindRequest:
			return frame.AppendMux(nil, frame.KindAnswer, f.ID, f.Body)
		case frame.KindError:
			refused <- f
		}
		return nil
	})
	c, err := client.New([]string{addr}, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := range 3 {
		got, err := c.Call(ctx, []byte("hello"))
		if err != nil || string(got) != "hello" {
			t.Fatalf("call %d: %q, %v", i, got, err)
		}
	}
	f := <-refused
	if code, _ := f.ErrorCode(); f.ID != 1 || code != frame.CodeNoHandler {
		t.Errorf("the server's call was answered with id %d, code %v; want id 1, %v", f.ID, code, frame.CodeNoHandler)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections; want 1", n)
	}
}
