package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpez/tcpez/frame"
)

const (
	// readBufferSize is also the largest answer delivered to a caller's
	// buffer straight from the read buffer, without a copy through scratch.
	readBufferSize = 32 << 10
	// maxKeptBuffer bounds the write and scratch buffers a connection keeps
	// for reuse, so one huge request does not pin its memory for good. At
	// 1 MiB, a 1 MiB request's frame (a few bytes more) was reallocated on
	// every call; 4 MiB keeps megabyte payloads allocation-free.
	maxKeptBuffer = 4 << 20
	// maxFlushRounds bounds how many writes a caller does for others before
	// it hands the writing to a background goroutine and goes to wait for
	// its own answer.
	maxFlushRounds = 4
	// writeGrace is how long a caller may stay blocked in a write on a
	// plain socket before the write passes to a background goroutine.
	writeGrace = 10 * time.Millisecond
	// writevMin is the smallest payload a writing caller sends from its
	// own slice rather than copied into the write buffer.
	writevMin = 64 << 10
)

// conn is one connection: a write side that callers share and a reader
// goroutine that hands answers to calls in FIFO order.
//
// Writing: a caller appends its frame to wbuf and queues its call under mu,
// so that queue order is wire order. If nobody is writing, the caller
// becomes the writer and writes until wbuf is empty; others just append and
// go to wait. One caller alone thus writes its own request with no
// hand-off, and many callers have their frames coalesced into few writes.
type conn struct {
	c    *Client
	ep   *endpoint
	addr string
	nc   net.Conn
	r    *frame.Reader
	born time.Time
	// slots holds one slot per call queued or about to be, up to
	// MaxInFlight.
	slots  *slots
	broken atomic.Bool

	mu      sync.Mutex
	q       queue
	wbuf    []byte // bytes of queued calls not yet handed to a write
	spare   []byte // the other buffer, reused while wbuf is being written
	gen     uint64 // generation of wbuf; bumped each time it is handed off
	writing bool   // someone owns the write side
	// writerFree, when set, is closed as each write ends: callers with
	// large payloads wait on it for their turn to write (awaitWriter).
	writerFree chan struct{}
	// writeWaiters counts those callers; a writer stops for them only
	// while there are any (one that gave up leaves writerFree set).
	writeWaiters int
	err          error // set once when the connection breaks; final
	// draining: the address was removed; no new calls, close once idle.
	draining   bool
	drainTimer *time.Timer

	// fragile: a write cut short by its deadline breaks the connection,
	// as it does for TLS, so writes get no grace deadline.
	fragile bool
	// wdl is the write deadline set on nc; owned by whoever is writing.
	wdl time.Time

	// role says who reads answers; see direct.go. wake hands the reading
	// to the reader goroutine, which waits on it while it does not read.
	role  readRole
	wake  chan struct{}
	takes uint64 // times a call took the reading of an idle connection
	// idle is set for connections whose callers may read their own answers
	// (plain sockets): it checks that the peer has not closed or sent
	// anything unasked while nobody was reading.
	idle *idleCheck
	// rdl is the read deadline set on nc; owned by whoever reads.
	rdl time.Time

	// Owned by whoever reads.
	scratch []byte
}

func newConn(c *Client, ep *endpoint, nc net.Conn) *conn {
	cn := &conn{
		c:     c,
		ep:    ep,
		addr:  ep.addr,
		nc:    nc,
		r:     frame.NewReaderSize(nc, readBufferSize, c.cfg.Limits),
		born:  time.Now(),
		slots: newSlots(c.cfg.MaxInFlight),
		// TLS state is lost when a write times out, so only a deadline
		// the caller set may cut a TLS write short.
		fragile: isTLS(nc),
		wake:    make(chan struct{}, 1),
		idle:    newIdleCheck(nc),
	}
	if cn.idle == nil {
		// Nobody can tell a closed idle connection without reading it,
		// so the reader goroutine always reads.
		cn.role = roleReader
	}
	return cn
}

func isTLS(nc net.Conn) bool {
	_, ok := nc.(*tls.Conn)
	return ok
}

func (cn *conn) load() int { return cn.slots.load() }

func (cn *conn) tryAcquire() bool { return cn.slots.tryAcquire() }

func (cn *conn) release() { cn.slots.release() }

