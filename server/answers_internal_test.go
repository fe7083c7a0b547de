package server

import (
	"context"
	"testing"

	"github.com/tcpez/tcpez/span"
)

// lendEcho is an AppendHandler echoing its request into dst, and handing
// each dst it got to the test.
type lendEcho struct{ dsts chan []byte }

func (h *lendEcho) Respond(context.Context, []byte, *span.Span) ([]byte, error) {
	panic("Respond called on an AppendHandler")
}

func (h *lendEcho) RespondAppend(_ context.Context, dst, req []byte, _ *span.Span) ([]byte, error) {
	h.dsts <- dst
	return append(dst, req...), nil
}

// TestLargeAnswerIsLent: a large request's AppendHandler appends its
// answer to a buffer of the request's size from the server's pool, the
// same one again for the next request, and both buffers go back to the
// pool, parked in the budget, once the answers are written.
func TestLargeAnswerIsLent(t *testing.T) {
	h := &lendEcho{dsts: make(chan []byte, 2)}
	srv, addr := serveInternal(t, h, Config{MemoryBudget: 64 << 20})
	c := dialInternal(t, addr)
	var dsts [2][]byte
	for i, tag := range []byte("xy") {
		if _, err := c.Write(largeFrame(tag, 1<<20)); err != nil {
			t.Fatal(err)
		}
		readEcho(t, c, tag, 1<<20)
		dsts[i] = <-h.dsts
		if cap(dsts[i]) < 1<<20 {
			t.Fatalf("request %d: dst of capacity %d for a 1 MiB request", i, cap(dsts[i]))
		}
	}
	if &dsts[0][:1][0] != &dsts[1][:1][0] {
		t.Error("the second answer did not reuse the first one's buffer")
	}
	waitUntil(t, "the request and answer buffers to be parked", func() bool { return srv.budget.Used() == 2<<20 })
}

// TestLargeAnswerWithoutBudget: when the budget has no room for a lent
// answer buffer, the handler gets the slot's small one and its answer,
// allocated, is still written whole.
func TestLargeAnswerWithoutBudget(t *testing.T) {
	h := &lendEcho{dsts: make(chan []byte, 1)}
	_, addr := serveInternal(t, h, Config{MemoryBudget: 1<<20 + 1<<19})
	c := dialInternal(t, addr)
	if _, err := c.Write(largeFrame('z', 1<<20)); err != nil {
		t.Fatal(err)
	}
	readEcho(t, c, 'z', 1<<20)
	if dst := <-h.dsts; cap(dst) > maxRetainedAnswer {
		t.Fatalf("dst of capacity %d beyond the budget", cap(dst))
	}
}

// TestUnheldAnswerParts: of a TailHandler's answer, the budget is charged
// for the parts the connection holds that no buffer of the slot accounts
// for already: not small ones, nor those in the request buffer (an echoed
// field, wherever it starts) or the lent answer buffer.
func TestUnheldAnswerParts(t *testing.T) {
	var s slot
	s.req = make([]byte, 100<<10)
	s.lent = make([]byte, 0, 100<<10)
	elsewhere := make([]byte, 50<<10)
	for _, c := range []struct {
		name string
		p    []byte
		want int64
	}{
		{"small", elsewhere[:answerFree], 0},
		{"request buffer, from its start", s.req[:20<<10], 0},
		{"request buffer, inside", s.req[30<<10 : 90<<10], 0},
		{"lent buffer", s.lent[:40<<10], 0},
		{"elsewhere", elsewhere, 50 << 10},
		{"nil", nil, 0},
	} {
		if got := s.unheld(c.p); got != c.want {
			t.Errorf("%s: %d bytes unheld, want %d", c.name, got, c.want)
		}
	}
}
