package server_test

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// TestMalformedInput sends each malformed example of the spec, and more,
// after a valid request: the valid one is answered, the connection is
// closed, the fault is counted, and a fresh connection is served.
func TestMalformedInput(t *testing.T) {
	cases := map[string][]byte{
		"2 GiB header":             {0x7f, 0xff, 0xff, 0xff},
		"nested batch":             frame.AppendHeader(frame.AppendHeader(nil, -2), -1),
		"HTTP request line":        []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"batch of 50 million":      frame.AppendHeader(nil, frame.BatchHeader(50_000_000)),
		"frame then garbage":       append(frame.AppendFrame(nil, []byte("ok")), 0x80, 0, 0, 0, 1, 2, 3),
		"over a lowered max frame": frame.AppendHeader(nil, 1025),
	}
	for _, ex := range specExamples(t) {
		// Truncations are an end of stream, tested in TestTruncatedFrames.
		if ex.Malformed != nil && ex.Error != "ErrTruncated" {
			cases["spec: "+ex.Name] = ex.Malformed
		}
	}
	rec := stats.NewMemory()
	_, addr := startServer(t, echo, server.Config{Stats: rec, Limits: frame.Limits{MaxFrameSize: 1024}})
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			before := rec.Counter("errors.protocol")
			c := dial(t, addr)
			write(t, c, append(frame.AppendFrame(nil, []byte("first")), bad...))
			if got := readN(t, c, 9); string(got[4:]) != "first" {
				t.Fatalf("answer before the fault: %q", got)
			}
			expectClosed(t, c)
			roundTrip(t, addr, "still serving")
			waitFor(t, func() bool { return rec.Counter("errors.protocol") > before }, "errors.protocol to rise")
		})
	}
}

// waitFor polls cond, for effects that happen just after a connection
// closes; it fails the test only at the safety bound.
func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(safety)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// serveOne runs ServeConn on the server end of a loopback TCP connection
// and returns the client end and ServeConn's result.
func serveOne(t *testing.T, h server.HandlerFunc, cfg server.Config) (*net.TCPConn, <-chan error) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client := dial(t, l.Addr().String())
	sc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(h, cfg)
	result := make(chan error, 1)
	go func() { result <- srv.ServeConn(context.Background(), sc) }()
	t.Cleanup(func() { _ = srv.Close() })
	return client, result
}

func result(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(safety):
		t.Fatal("ServeConn did not return")
		return nil
	}
}

func TestTruncatedFrames(t *testing.T) {
	for name, data := range map[string][]byte{
		"inside a header":  {0, 0, 0},
		"inside a payload": {0, 0, 0, 4, 'P', 'I'},
		"inside a batch":   frame.AppendFrame(frame.AppendHeader(nil, -2), []byte("one")),
	} {
		t.Run(name, func(t *testing.T) {
			c, res := serveOne(t, echo, server.Config{})
			write(t, c, data)
			c.CloseWrite()
			if err := result(t, res); !errors.Is(err, frame.ErrTruncated) {
				t.Fatalf("ServeConn = %v, want ErrTruncated", err)
			}
		})
	}
}

func TestStalledHeaderHitsReadTimeout(t *testing.T) {
	rec := stats.NewMemory()
	c, res := serveOne(t, echo, server.Config{ReadTimeout: 50 * time.Millisecond, Stats: rec})
	write(t, c, []byte{0, 0}) // half a header, then nothing
	if err := result(t, res); !errors.Is(err, server.ErrReadTimeout) {
		t.Fatalf("ServeConn = %v, want ErrReadTimeout", err)
	}
	expectClosed(t, c)
	if rec.Counter("errors.read_timeout") != 1 {
		t.Errorf("errors.read_timeout = %d", rec.Counter("errors.read_timeout"))
	}
}

func TestIdleTimeout(t *testing.T) {
	c, res := serveOne(t, echo, server.Config{IdleTimeout: 50 * time.Millisecond})
	write(t, c, frame.AppendFrame(nil, []byte("hi")))
	readN(t, c, 6)
	if err := result(t, res); !errors.Is(err, server.ErrIdleTimeout) {
		t.Fatalf("ServeConn = %v, want ErrIdleTimeout", err)
	}
	expectClosed(t, c)
}

// TestSlowAnswerIsNotIdle: a connection waiting for a handler longer than
// IdleTimeout is not idle.
func TestSlowAnswerIsNotIdle(t *testing.T) {
	slow := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		time.Sleep(150 * time.Millisecond)
		return req, nil
	}
	c, _ := serveOne(t, slow, server.Config{IdleTimeout: 30 * time.Millisecond})
	write(t, c, frame.AppendFrame(nil, []byte("slow")))
	if got := readN(t, c, 8); string(got[4:]) != "slow" {
		t.Fatalf("got %q", got)
	}
}

