package client_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"testing"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/internal/testcert"
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
