package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/stats"
)

// TestTLSFailuresCountedOnce: a failed TLS handshake is counted once, as
// errors.tls (docs/SECURITY.md), not errors.conn too; a client that does
// not speak TLS is errors.tls and errors.foreign, as docs/RELIABILITY.md
// says; a handshake evicted by MaxHandshakes is conns.handshake_evicted
// only, and one cut short by Shutdown is not counted at all. The counters
// are read from a real statsd recorder over UDP once Shutdown has ended
// every connection.
func TestTLSFailuresCountedOnce(t *testing.T) {
	serverCert, serverPool := selfSigned(t, "server")
	_, clientPool := selfSigned(t, "client")
	plain := &tls.Config{Certificates: []tls.Certificate{serverCert}}
	mutual := &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool}
	// tlsDial makes a TLS client's handshake (and first read, where TLS
	// 1.3 reports a refused client certificate); it must fail.
	tlsDial := func(cfg *tls.Config) func(t *testing.T, addr string) {
		return func(t *testing.T, addr string) {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: safety}, "tcp", addr, cfg)
			if err == nil {
				_ = c.SetDeadline(time.Now().Add(safety))
				if _, err = c.Write(frame.AppendFrame(nil, []byte("x"))); err == nil {
					_, err = c.Read(make([]byte, 1))
				}
				c.Close()
			}
			if err == nil {
				t.Fatal("the handshake succeeded")
			}
		}
	}
	// stallHello sends a record header and one byte of a ClientHello.
	stallHello := func(t *testing.T, addr string) net.Conn {
		c := dial(t, addr)
		write(t, c, []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01})
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  server.Config
		do   func(t *testing.T, addr string)
		left int64 // connections do leaves open, for Shutdown to end
		want map[string]int64
	}{{
		name: "the client distrusts the server's certificate",
		cfg:  server.Config{TLS: plain},
		do:   tlsDial(&tls.Config{RootCAs: clientPool}),
		want: map[string]int64{"errors.tls": 1},
	}, {
		name: "no client certificate, TLS 1.3",
		cfg:  server.Config{TLS: mutual},
		do:   tlsDial(&tls.Config{RootCAs: serverPool, MaxVersion: tls.VersionTLS13}),
		want: map[string]int64{"errors.tls": 1},
	}, {
		name: "no client certificate, TLS 1.2",
		cfg:  server.Config{TLS: mutual},
		do:   tlsDial(&tls.Config{RootCAs: serverPool, MaxVersion: tls.VersionTLS12}),
		want: map[string]int64{"errors.tls": 1},
	}, {
		name: "handshake timeout",
		cfg:  server.Config{TLS: plain, ReadTimeout: 50 * time.Millisecond},
		do:   func(t *testing.T, addr string) { expectClosed(t, dial(t, addr)) },
		want: map[string]int64{"errors.tls": 1},
	}, {
		name: "a plain tcpez client",
		cfg:  server.Config{TLS: plain},
		do: func(t *testing.T, addr string) {
			c := dial(t, addr)
			write(t, c, frame.AppendFrame(nil, []byte("x")))
			expectClosed(t, c)
		},
		want: map[string]int64{"errors.tls": 1, "errors.foreign": 1},
	}, {
		name: "evicted, and cut short by Shutdown",
		cfg:  server.Config{TLS: plain, MaxHandshakes: 1},
		do: func(t *testing.T, addr string) {
			first := stallHello(t, addr)
			stallHello(t, addr) // evicts the first; Shutdown ends it
			expectClosed(t, first)
		},
		left: 1,
		want: map[string]int64{server.StatConnsHandshakeEvicted: 1},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := countsAfterShutdown(t, tc.cfg, tc.left, tc.do)
			for _, name := range []string{"errors.tls", "errors.conn", "errors.foreign", "errors.protocol",
				"errors.read_timeout", "errors.auth", server.StatConnsHandshakeEvicted} {
				if got[name] != tc.want[name] {
					t.Errorf("%s = %d, want %d", name, got[name], tc.want[name])
				}
			}
		})
	}
}

// TestEvictedAuthIsNotAnAuthFailure: a connection evicted by
// MaxHandshakes while it sends its credential is conns.handshake_evicted
// (docs/RELIABILITY.md), not errors.auth too; one that Shutdown cuts short
// there is not counted.
func TestEvictedAuthIsNotAnAuthFailure(t *testing.T) {
	cfg := tokenAuth(nil)
	cfg.Auth.Timeout = 6 * safety
	cfg.MaxHandshakes = 1
	partOfAToken := frame.AppendFrame(nil, []byte("s3cret"))[:frame.HeaderSize+3]
	got := countsAfterShutdown(t, cfg, 1, func(t *testing.T, addr string) {
		first := dial(t, addr)
		write(t, first, partOfAToken)
		// Whether the first is evicted in its token read or before it
		// (its bytes not yet read), it is no auth failure.
		second := dial(t, addr)
		write(t, second, partOfAToken)
		expectClosed(t, first)
	})
	if got["errors.auth"] != 0 || got[server.StatConnsHandshakeEvicted] != 1 {
		t.Errorf("errors.auth = %d, %s = %d; want 0 and 1", got["errors.auth"],
			server.StatConnsHandshakeEvicted, got[server.StatConnsHandshakeEvicted])
	}
}

// countsAfterShutdown serves echo with cfg, counting into a real statsd
// recorder over UDP, runs do, waits until left connections are open (the
// others ended by themselves, not by Shutdown), shuts the server down
// (which waits for every connection to end, and so to be counted), and
// returns the counters.
func countsAfterShutdown(t *testing.T, cfg server.Config, left int64, do func(t *testing.T, addr string)) map[string]int64 {
	t.Helper()
	sd := newUDPStatsd(t)
	mem := stats.NewMemory()
	cfg.Stats = stats.Multi(sd, mem)
	cfg.Logger = quietLogger()
	srv := server.New(server.HandlerFunc(echo), cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	do(t, l.Addr().String())
	waitFor(t, func() bool {
		open, ok := mem.GaugeValue(server.StatConnsOpen)
		return ok && open == left
	}, "the connections to end")
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	return sd.counters(t)
}
