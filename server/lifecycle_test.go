package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/testcert"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
	"github.com/tcpez/tcpez/stats/statsd"
)

// TestShutdownAnswersWhatWasRead: requests read before Shutdown are all
// answered, new connections are refused, and Serve returns ErrServerClosed.
func TestShutdownAnswersWhatWasRead(t *testing.T) {
	entered := make(chan struct{}, 100)
	release := make(chan struct{})
	h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		entered <- struct{}{}
		<-release
		return req, nil
	}
	srv := server.New(server.HandlerFunc(h), server.Config{Logger: quietLogger()})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	c := dial(t, l.Addr().String())
	write(t, c, frame.AppendFrame(nil, []byte("in flight")))
	<-entered

	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	if err := <-served; !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	if nc, err := net.Dial("tcp", l.Addr().String()); err == nil {
		nc.Close()
		t.Fatal("a new connection was accepted during Shutdown")
	}
	close(release)
	if got := readN(t, c, 13); string(got[4:]) != "in flight" {
		t.Fatalf("answer %q", got)
	}
	expectClosed(t, c)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
}

func TestShutdownGivesUpAtDeadline(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	defer close(release)
	h := func(ctx context.Context, req []byte, _ *span.Span) ([]byte, error) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done(): // Close cancels the connection's context
		}
		return req, nil
	}
	srv, addr := startServerNoCleanup(t, h, server.Config{Logger: quietLogger()})
	c := dial(t, addr)
	write(t, c, frame.AppendFrame(nil, []byte("stuck")))
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
	}
	expectClosed(t, c)
}

func startServerNoCleanup(t *testing.T, h server.HandlerFunc, cfg server.Config) (*server.Server, string) {
	srv := server.New(h, cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	return srv, l.Addr().String()
}

func TestServeConnOverPipe(t *testing.T) {
	client, sc := net.Pipe()
	defer client.Close()
	srv := server.New(server.HandlerFunc(echo), server.Config{Logger: quietLogger()})
	res := make(chan error, 1)
	go func() { res <- srv.ServeConn(context.Background(), sc) }()
	go func() {
		_, _ = client.Write(frame.AppendBatch(nil, []byte("x"), []byte("yz")))
	}()
	want := frame.AppendBatch(nil, []byte("x"), []byte("yz"))
	if got := readN(t, client, len(want)); string(got) != string(want) {
		t.Fatalf("got % x", got)
	}
	client.Close()
	if err := result(t, res); err != nil {
		t.Fatalf("ServeConn after the peer closed = %v, want nil", err)
	}
}

func TestUnixSocketWithMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tcpez.sock")
	srv := server.New(server.HandlerFunc(echo), server.Config{Logger: quietLogger(), UnixSocketMode: 0o600})
	l, err := srv.Listen("unix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v", fi.Mode().Perm(), err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	write(t, c, frame.AppendFrame(nil, []byte("unix")))
	if got := readN(t, c, 8); string(got[4:]) != "unix" {
		t.Fatalf("got %q", got)
	}
	// A second server may not steal a live socket.
	if _, err := server.New(server.HandlerFunc(echo), server.Config{}).Listen("unix:" + path); err == nil {
		t.Fatal("a live socket was replaced")
	}
}

func selfSigned(t *testing.T, name string) (tls.Certificate, *x509.CertPool) {
	return testcert.New(t, name)
}

func TestMutualTLS(t *testing.T) {
	serverCert, serverPool := selfSigned(t, "server")
	clientCert, clientPool := selfSigned(t, "client")
	cfg := server.Config{TLS: &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientPool,
		MinVersion:   tls.VersionTLS13,
	}}
	rec := stats.NewMemory()
	cfg.Stats = rec
	_, addr := startServer(t, echo, cfg)

	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: serverPool, Certificates: []tls.Certificate{clientCert}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	write(t, c, frame.AppendFrame(nil, []byte("secret")))
	if got := readN(t, c, 10); string(got[4:]) != "secret" {
		t.Fatalf("got %q", got)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("TLS version %x", v)
	}

	// Without a client certificate the handshake fails and is counted.
	anon, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: serverPool})
	if err == nil {
		_, err = anon.Write(frame.AppendFrame(nil, []byte("x")))
		if err == nil {
			_, err = anon.Read(make([]byte, 1))
		}
		anon.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate was served")
	}
	waitFor(t, func() bool { return rec.Counter("errors.tls") == 1 }, "errors.tls")
}

