package client

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/tcpez/tcpez/frame"
)

const (
	// maxKeptBuffer bounds the write and scratch buffers a connection keeps
	// for reuse, so one huge request does not pin its memory for good
	// (docs/DESIGN.md: why 4 MiB).
	maxKeptBuffer = 4 << 20
	// maxFlushRounds bounds how many writes a caller does for others before
	// it hands the writing to the background writer and goes to wait for
	// its own answer.
	maxFlushRounds = 4
	// writeGrace is how long a caller may stay blocked in a write on a
	// plain socket before the write passes to the background writer.
	writeGrace = 10 * time.Millisecond
	// writevMin is the smallest payload a writing caller sends from its
	// own slice rather than copied into the write buffer.
	writevMin = 64 << 10
	// leaveMax is the most a writer that has written once leaves in the
	// write buffer for others to write (see leaveLocked), and leaveLoad
	// the fewest calls in flight it does so with.
	leaveMax  = 1 << 10
	leaveLoad = 8
	// leaveWait bounds how long frames left while the reader waits for
	// answers stay unwritten. The runtime's timers fire no sooner than
	// about a millisecond on an idle process, which then bounds it.
	leaveWait = 100 * time.Microsecond
)

// writeSide is the write half of a conn. A caller appends its frame to buf
// and queues its request under conn.mu, so that queue order is wire order.
// If nobody holds the writer role the caller takes it and writes until buf
// is empty; others just append and go to wait. One caller alone thus
// writes its own request with no hand-off, and many callers have their
// frames coalesced into few writes.
type writeSide struct {
	// Set by newConn, then read-only.
	// fragile: a write cut short by its deadline breaks the connection,
	// as it does for TLS, so writes get no grace deadline.
	fragile bool

	// Guarded by conn.mu.
	buf     []byte // bytes of queued requests not yet handed to a write
	spare   []byte // the other buffer, reused while buf is being written
	gen     uint64 // generation of buf; bumped each time it goes to a write
	writing bool   // the writer role is taken
	// turns are the callers with large payloads waiting for the writer
	// role, oldest first (awaitWriterLocked); a writer that sees one
	// stops after its current write and hands the role to the oldest.
	// While any wait, writing is set: nobody can take the role past them.
	turns turnQueue

	// left says that a writer left frames in buf for others to write
	// (leaveLocked): the reader writes them before it reads the socket
	// again. Stored under conn.mu; the reader loads it without.
	left atomic.Bool
	// leftTimer writes frames left while the reader waited (leftTimeout);
	// armed while it runs. Guarded by conn.mu.
	leftTimer *time.Timer
	armed     bool

	// Owned by the writer role's holder.
	deadline time.Time // the write deadline set on nc
	// vec and bufs make a gathering write without allocating: bufs is what
	// the write consumes of vec's array (see conn.write).
	vec  [2][]byte
	bufs net.Buffers
}

// writer is who holds the writer role: a caller, whose turn its context
// and writeGrace bound, or the background writer, which writes for as long
// as the write takes.
type writer struct {
	ctx    context.Context // the caller's; Background for the background writer
	caller bool
}

// backgroundWriter is the writer of a goroutine that took over a write
// from a caller: it outlives the call, so no context bounds it.
var backgroundWriter = writer{ctx: context.Background()}

func callerWriter(ctx context.Context) writer { return writer{ctx: ctx, caller: true} }

