package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"testing"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/stats"
)

// serveForeign serves one connection accepted from a fresh listener, as
// TLS when cfg.TLS is set, while peer speaks to it. It returns the
// server's stats, its log and what ServeConn returned, once the end is
// logged and counted and peer has returned.
func serveForeign(t *testing.T, cfg server.Config, peer func(addr string)) (*stats.Memory, *logtest.Hook, error) {
	t.Helper()
	rec := stats.NewMemory()
	logger, hook := logtest.NewNullLogger()
	cfg.Stats, cfg.Logger = rec, logger
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peerDone := make(chan struct{})
	defer func() { <-peerDone }()
	go func() {
		defer close(peerDone)
		peer(l.Addr().String())
	}()
	sc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS != nil {
		sc = tls.Server(sc, cfg.TLS)
	}
	srv := server.New(server.HandlerFunc(echo), cfg)
	t.Cleanup(func() { _ = srv.Close() })
	res := make(chan error, 1)
	go func() { res <- srv.ServeConn(context.Background(), sc) }()
	err = result(t, res)
	return rec, hook, err
}

// TestForeignClients: a TLS client or an HTTP client on a plain port, and a
// plain client on a TLS port, are named in the error, the log and the
// errors.foreign counter, not reported as a frame of absurd size.
func TestForeignClients(t *testing.T) {
	cert, _ := selfSigned(t, "server")
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	for _, tc := range []struct {
		name string
		cfg  server.Config
		peer func(t *testing.T, addr string)
		want error
	}{
		{"TLS client, plain port", server.Config{}, func(t *testing.T, addr string) {
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
			if err == nil {
				c.Close()
				t.Error("TLS handshake with a plain server succeeded")
			}
		}, server.ErrClientSpeaksTLS},
		{"HTTP client, plain port", server.Config{}, func(t *testing.T, addr string) {
			if resp, err := http.Get("http://" + addr + "/"); err == nil {
				resp.Body.Close()
				t.Error("HTTP GET from a tcpez server succeeded")
			}
		}, server.ErrClientSpeaksHTTP},
		{"HTTP client, TLS port", server.Config{TLS: tlsCfg}, func(t *testing.T, addr string) {
			if resp, err := http.Get("http://" + addr + "/"); err == nil {
				resp.Body.Close()
				t.Error("HTTP GET from a tcpez server succeeded")
			}
		}, server.ErrClientSpeaksHTTP},
		{"plain client, TLS port", server.Config{TLS: tlsCfg}, func(t *testing.T, addr string) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if _, err := c.Write(frame.AppendFrame(nil, []byte("PING"))); err != nil {
				t.Error(err)
				return
			}
			// The server answers with a TLS alert, which a tcpez reader
			// recognises.
			_, err = frame.NewReader(bufio.NewReader(c), frame.Limits{}).ReadHeader()
			if frame.SniffError(err) != frame.TLS {
				t.Errorf("plain client read %v, want a header sniffed as TLS", err)
			}
		}, server.ErrClientNotTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, hook, err := serveForeign(t, tc.cfg, func(addr string) { tc.peer(t, addr) })
			if !errors.Is(err, tc.want) {
				t.Fatalf("ServeConn = %v, want %v", err, tc.want)
			}
			if n := rec.Counter("errors.foreign"); n != 1 {
				t.Errorf("errors.foreign = %d, want 1", n)
			}
			if e := hook.LastEntry(); e == nil || !errors.Is(e.Data["error"].(error), tc.want) {
				t.Errorf("log entry %v, want one with %v", e, tc.want)
			}
		})
	}
}
