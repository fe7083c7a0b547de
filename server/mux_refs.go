package server

import (
	"net"

	"github.com/tcpez/tcpez/frame"
)

// refAnswerMin is the smallest answer a mux connection writes by
// reference rather than copying it into its write buffer. Smaller answers
// are coalesced, many to a write; a large one copied would cost a buffer
// of its size per answer (wbuf is not kept above maxKeptWriteBuffer) and a
// copy, which at 1 MiB were 98% of the mux byte layer's allocated bytes.
const refAnswerMin = 16 << 10

// refAnswer is a large answer queued by reference: its frame's header
// ends at offset at of the write buffer it was queued in, and body goes on
// the wire right after it. mc is the call that answered, put back once
// the answer is written: its request buffer, or the answer buffer it was
// lent, may be what body points into.
type refAnswer struct {
	at   int
	body []byte
	mc   *muxCall
}

// queueResultLocked queues the answer mc's handler returned, its body
// by reference when large. A TailHandler's answer is its head copied and
// its tail by reference when large; any other's is all tail.
func (m *muxConn) queueResultLocked(mc *muxCall) {
	head, tail := mc.resp, mc.tail
	if tail == nil {
		head, tail = nil, mc.resp
	}
	m.wbuf = frame.AppendMuxHeader(m.wbuf, frame.KindAnswer, mc.id, len(head)+len(tail))
	m.appendBodyLocked(head)
	if len(tail) < refAnswerMin {
		m.appendBodyLocked(tail)
		return
	}
	m.queueRefLocked(mc, tail)
}

// queueRefLocked queues p, the end of mc's answer, by reference. Its
// memory is charged to the budget as v1 charges the answers it holds
// (chargeAnswer), unless it is in the call's request buffer or lent answer
// buffer, charged already.
func (m *muxConn) queueRefLocked(mc *muxCall, p []byte) {
	m.chargeAnswer(&mc.slot, nil, p)
	m.refs = append(m.refs, refAnswer{at: len(m.wbuf), body: p, mc: mc})
	mc.unsent = true
}

// writeQueued writes buf, with the answers refs point to in their places,
// in one gathering write (writev).
func (m *muxConn) writeQueued(buf []byte, refs []refAnswer) error {
	if len(refs) == 0 {
		_, err := m.out.Write(buf)
		return err
	}
	vec := m.vec[:0]
	from := 0
	for _, r := range refs {
		vec = append(vec, buf[from:r.at], r.body)
		from = r.at
	}
	if from < len(buf) {
		vec = append(vec, buf[from:])
	}
	bufs := net.Buffers(vec)
	_, err := m.out.WriteBuffers(&bufs)
	clear(vec) // keep no reference to the answers
	m.vec = vec[:0]
	return err
}

// putWrittenLocked puts back the calls whose answers were written (or
// dropped) by reference.
func (m *muxConn) putWrittenLocked(refs []refAnswer) {
	for i := range refs {
		refs[i].mc.unsent = false
		m.putLocked(refs[i].mc)
	}
	clear(refs)
}