// enqueue puts rq's request on the connection, writing it at once when no
// write is in progress. The caller holds a slot. An error means the
// request was not queued, so it provably never left; the slot is released
// then. Once queued, the outcome arrives through rq.
func (cn *conn) enqueue(ctx context.Context, rq *request, payload []byte) error {
	cn.mu.Lock()
	owns := false
	if len(payload)+len(rq.tail) >= writevMin {
		var err error
		if owns, err = cn.awaitWriterLocked(ctx); err != nil {
			cn.mu.Unlock()
			cn.release()
			return err
		}
	}
	if cn.err != nil || cn.draining {
		err := cn.err
		if err == nil {
			err = &ConnError{Addr: cn.addr, Err: errDraining}
		}
		cn.unlockWriter(owns)
		cn.release()
		return err
	}
	// The reading of an idle connection goes to this request, but only
	// once it is queued: one refused below (over the server's limit, say)
	// must not leave the reading with a caller who will not read.
	takeRead := cn.in.role == roleFree
	if takeRead {
		// Nobody reads, so this caller may look at the read buffer.
		switch err := cn.in.idle.check(cn.in.r); {
		case err == nil:
		case cn.mux != nil && errors.Is(err, ErrUnexpectedAnswer):
			// A mux server may send first (a notification, a call):
			// the reader goroutine reads what came, and judges it.
			takeRead = false
			cn.in.role = roleReader
			cn.wakeReader()
		default:
			cn.unlockWriter(owns)
			cn.release()
			cn.fail(err, writeProgress{})
			return cn.failure()
		}
	}
	out := &cn.out
	rq.gen, rq.off = out.gen, len(out.buf)
	if codec := cn.c.cfg.Codec; codec != nil {
		if rq.tail != nil {
			payload = append(payload[:len(payload):len(payload)], rq.tail...)
		}
		out.buf = codec.AppendRequest(out.buf, payload)
		payload = nil // appended by the codec
	} else if cn.mux != nil {
		if err := cn.appendMuxRequestLocked(rq, payload); err != nil {
			cn.unlockWriter(owns)
			cn.release()
			return err
		}
		if rq.mode.batch() && !rq.muxFramed {
			payload = nil // appended, frame by frame
		}
	} else if rq.stream != nil {
		cn.unlockWriter(owns)
		cn.release()
		return ErrNoStreams
	} else {
		switch {
		case rq.mode.batch() && rq.muxFramed:
			// Laid out for the multiplexed mode, which this connection
			// does not speak.
			out.buf = appendV1Batch(out.buf, rq.n, payload)
			payload = nil
		case rq.mode.batch():
			// A Pipeline put the batch header in front of the frames: the
			// batch goes out from one buffer, not a 4-byte iovec and the rest.
			payload = rq.framed
		default:
			out.buf = frame.AppendHeader(out.buf, frame.Header(len(payload)+len(rq.tail)))
		}
	}
	if rq.tail != nil && cn.c.cfg.Codec == nil {
		// The head is copied; the tail is the payload sendUnlock may send
		// from its own slice.
		out.buf = append(out.buf, payload...)
		payload = rq.tail
	}
	if takeRead {
		cn.takeReadLocked(rq)
	}
	if cn.mux == nil {
		cn.q.push(rq)
		if cn.q.len() == 1 {
			cn.prog.begin()
		}
	}
	cn.sendUnlock(ctx, payload, owns)
	return nil
}

// sendUnlock puts payload after the header just appended to the write
// buffer, and writes unless another writer is at it, which then writes it.
// A large payload goes from the caller's slice rather than being copied;
// see flushUnlock. (A caller with one waited in awaitWriterLocked for the
// writer role, which it owns now, unless the connection is failing.)
func (cn *conn) sendUnlock(ctx context.Context, payload []byte, owns bool) {
	out := &cn.out
	var tail []byte
	if len(payload) >= writevMin && (owns || !out.writing) {
		tail = payload
	} else {
		out.buf = append(out.buf, payload...)
	}
	if out.writing && !owns {
		cn.mu.Unlock()
		return
	}
	out.writing = true
	cn.flushUnlock(callerWriter(ctx), tail)
}

// awaitWriterLocked waits, for a caller with a large payload, for the
// writer role: the caller then writes the payload from its own slice rather
// than copying it into buf, where concurrent large requests would pile up
// (docs/DESIGN.md). Such callers wait in line, and a writer that sees one
// waiting stops after its current write and hands the role, with the rest
// of buf, to the oldest (see flushUnlock): a stream of small calls cannot
// starve them, and none waits while later ones go first, which at 256
// callers of Pipeline×64 made a batch's p99 fifty times its median.
//
// owns reports that the role was handed to the caller, which must write
// or pass it on (unlockWriter); with the role free and nobody waiting, the
// caller takes it as any writer does. It releases mu while it waits, and
// returns ctx's error if ctx ended first, the request then not queued.
func (cn *conn) awaitWriterLocked(ctx context.Context) (owns bool, err error) {
	out := &cn.out
	if cn.err != nil || (!out.writing && out.turns.len() == 0) {
		return false, nil
	}
	t := out.turns.push()
	cn.mu.Unlock()
	told := false
	select {
	case owns = <-t:
		told = true
	case <-ctx.Done():
	}
	cn.mu.Lock()
	if !told {
		if out.turns.remove(t) {
			return false, ctxError(ctx) // never handed the role
		}
		owns = <-t // handed the role, or told of a failure, meanwhile: sent under mu
	}
	out.turns.recycle(t)
	if ctx.Err() != nil {
		// A caller that has given up does not write, even with the role.
		cn.unlockWriter(owns)
		cn.mu.Lock()
		return false, ctxError(ctx)
	}
	return owns, nil
}

// unlockWriter releases mu for a caller leaving without writing, passing
// on the writer role if it owns it: to the next caller waiting for it,
// else to a background writer for the bytes others queued meanwhile.
func (cn *conn) unlockWriter(owns bool) {
	out := &cn.out
	if owns && cn.err == nil && out.turns.len() == 0 && len(out.buf) > 0 {
		cn.handOffUnlock(nil, 0, 0)
		return
	}
	if owns {
		out.stopWritingLocked(cn.err != nil)
	}
	cn.mu.Unlock()
}

