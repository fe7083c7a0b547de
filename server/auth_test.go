package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// whoami answers with the identity Auth gave the connection.
func whoami(ctx context.Context, _ []byte, _ *span.Span) ([]byte, error) {
	id, _ := server.Identity(ctx)
	return []byte(id), nil
}

func tokenAuth(rec *stats.Memory) server.Config {
	return server.Config{Stats: rec, Auth: &server.Auth{
		Token:   true,
		Timeout: 100 * time.Millisecond,
		Check: func(_ context.Context, _ server.Peer, token []byte) (string, error) {
			if string(token) != "s3cret" {
				return "", errors.New("bad token")
			}
			return "alice", nil
		},
	}}
}

func TestTokenAuth(t *testing.T) {
	rec := stats.NewMemory()
	c, _ := serveOne(t, whoami, tokenAuth(rec))
	write(t, c, frame.AppendFrame(frame.AppendFrame(nil, []byte("s3cret")), []byte("who?")))
	// The token's answer is an empty frame; then requests are served.
	got := readFrames(t, frame.NewReader(c, frame.Limits{}), 2)
	if got[0] != "" || got[1] != "alice" {
		t.Fatalf("answers %q", got)
	}
}

func TestTokenAuthRefuses(t *testing.T) {
	for name, send := range map[string][]byte{
		"wrong token":    frame.AppendFrame(nil, []byte("guess")),
		"batch as token": frame.AppendBatch(nil, []byte("s3cret")),
		"no token":       nil,
	} {
		t.Run(name, func(t *testing.T) {
			rec := stats.NewMemory()
			c, res := serveOne(t, whoami, tokenAuth(rec))
			write(t, c, send)
			if err := result(t, res); !errors.Is(err, server.ErrUnauthenticated) {
				t.Fatalf("ServeConn = %v, want ErrUnauthenticated", err)
			}
			expectClosed(t, c)
			if rec.Counter("errors.auth") != 1 {
				t.Errorf("errors.auth = %d", rec.Counter("errors.auth"))
			}
		})
	}
}

// TestTLSIdentityAuth admits connections by their client certificate.
func TestTLSIdentityAuth(t *testing.T) {
	serverCert, serverPool := selfSigned(t, "server")
	clientCert, clientPool := selfSigned(t, "client-bob")
	cfg := server.Config{
		TLS: &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool},
		Auth: &server.Auth{Check: func(_ context.Context, p server.Peer, _ []byte) (string, error) {
			if p.TLS == nil || len(p.TLS.PeerCertificates) == 0 {
				return "", errors.New("no certificate")
			}
			return p.TLS.PeerCertificates[0].Subject.CommonName, nil
		}},
	}
	_, addr := startServer(t, whoami, cfg)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: serverPool, Certificates: []tls.Certificate{clientCert}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	write(t, c, frame.AppendFrame(nil, []byte("who?")))
	if got := readFrames(t, frame.NewReader(c, frame.Limits{}), 1); got[0] != "client-bob" {
		t.Fatalf("identity %q", got[0])
	}
}

// TestAuthTimeoutBoundsTheWayToTheCredential: Auth.Timeout bounds the
// whole way from accepting a connection to its credential being checked,
// however far the peer got before it stalled: the connection is closed
// and counted as errors.auth, not held until ReadTimeout (far longer than
// the test's safety net here) and counted as errors.read_timeout.
func TestAuthTimeoutBoundsTheWayToTheCredential(t *testing.T) {
	preface := frame.AppendPreface(nil)
	for name, send := range map[string][]byte{
		"nothing":             nil,
		"one byte":            {0},
		"a preface's header":  preface[:frame.HeaderSize],
		"part of a preface":   preface[:frame.HeaderSize+4],
		"a preface":           preface,
		"part of a token":     frame.AppendFrame(nil, []byte("s3cret"))[:frame.HeaderSize+3],
		"a preface, then one": append(slices.Clone(preface), 0),
	} {
		t.Run(name, func(t *testing.T) {
			sd := newUDPStatsd(t)
			cfg := tokenAuth(nil)
			cfg.Stats = sd
			cfg.Auth.Timeout = 50 * time.Millisecond
			cfg.ReadTimeout = 6 * safety
			c, res := serveOne(t, whoami, cfg)
			write(t, c, send)
			expectClosed(t, c)
			if err := result(t, res); !errors.Is(err, server.ErrUnauthenticated) {
				t.Errorf("ServeConn = %v, want ErrUnauthenticated", err)
			}
			got := sd.counters(t)
			if got["errors.auth"] != 1 || got["errors.read_timeout"] != 0 || got["errors.conn"] != 0 {
				t.Errorf("errors.auth = %d, errors.read_timeout = %d, errors.conn = %d; want 1, 0, 0",
					got["errors.auth"], got["errors.read_timeout"], got["errors.conn"])
			}
		})
	}
}
