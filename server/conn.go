package server

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/internal/budget"
	"github.com/tcpez/tcpez/span"
)

// inlineBudget is how long a handler may run on the connection's own
// goroutine before the connection starts handing pipelined requests to
// goroutines of their own. Below it, a hand-off costs more than it saves.
const inlineBudget = 50 * time.Microsecond

// burstBufferSize is the size of the buffers a connection borrows while
// its traffic outruns its own (Config.ReadBufferSize, WriteBufferSize): a
// 4 KiB frame does not fit a 4 KiB buffer, and under load each then took
// a read of its own and a write of its own.
const burstBufferSize = 64 << 10

// lingerTime bounds how long a connection closed for a fault keeps reading
// and discarding what its peer still sends, so that closing with unread
// data does not reset the connection and destroy answers already sent.
const lingerTime = 250 * time.Millisecond

// errStopping ends a connection's reading when the server shuts down.
var errStopping = errors.New("tcpez/server: server shutting down")

// conn serves one connection. Its goroutine reads requests; whichever
// goroutine finishes the oldest unanswered request writes the answers that
// are ready, so there is no writer goroutine to hand answers to.
type conn struct {
	srv    *Server
	cfg    *Config
	nc     net.Conn
	r      *frame.Reader
	w      *frame.Writer
	ctx    context.Context
	cancel context.CancelFunc
	remote string
	peer   peerKey // for the per-peer connection limit
	// handshaking is c's place among the connections in their handshake
	// or authentication (guarded by the server's mu).
	handshaking *list.Element

	// acct is the connection's share of the server's memory budget.
	acct *budget.Account
	// appender is the Handler when it is an AppendHandler.
	appender AppendHandler

	clock clock
	// idle is the reader's idle deadline, write the writer's (guarded by
	// writing).
	idle, write deadline

	// slow is set while handlers on this connection take longer than
	// inlineBudget, so that pipelined requests run concurrently.
	slow atomic.Bool

	// dlMu orders read-deadline changes with Shutdown's, so that the reader
	// cannot re-arm a deadline that Shutdown has just cut short.
	dlMu     sync.Mutex
	stopping bool
	unwait   context.CancelFunc // ends a wait for the memory budget

	// mux is set once the connection speaks the multiplexed mode.
	mux atomic.Pointer[muxConn]

	mu      sync.Mutex
	cond    sync.Cond // signalled when the ring frees slots or the writer stops
	ring    ring
	writing bool  // a goroutine is writing answers
	broken  bool  // answers are no longer written: the connection is ending
	endErr  error // why the connection ends, first reason wins
}

func newConn(s *Server, nc net.Conn) *conn {
	cfg := &s.cfg
	c := &conn{srv: s, cfg: cfg, nc: nc, remote: remoteAddr(nc), peer: peerOf(nc.RemoteAddr()), clock: newClock()}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	c.acct = s.budget.NewAccount()
	c.appender, _ = s.Handler.(AppendHandler)
	c.r = frame.NewReaderSize(statsReader{nc, cfg.Stats}, cfg.ReadBufferSize, cfg.Limits)
	c.w = frame.NewWriterSize(statsWriter{nc, cfg.Stats}, cfg.WriteBufferSize)
	c.r.SetPool(s.burst)
	c.w.SetPool(s.burst)
	c.ring = newRing(cfg.MaxInFlight, s.large, c.acct)
	c.cond.L = &c.mu
	return c
}

func remoteAddr(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil && a.String() != "" {
		return a.String()
	}
	return "local"
}

// serve reads and answers requests until the peer closes, a rule is broken
// or the server stops, then closes the connection. It returns why the
// connection ended: nil for a peer that closed cleanly.
func (c *conn) serve() error {
	err := c.handshake()
	// A connection that must authenticate negotiates first, within its
	// handshake (the credential follows the preface); any other one is
	// done with its handshake before it waits for its first frame.
	mux, auth := false, c.cfg.Auth != nil
	if err == nil && auth {
		if mux, err = c.negotiate(); err == nil {
			err = c.authenticate()
		}
	}
	c.srv.endHandshake(c)
	if err == nil && !auth {
		mux, err = c.negotiate()
	}
	if mux && err == nil {
		return c.serveMux()
	}
	for err == nil {
		err = c.readMessage()
	}
	c.end(err)
	c.drain()
	return c.close()
}