// stopWritingLocked gives the writer role up: to the oldest caller
// waiting for it, or, when the connection failed or nobody waits, to
// nobody, waking every caller still waiting to see the failure.
func (out *writeSide) stopWritingLocked(failed bool) {
	if !failed {
		if t := out.turns.pop(); t != nil {
			t <- true
			return
		}
	}
	out.writing = false
	for t := out.turns.pop(); t != nil; t = out.turns.pop() {
		t <- false
	}
}

// keepLocked keeps a written buffer for reuse.
func (out *writeSide) keepLocked(buf []byte) {
	if cap(buf) <= maxKeptBuffer {
		out.spare = buf[:0]
	}
}

// unsentLocked reports whether rq's bytes provably never reached the
// socket: they are still in buf, or they lay past the point where the
// failed write wp stopped.
func (out *writeSide) unsentLocked(rq *request, wp writeProgress) bool {
	return rq.gen == out.gen || (wp.ok && rq.gen == wp.gen && rq.off >= wp.n)
}

// flushUnlock writes buf until it is empty, for w, which holds the writer
// role. It releases mu around each write.
//
// tail, when set, is the writing caller's large payload, whose header ends
// buf: the first write sends both with one writev rather than copying the
// payload. The caller is in the write, so its slice stays valid; should
// the write pass to the background writer, which may outlive the call, the
// payload is copied first.
func (cn *conn) flushUnlock(w writer, tail []byte) {
	out := &cn.out
	for round := 0; ; round++ {
		if cn.err != nil || (len(out.buf) == 0 && tail == nil) {
			out.stopWritingLocked(cn.err != nil)
			cn.mu.Unlock()
			return
		}
		if round > 0 && cn.leaveLocked() {
			out.stopWritingLocked(false)
			cn.mu.Unlock()
			return
		}
		if w.caller && (round == maxFlushRounds || w.ctx.Err() != nil) {
			// mu has been held since the header went in, so the payload
			// still belongs right after it.
			out.buf = append(out.buf, tail...)
			// The caller has written for others long enough, or has given
			// up; the background writer takes the rest.
			cn.handOffUnlock(nil, 0, 0)
			return
		}
		if out.turns.len() > 0 && tail == nil {
			// A caller with a large payload waits for its turn: it
			// writes what is left, with its payload, from its own slice.
			out.stopWritingLocked(false)
			cn.mu.Unlock()
			return
		}
		if round == 0 && tail == nil && cn.load() > 1 {
			// Other calls are in flight, and their callers, woken by
			// their answers, are about to send again: yielding once lets
			// them append, so that one write carries many frames. A lone
			// caller does not wait.
			cn.mu.Unlock()
			runtime.Gosched()
			cn.mu.Lock()
			if cn.err != nil || len(out.buf) == 0 {
				continue
			}
		}
		buf := out.buf
		out.buf, out.spare = out.spare[:0], nil
		gen := out.gen
		out.gen++
		cn.mu.Unlock()

		n, err := cn.write(w, buf, tail)
		cn.mu.Lock()
		switch {
		case err == nil:
			out.keepLocked(buf)
		case w.caller && cn.err == nil && errors.Is(err, os.ErrDeadlineExceeded):
			// The caller's deadline or grace ran out mid-write. The bytes
			// left still belong on the stream, or it would lose sync.
			cn.handOffUnlock(append(buf, tail...), n, gen)
			return
		default:
			cn.mu.Unlock()
			cn.fail(err, writeProgress{gen: gen, n: n, ok: true})
			cn.mu.Lock()
		}
		tail = nil
	}
}

// leaveLocked reports whether a writer that has written once may leave
// what callers appended meanwhile, a few small frames, unwritten for now,
// and marks them left. Under load, callers on the other core append one
// or two frames during each write, and a writer that went on writing them
// made a write syscall per one or two frames, on the cores the callers
// need: leaving them, the next caller to append takes the writer role
// and sends them with its own and with those its yield lets others
// append (bench/README: 7-12% more calls at 256 callers and 16 B, with
// half the write syscalls per call for the byte layer and a quarter for
// service mode).
//
// Nothing is left for long. The reader goroutine must hold the reading
// role: it writes left frames before it reads the socket again
// (socketReader), after the answer it waits for, if no caller came first.
// And when it is already waiting, for answers that may be slow to come,
// the left frames are written within leaveWait (leftTimeout).
func (cn *conn) leaveLocked() bool {
	out := &cn.out
	if len(out.buf) > leaveMax || cn.in.role != roleReader || cn.load() < leaveLoad {
		return false
	}
	// Stored before waiting is loaded, as the reader stores waiting
	// before it loads left: either this sees the reader waiting, or the
	// reader sees left.
	out.left.Store(true)
	if cn.in.waiting.Load() && !out.armed {
		out.armed = true
		if out.leftTimer == nil {
			out.leftTimer = time.AfterFunc(leaveWait, cn.leftTimeout)
		} else {
			out.leftTimer.Reset(leaveWait)
		}
	}
	return true
}

