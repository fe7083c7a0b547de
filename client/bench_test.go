package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tcpez/tcpez/client"
	"github.com/tcpez/tcpez/internal/israce"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// tcpezServer starts the tcpez byte server as an echo server on loopback.
func tcpezServer(tb testing.TB) string {
	tb.Helper()
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	srv := server.New(server.HandlerFunc(func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		return req, nil
	}), server.Config{Logger: logger})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		srv.Close()
		if err := <-served; err != nil && !errors.Is(err, server.ErrServerClosed) {
			tb.Error("Serve:", err)
		}
	})
	return ln.Addr().String()
}

// TestAgainstTcpezServer runs the mixed-call workload against the real
// byte server.
func TestAgainstTcpezServer(t *testing.T) {
	addr := tcpezServer(t)
	c := newClient(t, []string{addr}, client.Config{ConnsPerAddr: 2})
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	for g := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := echoCalls(ctx, c, g, 10); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// echoCalls is mixedCalls for an echo server.
func echoCalls(ctx context.Context, c *client.Client, g, rounds int) error {
	for r := range rounds {
		req := fmt.Appendf(nil, "g%d-r%d", g, r)
		ans, err := c.Call(ctx, req)
		if err != nil || string(ans) != string(req) {
			return fmt.Errorf("%s: %q, %v", req, ans, err)
		}
		f := c.Go(ctx, req)
		if ans, err := f.Wait(); err != nil || string(ans) != string(req) {
			return fmt.Errorf("%s: future: %q, %v", req, ans, err)
		}
		p := c.Pipeline()
		p.Enqueue(req)
		p.Enqueue(nil)
		answers, err := p.Flush(ctx)
		if err != nil || len(answers) != 2 || string(answers[0]) != string(req) || len(answers[1]) != 0 {
			return fmt.Errorf("%s: pipeline: %q, %v", req, answers, err)
		}
	}
	return nil
}

const benchPayload = 128

// runConcurrent splits b.N calls of call among g goroutines.
func runConcurrent(b *testing.B, g int, call func(buf []byte) []byte) {
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range g {
		n := b.N / g
		if i < b.N%g {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, benchPayload)
			for range n {
				buf = call(buf[:0])
			}
		}()
	}
	wg.Wait()
}

// BenchmarkCall: "pipelined" shares one connection among all the
// goroutines; "one-at-a-time" gives each goroutine its own connection
// with MaxInFlight 1, as a client without pipelining would need.
func BenchmarkCall(b *testing.B) {
	for _, mode := range []string{"pipelined", "one-at-a-time"} {
		for _, g := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("%s/conc=%d", mode, g), func(b *testing.B) {
				cfg := client.Config{Protocol: client.ProtocolV1}
				if mode == "one-at-a-time" {
					cfg.ConnsPerAddr, cfg.MaxInFlight = g, 1
				}
				c := newClient(b, []string{tcpezServer(b)}, cfg)
				req := make([]byte, benchPayload)
				ctx := context.Background()
				b.ReportAllocs()
				b.SetBytes(benchPayload)
				runConcurrent(b, g, func(buf []byte) []byte {
					ans, err := c.Call(ctx, req)
					if err != nil || len(ans) != benchPayload {
						b.Error(len(ans), err)
					}
					return buf
				})
			})
		}
	}
}

// BenchmarkCallAppend is the allocation-free path.
func BenchmarkCallAppend(b *testing.B) {
	for _, g := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("conc=%d", g), func(b *testing.B) { benchAppend(b, benchPayload, g) })
	}
}

// benchAppend runs conc goroutines making CallAppend calls of size
// bytes over one connection to a tcpez echo server.
func benchAppend(b *testing.B, size, conc int) {
	c := newClient(b, []string{tcpezServer(b)}, client.Config{Protocol: client.ProtocolV1})
	req := make([]byte, size)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(size))
	runConcurrent(b, conc, func(buf []byte) []byte {
		ans, err := c.CallAppend(ctx, buf, req)
		if err != nil || len(ans) != size {
			b.Error(len(ans), err)
		}
		return ans
	})
}

