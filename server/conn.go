package server

import (
	"container/list"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
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

// conn serves one connection. One goroutine at a time reads requests (the
// reader) and runs each on itself, so a fast request/response exchange
// pays for no hand-off; when a handler it runs outlasts a tick of the
// server's watcher, the reading passes to a fresh goroutine, so that no
// request waits for an earlier one's handler to be read and started.
// Whichever goroutine finishes the oldest unanswered request writes the
// answers that are ready, so there is no writer goroutine to hand answers
// to.
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
	// sinceWait counts the requests (mux: frames) read since the reader
	// last waited for bytes (see waitForBytes).
	sinceWait int

	// acct is the connection's share of the server's memory budget.
	acct *budget.Account
	// appender is the Handler when it is an AppendHandler, tailer when
	// it is a TailHandler and the connection speaks tcpez frames.
	appender AppendHandler
	tailer   TailHandler

	clock clock
	// idle is the reader's idle deadline, write the writer's (guarded by
	// writing).
	idle, write deadline

	// slow says whether handlers on this connection are slow, so that
	// requests already buffered start on goroutines of their own rather
	// than each waiting out the budget.
	slow slowness

	// lead is the token of the last handler the reader started inline;
	// tokens only grow. The reader stores it, one atomic store per
	// request, and the server's watcher reads it: a token that has not
	// changed for a tick may be a handler still running. Whether it is,
	// and whether the watcher took the reading from it, is settled under
	// mu (doneTok, takenTok), which the reader takes anyway to answer.
	lead atomic.Uint64
	// watched: the server's watcher knows this connection (owned by the
	// reader); seen and checked are the leads it saw at its last look and
	// last checked under mu (guarded by the watcher's mu).
	watched       atomic.Bool
	seen, checked uint64
	// held: the reader's last finish held answers back, the next request
	// having arrived whole, so the handler it runs next is watched (see
	// runInline). Owned by the reader.
	held bool
	// batchLeft counts the members of the current batch still to be read.
	// Owned by the reader.
	batchLeft int

	// dlMu orders read-deadline changes with Shutdown's, so that the reader
	// cannot re-arm a deadline that Shutdown has just cut short.
	dlMu     sync.Mutex
	stopping bool
	unwait   context.CancelFunc // ends a wait for the memory budget

	// tlsFailed: the TLS handshake failed (set by handshake, read once the
	// connection ends, on the same goroutine).
	tlsFailed bool
	// authBy is when a connection that must authenticate has to have its
	// credential checked: every read until then is bounded by it (see
	// Auth.Timeout). Set by serve, then owned by the reader.
	authBy time.Time

	// mux is set once the connection speaks the multiplexed mode.
	mux atomic.Pointer[muxConn]
	// negMu makes a preface's acknowledgement and the mux connection's
	// registration in c.mux one step for shutdown (see negotiate).
	negMu sync.Mutex
	// muxVersion is the version negotiated; set before serveMux runs.
	muxVersion uint8

	mu      sync.Mutex
	cond    sync.Cond // signalled when the ring frees slots or the writer stops
	ring    ring
	writing bool  // a goroutine is writing answers
	broken  bool  // answers are no longer written: the connection is ending
	endErr  error // why the connection ends, first reason wins
	ended   bool  // reading has stopped (see writable)
	closed  bool  // the connection is closed; result is what serve returns
	result  error
	// doneTok is the token of the last inline handler the reader answered
	// as the reader; takenTok that of the last handler the watcher took
	// the reading from (see handOff). Tokens grow, so every handler of a
	// token up to takenTok that is not done was taken.
	doneTok, takenTok uint64
	// quiet is the clock reading at which answers were last written with
	// none left in flight, but for those the reader writes as it answers
	// inline: it sets its idle deadline after those anyway. The
	// connection is idle from then (see awaitMessage).
	quiet time.Duration
}