func (c *conn) handshake() error {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	ctx, cancel := c.ctx, context.CancelFunc(func() {})
	if c.cfg.ReadTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.cfg.ReadTimeout)
	}
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.srv.count(StatErrTLS)
		return err
	}
	return nil
}

// readMessage reads one single frame or one whole batch and starts its
// requests.
func (c *conn) readMessage() error {
	if err := c.awaitMessage(); err != nil {
		return err
	}
	if err := c.armRead(); err != nil {
		return err
	}
	h, err := c.r.ReadHeader()
	if err != nil {
		return c.readError(err, false)
	}
	if !h.IsBatch() {
		return c.readRequest(h.Len(), false)
	}
	marker, _, err := c.reserve()
	if err != nil {
		return err
	}
	marker.batch = h.Count()
	c.publish()
	// The header waits in the buffer for the batch's answers, if they are
	// at hand, rather than going out in a write of its own.
	c.finish(marker, true)
	for range h.Count() {
		if err := c.armRead(); err != nil {
			return err
		}
		if err := c.readRequest(-1, true); err != nil {
			return err
		}
	}
	return nil
}

// readRequest reads a payload of n bytes (n < 0: a whole frame, header
// included, as inside a batch) into a slot and starts its handler.
func (c *conn) readRequest(n int, inBatch bool) error {
	s, waited, err := c.reserve()
	if err != nil {
		return err
	}
	// A request that was at hand starts at the clock's last reading, taken
	// no earlier than the previous request's end. One whose reading may
	// have waited, for a slot or for its bytes, reads the clock afresh:
	// else the wait would count as its handler's time and could make fast
	// handlers look slow (see inlineBudget).
	if n < 0 {
		if n, err = c.r.ReadLength(); err != nil {
			return c.readError(err, false)
		}
	}
	fresh := waited || !c.frameBuffered(n)
	if err := c.room(s, n); err != nil {
		return err
	}
	if s.req, err = c.r.ReadPayload(s.req, n); err != nil {
		return c.readError(err, false)
	}
	s.inBatch = inBatch
	s.sp.Reset(span.NewID())
	if fresh {
		s.start = c.clock.now()
	} else {
		s.start = c.clock.recent()
	}
	if c.srv.gauges {
		c.srv.inflight.Add(1)
	}
	c.publish()
	// Run the request here unless handlers are slow and more requests are
	// already at hand: then they run concurrently and reading goes on.
	if c.slow.Load() && c.r.Buffered() > 0 {
		go c.run(s, false)
		return nil
	}
	c.run(s, true)
	return nil
}

// frameBuffered reports whether the next n payload bytes have arrived, so
// that reading them will not block.
func (c *conn) frameBuffered(n int) bool { return n <= c.r.Buffered() }

// awaitMessage waits for the first byte of the next message, flushing any
// answers held back while more requests were at hand.
func (c *conn) awaitMessage() error {
	if c.r.Buffered() > 0 {
		return nil
	}
	c.flushHeld()
	for {
		if c.cfg.IdleTimeout > 0 && c.idle.stale(&c.clock, c.cfg.IdleTimeout) {
			now := c.clock.now()
			if err := c.setReadDeadline(c.clock.at(now, c.cfg.IdleTimeout)); err != nil {
				return err
			}
			c.idle.arm(now)
		}
		_, err := c.r.Peek(1)
		if err == nil {
			c.clock.now() // the requests about to be read start now
			return nil
		}
		// A connection waiting for a slow answer is not idle.
		if isTimeout(err) && !c.isStopping() && c.inFlight() {
			c.idle.disarm()
			continue
		}
		return c.readError(err, true)
	}
}

// armRead sets the read deadline for the frame about to be read, unless it
// has arrived whole, in which case no read will block.
func (c *conn) armRead() error {
	if c.cfg.ReadTimeout <= 0 {
		return nil
	}
	if c.r.NextBuffered() {
		return nil
	}
	c.idle.disarm()
	return c.setReadDeadline(c.clock.at(c.clock.now(), c.cfg.ReadTimeout))
}

func (c *conn) setReadDeadline(t time.Time) error {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	if c.stopping {
		return errStopping
	}
	// Failing to set a deadline means the connection is closing; the read
	// that follows reports how, which is the better error (net.Pipe says
	// ErrClosedPipe here for a peer that closed cleanly).
	_ = c.nc.SetReadDeadline(t)
	return nil
}

