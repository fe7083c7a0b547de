package server

import (
	"bytes"
	"io"
	"testing"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/stats"
)

// TestBytesCounted: bytes.in and bytes.out count what connections read
// and write, batches and large frames included.
func TestBytesCounted(t *testing.T) {
	rec := stats.NewMemory()
	_, addr := startInternal(t, newHoldLarge().respond, Config{Stats: rec})
	c := dialInternal(t, addr)
	req := frame.AppendBatch(frame.AppendFrame(nil, []byte("hello")), []byte("a"), bytes.Repeat([]byte("b"), 100<<10))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(req))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, req) {
		t.Fatalf("echo: %v", err)
	}
	c.Close()
	waitUntil(t, "the counts", func() bool {
		return rec.Counter(StatBytesIn) == int64(len(req)) && rec.Counter(StatBytesOut) == int64(len(req))
	})

}
