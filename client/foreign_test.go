package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// TestServerSpeaksTLS: a plain client calling a tcpez server's TLS port
// is told so, rather than reading EOF.
func TestServerSpeaksTLS(t *testing.T) {
	cert, _ := selfSigned(t)
	_, addr := testserver.Start(t, server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) { return req, nil }), server.Config{
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}},
	})
	c := newClient(t, []string{addr}, client.Config{})
	_, err := c.Call(ctxFor(t), []byte("PING"))
	if !errors.Is(err, client.ErrServerSpeaksTLS) || !errors.Is(err, client.ErrConnLost) || !errors.Is(err, frame.ErrProtocol) {
		t.Fatalf("got %v, want ErrServerSpeaksTLS in a ConnError", err)
	}
}

// TestServerSpeaksHTTP: a v1 client calling an HTTP server is told so,
// rather than getting a frame size error. (The HTTP server answers "400
// Bad Request" once a line ends, hence the newline.) The mux preface has
// no line end, so the HTTP server keeps silent about it: an auto client
// falls back to v1 after DialTimeout (docs/PROTOCOL.md, "Negotiation"),
// and is then told so too.
func TestServerSpeaksHTTP(t *testing.T) {
	hs := httptest.NewServer(http.NotFoundHandler())
	defer hs.Close()
	c := newClient(t, []string{hs.Listener.Addr().String()}, client.Config{Protocol: client.ProtocolV1})
	_, err := c.Call(ctxFor(t), []byte("PING\n"))
	if !errors.Is(err, client.ErrServerSpeaksHTTP) || !errors.Is(err, client.ErrConnLost) {
		t.Fatalf("got %v, want ErrServerSpeaksHTTP in a ConnError", err)
	}
	if os.Getenv("TCPEZ_TEST_PROTOCOL") == "v1" {
		return
	}
	c = newClient(t, []string{hs.Listener.Addr().String()}, client.Config{DialTimeout: 200 * time.Millisecond})
	_, err = c.Call(ctxFor(t), []byte("PING\n"))
	if !errors.Is(err, client.ErrServerSpeaksHTTP) || !errors.Is(err, client.ErrConnLost) {
		t.Fatalf("auto: got %v, want ErrServerSpeaksHTTP in a ConnError", err)
	}
}

// TestMuxClientOnTLSPortIsToldTLS: a ProtocolMux client without
// Config.TLS dialling a TLS port is told the server speaks TLS, as a v1 or
// auto client is, not only that the mux preface was refused.
func TestMuxClientOnTLSPortIsToldTLS(t *testing.T) {
	cert, _ := selfSigned(t)
	_, addr := testserver.Start(t, server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) { return req, nil }), server.Config{
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}},
	})
	c := newClient(t, []string{addr}, client.Config{Protocol: client.ProtocolMux})
	_, err := c.Call(ctxFor(t), []byte("PING"))
	if !errors.Is(err, client.ErrServerSpeaksTLS) || !errors.Is(err, client.ErrMuxRefused) {
		t.Fatalf("got %v, want ErrServerSpeaksTLS (and ErrMuxRefused)", err)
	}
}
