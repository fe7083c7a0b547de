package server

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/span"
)

// TestMuxQueuedAnswersAreCharged: an answer waiting to be written on a mux
// connection counts against the memory budget until it is written, as v1's
// answers do, and is given back once its client reads it.
func TestMuxQueuedAnswersAreCharged(t *testing.T) {
	const size = 8 << 20 // more than the loopback socket buffers hold
	answer := bytes.Repeat([]byte{'a'}, size)
	srv, addr := startInternal(t, func(context.Context, []byte, *span.Span) ([]byte, error) {
		return answer, nil
	}, Config{MemoryBudget: 64 << 20})

	c := dialInternal(t, addr)
	if _, err := c.Write(frame.AppendPreface(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, frame.HeaderSize+frame.AckSize)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(frame.AppendMux(nil, frame.KindRequest, 1, []byte("go"))); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the answer to be charged", func() bool { return srv.budget.Used() >= size })

	r := frame.NewReader(c, frame.Limits{MaxFrameSize: 2 * size})
	p, err := r.ReadFrame(nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := frame.ParseMuxPayload(p)
	if err != nil || f.Kind != frame.KindAnswer || f.ID != 1 || !bytes.Equal(f.Body, answer) {
		t.Fatalf("answer: %v %d, %d bytes, %v", f.Kind, f.ID, len(f.Body), err)
	}
	waitUntil(t, "the answer's charge to be released", func() bool { return srv.budget.Used() < size })
}
