package frame_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/tcpez/tcpez/frame"
)

// TestReaderRefill: bytes read around the Reader and handed back with
// Refill are read after those buffered, in order, then the stream goes
// on; an error handed back with them is returned once they are consumed.
func TestReaderRefill(t *testing.T) {
	stream := frame.AppendFrame(frame.AppendFrame(nil, []byte("first")), []byte("second"))
	// The Reader buffers the first frame and 3 bytes of the second; the
	// rest is read around it, as a vectored read would.
	r := frame.NewReaderSize(bytes.NewReader(stream[:9+3]), 32, frame.Limits{})
	if p, err := r.ReadFrame(nil); err != nil || string(p) != "first" {
		t.Fatalf("first frame: %q, %v", p, err)
	}
	if got := r.Room(); got != 32-3 {
		t.Fatalf("Room with 3 bytes buffered: %d, want %d", got, 32-3)
	}
	r.Refill(stream[9+3:], nil)
	r.Refill(frame.AppendFrame(nil, []byte("third")), io.ErrUnexpectedEOF)
	if r.Err() == nil {
		t.Fatal("Err: nil after a Refill with an error")
	}
	for _, want := range []string{"second", "third"} {
		if p, err := r.ReadFrame(nil); err != nil || string(p) != want {
			t.Fatalf("frame %q: %q, %v", want, p, err)
		}
	}
	if _, err := r.ReadFrame(nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("after the refilled frames: %v, want the error handed back", err)
	}
	if r.Err() != nil {
		t.Fatalf("Err after it was returned: %v", r.Err())
	}
}

// TestReaderRefillCompacts: a Refill that does not fit after the buffered
// bytes' place moves them to the buffer's start first; one over Room
// panics rather than dropping bytes.
func TestReaderRefillCompacts(t *testing.T) {
	r := frame.NewReaderSize(bytes.NewReader([]byte("0123456789abcdef")), 16, frame.Limits{})
	if p, err := r.Peek(16); err != nil || string(p) != "0123456789abcdef" {
		t.Fatalf("Peek: %q, %v", p, err)
	}
	_ = r.Discard(12)
	r.Refill([]byte("ghijklmnopqr"), nil) // fits only once "cdef" moves
	if p, err := r.Peek(16); err != nil || string(p) != "cdefghijklmnopqr" {
		t.Fatalf("after Refill: %q, %v", p, err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Refill over Room did not panic")
		}
	}()
	r.Refill([]byte("x"), nil)
}