// writeLeft hands the frames a writer left (leaveLocked), if nobody has
// written them since, to the background writer, for the reader about to
// read the socket. The reader does not write them itself: blocked in a
// write to a peer that waits for its answers to be read, it would wait
// for ever.
func (cn *conn) writeLeft() {
	cn.mu.Lock()
	if !cn.takeLeftLocked() {
		cn.mu.Unlock()
		return
	}
	cn.handOffUnlock(nil, 0, 0)
}

// leftTimeout writes the frames a writer left while the reader waited,
// if nobody has written them since.
func (cn *conn) leftTimeout() {
	cn.mu.Lock()
	cn.out.armed = false
	if !cn.takeLeftLocked() {
		cn.mu.Unlock()
		return
	}
	cn.flushUnlock(backgroundWriter, nil)
}

// takeLeftLocked clears left and takes the writer role for what is in the
// write buffer, unless there is nothing to write or somebody writes it
// already (a writer then writes all, or leaves and marks it again).
func (cn *conn) takeLeftLocked() bool {
	out := &cn.out
	out.left.Store(false)
	if cn.err != nil || out.writing || len(out.buf) == 0 {
		return false
	}
	out.writing = true
	return true
}

// handOffUnlock starts the background writer, which writes buf[from:]
// (from generation gen) and then whatever is in the write buffer. The
// writer role stays taken, now by the new goroutine.
func (cn *conn) handOffUnlock(buf []byte, from int, gen uint64) {
	cn.mu.Unlock()
	if !cn.c.spawn(func() { cn.writeRest(buf, from, gen) }) {
		// The client is closing. Nobody took the role, so it is released
		// here: callers waiting in line for it (awaitWriterLocked) are
		// told of the failure, or they would wait for ever.
		cn.fail(ErrClosed, writeProgress{})
		cn.mu.Lock()
		cn.out.stopWritingLocked(true)
		cn.mu.Unlock()
	}
}

// writeRest is the background writer.
func (cn *conn) writeRest(buf []byte, from int, gen uint64) {
	if from < len(buf) {
		n, err := cn.write(backgroundWriter, buf[from:], nil)
		if err != nil {
			cn.fail(err, writeProgress{gen: gen, n: from + n, ok: true})
		}
	}
	cn.mu.Lock()
	cn.flushUnlock(backgroundWriter, nil)
}

// write writes buf, then tail when set, for w. A caller is kept in a
// blocked write no longer than its deadline and, on a plain socket,
// writeGrace: the write then stops with os.ErrDeadlineExceeded and the
// count written, and the caller hands the rest to the background writer.
// So a caller that cancels returns within writeGrace without a goroutine
// or allocation per call to watch its context. The background writer has
// no deadline.
func (cn *conn) write(w writer, buf, tail []byte) (int, error) {
	if err := cn.armWrite(w); err != nil {
		return 0, err
	}
	switch {
	case tail == nil:
		return cn.nc.Write(buf)
	case len(buf) == 0:
		return cn.nc.Write(tail)
	}
	out := &cn.out
	out.vec = [2][]byte{buf, tail}
	out.bufs = out.vec[:]
	n, err := out.bufs.WriteTo(cn.nc)
	out.vec, out.bufs = [2][]byte{}, nil // keep no reference to the caller's tail
	return int(n), err
}

// armWrite sets the write deadline for a write by w, keeping the one
// already set when it is soon enough and not so near as to cut the write
// short for nothing: the runtime timer is then touched about once per
// writeGrace rather than once per write.
func (cn *conn) armWrite(w writer) error {
	var want, now time.Time
	if w.caller {
		if !cn.out.fragile {
			now = time.Now()
			want = now.Add(writeGrace)
		}
		if d, ok := w.ctx.Deadline(); ok && (want.IsZero() || d.Before(want)) {
			want = d
		}
	}
	switch {
	case want.Equal(cn.out.deadline):
		return nil
	case !now.IsZero() && keepDeadline(cn.out.deadline, want, now, writeGrace):
		return nil
	}
	cn.out.deadline = want
	return cn.nc.SetWriteDeadline(want)
}

// keepDeadline reports whether a deadline already set may stay for a wait
// that wants one at want, the clock reading now: it comes no later than
// wanted, and not so soon (grace/4) as to cut the wait short for nothing.
func keepDeadline(set, want, now time.Time, grace time.Duration) bool {
	return !set.IsZero() && !set.After(want) && set.Sub(now) > grace/4
}

// writeProgress says how far a failed write got: n bytes of the buffer of
// generation gen.
type writeProgress struct {
	gen uint64
	n   int
	ok  bool
}