// TestSlowConsumerHitsWriteTimeout: a client that pipelines large requests
// and never reads is cut off, while another connection is served.
func TestSlowConsumerHitsWriteTimeout(t *testing.T) {
	rec := stats.NewMemory()
	cfg := server.Config{WriteTimeout: 100 * time.Millisecond, Stats: rec}
	srv, addr := startServer(t, echo, cfg)
	_ = srv
	c := dial(t, addr)
	c.SetReadBuffer(4096)
	payload := make([]byte, 64<<10)
	go func() {
		w := frame.NewWriter(c)
		for range 1000 { // 64 MiB: far more than socket buffers hold
			if w.WriteFrame(payload) != nil {
				return
			}
		}
		_ = w.Flush()
	}()
	waitFor(t, func() bool { return rec.Counter("errors.write_timeout") == 1 }, "errors.write_timeout")
	roundTrip(t, addr, "others are served")
}

func TestHandlerErrorClosesAfterEarlierAnswers(t *testing.T) {
	failB := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "B" {
			return nil, errors.New("no B today")
		}
		return req, nil
	}
	c, res := serveOne(t, failB, server.Config{})
	var req []byte
	for _, p := range []string{"A", "B", "C"} {
		req = frame.AppendFrame(req, []byte(p))
	}
	write(t, c, req)
	if got := readN(t, c, 5); string(got[4:]) != "A" {
		t.Fatalf("first answer %q", got)
	}
	expectClosed(t, c)
	err := result(t, res)
	if !errors.Is(err, server.ErrHandler) || !strings.Contains(err.Error(), "no B today") {
		t.Fatalf("ServeConn = %v, want ErrHandler wrapping the handler's error", err)
	}
}

func TestEncodeErrorAnswersInstead(t *testing.T) {
	failB := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "B" {
			return nil, errors.New("no B")
		}
		if string(req) == "P" {
			panic("boom")
		}
		return req, nil
	}
	cfg := server.Config{EncodeError: func(_ context.Context, err error, _ *span.Span) ([]byte, bool) {
		return []byte("ERR " + err.Error()), true
	}}
	c, _ := serveOne(t, failB, cfg)
	var req []byte
	for _, p := range []string{"A", "B", "P", "C"} {
		req = frame.AppendFrame(req, []byte(p))
	}
	write(t, c, req)
	got := readFrames(t, frame.NewReader(c, frame.Limits{}), 4)
	want := []string{"A", "ERR no B", "ERR tcpez: handler panic: boom", "C"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("answers %q, want %q", got, want)
		}
	}
}

func TestPanicIsRecoveredAndCounted(t *testing.T) {
	rec := stats.NewMemory()
	h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "panic" {
			panic("handler bug")
		}
		return req, nil
	}
	_, addr := startServer(t, h, server.Config{Stats: rec})
	c := dial(t, addr)
	write(t, c, append(frame.AppendFrame(nil, []byte("ok")), frame.AppendFrame(nil, []byte("panic"))...))
	readN(t, c, 6)
	expectClosed(t, c)
	roundTrip(t, addr, "the process lives on")
	if rec.Counter("errors.panic") != 1 {
		t.Errorf("errors.panic = %d", rec.Counter("errors.panic"))
	}
}

func TestMaxConnsRefusesAndCounts(t *testing.T) {
	rec := stats.NewMemory()
	_, addr := startServer(t, echo, server.Config{MaxConns: 2, Stats: rec})
	a, b := dial(t, addr), dial(t, addr)
	for _, c := range []net.Conn{a, b} {
		write(t, c, frame.AppendFrame(nil, []byte("x")))
		readN(t, c, 5)
	}
	refused := dial(t, addr)
	expectClosed(t, refused)
	if rec.Counter("conns.refused") != 1 {
		t.Errorf("conns.refused = %d", rec.Counter("conns.refused"))
	}
	a.Close()
	waitFor(t, func() bool { v, _ := rec.GaugeValue("conns.open"); return v == 1 }, "conns.open to drop")
	roundTrip(t, addr, "room again")
}

// TestStalledLargeFrameHoldsLittleMemory: connections that announce a
// large frame and stall hold only what they sent, not what they announced.
func TestStalledLargeFrameHoldsLittleMemory(t *testing.T) {
	_, addr := startServer(t, echo, server.Config{})
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const conns = 20
	var cs []net.Conn
	for range conns {
		c := dial(t, addr)
		write(t, c, append(frame.AppendHeader(nil, frame.DefaultMaxFrameSize), make([]byte, 1024)...))
		cs = append(cs, c)
	}
	roundTrip(t, addr, "sync") // the stalled frames have been read by now, most likely
	time.Sleep(20 * time.Millisecond)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	if grown > 16<<20 {
		t.Fatalf("heap grew %d MiB for %d stalled 16 MiB frames", grown>>20, conns)
	}
	for _, c := range cs {
		c.Close()
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]server.Config{
		"negative MaxInFlight": {MaxInFlight: -1},
		"bad limits":           {Limits: frame.Limits{MaxFrameSize: -5}},
		"negative sampling":    {RequestLog: server.RequestLog{SampleEvery: -1}},
	} {
		srv := server.New(server.HandlerFunc(echo), cfg)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Serve(l); !errors.Is(err, server.ErrInvalidConfig) {
			t.Errorf("%s: Serve = %v, want ErrInvalidConfig", name, err)
		}
		l.Close()
	}
	var srv server.Server
	if err := srv.Close(); !errors.Is(err, server.ErrInvalidConfig) {
		t.Errorf("server without a handler: %v", err)
	}
}
