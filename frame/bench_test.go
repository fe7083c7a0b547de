package frame_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/israce"
)

// loopback is an in-memory stream: what the Writer flushes, the Reader reads.
type loopback struct{ bytes.Buffer }

// roundTrip writes n frames of payload, flushes once, and reads them back
// into buf, as a server's steady state does.
func roundTrip(w *frame.Writer, r *frame.Reader, payload, buf []byte, n int) ([]byte, error) {
	for range n {
		if err := w.WriteFrame(payload); err != nil {
			return buf, err
		}
	}
	if err := w.Flush(); err != nil {
		return buf, err
	}
	for range n {
		h, err := r.ReadHeader()
		if err != nil {
			return buf, err
		}
		if buf, err = r.ReadPayload(buf, h.Len()); err != nil {
			return buf, err
		}
	}
	return buf, nil
}

func benchRoundTrip(b *testing.B, size, burst int) {
	var stream loopback
	w, r := frame.NewWriter(&stream), frame.NewReader(&stream, frame.Limits{})
	payload, buf := make([]byte, size), make([]byte, 0, size)
	b.ReportAllocs()
	b.SetBytes(int64(size * burst))
	for b.Loop() {
		var err error
		if buf, err = roundTrip(w, r, payload, buf, burst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRoundTrip16B(b *testing.B)        { benchRoundTrip(b, 16, 1) }
func BenchmarkRoundTrip16BBurst64(b *testing.B) { benchRoundTrip(b, 16, 64) }
func BenchmarkRoundTrip4KiB(b *testing.B)       { benchRoundTrip(b, 4<<10, 1) }
func BenchmarkRoundTrip1MiB(b *testing.B)       { benchRoundTrip(b, 1<<20, 1) }

func BenchmarkAppendParse16B(b *testing.B) {
	payload := make([]byte, 16)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = frame.AppendFrame(buf[:0], payload)
		if _, _, ok, err := frame.ParseFrame(buf, frame.Limits{}); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// TestSteadyStateRoundTripAllocatesNothing guards the zero-allocation frame
// round trip; the race detector allocates on its own, so it is skipped there.
func TestSteadyStateRoundTripAllocatesNothing(t *testing.T) {
	if israce.Enabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	var stream loopback
	w, r := frame.NewWriter(&stream), frame.NewReader(&stream, frame.Limits{})
	payload, buf := make([]byte, 100), make([]byte, 0, 100)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = roundTrip(w, r, payload, buf, 32); err != nil && err != io.EOF {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("steady-state round trip of 32 frames: %v allocations, want 0", allocs)
	}
}
