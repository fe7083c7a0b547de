package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/israce"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
	"github.com/tcpez/tcpez/stats"
)

// malformedCase is one input of TestMalformedInput, sent after a valid
// request on a fresh connection.
type malformedCase struct {
	name string
	bad  []byte
	// eof: the client shuts down its write side after bad, so that the
	// input is cut short by the end of the stream.
	eof bool
	// legal: bad is valid input after all (the header 0 is an empty frame,
	// not an empty batch); it is all answered and the connection stays.
	legal bool
}

func malformedCases(t *testing.T) []malformedCase {
	batch := func(n int) []byte { return frame.AppendHeader(nil, frame.BatchHeader(n)) }
	hdr := func(h int32) []byte { return frame.AppendHeader(nil, frame.Header(h)) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	fr := func(p string) []byte { return frame.AppendFrame(nil, []byte(p)) }
	limit := fuzzLimits.MaxFrameSize
	cases := []malformedCase{
		// Headers a server must refuse before taking memory for them.
		{name: "2 GiB header", bad: hdr(math.MaxInt32)},
		{name: "header one over the max frame", bad: hdr(int32(limit + 1))},
		{name: "header -2^31", bad: hdr(math.MinInt32)},
		{name: "batch of 50 million", bad: batch(50_000_000)},
		{name: "batch count one over the limit", bad: batch(fuzzLimits.MaxBatchCount + 1)},
		{name: "batch count 2^31-1", bad: batch(math.MaxInt32)},
		// Inside a batch, every header must be a length within the limit.
		{name: "nested batch", bad: cat(batch(2), batch(1))},
		{name: "length -1 inside a batch", bad: cat(batch(2), hdr(-1))},
		{name: "length -2^31 inside a batch", bad: cat(batch(2), fr("a"), hdr(math.MinInt32))},
		{name: "oversized length inside a batch", bad: cat(batch(3), fr("a"), fr("b"), hdr(int32(limit+1)))},
		// Streams that end inside a header or a payload.
		{name: "1 header byte then EOF", bad: []byte{0}, eof: true},
		{name: "2 header bytes then EOF", bad: []byte{0, 0}, eof: true},
		{name: "3 header bytes then EOF", bad: []byte{0, 0, 0}, eof: true},
		{name: "truncated body", bad: cat(hdr(100), []byte("only a few bytes")), eof: true},
		{name: "body of a frame at the limit, truncated", bad: cat(hdr(int32(limit)), make([]byte, limit/2)), eof: true},
		{name: "EOF right after a batch header", bad: batch(2), eof: true},
		{name: "batch truncated after one frame", bad: cat(batch(2), fr("one")), eof: true},
		{name: "batch truncated inside a header", bad: cat(batch(2), fr("one"), []byte{0, 0}), eof: true},
		// Other protocols and desynchronised streams.
		{name: "HTTP request line", bad: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{name: "TLS ClientHello", bad: []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}},
		{name: "frame then garbage", bad: cat(fr("ok"), []byte{0x80, 0, 0, 0, 1, 2, 3})},
		{name: "zero bytes, then a malformed header", bad: cat(make([]byte, 400), hdr(math.MinInt32))},
		{name: "random garbage", bad: []byte{0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe}},
		// Legal input that looks odd: assert it is answered.
		{name: "header 0 is an empty frame, not an empty batch", bad: hdr(0), legal: true},
		{name: "4000 zero bytes are 1000 empty frames", bad: make([]byte, 4000), legal: true},
		{name: "batch of empty frames", bad: cat(batch(3), hdr(0), hdr(0), hdr(0)), legal: true},
	}
	for _, ex := range specExamples(t) {
		if ex.Malformed != nil {
			cases = append(cases, malformedCase{name: "spec: " + ex.Name, bad: ex.Malformed, eof: ex.Error == "ErrTruncated"})
		}
	}
	return cases
}

// TestMalformedInput sends each malformed input, after a valid request, on
// a connection of its own, over real TCP. The server answers exactly the
// whole messages before the fault (so the valid request, at least), then
// closes that connection alone, within a second: a bystander connection
// opened before the table is served after every case, and so is a fresh
// one. Each fault is counted as errors.protocol, and the server's heap
// does not grow across the table. Legal inputs that look odd (the header
// 0, a run of zero bytes) are answered and the connection stays open.
func TestMalformedInput(t *testing.T) {
	rec := stats.NewMemory()
	_, addr := startServer(t, echo, server.Config{Stats: rec, Limits: fuzzLimits})
	bystander := dial(t, addr)
	first := frame.AppendFrame(nil, []byte("first"))
	cases := malformedCases(t)
	if len(cases) < 16 {
		t.Fatalf("only %d cases", len(cases))
	}

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var latencies []time.Duration
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			faults := rec.Counter("errors.protocol")
			in := append(slices.Clip(first), tc.bad...)
			want := in[:answeredPrefix(in)]
			c := dial(t, addr)
			write(t, c, in)
			if tc.eof {
				if err := c.CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			if tc.legal {
				if len(want) != len(in) {
					t.Fatalf("test bug: the legal input is not all answerable")
				}
				if got := readN(t, c, len(want)); !bytes.Equal(got, want) {
					t.Fatalf("answers % x\nwant    % x", got, want)
				}
				oneRoundTrip(t, c, "the connection stays open")
				c.Close()
				if n := rec.Counter("errors.protocol"); n != faults {
					t.Fatalf("errors.protocol rose from %d to %d for legal input", faults, n)
				}
				return
			}
			start := time.Now()
			got, err := readUntilClosed(c, time.Second)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("after %v: %v (answers so far % x)", took, err, got)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("answers % x\nwant    % x", got, want)
			}
			t.Logf("closed %v after the input was sent", took)
			latencies = append(latencies, took)
			c.Close()
			waitFor(t, func() bool { return rec.Counter("errors.protocol") > faults }, "errors.protocol to rise")
			oneRoundTrip(t, bystander, "the bystander connection")
			roundTrip(t, addr, "a fresh connection")
		})
	}
	waitFor(t, func() bool { v, _ := rec.GaugeValue("conns.open"); return v == 1 }, "only the bystander to stay open")
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapInuse) - int64(before.HeapInuse)
	if grown > 4<<20 {
		t.Errorf("heap in use grew by %.1f MiB across the table", float64(grown)/(1<<20))
	}
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		t.Logf("%d malformed inputs: close latency min %v, median %v, max %v; heap in use %+d KiB across the table",
			n, latencies[0], latencies[n/2], latencies[n-1], grown>>10)
	}
}