// enqueue puts rq's request on the connection, writing it at once when no
// write is in progress. The caller holds a slot. An error means the
// call was not queued, so its request provably never left; the slot is
// released then. Once queued, the outcome arrives through rq.
func (cn *conn) enqueue(ctx context.Context, rq *request, payload []byte) error {
	cn.mu.Lock()
	if len(payload) >= writevMin {
		if err := cn.awaitWriter(ctx); err != nil {
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
		cn.mu.Unlock()
		cn.release()
		return err
	}
	if cn.role == roleFree {
		if err := cn.idle.check(cn.r); err != nil {
			cn.mu.Unlock()
			cn.release()
			cn.fail(err, writeProgress{})
			return cn.failure()
		}
		cn.takeRead(rq)
	}
	rq.gen, rq.off = cn.gen, len(cn.wbuf)
	h := frame.Header(len(payload))
	if rq.mode == modeBatch {
		h = frame.BatchHeader(rq.n)
	}
	cn.wbuf = frame.AppendHeader(cn.wbuf, h)
	var tail []byte
	if len(payload) >= writevMin && !cn.writing {
		// Written from the caller's slice; see flush. (awaitWriter made
		// sure nobody was writing, unless the connection is failing.)
		tail = payload
	} else {
		cn.wbuf = append(cn.wbuf, payload...)
	}
	cn.q.push(rq)
	if cn.writing {
		cn.mu.Unlock()
		return nil
	}
	cn.writing = true
	cn.flush(ctx, tail)
	return nil
}

// awaitWriter waits, for a caller with a large payload, until nobody is
// writing: the caller then writes the payload from its own slice rather
// than copying it into wbuf, where concurrent large requests would pile
// up (at 64 callers of 1 MiB, 7 MB allocated per call). A writer that sees
// such a caller waiting stops after its current write and leaves the rest
// of wbuf to it (see flush), so a stream of small calls cannot starve it.
// Called with mu held; it returns with mu held, and ctx's error if ctx
// ended first, the call then not queued.
func (cn *conn) awaitWriter(ctx context.Context) error {
	for cn.writing && cn.err == nil {
		if cn.writerFree == nil {
			cn.writerFree = make(chan struct{})
		}
		free := cn.writerFree
		cn.writeWaiters++
		cn.mu.Unlock()
		select {
		case <-free:
			cn.mu.Lock()
			cn.writeWaiters--
		case <-ctx.Done():
			cn.mu.Lock()
			cn.writeWaiters--
			if !cn.writing && len(cn.wbuf) > 0 && cn.err == nil {
				// A writer stopped for this caller: the bytes it left
				// need another.
				cn.writing = true
				cn.handOff(nil, 0, 0)
				cn.mu.Lock()
			}
			return ctxError(ctx)
		}
	}
	return nil
}

// writeEnded wakes the callers waiting in awaitWriter. Called with mu held.
func (cn *conn) writeEnded() {
	if cn.writerFree != nil {
		close(cn.writerFree)
		cn.writerFree = nil
	}
}

// flush writes wbuf until it is empty. It is entered with mu held and
// writing set, and returns with mu released. ctx is the writing caller's;
// nil for the background writer.
//
// tail, when set, is the writing caller's large payload, whose header ends
// wbuf: the first write sends both with one writev rather than copying the
// payload. The caller is in the write, so its slice stays valid; should
// the write pass to a background writer, which may outlive the call, the
// payload is copied first.
func (cn *conn) flush(ctx context.Context, tail []byte) {
	for round := 0; ; round++ {
		if cn.err != nil || len(cn.wbuf) == 0 {
			cn.writing = false
			cn.writeEnded()
			cn.mu.Unlock()
			return
		}
		if ctx != nil && (round == maxFlushRounds || ctx.Err() != nil) {
			// mu has been held since the header went in, so the payload
			// still belongs right after it.
			cn.wbuf = append(cn.wbuf, tail...)
			// The caller has written for others long enough, or has given
			// up; a background writer takes the rest.
			cn.handOff(nil, 0, 0)
			return
		}
		if cn.writeWaiters > 0 && tail == nil {
			// A caller with a large payload waits for its turn: it
			// writes what is left, with its payload, from its own slice.
			cn.writing = false
			cn.writeEnded()
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
			if cn.err != nil || len(cn.wbuf) == 0 {
				continue
			}
		}
		buf := cn.wbuf
		cn.wbuf, cn.spare = cn.spare[:0], nil
		gen := cn.gen
		cn.gen++
		cn.mu.Unlock()

		n, err := cn.write(ctx, buf, tail)
		cn.mu.Lock()
		cn.writeEnded()
		switch {
		case err == nil:
			cn.recycle(buf)
		case ctx != nil && cn.err == nil && errors.Is(err, os.ErrDeadlineExceeded):
			// The caller's deadline or grace ran out mid-write. The bytes
			// left still belong on the stream, or it would lose sync.
			cn.handOff(append(buf, tail...), n, gen)
			return
		default:
			cn.mu.Unlock()
			cn.fail(err, writeProgress{gen: gen, n: n, ok: true})
			cn.mu.Lock()
		}
		tail = nil
	}
}

// handOff starts a background writer that writes buf[from:] (from
// generation gen) and then whatever is in wbuf. It is called with mu held
// and releases it; writing stays set, now owned by the new goroutine.
func (cn *conn) handOff(buf []byte, from int, gen uint64) {
	cn.mu.Unlock()
	if !cn.c.spawn(func() { cn.writeRest(buf, from, gen) }) {
		cn.fail(ErrClosed, writeProgress{})
	}
}

func (cn *conn) writeRest(buf []byte, from int, gen uint64) {
	if from < len(buf) {
		n, err := cn.write(nil, buf[from:], nil)
		if err != nil {
			cn.fail(err, writeProgress{gen: gen, n: from + n, ok: true})
		}
	}
	cn.mu.Lock()
	cn.flush(nil, nil)
}

// recycle keeps a written buffer for reuse. Called with mu held.
func (cn *conn) recycle(buf []byte) {
	if cap(buf) <= maxKeptBuffer {
		cn.spare = buf[:0]
	}
}

// write writes buf. A caller (ctx non-nil) is kept in a blocked write no
// longer than its deadline and, on a plain socket, writeGrace: the write
// then stops with os.ErrDeadlineExceeded and the count written, and the
// caller hands the rest to a background writer. So a caller that cancels
// returns within writeGrace without a goroutine or allocation per call
// to watch its context. The background writer (ctx nil) has no deadline.
func (cn *conn) write(ctx context.Context, buf, tail []byte) (int, error) {
	if err := cn.armWrite(ctx); err != nil {
		return 0, err
	}
	if tail == nil {
		return cn.nc.Write(buf)
	}
	bufs := net.Buffers{buf, tail}
	n, err := bufs.WriteTo(cn.nc)
	return int(n), err
}

// armWrite sets the write deadline for a write by ctx's caller, keeping
// the one already set when it is soon enough and not so near as to cut
// the write short for nothing: the runtime timer is then touched about
// once per writeGrace rather than once per write.
func (cn *conn) armWrite(ctx context.Context) error {
	var want, now time.Time
	if ctx != nil {
		if !cn.fragile {
			now = time.Now()
			want = now.Add(writeGrace)
		}
		if d, ok := ctx.Deadline(); ok && (want.IsZero() || d.Before(want)) {
			want = d
		}
	}
	switch {
	case want.Equal(cn.wdl):
		return nil
	case !now.IsZero() && keepDeadline(cn.wdl, want, now, writeGrace):
		return nil
	}
	cn.wdl = want
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

// fail breaks the connection for good: every queued call fails, the socket
// closes, and the endpoint is told so that it can dial a replacement.
//
// Each failed call is marked unsent when its bytes provably never reached
// the socket: they were still in wbuf, or they lay past the point where a
// failed write stopped. Those are safe to retry on another connection.
func (cn *conn) fail(cause error, wp writeProgress) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	err := cause
	if cause != ErrClosed {
		err = &ConnError{Addr: cn.addr, Err: cause}
	}
	cn.err = err
	cn.broken.Store(true)
	calls := cn.q.drain()
	unsent := make([]bool, len(calls))
	for i, rq := range calls {
		unsent[i] = rq.gen == cn.gen || (wp.ok && rq.gen == wp.gen && rq.off >= wp.n)
	}
	cn.wbuf, cn.spare = nil, nil
	timer, draining := cn.drainTimer, cn.draining
	cn.mu.Unlock()
	cn.wakeReader() // to see the failure and exit

	if timer != nil {
		timer.Stop()
	}
	if draining {
		cn.c.untrackDrain(cn)
	}
	_ = cn.nc.Close()
	// Out of the balancer before the calls learn of it, so that their
	// retries do not find it again.
	cn.ep.connDown(cn, cause)
	for i, rq := range calls {
		rq.complete(nil, nil, err, unsent[i])
		cn.release()
	}
}

// failure returns the error the connection broke with, nil if it has not.
func (cn *conn) failure() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.err
}

// drain stops new calls and closes the connection once the calls already
// on it are answered, or after timeout.
func (cn *conn) drain(timeout time.Duration) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		cn.c.untrackDrain(cn)
		return
	}
	cn.draining = true
	idle := cn.q.len() == 0
	if !idle {
		cn.drainTimer = time.AfterFunc(timeout, func() { cn.fail(errDrainTimeout, writeProgress{}) })
	}
	cn.mu.Unlock()
	if idle {
		cn.fail(errDraining, writeProgress{})
	}
}