// stop makes the reader finish the requests it has whole and then stop:
// any read that would block fails at once.
func (c *conn) stop() {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.stopping = true
	if c.unwait != nil {
		c.unwait()
	}
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
}

func (c *conn) isStopping() bool {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	return c.stopping
}

func (c *conn) inFlight() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ring.n > 0
}

// readError names why reading failed.
func (c *conn) readError(err error, idle bool) error {
	switch {
	case err == io.EOF:
		return io.EOF
	case isTimeout(err) && c.isStopping():
		return errStopping
	case isTimeout(err) && idle:
		return ErrIdleTimeout
	case isTimeout(err):
		return ErrReadTimeout
	}
	return err
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// reserve waits for a free slot: when MaxInFlight requests are unanswered
// the connection is not read, which is what pushes back on the peer.
// waited says whether it had to.
func (c *conn) reserve() (s *slot, waited bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.ring.full() && !c.broken {
		waited = true
		c.cond.Wait()
	}
	if c.broken {
		return nil, waited, c.endErr
	}
	return c.ring.tail(), waited, nil
}

// publish makes a filled slot part of the ring. Only the reader publishes,
// in request order.
func (c *conn) publish() {
	c.mu.Lock()
	c.ring.push()
	c.mu.Unlock()
}

// run calls the handler for s and answers it. inline is true on the
// reader's goroutine, which may then hold answers back while more requests
// are buffered, to write them together.
func (c *conn) run(s *slot, inline bool) {
	began := s.start
	if !inline {
		// A goroutine may wait its turn to run; only the handler's own
		// time says whether handlers are slow.
		began = c.clock.now()
	}
	s.resp, s.err = c.call(s)
	c.chargeAnswer(s)
	end := c.clock.now()
	if slow := end-began > inlineBudget; slow != c.slow.Load() {
		c.slow.Store(slow)
	}
	c.srv.finishRequest(c, s, end-s.start)
	c.finish(s, inline)
}

func (c *conn) call(s *slot) (resp []byte, err error) {
	return c.respond(c.ctx, s)
}

// respond calls the handler for s with ctx, turning a panic into a
// PanicError unless the configuration says otherwise.
func (c *conn) respond(ctx context.Context, s *slot) (resp []byte, err error) {
	if !c.cfg.DisablePanicRecovery {
		defer func() {
			if v := recover(); v != nil {
				err = &PanicError{Value: v, Stack: debug.Stack()}
			}
		}()
	}
	if c.appender == nil {
		return c.srv.Handler.Respond(ctx, s.req, s.sp)
	}
	resp, err = c.appender.RespondAppend(ctx, s.ans[:0], s.req, s.sp)
	if cap(resp) <= maxRetainedAnswer {
		s.ans = resp[:0]
	}
	return resp, err
}

// finish writes the answers at the head of the ring that are ready,
// unless another goroutine is writing: that one will see them. Answers are
// flushed when no more are ready, except that the reader holds them back
// while it has more requests buffered, so a burst costs one write.
//
// finish marks s (if not nil) answered and then writes what is ready.
func (c *conn) finish(s *slot, inline bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s != nil {
		s.done = true
	}
	if c.writing {
		return
	}
	c.writing = true
	defer func() {
		c.writing = false
		c.cond.Broadcast()
	}()
	for {
		k := c.ring.ready()
		if k == 0 {
			if c.broken || c.w.Buffered() == 0 || (inline && c.r.Buffered() > 0) {
				return
			}
			c.mu.Unlock()
			err := c.flush()
			c.mu.Lock()
			if err != nil {
				c.failLocked(err)
			}
			if c.ring.ready() == 0 {
				return
			}
			continue
		}
		if c.broken {
			c.ring.pop(k)
			continue
		}
		c.mu.Unlock()
		written, err := c.writeSlots(k)
		c.mu.Lock()
		c.ring.pop(written)
		if err != nil {
			c.failLocked(err)
		}
		c.cond.Broadcast()
	}
}

// writeSlots writes the first k answers of the ring, which only the writer
// touches until they are popped. It stops at an answer that ends the
// connection, after flushing the ones before it.
func (c *conn) writeSlots(k int) (int, error) {
	for i := range k {
		s := c.ring.at(i)
		if s.batch > 0 {
			if !c.w.Fits(0) {
				c.armWrite()
			}
			if err := c.w.WriteBatchHeader(s.batch); err != nil {
				return i, writeError(err)
			}
			continue
		}
		resp := s.resp
		if s.err != nil {
			var ok bool
			if resp, ok = c.encodeError(s); !ok {
				if ferr := c.flush(); ferr != nil {
					return i, ferr
				}
				return i, handlerError(s.err)
			}
		}
		if !c.w.Fits(len(resp)) {
			c.armWrite()
		}
		if err := c.w.WriteFrame(resp); err != nil {
			return i, writeError(err)
		}
	}
	return k, nil
}

func (c *conn) encodeError(s *slot) ([]byte, bool) {
	if c.cfg.EncodeError == nil {
		return nil, false
	}
	return c.cfg.EncodeError(c.ctx, s.err, s.sp)
}

func handlerError(err error) error {
	if errors.Is(err, ErrHandlerPanic) {
		return err
	}
	return errors.Join(ErrHandler, err)
}

func (c *conn) flush() error {
	c.armWrite()
	return writeError(c.w.Flush())
}

// armWrite sets the write deadline before a write that may block.
func (c *conn) armWrite() {
	if c.cfg.WriteTimeout <= 0 || !c.write.stale(&c.clock, c.cfg.WriteTimeout) {
		return
	}
	now := c.clock.now()
	_ = c.nc.SetWriteDeadline(c.clock.at(now, c.cfg.WriteTimeout))
	c.write.arm(now)
}

func writeError(err error) error {
	if err != nil && isTimeout(err) {
		return ErrWriteTimeout
	}
	return err
}

// flushHeld writes answers the reader held back, before it blocks.
func (c *conn) flushHeld() {
	c.mu.Lock()
	held := !c.writing && c.w.Buffered() > 0
	c.mu.Unlock()
	if held {
		c.finish(nil, false)
	}
}

// end records why reading stopped. Unanswered requests that were read are
// still answered unless the connection is already broken.
func (c *conn) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.endErr == nil {
		c.endErr = err
	}
}

