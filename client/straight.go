package client

import (
	"context"
	"encoding/binary"
	"net"

	"github.com/tcpez/tcpez/frame"
)

// straightMin is the smallest answer read straight into a caller's
// buffer. It is chosen, not measured: smaller answers come many to a
// read, each costs the kernel two iovecs, and the copy they save is small.
const straightMin = 1 << 10

// A straight read asks for at most what the read buffer holds, so for at
// most readBufferSize/(HeaderSize+straightMin) answers, two iovecs each,
// plus one: this fails to compile if that could pass Linux's limit of
// 1024 iovecs a call.
var _ [1024 - (2*(readBufferSize/(frame.HeaderSize+straightMin)) + 1)]struct{}

// straight reads the answers of a batch a caller reads itself straight
// into the caller's buffer, where FlushAppend returns them, rather than
// into the read buffer and then copying them: at one caller of a Pipeline
// of 64×4 KiB that copy cost 15% of a batch's latency (docs/DESIGN.md). With
// one vectored read it asks the kernel for the rest of the answer whose
// start is buffered, if any, then for answers the size of the last one,
// each header in scratch and each body in its place in the buffer. The
// guess holds for the batches of one kind that pipelines carry; what does
// not fit it (another size, another call's frame, a frame cut short) goes
// back to the frame.Reader (Refill), which reads it as usual.
type straight struct {
	sys  *readv
	size int // the last batch answer's body size: the next one's guess

	// Of the read in progress.
	segs  [][]byte
	hdrs  []byte // the guessed answers' headers, hs bytes each
	back  []byte // what goes back to the Reader
	hs    int    // header size: frame header, and mux header in mux
	lead  []byte // a v1 batch answer's header, read first; nil: none
	led   bool   // the caller took lead
	base  int    // len(dst) before the read
	pend  int    // body size of the answer whose start was buffered; 0: none
	have  int    // how much of that body was buffered
	guess int    // body size asked for after it
	n     int    // bytes read
	err   error
}

func newStraight(nc net.Conn) *straight {
	sys := newReadv(nc)
	if sys == nil {
		return nil
	}
	return &straight{sys: sys}
}

// read reads the next answers of a batch with left still to come into
// dst's spare capacity, if a straight read applies; header parses a
// frame's headers (hs bytes) into the body size of an answer the caller
// may take, false for anything else. It returns how many answers are now
// whole in dst, the first at dst[len(dst):], which the caller takes in
// order (frame) before it calls keep; ok false when it read nothing and
// the caller reads through r as usual. With lead set, nothing is
// buffered and the read starts with a v1 batch answer's header (leader),
// so that the batch's first answers are read straight too.
func (s *straight) read(ctx context.Context, cn *conn, dst []byte, left, hs int, header func(*conn, []byte) (int, bool), lead bool) (whole int, ok bool) {
	r := cn.in.r
	// A caller that gave up reads no further: the usual path passes the
	// reading on.
	if s == nil || s.size < straightMin || r.Err() != nil || gaveUp(ctx) {
		return 0, false
	}
	s.hs, s.base, s.pend, s.have, s.guess, s.lead, s.led = hs, len(dst), 0, 0, s.size, nil, false
	if b := r.Buffered(); b > 0 {
		if b < hs || lead {
			return 0, false
		}
		p, _ := r.Peek(hs) // cannot fail: buffered
		body, own := header(cn, p)
		if !own || b-hs >= body || body < straightMin {
			return 0, false // whole, or not for a straight read
		}
		s.pend, s.have, s.guess = body, b-hs, body
		left--
	}
	spare := cap(dst) - len(dst) - s.pend
	// All that is read may go back to r: it must fit.
	room := r.Room() - (s.pend - s.have)
	if lead {
		room -= frame.HeaderSize
	}
	k := min(left, spare/s.guess, room/(hs+s.guess))
	if spare < 0 || (k <= 0 && s.pend == 0) {
		return 0, false
	}
	k = max(k, 0)
	s.plan(dst[:cap(dst)], k, lead)
	if err := cn.armRead(ctx); err != nil {
		return 0, false
	}
	s.n, s.err = s.sys.read(s.segs)
	return s.whole(cn, k, header), true
}