// BenchmarkPipeline64 sends batches of 64 requests; one op is one batch.
// "flush" takes the answers from Flush, "append" from FlushAppend into the
// buffers of the last batch.
func BenchmarkPipeline64(b *testing.B) {
	c := newClient(b, []string{tcpezServer(b)}, client.Config{Protocol: client.ProtocolV1})
	req := make([]byte, benchPayload)
	ctx := context.Background()
	for _, mode := range []string{"flush", "append"} {
		b.Run(mode, func(b *testing.B) {
			p := c.Pipeline()
			var dst []byte
			var answers [][]byte
			b.ReportAllocs()
			b.SetBytes(64 * benchPayload)
			for b.Loop() {
				for range 64 {
					p.Enqueue(req)
				}
				var err error
				if mode == "flush" {
					answers, err = p.Flush(ctx)
				} else {
					dst, answers, err = p.FlushAppend(ctx, dst[:0], answers[:0])
				}
				if err != nil || len(answers) != 64 {
					b.Fatal(len(answers), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/req")
		})
	}
}

// BenchmarkPipeline64x4KiB is issue 15's case: one goroutine (or 16, on
// the one connection) sends batches of 64 requests of 4 KiB, a 256 KiB
// batch each way, and takes the answers with FlushAppend into the buffers
// of its last batch; one op is one batch. In v1 a batch is one protocol
// batch; in the multiplexed mode, the default, a request frame per member.
// bench/'s tcpez-pipeline64 against raw-batch64 measures the same against
// a hand-written loop.
func BenchmarkPipeline64x4KiB(b *testing.B) {
	for _, proto := range []client.Protocol{client.ProtocolV1, client.ProtocolMux} {
		b.Run(proto.String(), func(b *testing.B) { benchPipeline(b, proto, 0) })
		// 16 callers on the one connection (RunParallel: 8 per P).
		b.Run(proto.String()+"-16", func(b *testing.B) { benchPipeline(b, proto, 8) })
	}
}

func benchPipeline(b *testing.B, proto client.Protocol, parallelism int) {
	c := newClient(b, []string{tcpezServer(b)}, client.Config{Protocol: proto})
	req := make([]byte, 4<<10)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(64 * int64(len(req)))
	reads := readSyscalls()
	caller := func(next func() bool) {
		p := c.Pipeline()
		var dst []byte
		var answers [][]byte
		for next() {
			for range 64 {
				p.Enqueue(req)
			}
			var err error
			dst, answers, err = p.FlushAppend(ctx, dst[:0], answers[:0])
			if err != nil || len(answers) != 64 {
				b.Error(len(answers), err)
				return
			}
		}
	}
	if parallelism == 0 {
		caller(b.Loop) // one caller: RunParallel runs one per P at least
	} else {
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) { caller(pb.Next) })
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/req")
	if reads >= 0 {
		b.ReportMetric(float64(readSyscalls()-reads)/float64(b.N), "reads/op")
	}
}

// readSyscalls is the process's read syscalls so far (syscr in
// /proc/self/io: client and server together here), -1 where there is no
// such file.
func readSyscalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// TestCallAppendAllocs: once warm, CallAppend into a buffer with
// room allocates nothing, client and (test) server together.
func TestCallAppendAllocs(t *testing.T) {
	if israce.Enabled {
		t.Skip("the race detector allocates")
	}
	srv := newServer(t, nil)
	c := newClient(t, []string{srv.addr}, client.Config{})
	req := make([]byte, benchPayload)
	buf := make([]byte, 0, benchPayload)
	ctx := context.Background()
	call := func() {
		ans, err := c.CallAppend(ctx, buf[:0], req)
		if err != nil || len(ans) != benchPayload {
			t.Fatal(len(ans), err)
		}
	}
	for range 100 {
		call()
	}
	if n := testing.AllocsPerRun(1000, call); n != 0 {
		t.Fatalf("%v allocations per call, want 0", n)
	}
}

// BenchmarkCallAppend1MiB is the bandwidth case: 1 MiB requests from
// 4 goroutines over one connection.
func BenchmarkCallAppend1MiB(b *testing.B) { benchAppend(b, 1<<20, 4) }

// BenchmarkCallAppend4KiB: 4 KiB requests, which do not fit the
// server's default 4 KiB buffers, from many goroutines over one connection.
func BenchmarkCallAppend4KiB(b *testing.B) {
	for _, g := range []int{16, 256} {
		b.Run(fmt.Sprintf("conc=%d", g), func(b *testing.B) { benchAppend(b, 4<<10, g) })
	}
}

// BenchmarkProtocols compares v1 and the multiplexed mode over one
// connection to the tcpez byte server, 16-byte CallAppend calls: the
// figures behind issue 12's "mux ≥ 0.9× v1" (conc=256) and "p50 ≤ 1.1× v1"
// (conc=1).
func BenchmarkProtocols(b *testing.B) {
	for _, p := range []client.Protocol{client.ProtocolV1, client.ProtocolMux} {
		for _, g := range []int{1, 256} {
			b.Run(fmt.Sprintf("%v/conc=%d", p, g), func(b *testing.B) {
				c := newClient(b, []string{tcpezServer(b)}, client.Config{Protocol: p})
				req := make([]byte, 16)
				ctx := context.Background()
				b.ReportAllocs()
				runConcurrent(b, g, func(buf []byte) []byte {
					ans, err := c.CallAppend(ctx, buf, req)
					if err != nil || len(ans) != 16 {
						b.Error(len(ans), err)
					}
					return ans
				})
			})
		}
	}
}

// BenchmarkContexts is BenchmarkProtocols with the contexts callers
// really pass: "shared" is one cancellable context that every caller
// uses (a worker pool's, a handler's fanning out), which the client
// watches for them rather than each selecting on its channel; "per-call"
// is a context with its own timeout per call, which it does not;
// "shared-go" makes its calls with Go, whose futures the watcher holds.
func BenchmarkContexts(b *testing.B) {
	for _, p := range []client.Protocol{client.ProtocolV1, client.ProtocolMux} {
		for _, kind := range []string{"shared", "per-call", "shared-go"} {
			for _, g := range []int{16, 256} {
				b.Run(fmt.Sprintf("%v/%s/conc=%d", p, kind, g), func(b *testing.B) {
					c := newClient(b, []string{tcpezServer(b)}, client.Config{Protocol: p})
					req := make([]byte, 16)
					shared, cancel := context.WithCancel(context.Background())
					defer cancel()
					b.ReportAllocs()
					runConcurrent(b, g, func(buf []byte) []byte {
						ctx, done := shared, context.CancelFunc(nil)
						if kind == "per-call" {
							ctx, done = context.WithTimeout(shared, time.Minute)
						}
						var ans []byte
						var err error
						if kind == "shared-go" {
							ans, err = c.Go(ctx, req).Wait()
						} else {
							ans, err = c.CallAppend(ctx, buf, req)
						}
						if done != nil {
							done()
						}
						if err != nil || len(ans) != 16 {
							b.Error(len(ans), err)
						}
						return ans
					})
				})
			}
		}
	}
}
