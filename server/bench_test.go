package server_test

import (
	"fmt"
	"net"
	"testing"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
)

// benchConn opens a connection to a fresh echo server configured by cfg.
func benchConn(b *testing.B, cfg server.Config) net.Conn {
	_, addr := startServer(b, echo, cfg)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// benchEcho sends burst requests of size bytes per write (as one batch when
// batch is set) and reads the answers, over loopback TCP. Allocations are
// the server's: the client side here allocates nothing.
func benchEcho(b *testing.B, size, burst int, batch bool) {
	benchEchoConfig(b, server.Config{}, size, burst, batch)
}

// benchEchoConfig is benchEcho to a server configured by cfg.
func benchEchoConfig(b *testing.B, cfg server.Config, size, burst int, batch bool) {
	c := benchConn(b, cfg)
	e := newEchoer(c, size, burst, batch)
	b.ReportAllocs()
	b.SetBytes(int64(size * burst))
	for b.Loop() {
		if err := e.exchange(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/req")
}

// benchEchoParallel is benchEcho over a connection per goroutine, 8 per P,
// to one server: what its connections share shows.
func benchEchoParallel(b *testing.B, size, burst int, batch bool) {
	_, addr := startServer(b, echo, server.Config{})
	b.ReportAllocs()
	b.SetBytes(int64(size * burst))
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		e := newEchoer(c, size, burst, batch)
		for pb.Next() {
			if err := e.exchange(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/req")
}

// echoer sends bursts of requests on one connection and reads their
// answers.
type echoer struct {
	w            *frame.Writer
	r            *frame.Reader
	payload, buf []byte
	burst        int
	batch        bool
}

func newEchoer(c net.Conn, size, burst int, batch bool) *echoer {
	return &echoer{w: frame.NewWriter(c), r: frame.NewReader(c, frame.Limits{}),
		payload: make([]byte, size), buf: make([]byte, 0, size), burst: burst, batch: batch}
}

func (e *echoer) exchange() error {
	if e.batch {
		_ = e.w.WriteBatchHeader(e.burst)
	}
	for range e.burst {
		if err := e.w.WriteFrame(e.payload); err != nil {
			return err
		}
	}
	if err := e.w.Flush(); err != nil {
		return err
	}
	if e.batch {
		if h, err := e.r.ReadHeader(); err != nil || h.Count() != e.burst {
			return fmt.Errorf("batch header %v: %w", h, err)
		}
	}
	for range e.burst {
		var err error
		if e.buf, err = e.r.ReadFrame(e.buf); err != nil {
			return err
		}
	}
	return nil
}

func BenchmarkEcho16B(b *testing.B)              { benchEcho(b, 16, 1, false) }
func BenchmarkEcho4KiB(b *testing.B)             { benchEcho(b, 4<<10, 1, false) }
func BenchmarkEchoPipelined64x16B(b *testing.B)  { benchEcho(b, 16, 64, false) }
func BenchmarkEchoPipelined16x4KiB(b *testing.B) { benchEcho(b, 4<<10, 16, false) }
func BenchmarkEchoBatch64x16B(b *testing.B)      { benchEcho(b, 16, 64, true) }
func BenchmarkEchoBatch64x4KiB(b *testing.B)     { benchEcho(b, 4<<10, 64, true) }

// One request at a time: the answers of a pipelined burst still share a
// write.
func BenchmarkEcho16BMaxInFlight1(b *testing.B) {
	benchEchoConfig(b, server.Config{MaxInFlight: 1}, 16, 1, false)
}
func BenchmarkEchoPipelined64x16BMaxInFlight1(b *testing.B) {
	benchEchoConfig(b, server.Config{MaxInFlight: 1}, 16, 64, false)
}
func BenchmarkEchoBatch64x16BMaxInFlight1(b *testing.B) {
	benchEchoConfig(b, server.Config{MaxInFlight: 1}, 16, 64, true)
}

// Sixteen connections, each sending one request at a time, as memcached's
// clients do (the readers' yield, waitForBytes).
func BenchmarkEchoParallel16B(b *testing.B)  { benchEchoParallel(b, 16, 1, false) }
func BenchmarkEchoParallel4KiB(b *testing.B) { benchEchoParallel(b, 4<<10, 1, false) }

// Sixteen connections, each sending a batch of 64 at a time.
func BenchmarkEchoParallelBatch64x16B(b *testing.B)  { benchEchoParallel(b, 16, 64, true) }
func BenchmarkEchoParallelBatch64x4KiB(b *testing.B) { benchEchoParallel(b, 4<<10, 64, true) }
func BenchmarkEcho1MiB(b *testing.B)                 { benchEcho(b, 1<<20, 1, false) }
func BenchmarkEcho32KiB(b *testing.B)                { benchEcho(b, 32<<10, 1, false) }