// TestStatsdOverUDP: the server's metrics reach a statsd daemon as real
// UDP packets.
func TestStatsdOverUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sd, err := statsd.New(statsd.Config{Address: pc.LocalAddr().String(), Prefix: "test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.HandlerFunc(echo), server.Config{Stats: sd, Logger: quietLogger()})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	for range 3 {
		roundTrip(t, l.Addr().String(), "counted")
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := sd.Close(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	buf := make([]byte, 65536)
	_ = pc.SetReadDeadline(time.Now().Add(time.Second))
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			break
		}
		lines = append(lines, strings.Split(strings.TrimSpace(string(buf[:n])), "\n")...)
	}
	var requests int
	var sawTiming, sawConns bool
	for _, l := range lines {
		switch {
		case l == "test.requests:1|c":
			requests++
		case strings.HasPrefix(l, "test.request:") && strings.HasSuffix(l, "|ms"):
			sawTiming = true
		case strings.HasPrefix(l, "test.conns.accepted:1|c"):
			sawConns = true
		}
	}
	if requests != 3 || !sawTiming || !sawConns {
		t.Fatalf("requests %d, timing %v, conns %v in %q", requests, sawTiming, sawConns, lines)
	}
}

// TestRequestLogPolicy: routine requests are logged at debug only when
// debug is on; slow ones at warn; spans' fields come along.
func TestRequestLogPolicy(t *testing.T) {
	logger, hook := logtest.NewNullLogger()
	logger.SetLevel(logrus.InfoLevel)
	h := func(_ context.Context, req []byte, sp *span.Span) ([]byte, error) {
		sp.Attr("command", string(req))
		if string(req) == "slow" {
			time.Sleep(300 * time.Millisecond)
		}
		return req, nil
	}
	_, addr := startServer(t, h, server.Config{Logger: logger, RequestLog: server.RequestLog{Slow: 150 * time.Millisecond}})
	roundTrip(t, addr, "fast")
	roundTrip(t, addr, "slow")
	var warned []*logrus.Entry
	for _, e := range hook.AllEntries() {
		if strings.Contains(e.Message, "request") {
			warned = append(warned, e)
		}
	}
	if len(warned) != 1 || warned[0].Level != logrus.WarnLevel || warned[0].Data["command"] != "slow" || warned[0].Data["span_id"] == nil {
		t.Fatalf("request log entries: %+v", warned)
	}
	hook.Reset()
	logger.SetLevel(logrus.DebugLevel)
	roundTrip(t, addr, "fast")
	waitFor(t, func() bool { return len(hook.AllEntries()) > 0 }, "a debug entry")
	if e := hook.AllEntries()[0]; e.Level != logrus.DebugLevel || e.Data["command"] != "fast" {
		t.Fatalf("debug entry %+v", e)
	}
}

// TestInflightGauge: requests held by a handler show in requests.inflight.
func TestInflightGauge(t *testing.T) {
	rec := stats.NewMemory()
	release := make(chan struct{})
	h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		<-release
		return req, nil
	}
	_, addr := startServer(t, h, server.Config{Stats: rec, StatsInterval: 5 * time.Millisecond})
	c := dial(t, addr)
	write(t, c, frame.AppendFrame(nil, []byte("held")))
	waitFor(t, func() bool { v, _ := rec.GaugeValue("requests.inflight"); return v == 1 }, "requests.inflight = 1")
	close(release)
	readN(t, c, 8)
	waitFor(t, func() bool { v, _ := rec.GaugeValue("requests.inflight"); return v == 0 }, "requests.inflight = 0")
}