// plan lays out the read: the batch header or the pending answer's
// rest, then k guessed answers, header then body.
func (s *straight) plan(buf []byte, k int, lead bool) {
	s.segs = s.segs[:0]
	if len(s.hdrs) < (k+1)*s.hs {
		s.hdrs = make([]byte, (k+1)*s.hs)
	}
	if lead {
		// After the answers' headers, where frame does not look.
		s.lead = s.hdrs[k*s.hs : k*s.hs+frame.HeaderSize]
		s.segs = append(s.segs, s.lead)
	}
	if s.pend > 0 {
		s.segs = append(s.segs, buf[s.base+s.have:s.base+s.pend])
	}
	at := s.base + s.pend
	for j := range k {
		s.segs = append(s.segs, s.hdrs[j*s.hs:(j+1)*s.hs], buf[at:at+s.guess])
		at += s.guess
	}
}

// whole counts the answers the read completed: the pending one, then the
// guessed ones that came whole and are what was guessed.
func (s *straight) whole(cn *conn, k int, header func(*conn, []byte) (int, bool)) int {
	n, whole := s.n-len(s.lead), 0
	if n < 0 {
		return 0
	}
	if s.pend > 0 {
		if n < s.pend-s.have {
			return 0
		}
		n -= s.pend - s.have
		whole++
	}
	for j := 0; j < k && n >= s.hs+s.guess; j++ {
		if body, own := header(cn, s.hdrs[j*s.hs:(j+1)*s.hs]); !own || body != s.guess {
			break
		}
		n -= s.hs + s.guess
		whole++
	}
	return whole
}

// frame returns the headers of the i-th whole answer and where its body
// lies in the caller's buffer. The pending answer's headers are still in
// r.
func (s *straight) frame(r *frame.Reader, i int) (hdr []byte, from, to int) {
	if s.pend > 0 {
		if i == 0 {
			hdr, _ = r.Peek(s.hs) // cannot fail: buffered
			return hdr, s.base, s.base + s.pend
		}
		i--
	}
	from = s.base + s.pend + i*s.guess
	return s.hdrs[i*s.hs : (i+1)*s.hs], from, from + s.guess
}

// leader returns the batch header a read with lead began with, if it
// came whole.
func (s *straight) leader() (frame.Header, bool) {
	if s.lead == nil || s.n < len(s.lead) {
		return 0, false
	}
	return frame.Header(binary.BigEndian.Uint32(s.lead)), true
}

// takeLead takes the batch header leader returned: it is the caller's
// batch, whose whole answers the caller may now take.
func (s *straight) takeLead() { s.led = true }

// keep ends the read with its first taken whole answers taken into dst
// (taken ≤ whole, and 0 unless the caller took the lead of a read with
// one): the pending answer's buffered part joins the rest of it, and
// every byte read after the answers taken goes back to r, with the
// read's error. It returns dst with the answers taken.
func (s *straight) keep(r *frame.Reader, dst []byte, taken int) []byte {
	from, end := 0, s.base // the first byte to give back, in the read
	if s.led {
		from = len(s.lead)
	}
	if taken > 0 {
		if s.pend > 0 {
			p, _ := r.Peek(s.hs + s.have) // cannot fail: buffered
			copy(dst[s.base:cap(dst)], p[s.hs:])
			_ = r.Discard(s.hs + s.have)
			from, end = s.pend-s.have, s.base+s.pend
			taken--
		}
		from += taken * (s.hs + s.guess)
		end += taken * s.guess
		s.size = s.guess
	}
	s.back = s.back[:0]
	off := 0
	for _, p := range s.segs {
		if lo, hi := max(from-off, 0), min(len(p), s.n-off); lo < hi {
			s.back = append(s.back, p[lo:hi]...)
		}
		off += len(p)
	}
	r.Refill(s.back, s.err)
	clear(s.segs) // holds no buffer of the caller's past the read
	return dst[:end]
}

// takeInOrder takes all whole answers of a v1 batch's straight read,
// which are its next ones in order: each one's end, counted from start,
// goes to ends, as readOwnBatch keeps them. It returns dst and ends with
// them.
func (s *straight) takeInOrder(r *frame.Reader, dst []byte, start int, ends []int, whole int) ([]byte, []int) {
	for i := range whole {
		_, _, to := s.frame(r, i)
		ends = append(ends, to-start)
	}
	return s.keep(r, dst, whole), ends
}

// saw notes the size of a batch answer read through the Reader: the guess
// for the next straight read.
func (s *straight) saw(n int) {
	if s != nil {
		s.size = n
	}
}
