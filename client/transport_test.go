package client_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tcpez test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
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

	c := newClient(t, []string{srv.addr}, client.WithTLS(&tls.Config{RootCAs: pool}))
	ctx := ctxFor(t)
	for g := range 20 {
		if err := mixedCalls(ctx, c, g, 5); err != nil {
			t.Fatal(err)
		}
	}

	// A client that does not trust the certificate never gets a connection.
	_, err = client.New([]string{srv.addr}, client.WithTLS(&tls.Config{}))
	var verr *tls.CertificateVerificationError
	if !errors.Is(err, client.ErrNoConnection) || !errors.As(err, &verr) {
		t.Fatalf("untrusted certificate: got %v, want ErrNoConnection wrapping a verification error", err)
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
	c := newClient(t, []string{srv.addr}, fast(), client.WithOnStateChange(ev.hook))
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