func newConn(s *Server, nc net.Conn) *conn {
	cfg := &s.cfg
	c := &conn{srv: s, cfg: cfg, nc: nc, remote: remoteAddr(nc), peer: peerOf(nc.RemoteAddr()), clock: newClock()}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	c.acct = s.budget.NewAccount()
	c.appender, _ = s.Handler.(AppendHandler)
	if cfg.Codec == nil {
		c.tailer, _ = s.Handler.(TailHandler)
	}
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
// connection ended, nil for a peer that closed cleanly, or errHandedOff
// when the reading passed to another goroutine, which then ends it.
func (c *conn) serve() error {
	err := c.handshake()
	// A connection that must authenticate negotiates first, within its
	// handshake (the credential follows the preface); any other one is
	// done with its handshake before it waits for its first frame.
	mux, auth := false, c.cfg.Auth != nil
	if err == nil && auth {
		c.authBy = time.Now().Add(c.cfg.Auth.timeout())
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
	if err == nil {
		err = c.read()
	}
	if err == errHandedOff {
		// Another goroutine reads, and ends the connection; this one,
		// its handler done, need not wait for that.
		return err
	}
	return c.endServing(err)
}

// serveAndWait is serve for ServeConn, which returns only once the
// connection has ended, whichever goroutine ended it.
func (c *conn) serveAndWait() error {
	if err := c.serve(); err != errHandedOff {
		return err
	}
	return c.awaitClosed()
}

// endServing ends the connection once reading has stopped for err: the
// requests read are answered, then it closes. The goroutine that reads
// last does it, so that a handler stuck on the connection's first
// goroutine does not keep the connection open once it must close.
func (c *conn) endServing(err error) error {
	c.end(err)
	c.drain()
	err = c.close()
	c.mu.Lock()
	c.closed, c.result = true, err
	c.cond.Broadcast()
	c.mu.Unlock()
	return err
}

// read is the reader's loop. It returns why reading ended, or errHandedOff
// when the reading passed to another goroutine.
func (c *conn) read() error {
	for {
		if err := c.readNext(); err != nil {
			return err
		}
	}
}

// handOff is called by the watcher when the reader's lead has been tok
// for a tick. If the handler of token tok is still running, the reading
// passes to a fresh goroutine, which reads and starts the requests behind
// that handler while it runs on; the handler's request, which the reader
// publishes only as it answers it, is published first.
func (c *conn) handOff(tok uint64) bool {
	c.mu.Lock()
	// Tokens only grow, and the reader answers under mu: the reader is in
	// the handler of tok if it started none since and answered none of
	// tok's or later.
	if c.lead.Load() != tok || c.doneTok >= tok || c.takenTok >= tok {
		c.mu.Unlock()
		return false
	}
	c.takenTok = tok
	// The handler's slot is the one after the ring's last, which push
	// makes its last (tail would move an empty ring's head).
	if c.ring.at(c.ring.n).place != nil {
		// The handler runs on its request in the read buffer: the new
		// reader reads into a buffer of its own.
		c.r.Detach()
	}
	c.ring.push()
	c.mu.Unlock()
	go c.takeOver()
	return true
}

func (c *conn) takeOver() {
	if err := c.read(); err != errHandedOff {
		_ = c.endServing(err)
	}
}

// awaitClosed waits for whichever goroutine reads last to close the
// connection, and returns why it ended, as serve does.
func (c *conn) awaitClosed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for !c.closed {
		c.cond.Wait()
	}
	return c.result
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
		if c.isStopping() {
			// Shutdown, Close or an eviction cut it short, not a TLS
			// failure: an eviction's ErrHandshakeEvicted was recorded
			// first and is what the connection ends with.
			return errStopping
		}
		// Counted as errors.tls when the connection ends (logConnEnd),
		// and only there.
		c.tlsFailed = true
		return notTLS(err)
	}
	return nil
}

// tlsAlert is a TLS fatal alert record, unexpected_message: what a TLS
// server answers to bytes that are not TLS, and what tells a plain tcpez
// client that the port speaks TLS (frame.Sniff).
var tlsAlert = []byte{21, 3, 3, 0, 2, 2, 10}

// notTLS names a handshake that failed because the client does not speak
// TLS at all, and sends that client a TLS alert to say so.
func notTLS(err error) error {
	var rhe tls.RecordHeaderError
	if !errors.As(err, &rhe) || rhe.Conn == nil {
		return err
	}
	_ = rhe.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = rhe.Conn.Write(tlsAlert)
	if frame.Sniff(frame.Header(binary.BigEndian.Uint32(rhe.RecordHeader[:]))) == frame.HTTP {
		return fmt.Errorf("%w (%w)", ErrClientSpeaksHTTP, err)
	}
	return fmt.Errorf("%w (%w)", ErrClientNotTLS, err)
}