// TestRequestLogSampling: with SampleEvery 5, one routine request in five
// is logged.
func TestRequestLogSampling(t *testing.T) {
	logger, hook := logtest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	_, addr := startServer(t, echo, server.Config{Logger: logger, RequestLog: server.RequestLog{SampleEvery: 5}})
	c := dial(t, addr)
	r := frame.NewReader(c, frame.Limits{})
	for i := range 20 {
		write(t, c, frame.AppendFrame(nil, []byte{byte(i)}))
		readFrames(t, r, 1)
	}
	requests := 0
	for _, e := range hook.AllEntries() {
		if e.Message == "tcpez: request" {
			requests++
		}
	}
	if requests != 4 {
		t.Fatalf("%d of 20 requests logged with SampleEvery 5, want 4", requests)
	}
}

// TestTLSHandshakeTimeout: a client that connects to a TLS server and
// never says hello is cut off by ReadTimeout, and counted.
func TestTLSHandshakeTimeout(t *testing.T) {
	cert, _ := selfSigned(t, "server")
	rec := stats.NewMemory()
	_, addr := startServer(t, echo, server.Config{
		TLS:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadTimeout: 50 * time.Millisecond,
		Stats:       rec,
	})
	c := dial(t, addr)
	expectClosed(t, c)
	waitFor(t, func() bool { return rec.Counter("errors.tls") == 1 }, "errors.tls")
}

// TestCloseWithHandlerIgnoringContext: Close ends a connection whose
// handler ignores its context and has not returned: the client sees the
// connection end, and Close returns without waiting for the handler.
// With MaxInFlight 1 nothing else reads the connection; by default the
// watcher has handed the reading to another goroutine.
func TestCloseWithHandlerIgnoringContext(t *testing.T) {
	for _, tc := range []struct {
		name        string
		maxInFlight int
	}{{"MaxInFlight 1", 1}, {"default", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			// Released only once the test is over, later than the client's
			// safety deadline.
			release, entered := make(chan struct{}), make(chan struct{}, 1)
			t.Cleanup(func() { close(release) })
			h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
				entered <- struct{}{}
				<-release
				return req, nil
			}
			srv, addr := startServerNoCleanup(t, h, server.Config{Logger: quietLogger(), MaxInFlight: tc.maxInFlight})
			c := dial(t, addr)
			write(t, c, frame.AppendFrame(nil, []byte("stuck")))
			<-entered
			closed := make(chan error, 1)
			go func() { closed <- srv.Close() }()
			expectClosed(t, c)
			select {
			case err := <-closed:
				if err != nil {
					t.Fatalf("Close = %v", err)
				}
			case <-time.After(safety):
				t.Fatal("Close did not return while a handler ignored its context")
			}
		})
	}
}

// TestRequestsThenFINAnsweredThenClosed: a client that has been answered
// once sends its last requests and its FIN at once (a write, then
// CloseWrite) and reads until the end. The server answers each and
// closes. It guards the reader's end of stream: an event-loop reader
// tried for issue 18 (not kept) took a short read to mean the socket
// empty, waited for news of the FIN that had come with the data, and
// never closed.
func TestRequestsThenFINAnsweredThenClosed(t *testing.T) {
	_, addr := startServer(t, echo, server.Config{Logger: quietLogger()})
	for i := range 20 {
		c := dial(t, addr)
		first := frame.AppendFrame(nil, []byte("first"))
		write(t, c, first)
		if got := readN(t, c, len(first)); !bytes.Equal(got, first) {
			t.Fatalf("connection %d: answered %q, want %q", i, got, first)
		}
		// The server now waits for more.
		var req []byte
		for j := range i + 1 {
			req = frame.AppendFrame(req, fmt.Appendf(nil, "r%d", j))
		}
		write(t, c, req)
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("connection %d: %v after %d bytes", i, err, len(got))
		}
		if !bytes.Equal(got, req) {
			t.Fatalf("connection %d: answered %q, want %q", i, got, req)
		}
	}
}
