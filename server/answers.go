package server

import (
	"bytes"
	"github.com/tcpez/tcpez/internal/budget"
)

// An AppendHandler appends its answer to dst, normally the slot's own
// small buffer (at most maxRetainedAnswer). A large answer would then be
// a new buffer per request, allocated and zeroed, and dropped once
// written. When the request itself was large, the answer is likely to be
// too (an echo, a transformed image), so the handler is lent a buffer of
// the request's size class from the server's pool instead, with room
// taken from the memory budget as for a large request: only if the budget
// has it at once, since the request was already admitted and an answer
// that does not fit still works, by allocating. The buffer goes back to
// the pool when the slot is released, whatever became of the answer.

// answerDst returns the dst for s's RespondAppend.
func (c *conn) answerDst(s *slot) []byte {
	if len(s.req) <= maxRetainedAnswer {
		return s.ans[:0]
	}
	size := largeSize(len(s.req))
	if !c.acct.TryAcquire(int64(size)) {
		return s.ans[:0]
	}
	s.lent = c.srv.large.get(size)
	return s.lent
}

// inLent reports whether resp is in s's lent answer buffer, whose bytes
// the budget holds already.
func (s *slot) inLent(resp []byte) bool { return within(resp, s.lent) }

// leavePlace points req back at s's own buffer once the handler of a
// request read in place returned: the read buffer is not s's, and
// releasing s must not take it for a buffer it lent. place stays set
// until the answer is settled (keepAnswer).
func (s *slot) leavePlace() {
	if s.place != nil {
		s.req = s.own
	}
}

// keepAnswer copies the parts of s's answer that lie in its request read
// in place (slot.place), which the reader is about to read on into.
func (s *slot) keepAnswer() {
	if within(s.resp, s.place) {
		s.resp = bytes.Clone(s.resp)
	}
	if within(s.tail, s.place) {
		s.tail = bytes.Clone(s.tail)
	}
}

// within reports whether p, not empty, starts in buf's memory.
func within(p, buf []byte) bool {
	if len(p) == 0 || cap(buf) == 0 {
		return false
	}
	at, from := firstByte(p), firstByte(buf)
	return at >= from && at < from+uintptr(cap(buf))
}

// returnLent gives s's lent answer buffer back to the pool.
func (s *slot) returnLent(large *largeBuffers, acct *budget.Account) {
	if s.lent != nil {
		large.put(acct, s.lent)
		s.lent = nil
	}
}