// readNext reads one request and starts it: a single frame, or the next
// member of a batch (its header is a slot of its own).
func (c *conn) readNext() error {
	c.sinceWait++
	if c.batchLeft > 0 {
		c.batchLeft--
		if err := c.armRead(); err != nil {
			return err
		}
		return c.readRequest(-1, true)
	}
	if err := c.awaitMessage(); err != nil {
		return err
	}
	n, err := c.armReadLen()
	if err != nil {
		return err
	}
	if c.cfg.Codec != nil {
		if n < 0 {
			if n, err = c.cfg.Codec.RequestLen(c.r); err != nil {
				if errors.Is(err, frame.ErrProtocol) {
					c.answerUnreadable(err)
				}
				return c.readError(err, false)
			}
		}
		return c.readRequest(n, false)
	}
	h, err := c.r.ReadHeader()
	if err != nil {
		return foreign(c.readError(err, false))
	}
	if !h.IsBatch() {
		return c.readRequest(h.Len(), false)
	}
	marker, _, err := c.reserve()
	if err != nil {
		return err
	}
	marker.batch = h.Count()
	c.batchLeft = h.Count()
	// The header goes out with the batch's first answer (see writable).
	c.finish(marker, true, 0)
	return nil
}

// readRequest reads a payload of n bytes (n < 0: a whole frame, header
// included, as inside a batch) into a slot and starts its handler.
func (c *conn) readRequest(n int, inBatch bool) error {
	s, waited, err := c.reserve()
	if err != nil {
		return err
	}
	if waited && !c.restBuffered(n) {
		// The wait for a slot was the server's backpressure, not the
		// peer's slowness: the rest of the frame has a whole ReadTimeout,
		// as after a wait for the memory budget (acquire). A rest that has
		// arrived needs none, and is read even once Shutdown stops the
		// reading, which rearmRead would refuse.
		if err := c.rearmRead(); err != nil {
			return err
		}
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
	// Run the request here unless handlers are slow and more requests are
	// already at hand: then they run concurrently and reading goes on.
	// (Read once: other handlers' goroutines change it.)
	slow := c.slow.is()
	if err := c.readPayload(s, n, !fresh && (!slow || c.r.Buffered() == n)); err != nil {
		return err
	}
	s.inBatch = inBatch
	if fresh {
		c.begin(s, c.clock.now())
	} else {
		c.begin(s, c.clock.recent())
	}
	if slow && c.r.Buffered() > 0 {
		c.publish()
		go s.runner(c)()
		return nil
	}
	return c.runInline(s)
}

// maxInPlace is the largest request run from the read buffer in place.
// Its answer, if it lies in the request, is then smaller than the
// answers a mux connection writes by reference (refAnswerMin) after the
// reader has read on: those it copies.
const maxInPlace = refAnswerMin

// readPayload reads the request of n bytes into s: in place in the read
// buffer when inPlace says that its bytes are at hand and that s will run
// inline, as a burst's requests do, which saves copying every request (see
// slot.place); else into s's buffer.
func (c *conn) readPayload(s *slot, n int, inPlace bool) error {
	if inPlace && n <= maxInPlace {
		s.req, _ = c.r.Take(n) // cannot fail: the bytes are buffered
		s.place = s.req
		return nil
	}
	if err := c.room(s, n); err != nil {
		return err
	}
	var err error
	if s.req, err = c.r.ReadPayload(s.req, n); err != nil {
		return c.readError(err, false)
	}
	return nil
}

// begin starts the request of slot s at the clock reading start: its
// span, and the in-flight gauge.
func (c *conn) begin(s *slot, start time.Duration) {
	s.sp.Reset(span.NewID())
	s.start = start
	if c.srv.gauges {
		c.srv.inflight.Add(1)
	}
}

// answerUnreadable answers, in its turn, the request a codec could not
// read for err, with EncodeError's answer to CloseAfter(err); the
// connection then closes, as it does for err alone when there is no
// answer or the stream ended.
func (c *conn) answerUnreadable(err error) {
	// A stream that ended inside a request has nobody to tell.
	if c.cfg.EncodeError == nil || errors.Is(err, io.ErrUnexpectedEOF) {
		return
	}
	s, _, rerr := c.reserve()
	if rerr != nil {
		return
	}
	c.begin(s, c.clock.now())
	c.publish()
	c.complete(s, nil, CloseAfter(err), s.start, 0)
}

// frameBuffered reports whether the next n payload bytes have arrived, so
// that reading them will not block.
func (c *conn) frameBuffered(n int) bool { return n <= c.r.Buffered() }

// restBuffered reports whether what readRequest has yet to read of its
// request has arrived: n payload bytes, or for n < 0 a whole frame.
func (c *conn) restBuffered(n int) bool {
	if n < 0 {
		return c.r.NextBuffered()
	}
	return c.frameBuffered(n)
}

// nextBuffered reports whether the next message has arrived whole and,
// with a codec, its length (-1 without one).
func (c *conn) nextBuffered() (int, bool) {
	if c.cfg.Codec != nil {
		return c.cfg.Codec.Whole(c.r)
	}
	return -1, c.r.NextBuffered()
}

// awaitMessage waits for the first byte of the next message, flushing any
// answers held back while more requests were at hand.
func (c *conn) awaitMessage() error {
	if c.r.Buffered() > 0 {
		return nil
	}
	c.flushHeld()
	if err := c.armWait(); err != nil {
		return err
	}
	for first := true; ; first = false {
		_, err := c.waitForBytes(first)
		if err == nil {
			c.clock.now() // the requests about to be read start now
			return nil
		}
		if !isTimeout(err) || c.isStopping() {
			return c.readError(err, true)
		}
		busy, quiet := c.activity()
		switch {
		case busy:
			// A connection waiting for a slow answer is not idle.
			err = c.armIdle(c.clock.now())
		case quiet > c.idle.armedAt:
			// Its last answer went out after the deadline was set: it
			// has been idle only since.
			err = c.armIdle(quiet)
		default:
			return c.readError(err, true)
		}
		if err != nil {
			return err
		}
	}
}

// armWait sets the read deadline for a wait between messages, in either
// protocol: the idle deadline, unless one set lately stands (setting a
// deadline touches a runtime timer, and this runs once per read); with no
// IdleTimeout, none. The
// deadline left from reading a frame (ReadTimeout, rearmRead) or from the
// handshake (Auth.Timeout) must not end a wait between messages: it closed
// idle connections of servers without IdleTimeout, whose clients keep
// pooled connections open (memcached's do), ReadTimeout after a frame that
// came in pieces, and made a reader waiting for a slow answer spin on
// the expired deadline. Whatever set such a deadline disarmed c.idle.
func (c *conn) armWait() error {
	switch {
	case c.cfg.IdleTimeout > 0:
		if c.idle.stale(&c.clock, c.cfg.IdleTimeout) {
			return c.armIdle(c.clock.now())
		}
	case !c.idle.armed:
		if err := c.setReadDeadline(time.Time{}); err != nil {
			return err
		}
		c.idle.arm(c.clock.recent())
	}
	return nil
}

// armIdle sets the idle deadline, IdleTimeout after the clock reading at.
func (c *conn) armIdle(at time.Duration) error {
	if c.cfg.IdleTimeout <= 0 {
		return nil
	}
	if err := c.setReadDeadline(c.clock.at(at, c.cfg.IdleTimeout)); err != nil {
		return err
	}
	c.idle.arm(at)
	return nil
}

// wholeAtHand reports whether the next message has arrived whole.
func (c *conn) wholeAtHand() bool {
	_, ok := c.nextBuffered()
	return ok
}

// armRead prepares for reading the frame about to be read unless it has
// arrived whole, in which case no read will block. Otherwise answers held
// back go out first, so that no finished answer waits for a later
// request's bytes, and the read deadline is set.
func (c *conn) armRead() error {
	_, err := c.armReadLen()
	return err
}

// armReadLen is armRead returning the codec's length of a request that
// has arrived whole, -1 otherwise (and always without a codec).
func (c *conn) armReadLen() (int, error) {
	if n, ok := c.nextBuffered(); ok {
		return n, nil
	}
	c.flushHeld()
	return -1, c.rearmRead()
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

// activity reports whether requests are in flight and, if not, since when
// (see quiet).
func (c *conn) activity() (busy bool, quiet time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ring.n > 0, c.quiet
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
	if c.ring.full() && !c.writing && c.w.Buffered() > 0 {
		// Answers the reader held back go out before it waits.
		c.mu.Unlock()
		c.flushHeld()
		c.mu.Lock()
	}
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
// in request order. A request the reader runs inline is published only as
// it is answered, in the same critical section (see finish), unless the
// reading passes on meanwhile (see takeOver).
func (c *conn) publish() {
	c.mu.Lock()
	c.ring.push()
	c.mu.Unlock()
}

// runInline runs s on the reader's goroutine. Should the handler run for
// long (see watchTick), the server's watcher makes another goroutine the
// reader, and runInline, once the handler returns, answers s and reports
// errHandedOff.
//
// A connection of one request at a time (MaxInFlight 1) is watched only
// with HandlerTimeout, or from a handler it starts behind answers finish
// held back (held) on: a new reader would wait for the slow handler's slot
// before it could start anything, so the watcher's ticks (one per
// watchTick while any watched connection is busy) would otherwise buy it
// nothing. Held answers need it: only a reader other than the handler's
// goroutine can flush them (reserve does, before it waits for the slot),
// else a slow handler would delay the answers before its own. With
// HandlerTimeout the ticks buy the timeout itself: expire can answer only
// a published request, and only another reader can read the next request
// or end the connection. Flushing held answers before each handler run
// unwatched instead cost a write per answer of a pipelined burst: 6 to 8
// times as long per request (BenchmarkEchoPipelined64x16BMaxInFlight1).
func (c *conn) runInline(s *slot) error {
	// held is read and cleared before the token is stored: a reader the
	// watcher hands the reading to is ordered after that store, not after
	// what follows it.
	watch := c.held || c.cfg.MaxInFlight > 1 || c.cfg.HandlerTimeout > 0
	c.held = false
	tok := c.lead.Load() + 1
	c.lead.Store(tok)
	if watch {
		c.srv.watch.started(c)
	}
	resp, err := c.call(s)
	s.leavePlace()
	if !c.complete(s, resp, err, s.start, tok) {
		return errHandedOff
	}
	return nil
}

// run calls the handler for s on a goroutine of its own and answers it.
func (c *conn) run(s *slot) {
	// A goroutine may wait its turn to run; only the handler's own time
	// says whether handlers are slow.
	began := c.clock.now()
	resp, err := c.call(s)
	c.complete(s, resp, err, began, 0)
}

// complete records the handler's outcome for s, whose handler began at the
// clock reading began, and answers it. tok is the token of a handler the
// reader ran inline (0 for one on a goroutine of its own); complete then
// reports whether its goroutine is still the reader.
func (c *conn) complete(s *slot, resp []byte, err error, began time.Duration, tok uint64) bool {
	end := c.clock.now()
	c.slow.note(end - began)
	wanted, timedOut := c.claim(s)
	if !wanted {
		// expire answered for s, so s was published: the reading had
		// passed on.
		return false
	}
	if timedOut {
		c.srv.count(StatErrHandlerTimeout)
		resp, err = nil, errHandlerTimeout
	}
	s.resp, s.err = resp, err
	if timedOut {
		s.tail = nil
	}
	c.chargeAnswer(s, s.resp, s.tail)
	c.srv.finishRequest(c, s, end-s.start)
	return c.finish(s, tok != 0, tok)
}

func (c *conn) call(s *slot) (resp []byte, err error) {
	ctx := c.ctx
	if d := c.cfg.HandlerTimeout; d > 0 {
		hctx, cancel := context.WithTimeoutCause(c.ctx, d, ErrHandlerTimeout)
		x := &expiry{ctx: hctx, s: s}
		s.expiry = x
		stop := context.AfterFunc(hctx, func() { c.expire(x) })
		defer func() {
			stop()
			cancel()
		}()
		ctx = hctx
	}
	return c.respond(ctx, s)
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
	// The handler's context carries its span (span.FromContext), kept in
	// the slot so that no request allocates one. It is replaced, never
	// changed, when ctx is not the last one's: a context derived from the
	// old one may still be watching it.
	if s.ctx == nil || s.ctx.Context != ctx || s.ctx.Span != s.sp {
		s.ctx = &span.Context{Context: ctx, Span: s.sp}
	}
	if c.appender == nil {
		return c.srv.Handler.Respond(s.ctx, s.req, s.sp)
	}
	if c.tailer != nil {
		resp, s.tail, err = c.tailer.RespondTail(s.ctx, c.answerDst(s), s.req, s.sp)
		if err != nil {
			s.tail = nil
		}
	} else {
		resp, err = c.appender.RespondAppend(s.ctx, c.answerDst(s), s.req, s.sp)
	}
	if cap(resp) <= maxRetainedAnswer {
		s.ans = resp[:0]
	}
	return resp, err
}

// errHandlerTimeout is what a request whose handler outlasted
// HandlerTimeout is answered as failing with.
var errHandlerTimeout = fmt.Errorf("%w (%w)", ErrHandlerTimeout, context.DeadlineExceeded)

// expiry settles, for one request under HandlerTimeout, whether its
// handler's outcome is answered or the timeout is. It is the request's own,
// so a late timer never touches the slot's next request.
type expiry struct {
	ctx context.Context // the handler's
	s   *slot
	// claimed: the handler returned and its goroutine answers; expired:
	// expire answered without it. The first to set one, under the
	// connection's mu, decides.
	claimed, expired bool
}

func (x *expiry) passed() bool { return context.Cause(x.ctx) == ErrHandlerTimeout }

// expire answers x's request, whose handler outlasted HandlerTimeout, as
// failing with errHandlerTimeout, without waiting for the handler: its
// slot leaves the ring, its buffers and span staying with the handler, and
// a fresh slot carries the answer in its place.
func (c *conn) expire(x *expiry) {
	if !x.passed() {
		return // the connection ended first
	}
	c.mu.Lock()
	// Unclaimed, the request is unanswered and its slot still in the ring.
	s := x.s
	i := c.ring.index(s)
	if x.claimed || c.broken || i < 0 {
		c.mu.Unlock()
		return
	}
	x.expired = true
	ns := &slot{sp: span.New(), err: errHandlerTimeout, inBatch: s.inBatch, start: s.start}
	ns.sp.Reset(s.sp.ID())
	c.ring.replace(i, ns)
	c.mu.Unlock()
	c.srv.count(StatErrHandlerTimeout)
	c.srv.finishRequest(c, ns, c.clock.now()-ns.start)
	c.finish(ns, false, 0)
}

// claim settles the outcome of s's handler under HandlerTimeout: wanted is
// false once expire answered for it, and s is then released; timedOut, that the timeout passed
// before the handler returned, which is then what is answered, whatever
// the handler returned.
func (c *conn) claim(s *slot) (wanted, timedOut bool) {
	x := s.expiry
	if x == nil {
		return true, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if x.expired {
		// s left the ring when expire answered for it: its buffers and
		// its share of the memory budget go back now that the handler is
		// done with them.
		s.returnLent(c.ring.large, c.ring.acct)
		s.reqBuffer.release(c.ring.large, c.ring.acct, false)
		return false, false
	}
	x.claimed = true
	return true, x.passed()
}

// finish writes the answers at the head of the ring that are ready,
// unless another goroutine is writing: that one will see them. Answers are
// flushed when no more are ready, except that the reader holds them back
// while the next request has arrived whole, so a burst costs one write;
// it flushes them before any read that may block (armRead, awaitMessage,
// reserve), and should the next request's handler run long, the reader
// the watcher hands the reading to does (see runInline).
//
// finish marks s (if not nil) answered and then writes what is ready.
// inline says that the reader calls it for s, its request at the ring's
// tail, which it then publishes, so that a request run inline takes the
// lock once; tok, if not 0, is the token of the handler it ran for s.
// finish reports, for inline, whether the caller is still the reader: not
// when the watcher took the reading from that handler (and published s).
func (c *conn) finish(s *slot, inline bool, tok uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s != nil {
		switch {
		case !inline:
		case tok != 0 && tok <= c.takenTok:
			// The watcher took the reading from this handler (and
			// published s); a later reader's may have been taken since.
			inline = false
		default:
			c.ring.push()
			if tok != 0 {
				c.doneTok = tok
			}
		}
		s.done = true
		// s, the ring's last slot if inline, is written now only if
		// nobody else writes and every slot before it is answered.
		if s.place != nil && inline && (c.writing || c.writable() < c.ring.n) {
			s.keepAnswer()
		}
		s.place = nil
	}
	if c.writing {
		return inline
	}
	c.writing = true
	defer func() {
		c.writing = false
		if !inline && c.ring.n == 0 && c.cfg.IdleTimeout > 0 {
			// The reader may be waiting for a message with an idle
			// deadline set while these answers were due: idleness
			// starts now.
			c.quiet = c.clock.now()
		}
		c.cond.Broadcast()
	}()
	for {
		k := c.writable()
		if k == 0 {
			if c.broken || c.w.Buffered() == 0 {
				return inline
			}
			if inline && c.wholeAtHand() {
				c.held = true
				return inline
			}
			c.mu.Unlock()
			err := c.flush()
			c.mu.Lock()
			if err != nil {
				c.failLocked(err)
			}
			if c.writable() == 0 {
				return inline
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

// writable is how many slots at the head of the ring finish may write:
// the finished ones, less a batch header at their end while reading goes
// on and its first member has a slot to be read into. The header waits
// for the batch's first answer and goes out in its write: alone it tells
// the client nothing, and a write of its own cost a Pipeline×64 of 4 KiB a
// syscall per batch on each side. In a full ring (with MaxInFlight 1, the
// header alone) held back, it would keep its members from ever being read.
// Called with mu.
func (c *conn) writable() int {
	k := c.ring.ready()
	if k > 0 && c.ring.at(k-1).batch > 0 && !c.ended && !c.broken && !c.ring.full() {
		k--
	}
	return k
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
			if resp, ok = c.encodeError(s); !ok || isCloseAfter(s.err) {
				return i, c.lastAnswer(s, resp, ok)
			}
		}
		if s.tail != nil {
			if err := c.writeTailAnswer(resp, s.tail); err != nil {
				return i, err
			}
			continue
		}
		if err := c.writeSlotAnswer(resp); err != nil {
			return i, err
		}
	}
	return k, nil
}

func (c *conn) writeSlotAnswer(resp []byte) error {
	if !c.w.Fits(len(resp)) {
		c.armWrite()
	}
	return writeError(c.writeAnswer(resp))
}

// writeTailAnswer writes a TailHandler's answer, head then tail, as one
// frame; only tcpez framing has them.
func (c *conn) writeTailAnswer(head, tail []byte) error {
	if !c.w.Fits(len(head) + len(tail)) {
		c.armWrite()
	}
	return writeError(c.w.WriteFrameTail(head, tail))
}

// lastAnswer writes the answer of s, whose error ends the connection, if
// it has one, and flushes; it returns the error that ends the writing.
func (c *conn) lastAnswer(s *slot, resp []byte, answered bool) error {
	if answered {
		if err := c.writeSlotAnswer(resp); err != nil {
			return err
		}
	}
	if err := c.flush(); err != nil {
		return err
	}
	return handlerError(s.err)
}

func (c *conn) writeAnswer(resp []byte) error {
	if c.cfg.Codec != nil {
		return c.cfg.Codec.WriteAnswer(c.w, resp)
	}
	return c.w.WriteFrame(resp)
}

func (c *conn) encodeError(s *slot) ([]byte, bool) {
	if c.cfg.EncodeError == nil || (errors.Is(s.err, ErrCloseConnection) && !isCloseAfter(s.err)) {
		return nil, false
	}
	return c.cfg.EncodeError(c.ctx, s.err, s.sp)
}

func handlerError(err error) error {
	if errors.Is(err, ErrHandlerPanic) || errors.Is(err, ErrCloseConnection) {
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
		c.finish(nil, false, 0)
	}
}

// end records why reading stopped. Unanswered requests that were read are
// still answered unless the connection is already broken.
func (c *conn) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
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
	// A batch header read last waits for an answer that may never come
	// (see writable): written now, it goes before the close, as it did
	// when headers went out at once.
	c.finish(nil, false, 0)
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
	c.negMu.Lock()
	m := c.mux.Load()
	if m == nil {
		c.stop()
	}
	c.negMu.Unlock()
	if m != nil {
		m.sendGoAway()
	}
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
	c.srv.watch.forget(c)
	c.mu.Lock()
	err := c.endErr
	c.mu.Unlock()
	clean := err == io.EOF || err == errStopping || cleanClose(err)
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
