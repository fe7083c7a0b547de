package client_test

import (
	"context"
	"io"
	"runtime"
	"testing"

	"github.com/tcpez/tcpez/server"
)

// BenchmarkStreamEcho echoes b.N MiB through one stream (a Send of 1 MiB,
// Reads of 256 KiB) and reports the heap's growth at the end, in MiB, for
// both ends; bench/ -stream 1024 is the 1 GiB case beside the raw loop.
func BenchmarkStreamEcho(b *testing.B) {
	_, c := startStreams(b, server.Config{}, map[string]func(context.Context, *server.Stream) error{
		"copy": func(_ context.Context, s *server.Stream) error {
			_, err := io.CopyBuffer(struct{ io.Writer }{s}, struct{ io.Reader }{s}, make([]byte, 256<<10))
			return err
		},
	})
	ctx := context.Background()
	msg := make([]byte, 1<<20)
	buf := make([]byte, 256<<10)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	s, err := c.Stream(ctx, []byte("copy"))
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for range b.N {
			if err := s.Send(msg); err != nil {
				b.Error(err)
				return
			}
		}
		_ = s.CloseSend()
	}()
	var got int64
	for {
		n, err := s.Read(buf)
		got += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got != int64(b.N)*int64(len(msg)) {
		b.Fatalf("echoed %d bytes", got)
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "heap-MiB")
}
