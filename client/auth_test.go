package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/internal/faultproxy"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// tokenServer serves its connections' identities to those that sent the
// token "s3cret"; every credential checked is sent on checks.
func tokenServer(t *testing.T, checks chan<- string) string {
	return tokenServerV(t, checks, false)
}

// tokenServerV is tokenServer, speaking v1 only when v1Only is set.
func tokenServerV(t *testing.T, checks chan<- string, v1Only bool) string {
	_, addr := testserver.Start(t, server.HandlerFunc(func(ctx context.Context, _ []byte, _ *span.Span) ([]byte, error) {
		id, _ := server.Identity(ctx)
		return []byte(id), nil
	}), server.Config{Auth: &server.Auth{
		Token: true,
		Check: func(_ context.Context, _ server.Peer, token []byte) (string, error) {
			checks <- string(token)
			if string(token) != "s3cret" {
				return "", errors.New("bad token")
			}
			return "alice", nil
		},
	}, V1Only: v1Only})
	return addr
}

// TestAuthTokenNegotiated: the credential follows the mux negotiation, as
// the server expects it, on every connection: ProtocolMux is refused
// unless the server acknowledged the preface, and ProtocolAuto gets the
// multiplexed mode (no fallback counted). Against a v1-only server, which
// takes the preface for a credential and refuses it, ProtocolAuto dials
// again and sends the token first.
func TestAuthTokenNegotiated(t *testing.T) {
	for _, tc := range []struct {
		name      string
		proto     client.Protocol
		v1Only    bool
		fallbacks bool
	}{
		{"mux", client.ProtocolMux, false, false},
		{"auto", client.ProtocolAuto, false, false},
		{"auto-v1-server", client.ProtocolAuto, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checks := make(chan string, 100)
			addr := tokenServerV(t, checks, tc.v1Only)
			st := stats.NewMemory()
			c, err := client.New([]string{addr}, fast(client.Config{
				Protocol:     tc.proto,
				ConnsPerAddr: 3,
				AuthToken:    client.StaticToken([]byte("s3cret")),
				Stats:        st,
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := ctxFor(t)
			for i := range 30 {
				ans, err := c.Call(ctx, fmt.Appendf(nil, "who-%d", i))
				if err != nil || string(ans) != "alice" {
					t.Fatalf("call %d: %q, %v; want alice", i, ans, err)
				}
			}
			if got := st.Counter(client.StatFallbacks) > 0; got != tc.fallbacks {
				t.Fatalf("fallbacks to v1 counted: %v, want %v", got, tc.fallbacks)
			}
			for len(checks) > 0 {
				if tok := <-checks; tok != "s3cret" && !tc.v1Only {
					t.Fatalf("server checked %q", tok)
				}
			}
		})
	}
}

// TestAuthTokenEveryConnection: with AuthToken, each of three connections
// authenticates before its first call, and so do their replacements after
// every connection was reset.
func TestAuthTokenEveryConnection(t *testing.T) {
	checks := make(chan string, 100)
	proxy, err := faultproxy.New(tokenServer(t, checks))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	c := newClient(t, []string{proxy.Addr()}, fast(client.Config{
		ConnsPerAddr: 3,
		AuthToken:    client.StaticToken([]byte("s3cret")),
	}))
	ctx := ctxFor(t)
	expectChecks := func(n int) {
		t.Helper()
		for range n {
			select {
			case tok := <-checks:
				if tok != "s3cret" {
					t.Fatalf("server checked %q", tok)
				}
			case <-ctx.Done():
				t.Fatal("fewer credentials checked than connections dialled")
			}
		}
	}
	callAll := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 60)
		for i := range 60 {
			wg.Go(func() {
				ans, err := c.Call(ctx, fmt.Appendf(nil, "who-%d", i))
				if err == nil && string(ans) != "alice" {
					err = fmt.Errorf("answer %q: the connection was not authenticated", ans)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	expectChecks(3)
	callAll()
	if n := proxy.Accepted(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}

	proxy.ResetAll()
	expectChecks(3) // the three replacements authenticate too
	callAll()
	select {
	case tok := <-checks:
		t.Fatalf("an extra credential %q was checked: a request sent as a token?", tok)
	default:
	}
}

// TestAuthTokenRefused: a token the server refuses fails the dial with
// ErrAuthFailed, and no call is sent on the connection.
func TestAuthTokenRefused(t *testing.T) {
	checks := make(chan string, 100)
	addr := tokenServer(t, checks)
	cfg := fast(client.Config{AuthToken: client.StaticToken([]byte("guess"))})
	cfg.DialTimeout = 200 * time.Millisecond
	c := newClient(t, []string{addr}, cfg)
	err := c.WaitConnected(ctxFor(t))
	if !errors.Is(err, client.ErrNoConnection) || !errors.Is(err, client.ErrAuthFailed) {
		t.Fatalf("got %v, want ErrNoConnection wrapping ErrAuthFailed", err)
	}
	if tok := <-checks; tok != "guess" {
		t.Fatalf("server checked %q", tok)
	}
}

// TestAuthTokenExtraConnection: the extra connection that routes around an
// overdue answer authenticates like any other.
func TestAuthTokenExtraConnection(t *testing.T) {
	checks := make(chan string, 10)
	started, gate := make(chan struct{}, 1), make(chan struct{})
	_, addr := testserver.Start(t, server.HandlerFunc(func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "hold" {
			started <- struct{}{}
			<-gate
		}
		id, _ := server.Identity(ctx)
		return []byte(id), nil
	}), server.Config{Auth: &server.Auth{
		Token: true,
		Check: func(_ context.Context, _ server.Peer, token []byte) (string, error) {
			checks <- string(token)
			if string(token) != "s3cret" {
				return "", errors.New("bad token")
			}
			return "alice", nil
		},
	}})
	t.Cleanup(func() { close(gate) })
	rec := stats.NewMemory()
	c := newClient(t, []string{addr}, client.Config{
		Protocol:  client.ProtocolV1, // the extra connection is v1's way around an overdue answer
		Stats:     rec,
		AuthToken: client.StaticToken([]byte("s3cret")),
	})
	c.Go(ctxFor(t), []byte("hold")) // answered at cleanup, or failed by Close
	waitStarted(t, started)
	// The scenario, not an assertion: the held answer becomes overdue.
	time.Sleep(3 * client.DefaultOverdueAfter)
	if ans, err := c.Call(ctxFor(t), []byte("fast")); err != nil || string(ans) != "alice" {
		t.Fatalf("call beside the held one: %q, %v; want alice", ans, err)
	}
	if n := rec.Counter(client.StatExtraDialed); n != 1 {
		t.Fatalf("%s = %d, want 1", client.StatExtraDialed, n)
	}
	if len(checks) != 2 {
		t.Fatalf("%d credentials checked, want 2", len(checks))
	}
	for range 2 {
		if tok := <-checks; tok != "s3cret" {
			t.Fatalf("server checked %q", tok)
		}
	}
}