// failLocked stops all writing: the connection can no longer be answered.
func (c *conn) failLocked(err error) {
	if !c.broken {
		c.broken = true
		c.endErr = err
		c.cancel()
		c.cond.Broadcast()
		c.stop()
	}
}

// drain waits until every request read has been answered, or the
// connection broke, then flushes.
func (c *conn) drain() {
	c.mu.Lock()
	for (c.ring.n > 0 || c.writing) && !c.broken {
		c.cond.Wait()
	}
	c.mu.Unlock()
	c.flushHeld()
}

// shutdown begins a graceful end of the connection, for Server.Shutdown:
// a mux connection is sent a go-away, a v1 one stops reading.
func (c *conn) shutdown() {
	if m := c.mux.Load(); m != nil {
		m.sendGoAway()
		return
	}
	c.stop()
}

// closeHard breaks the connection at once, for Server.Close.
func (c *conn) closeHard() { c.evict(ErrServerClosed) }

// evict breaks the connection at once for err.
func (c *conn) evict(err error) {
	c.mu.Lock()
	c.failLocked(err)
	c.mu.Unlock()
	_ = c.nc.Close()
}

// close ends the connection and returns why it ended, nil when the peer
// closed it cleanly or the server shut down.
func (c *conn) close() error {
	c.cancel()
	c.mu.Lock()
	err := c.endErr
	c.mu.Unlock()
	clean := err == io.EOF || err == errStopping
	// A peer that has closed or sent nothing has nothing unread; any other
	// may have sent more, even during Shutdown, and closing on unread
	// bytes would reset the connection and destroy the answers in flight.
	if err != io.EOF && err != ErrServerClosed && err != ErrIdleTimeout {
		c.linger()
	}
	_ = c.nc.Close()
	c.mu.Lock()
	c.ring.end()
	c.mu.Unlock()
	c.srv.connEnded(c, err)
	if clean {
		return nil
	}
	return err
}

// linger half-closes the connection and reads what the peer still sends for
// a moment, so that closing does not reset the connection while it holds
// unread data, which would destroy answers the peer has yet to read.
func (c *conn) linger() {
	type closeWriter interface{ CloseWrite() error }
	cw, ok := c.nc.(closeWriter)
	if !ok {
		return
	}
	if cw.CloseWrite() != nil {
		return
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	// io.Discard reads with pooled 8 KiB buffers: a peer whose frame
	// waited for the memory budget has megabytes queued, and hundreds of
	// them may be closed at once.
	_, _ = io.Copy(io.Discard, c.nc)
}
