package server_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/testserver"
	"github.com/tcpez/tcpez/server"
	"github.com/tcpez/tcpez/span"
)

// appendEcho is an AppendHandler answering "<req>!" through RespondAppend,
// counting the calls that got a reused buffer. Respond must not be called.
type appendEcho struct {
	reused, responds atomic.Int64
}

func (h *appendEcho) Respond(context.Context, []byte, *span.Span) ([]byte, error) {
	h.responds.Add(1)
	return nil, nil
}

func (h *appendEcho) RespondAppend(_ context.Context, dst, req []byte, _ *span.Span) ([]byte, error) {
	if len(dst) != 0 {
		panic("RespondAppend got a dst that is not empty")
	}
	if cap(dst) > 0 {
		h.reused.Add(1)
	}
	time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond)
	return append(append(dst, req...), '!'), nil
}

// TestAppendHandlerAnswers pipelines requests of many sizes, some over
// the size a slot keeps, to an AppendHandler whose handlers run
// concurrently: every answer arrives intact and in order although the
// connection reuses answer buffers, and RespondAppend is what answered.
func TestAppendHandlerAnswers(t *testing.T) {
	h := new(appendEcho)
	_, addr := testserver.Start(t, h, server.Config{MaxInFlight: 32})
	c := dial(t, addr)
	var req, want []byte
	for i := range 400 {
		p := bytes.Repeat([]byte(strconv.Itoa(i%10)), 1+(i*37)%6000)
		req = frame.AppendFrame(req, p)
		want = frame.AppendFrame(want, append(p, '!'))
	}
	for range 3 { // again, with the buffers the first round left
		write(t, c, req)
		if got := readN(t, c, len(want)); !bytes.Equal(got, want) {
			t.Fatal("answers wrong or out of order")
		}
	}
	if n := h.responds.Load(); n != 0 {
		t.Fatalf("Respond called %d times, want RespondAppend only", n)
	}
	if h.reused.Load() == 0 {
		t.Fatal("no RespondAppend got a kept buffer")
	}
}
