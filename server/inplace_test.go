package server_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// The server runs a request whose bytes are at hand from its read buffer,
// without copying it. These tests hold such a request's handler while the
// reading passes on and later requests are read into the same memory, then
// check that every answer, an echo of its request, is intact.

// inPlaceRequests are the requests of the tests below: held first, then
// two more, each read after the one before it ran. Each fills the memory
// the one before it was read into.
var inPlaceRequests = [][]byte{
	bytes.Repeat([]byte("a"), 3000),
	bytes.Repeat([]byte("b"), 3000),
	bytes.Repeat([]byte("c"), 3000),
}

// inPlaceHandler echoes its request, holding the first until held opens,
// and tells ran the first byte of every request it starts.
func inPlaceHandler(held *gate, ran chan<- byte) server.HandlerFunc {
	return func(_ context.Context, req []byte, _ *span.Span) ([]byte, error) {
		ran <- req[0]
		if req[0] == 'a' && !held.wait() {
			return []byte("timeout"), nil
		}
		return req, nil
	}
}

func awaitRan(t *testing.T, ran <-chan byte, want byte) {
	t.Helper()
	select {
	case got := <-ran:
		if got != want {
			t.Fatalf("handler started for %q, want %q", got, want)
		}
	case <-time.After(safety):
		t.Fatalf("no handler started for %q", want)
	}
}

// TestInPlaceRequestOutlivesHandOff: over v1, the first request's
// handler is held, so the reading passes to another goroutine, which runs
// the second inline. Its answer waits for the first's, in order, while
// the third is read. The held request and the waiting answer both lay
// where the later requests were read.
func TestInPlaceRequestOutlivesHandOff(t *testing.T) {
	held := newGate(t)
	ran := make(chan byte, len(inPlaceRequests))
	_, addr := startServer(t, inPlaceHandler(held, ran), server.Config{})
	c := dial(t, addr)
	for _, req := range inPlaceRequests {
		write(t, c, frame.AppendFrame(nil, req))
		awaitRan(t, ran, req[0])
	}
	held.open()
	r := frame.NewReader(c, frame.Limits{})
	for i, got := range readFrames(t, r, len(inPlaceRequests)) {
		if want := inPlaceRequests[i]; got != string(want) {
			t.Fatalf("answer %d is %.20q…, want %.20q…", i, got, want)
		}
	}
}

// TestMuxInPlaceRequestOutlivesHandOff is the same in the multiplexed
// mode, whose answers need not wait: the held request's bytes lay where
// the later requests were read.
func TestMuxInPlaceRequestOutlivesHandOff(t *testing.T) {
	held := newGate(t)
	ran := make(chan byte, len(inPlaceRequests))
	_, addr := startServer(t, inPlaceHandler(held, ran), server.Config{})
	c, r, _ := dialMux(t, addr)
	for i, req := range inPlaceRequests {
		write(t, c, frame.AppendMux(nil, frame.KindRequest, uint32(i+1), req))
		awaitRan(t, ran, req[0])
	}
	held.open()
	for range inPlaceRequests {
		f := readMux(t, r)
		i := int(f.ID) - 1
		if f.Kind != frame.KindAnswer || i < 0 || i >= len(inPlaceRequests) {
			t.Fatalf("unexpected frame: kind %v, id %d", f.Kind, f.ID)
		}
		if want := inPlaceRequests[i]; !bytes.Equal(f.Body, want) {
			t.Fatalf("answer %d is %.20q…, want %.20q…", f.ID, f.Body, want)
		}
	}
}
