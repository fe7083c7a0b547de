package server_test

import (
	"net"
	"testing"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
)

// benchConn opens a connection to a fresh echo server.
func benchConn(b *testing.B) net.Conn {
	_, addr := startServer(b, echo, server.Config{})
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
	c := benchConn(b)
	w, r := frame.NewWriter(c), frame.NewReader(c, frame.Limits{})
	payload, buf := make([]byte, size), make([]byte, 0, size)
	b.ReportAllocs()
	b.SetBytes(int64(size * burst))
	for b.Loop() {
		if batch {
			_ = w.WriteBatchHeader(burst)
		}
		for range burst {
			if err := w.WriteFrame(payload); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		if batch {
			if h, err := r.ReadHeader(); err != nil || h.Count() != burst {
				b.Fatal(h, err)
			}
		}
		for range burst {
			var err error
			if buf, err = r.ReadFrame(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/req")
}

func BenchmarkEcho16B(b *testing.B)              { benchEcho(b, 16, 1, false) }
func BenchmarkEcho4KiB(b *testing.B)             { benchEcho(b, 4<<10, 1, false) }
func BenchmarkEchoPipelined64x16B(b *testing.B)  { benchEcho(b, 16, 64, false) }
func BenchmarkEchoPipelined16x4KiB(b *testing.B) { benchEcho(b, 4<<10, 16, false) }
func BenchmarkEchoBatch64x16B(b *testing.B)      { benchEcho(b, 16, 64, true) }
func BenchmarkEcho1MiB(b *testing.B)             { benchEcho(b, 1<<20, 1, false) }
func BenchmarkEcho32KiB(b *testing.B)            { benchEcho(b, 32<<10, 1, false) }