// readUntilClosed reads everything until the server closes c, within
// limit: a clean end of stream, or a reset, is a close; the deadline is
// an error.
func readUntilClosed(c net.Conn, limit time.Duration) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(limit))
	got, err := io.ReadAll(c)
	switch {
	case err == nil, errors.Is(err, syscall.ECONNRESET):
		return got, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return got, fmt.Errorf("connection not closed within %v", limit)
	}
	return got, err
}

// oneRoundTrip sends payload on c and requires its echo.
func oneRoundTrip(t testing.TB, c net.Conn, payload string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(safety))
	want := frame.AppendFrame(nil, []byte(payload))
	write(t, c, want)
	if got := readN(t, c, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("%s: echo of %q: got % x", payload, payload, got)
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
		t.Fatal("no result within the safety deadline (ServeConn, Shutdown)")
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

// TestBackpressureIsNotReadTimeout: a frame the server stops reading
// because MaxInFlight requests are unanswered (backpressure) is not charged
// for that wait, however long the handlers ahead of it take: once it has
// its slot, the rest of it has a whole ReadTimeout. The frame is larger
// than the read buffers, so its header is read before the rest.
func TestBackpressureIsNotReadTimeout(t *testing.T) {
	const readTimeout = 100 * time.Millisecond
	slow := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "slow" {
			time.Sleep(3 * readTimeout)
		}
		return req, nil
	}
	_, addr := startServer(t, slow, server.Config{MaxInFlight: 2, ReadTimeout: readTimeout})
	c := dial(t, addr)
	big := bytes.Repeat([]byte{'b'}, 100<<10)
	var reqs []byte
	for _, p := range [][]byte{[]byte("slow"), []byte("slow"), big, []byte("after")} {
		reqs = frame.AppendFrame(reqs, p)
	}
	go func() { _, _ = c.Write(reqs) }() // sent at once, read as the server allows
	got := readFrames(t, frame.NewReader(c, frame.Limits{}), 4)
	if got[2] != string(big) || got[3] != "after" {
		t.Fatalf("answers of %d, %d bytes, want the big frame's and \"after\"", len(got[2]), len(got[3]))
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

// TestIdleCountsFromLastAnswer: a connection is idle from when its last
// answer goes out, not while a handler runs. Its handler run for nearly
// two IdleTimeouts on a goroutine the reading passed from, a request sent
// half an IdleTimeout after that answer is served; after it, the
// connection is closed as idle.
func TestIdleCountsFromLastAnswer(t *testing.T) {
	const idle = 200 * time.Millisecond
	slow := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		if string(req) == "slow" {
			time.Sleep(idle * 19 / 10)
		}
		return req, nil
	}
	c, res := serveOne(t, slow, server.Config{IdleTimeout: idle})
	r := frame.NewReader(c, frame.Limits{})
	write(t, c, frame.AppendFrame(nil, []byte("slow")))
	readFrames(t, r, 1)
	time.Sleep(idle / 2)
	write(t, c, frame.AppendFrame(nil, []byte("next")))
	if got := readFrames(t, r, 1); got[0] != "next" {
		t.Fatalf("got %q", got)
	}
	if err := result(t, res); !errors.Is(err, server.ErrIdleTimeout) {
		t.Fatalf("ServeConn = %v, want ErrIdleTimeout", err)
	}
}

// TestNoIdleTimeoutKeepsIdleConnections: without IdleTimeout, a
// connection waiting for its next request has no deadline. The
// ReadTimeout of a frame that came in pieces used to stay set, and closed
// the connection once it passed, though it was idle and servers without
// IdleTimeout keep idle connections (kvcache's memcached listener, whose
// clients pool them).
func TestNoIdleTimeoutKeepsIdleConnections(t *testing.T) {
	const timeout = 100 * time.Millisecond
	c, _ := serveOne(t, echo, server.Config{IdleTimeout: -1, ReadTimeout: timeout})
	r := frame.NewReader(c, frame.Limits{})
	first := frame.AppendFrame(nil, []byte("first"))
	write(t, c, first[:6])
	time.Sleep(timeout / 4)
	write(t, c, first[6:])
	readFrames(t, r, 1)
	time.Sleep(3 * timeout) // idle, past the frame's deadline
	write(t, c, frame.AppendFrame(nil, []byte("after")))
	if got := readFrames(t, r, 1); got[0] != "after" {
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
	want := []string{"A", "ERR no B", "ERR tcpez/server: handler panic: boom", "C"}
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
	refused, err := net.DialTimeout("tcp", addr, safety)
	expectRefused(t, refused, err)
	if rec.Counter("conns.refused") != 1 {
		t.Errorf("conns.refused = %d", rec.Counter("conns.refused"))
	}
	a.Close()
	waitFor(t, func() bool { v, _ := rec.GaugeValue("conns.open"); return v == 1 }, "conns.open to drop")
	roundTrip(t, addr, "room again")
}

// TestStalledLargeFrameHoldsLittleMemory: connections that announce a
// large frame and stall hold only what they sent, not what they announced
// (though the whole frame is charged to the memory budget). Large frames
// are read into memory mapped outside the Go heap, so it is the process's
// resident memory that is measured.
func TestStalledLargeFrameHoldsLittleMemory(t *testing.T) {
	if israce.Enabled || runtime.GOOS != "linux" {
		t.Skip("measures RSS, which the race detector inflates; Linux only")
	}
	_, addr := startServer(t, echo, server.Config{})
	runtime.GC()
	before := rss(t, "VmRSS")
	const conns = 20
	var cs []net.Conn
	for range conns {
		c := dial(t, addr)
		write(t, c, append(frame.AppendHeader(nil, frame.DefaultMaxFrameSize), make([]byte, 1024)...))
		cs = append(cs, c)
	}
	roundTrip(t, addr, "sync") // the stalled frames have been read by now, most likely
	time.Sleep(20 * time.Millisecond)
	runtime.GC()
	grown := rss(t, "VmRSS") - before
	if grown > 16<<20 {
		t.Fatalf("RSS grew %d MiB for %d stalled 16 MiB frames", grown>>20, conns)
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

// TestCloseAfterAnswersThenCloses: a handler error made with CloseAfter is
// answered as EncodeError says, after the answers before it, and then the
// connection closes, leaving the request behind it unanswered; a bare
// ErrCloseConnection closes with no answer of its own, even with
// EncodeError set; without EncodeError, CloseAfter closes as err would.
func TestCloseAfterAnswersThenCloses(t *testing.T) {
	h := func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		switch string(req) {
		case "bad":
			return nil, server.CloseAfter(errors.New("out of step"))
		case "quit":
			return nil, server.ErrCloseConnection
		}
		return req, nil
	}
	encode := func(_ context.Context, err error, _ *span.Span) ([]byte, bool) {
		return []byte("ERR " + err.Error()), true
	}
	for _, tc := range []struct {
		name, last string
		cfg        server.Config
		want       []string
	}{
		{"answered", "bad", server.Config{EncodeError: encode}, []string{"A", "ERR out of step"}},
		{"quit stays silent", "quit", server.Config{EncodeError: encode}, []string{"A"}},
		{"no EncodeError", "bad", server.Config{}, []string{"A"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, done := serveOne(t, h, tc.cfg)
			var req []byte
			for _, p := range []string{"A", tc.last, "never"} {
				req = frame.AppendFrame(req, []byte(p))
			}
			write(t, c, req)
			got := readFrames(t, frame.NewReader(c, frame.Limits{}), len(tc.want))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("answers %q, want %q", got, tc.want)
			}
			expectClosed(t, c)
			// A close the handler asked for, not a fault.
			if err := <-done; err != nil {
				t.Fatalf("ServeConn = %v, want nil", err)
			}
		})
	}
}
