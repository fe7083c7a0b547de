package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// TestFullServerIsNoVerdict: a server at MaxConns resets new connections
// before reading anything. That says nothing about the client's token or
// protocol: the dial must not fail with ErrAuthFailed or ErrMuxRefused,
// and a ProtocolAuto client must not settle on v1 for the address, which
// it would then speak for good once the server has room again.
func TestFullServerIsNoVerdict(t *testing.T) {
	for _, p := range []client.Protocol{client.ProtocolAuto, client.ProtocolV1, client.ProtocolMux} {
		t.Run(p.String(), func(t *testing.T) { fullServerIsNoVerdict(t, p) })
	}
}

func fullServerIsNoVerdict(t *testing.T, p client.Protocol) {
	_, addr := testserver.Start(t, server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		return req, nil
	}), server.Config{MaxConns: 1, Auth: &server.Auth{
		Token: true,
		Check: func(context.Context, server.Peer, []byte) (string, error) { return "alice", nil },
	}})
	token := client.StaticToken([]byte("s3cret"))
	holder := newClient(t, []string{addr}, client.Config{AuthToken: token})
	if _, err := holder.Call(ctxFor(t), []byte("x")); err != nil {
		t.Fatal(err)
	}
	st := stats.NewMemory()
	c := newClient(t, []string{addr}, client.Config{Protocol: p, AuthToken: token, Stats: st,
		ReconnectBackoff: client.Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond}})
	// The call waits for a connection (as for a server not yet listening);
	// its error, with the last attempt's, is all this part looks at.
	first, cancel := context.WithTimeout(ctxFor(t), 300*time.Millisecond)
	defer cancel()
	_, err := c.Call(first, []byte("x"))
	if err == nil {
		t.Fatal("a call got through a full server")
	}
	if errors.Is(err, client.ErrAuthFailed) || errors.Is(err, client.ErrMuxRefused) {
		t.Errorf("a full server failed the call with %v", err)
	}
	holder.Close()
	ctx := ctxFor(t)
	for {
		if _, err := c.Call(ctx, []byte("x")); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("no call got through once the server had room: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := st.Counter(client.StatFallbacks); n != 0 {
		t.Errorf("%d fallbacks to v1 against a mux server", n)
	}
}
