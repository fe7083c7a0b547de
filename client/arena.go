package client

import (
	"context"

	"github.com/tcpez/tcpez/frame"
)

// answerAt is where one answer of a multiplexed batch lies in its
// request's arena.
type answerAt struct{ off, n int }

// startArena readies rq, a batch about to go out in the multiplexed mode,
// for its answers, which arrive one by one and in any order.
func (rq *request) startArena() {
	rq.arena, rq.left = rq.arena[:0], rq.n
	rq.got, rq.inDst = rq.dst, 0
	if cap(rq.at) < rq.n {
		rq.at = make([]answerAt, rq.n)
	}
	rq.at = rq.at[:rq.n]
}

// batchAnswer reads the answer of n bytes to the member at pos of rq's
// batch: into the caller's buffer when it is the next in request order,
// as a server answering in turn sends them (see request.got), else into
// rq's arena.
func (cn *conn) batchAnswer(rq *request, pos, n int) error {
	if rq.mode == modeBatchAppend && pos == rq.inDst && inPlace(n) {
		p, err := cn.in.r.Peek(n)
		if err != nil {
			return frame.Truncated(err)
		}
		if got, ok := rq.fill(rq.got, p, rq.left); ok {
			rq.got = got
			rq.inDst++
			rq.at[pos] = answerAt{n: n}
			return cn.in.r.Discard(n) // cannot fail: Peek buffered it
		}
		// The caller gave up: the answer goes where the others go.
	}
	if room := cap(rq.arena) - len(rq.arena); room < n && n <= growStep {
		// Make room for the answers still to come if they are like this
		// one, as a batch of like requests has them: one allocation for
		// the batch the first time, none after.
		want := min(n*rq.left, growStep) + len(rq.arena)
		grown := make([]byte, len(rq.arena), max(want, len(rq.arena)+n, 2*cap(rq.arena)))
		copy(grown, rq.arena)
		rq.arena = grown
	}
	off := len(rq.arena)
	var err error
	rq.arena, err = cn.appendPayload(rq.arena, n)
	rq.at[pos] = answerAt{off: off, n: n}
	return err
}

// completeArena completes rq, whose answers have all arrived in its arena:
// into the caller's buffers for FlushAppend, in request order; else into
// one new buffer that Flush's caller owns.
func (cn *conn) completeArena(rq *request) {
	if rq.mode != modeBatchAppend {
		buf := make([]byte, 0, len(rq.arena))
		answers := make([][]byte, len(rq.at))
		for i, a := range rq.at {
			buf = append(buf, rq.arena[a.off:a.off+a.n]...)
			answers[i] = buf[len(buf)-a.n : len(buf) : len(buf)]
		}
		rq.complete(nil, answers, nil, false)
		return
	}
	if !rq.claim() {
		rq.recycle() // the caller gave up
		return
	}
	dst := rq.got
	for _, a := range rq.at[rq.inDst:] {
		dst = append(dst, rq.arena[a.off:a.off+a.n]...)
	}
	cn.completeInOrder(rq, dst, len(rq.dst))
}

// completeInOrder completes rq, claimed, with its answers in request order
// in dst from start on, at's lengths telling them apart.
func (cn *conn) completeInOrder(rq *request, dst []byte, start int) {
	ends, end := cn.in.ends[:0], 0
	for _, a := range rq.at {
		end += a.n
		ends = append(ends, end)
	}
	rq.completeInDst(dst, start, ends)
	cn.in.ends = ends[:0]
}

// muxReadOwnBatch is readOwnBatch for the multiplexed mode. The caller
// reads its batch's answers while the next frame is one of them, appending
// each to its buffer in the order they come: in request order, as a
// server answering in turn sends them, they are then where FlushAppend
// returns them, with no copy through the arena. Anything else (another
// call's answer, an error frame) or a wait past readGrace passes the
// reading to the reader goroutine, and with it the rest of the batch:
// what the caller read moves to the arena first, so that the caller's
// buffer is not touched after it returns.
func (cn *conn) muxReadOwnBatch(ctx context.Context, rq *request) {
	dst := rq.dst
	start := len(dst)
	for rq.left > 0 {
		if whole, ok := cn.in.straight.read(ctx, cn, dst, rq.left, muxHeadersSize, muxAnswerBody, false); ok {
			dst = cn.takeStraight(rq, dst, start, whole)
			continue
		}
		id, n, err := cn.peekMuxAnswer(ctx)
		if err == nil && gaveUp(ctx) {
			err = errNotOwn
		}
		pos := 0
		if err == nil {
			pos, err = cn.takeMember(id, rq)
		}
		if err != nil {
			rq.arena = append(rq.arena[:0], dst[start:]...)
			cn.ownReadFailed(err)
			return
		}
		_ = cn.in.r.Discard(frame.HeaderSize + frame.MuxHeaderSize) // peeked
		p, _ := cn.in.r.Peek(n)                                     // peeked whole
		rq.at[pos] = answerAt{off: len(dst) - start, n: n}
		dst = append(dst, p...)
		_ = cn.in.r.Discard(n)
		rq.left--
		cn.in.straight.saw(n)
	}
	switch {
	case !inOrder(rq.at):
		// Answered out of order: they go in order through the arena.
		rq.arena = append(rq.arena[:0], dst[start:]...)
		cn.completeArena(rq)
	case rq.claim():
		cn.completeInOrder(rq, dst, start)
	default:
		rq.recycle()
	}
	cn.release()
	if _, err := cn.settleRead(true); err != nil {
		cn.fail(err, writeProgress{})
	}
}

// takeStraight takes the whole answers of a straight read that are rq's
// into dst, in the order they came, and returns dst with them.
func (cn *conn) takeStraight(rq *request, dst []byte, start, whole int) []byte {
	s := cn.in.straight
	taken := 0
	for ; taken < whole; taken++ {
		hdr, from, to := s.frame(cn.in.r, taken)
		id, _, _ := cn.ownMuxAnswer(hdr) // parsed already
		pos, err := cn.takeMember(id, rq)
		if err != nil {
			break // another call's: the reader goroutine's to read
		}
		rq.at[pos] = answerAt{off: from - start, n: to - from}
		rq.left--
	}
	return s.keep(cn.in.r, dst, taken)
}

// takeMember takes the member of rq's batch that id names out of the
// table, and returns its place in the batch; errNotOwn if id is not one of
// rq's.
func (cn *conn) takeMember(id uint32, rq *request) (int, error) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if !cn.mux.holds(id, rq) {
		return 0, errNotOwn
	}
	_, pos, _ := cn.mux.take(id)
	return pos, nil
}

// inOrder reports whether the answers lie one after the other in request
// order.
func inOrder(at []answerAt) bool {
	off := 0
	for _, a := range at {
		if a.off != off {
			return false
		}
		off += a.n
	}
	return true
}

// appendPayload appends the next n bytes to buf: read in place when buf
// has room, as it has once warm; else through a buffer that grows with the
// bytes that arrive, as ReadPayload's does.
func (cn *conn) appendPayload(buf []byte, n int) ([]byte, error) {
	if cap(buf)-len(buf) >= n {
		_, err := cn.in.r.ReadPayload(buf[len(buf):], n)
		return buf[:len(buf)+n], err
	}
	p, err := cn.in.r.ReadPayload(nil, n)
	return append(buf, p...), err
}
