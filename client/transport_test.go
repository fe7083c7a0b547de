package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/internal/testcert"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	return testcert.New(t, "tcpez test")
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	serverCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := inner.Addr().String()
	listen := func() (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		return tls.NewListener(ln, serverCfg), nil
	}
	srv := startServer(t, tls.NewListener(inner, serverCfg), addr, listen, answerOf)

	c := newClient(t, []string{srv.addr}, client.Config{TLS: &tls.Config{RootCAs: pool}})
	ctx := ctxFor(t)
	for g := range 20 {
		if err := mixedCalls(ctx, c, g, 5); err != nil {
			t.Fatal(err)
		}
	}

	// A client that does not trust the certificate never gets a connection.
	ev := newEvents()
	newClient(t, []string{srv.addr}, client.Config{TLS: &tls.Config{}, OnStateChange: ev.hook})
	got, _ := ev.waitFor(t, client.Disconnected, 0)
	err = got.Err
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Fatalf("untrusted certificate: dial failed with %v, want a verification error", err)
	}
}

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tcpez.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	listen := func() (net.Listener, error) { return net.Listen("unix", path) }
	srv := startServer(t, ln, "unix:"+path, listen, answerOf)
	ev := newEvents()
	c := newClient(t, []string{srv.addr}, fast(client.Config{OnStateChange: ev.hook}))
	ctx := ctxFor(t)
	if err := mixedCalls(ctx, c, 0, 20); err != nil {
		t.Fatal(err)
	}
	// Unix sockets reconnect like TCP ones.
	srv.Kill()
	_, next := ev.waitFor(t, client.Disconnected, 0)
	srv.Restart()
	ev.waitFor(t, client.Reconnected, next)
	if err := mixedCalls(ctx, c, 1, 20); err != nil {
		t.Fatal(err)
	}
}

// TestMutualTLSWithoutClientCert: a client without a certificate, against
// a server that requires one, never gets a connection, in TLS 1.2 (the
// handshake fails) as in TLS 1.3 (the server's alert arrives on the first
// read, the answer to the mux preface). The refusal is a dial error that
// names the alert: not a v1 server to fall back to, not ErrMuxRefused, and
// calls do not wait out DialTimeout (an hour here) for the address.
func TestMutualTLSWithoutClientCert(t *testing.T) {
	serverCert, serverPool := selfSigned(t)
	_, clientPool := testcert.New(t, "tcpez test client")
	_, addr := testserver.Start(t, server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) { return req, nil }), server.Config{
		TLS: &tls.Config{
			Certificates: []tls.Certificate{serverCert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    clientPool,
		},
	})
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		// A v1 client learns of the refusal when it first reads: with a
		// token, from the token's answer (without, from its first call's).
		for _, p := range []client.Protocol{client.ProtocolAuto, client.ProtocolMux, client.ProtocolV1} {
			t.Run(fmt.Sprintf("%s/%s", tls.VersionName(version), p), func(t *testing.T) {
				rec := stats.NewMemory()
				cfg := client.Config{
					TLS:         &tls.Config{RootCAs: serverPool, MinVersion: version, MaxVersion: version},
					Protocol:    p,
					DialTimeout: time.Hour,
					Stats:       rec,
				}
				if p == client.ProtocolV1 {
					cfg.AuthToken = client.StaticToken([]byte("token"))
				}
				c := muxClient(t, addr, cfg) // the protocol asked for, whatever TCPEZ_TEST_PROTOCOL says
				err := c.WaitConnected(ctxFor(t))
				var oerr *net.OpError
				switch {
				case err == nil:
					t.Fatal("WaitConnected = nil: the address was reported connected")
				case errors.Is(err, context.DeadlineExceeded):
					t.Fatalf("WaitConnected = %v: it waited out the dial window", err)
				case !errors.Is(err, client.ErrNoConnection) || !errors.As(err, &oerr) || oerr.Op != "remote error":
					t.Fatalf("WaitConnected = %v, want ErrNoConnection around the server's TLS alert", err)
				case errors.Is(err, client.ErrMuxRefused) || errors.Is(err, client.ErrAuthFailed):
					t.Fatalf("WaitConnected = %v, a TLS refusal reported as ErrMuxRefused or ErrAuthFailed", err)
				}
				_, err = c.Call(ctxFor(t), []byte("x"))
				if !errors.Is(err, client.ErrNoConnection) || errors.Is(err, client.ErrConnLost) {
					t.Fatalf("Call = %v, want ErrNoConnection", err)
				}
				for stat, want := range map[string]int64{client.StatFallbacks: 0, client.StatConnected: 0} {
					if n := rec.Counter(stat); n != want {
						t.Errorf("%s = %d, want %d", stat, n, want)
					}
				}
			})
		}
	}
}
