package server

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/span"
)

// goAwayGrace is how long a mux connection that was sent a go-away and has
// answered all its calls waits for its client to close it, so that a call
// the client sent before it read the go-away is refused, not lost.
const goAwayGrace = time.Second

// maxKeptWriteBuffer bounds the write buffers a mux connection keeps.
const maxKeptWriteBuffer = 256 << 10

// negotiate tells a mux client from a v1 one by its first frame (see
// docs/PROTOCOL.md, "Negotiation") and acknowledges a preface. It consumes
// nothing of a v1 client's first frame and waits only for bytes that
// frame's own header announces.
func (c *conn) negotiate() (bool, error) {
	if c.cfg.V1Only || c.cfg.Codec != nil {
		return false, nil // a Codec speaks its own protocol, with no preface
	}
	if err := c.awaitFirst(); err != nil {
		return false, err
	}
	// With Auth, the preface is on the way to the credential: the
	// deadline awaitFirst armed (Auth.Timeout) bounds it, not a fresh
	// ReadTimeout.
	if c.cfg.Auth == nil {
		if err := c.armRead(); err != nil {
			return false, err
		}
	}
	h, err := c.r.PeekHeader()
	if err != nil || h != frame.PrefaceSize {
		return false, c.timedOut(err) // else the v1 loop reads and reports it
	}
	p, err := c.r.Peek(frame.HeaderSize + frame.PrefaceSize)
	// The peek may have waited for the frame's bytes: a v1 request timed
	// from the clock's last reading would count the wait as its own.
	c.clock.now()
	if err != nil {
		return false, c.timedOut(err)
	}
	version, ok := frame.IsPreface(p[frame.HeaderSize:])
	if !ok {
		return false, nil
	}
	_ = c.r.Discard(len(p)) // cannot fail: Peek buffered them
	c.muxVersion = min(version, frame.MuxVersion)
	ack := frame.Ack{
		Version:      c.muxVersion,
		MaxInFlight:  uint32(c.cfg.MaxInFlight),
		MaxFrameSize: uint32(c.maxFrame()),
	}
	if c.cfg.Auth == nil {
		// Acknowledged and registered in one step for shutdown: a
		// Shutdown in between found no mux connection and stopped the
		// reading as for v1, and the client, told it speaks mux, got EOF
		// where a go-away was due. With Auth the go-away may not come
		// before the credential's answer, so serveMux registers it then.
		c.negMu.Lock()
		defer c.negMu.Unlock()
	}
	if err := c.w.WriteFrame(frame.AppendAck(nil, ack)[frame.HeaderSize:]); err != nil {
		return false, err
	}
	if err := c.flush(); err != nil {
		return false, err
	}
	if c.cfg.Auth == nil {
		c.mux.Store(c.newMux())
	}
	c.srv.count(StatConnsMux)
	return true, nil
}

// timedOut reports a peek of negotiate that ran out of ReadTimeout as the
// v1 loop would, and nil for any other error, which that loop then reads
// and reports: left to it, the timeout was armed again, and a first frame
// that stalled had twice ReadTimeout to arrive.
func (c *conn) timedOut(err error) error {
	if err == nil || !isTimeout(err) {
		return nil
	}
	if c.cfg.Auth != nil && !c.isStopping() {
		return c.authTimedOut()
	}
	return foreign(c.readError(err, false))
}

// awaitFirst waits for the first byte of a connection: as for any message,
// or, when the connection must authenticate, until its Auth.Timeout runs
// out (c.authBy), a deadline it leaves armed for the rest of the way to
// the credential.
func (c *conn) awaitFirst() error {
	if c.cfg.Auth == nil {
		return c.awaitMessage()
	}
	if err := c.setReadDeadline(c.authBy); err != nil {
		return err
	}
	if _, err := c.r.Peek(1); err != nil {
		if isTimeout(err) && !c.isStopping() {
			return c.authTimedOut()
		}
		return c.readError(err, true)
	}
	return nil
}

// authTimedOut counts and names a connection whose Auth.Timeout ran out
// before its credential was read.
func (c *conn) authTimedOut() error {
	c.srv.count(StatErrAuth)
	return fmt.Errorf("%w: no credential within the time allowed", ErrUnauthenticated)
}

func (c *conn) maxFrame() int {
	if c.cfg.Limits.MaxFrameSize > 0 {
		return c.cfg.Limits.MaxFrameSize
	}
	return frame.DefaultMaxFrameSize
}

// muxConn serves a connection in the multiplexed mode: its goroutine reads
// frames, each request runs on a goroutine of its own, and whichever
// goroutine has frames to send writes them, with those that others add
// meanwhile, so that answers go out as soon as they are ready and in few
// writes.
//
// The engine knows calls by id and their life (running, answered,
// cancelled, refused); the frames themselves are the frame package's. A
// second id-based wire format (MessagePack-RPC) would swap readFrame and
// the append calls for its own and keep the rest; see docs/DESIGN.md.
type muxConn struct {
	*conn
	out statsWriter

	mu    sync.Mutex
	idle  sync.Cond // signalled when the last running call or a write ends
	calls map[uint32]*muxCall
	free  []*muxCall
	// admitted counts the calls accepted and not yet ended: running is
	// those with a handler, parked those waiting for one because
	// MaxInFlight handlers run.
	admitted int
	running  int
	parked   []*muxCall
	nparked  atomic.Int64 // len(parked), for the reader to check unlocked
	wbuf     []byte       // frames waiting to be written
	// wbufHeld is the bytes of the memory budget charged for the answers
	// in wbuf, released once they are written (see appendAnswerLocked).
	wbufHeld int64
	spare    []byte
	// refs are the large answers queued by reference, in wbuf's order
	// (see mux_refs.go); spareRefs and vec are kept for the next write.
	refs      []refAnswer
	spareRefs []refAnswer
	vec       [][]byte
	writing   bool
	broken    bool // answers are dropped: the connection is ending
	goAway    bool // a go-away was sent: requests are refused
	gone      bool // calls give their buffers and budget back as they end
	// graceEnd is when the go-away's grace ends; zero until it starts
	// (see startGraceLocked). It starts once: a frame read meanwhile does
	// not start it again, or a client that kept sending after the go-away
	// would keep the connection, and Shutdown, for as long as it sent.
	graceEnd time.Time

	// slow says whether handlers are slow: calls then go to workers
	// rather than run on the reader's goroutine.
	slow slowness
	// inline is the call the reader runs itself, if any, and inlineTok
	// the token it published for it in conn.lead, which the server's
	// watcher looks at (see handOff). An inline call is not in calls:
	// while it runs, nobody reads a frame that could name it; it is
	// added as the reading passes on. reader counts the times the
	// reading passed on: a goroutine that ran a handler inline reads on
	// only if it has not moved.
	inline    *muxCall
	inlineTok uint64
	reader    uint64
	work      chan *muxCall // to idle workers
	quit      chan struct{} // closed when the connection has ended
	ended     chan error    // serve's result, from a later reader
	stopWatch func() bool

	// Traffic the server starts (version 2; see push.go): remote is the
	// connection's handle, outCalls its calls to the client by id.
	remote      *Remote
	outCalls    map[uint32]*Future
	nextOut     uint32
	flushQueued bool        // a goroutine is on its way to write what was pushed
	keepOpen    atomic.Bool // see Remote.KeepOpen

	// streams holds the client's open streams by id (version 3; see
	// stream.go). Guarded by mu.
	streams map[uint32]*Stream
}

// muxCall is one request on its way from being read to its answer.
type muxCall struct {
	slot
	id uint32
	// answered is set once the call's answer or error has been queued,
	// possibly before its handler returns (a cancel is answered at once).
	answered bool
	// ctx is reused only while no handler asked for its Done channel; see
	// callCtx.
	ctx *callCtx
	// limit tells a HandlerTimeout expiry which run of mc it was set for
	// (see limitCall). Guarded by muxConn.mu.
	limit uint64
	// unsent is set while the call's answer, queued by reference, waits
	// to be written: the writer puts the call back then.
	unsent bool
}

func (c *conn) serveMux() error {
	m := c.mux.Load()
	if m == nil {
		m = c.newMux()
		c.mux.Store(m)
	}
	m.stopWatch = context.AfterFunc(c.ctx, m.cancelAll)
	if ended, err := m.readLoop(); ended {
		return err
	}
	// The reading passed to another goroutine (see takeOver), which ends
	// the connection; ServeConn returns only then.
	return <-m.ended
}

// newMux makes the mux side of c, once its preface is acknowledged.
func (c *conn) newMux() *muxConn {
	m := &muxConn{
		conn:  c,
		out:   statsWriter{c.nc, c.cfg.Stats},
		calls: make(map[uint32]*muxCall),
		work:  make(chan *muxCall),
		ended: make(chan error, 1),
		quit:  make(chan struct{}),
	}
	m.idle.L = &m.mu
	if c.muxVersion >= 2 {
		m.remote = newRemote(m)
		c.ctx = context.WithValue(c.ctx, remoteKey{}, m.remote)
	}
	return m
}

// errHandedOff tells a goroutine that ran a handler inline that the
// reading has passed to another goroutine meanwhile.
var errHandedOff = errors.New("tcpez/server: reading handed off")

// readLoop reads frames until the connection ends, and then ends it
// (ended true, with serve's result), or until the reading passes to
// another goroutine (ended false).
func (m *muxConn) readLoop() (ended bool, result error) {
	var err error
	for err == nil {
		err = m.readFrame()
	}
	if err == errHandedOff {
		return false, nil
	}
	m.stopWatch()
	m.finish(err)
	close(m.quit)
	m.end(err)
	return true, m.close()
}

// handOff is called by the server's watcher when the token the reader
// published for an inline handler, tok, has stood still for a tick (see
// watchTick): if that handler still runs, the reading passes on.
func (m *muxConn) handOff(tok uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inline == nil || m.inlineTok != tok {
		return false // the handler ended first
	}
	return m.takeOverLocked()
}

// takeOver passes the reading on if mc is the call the reader runs
// inline: its handler is about to wait (see callCtx.onWait).
func (m *muxConn) takeOver(mc *muxCall) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inline == mc {
		m.takeOverLocked()
	}
}

// takeOverLocked runs when a handler that the reader runs inline is slow:
// a new goroutine takes the reading over, so that the calls behind it are
// not held up (no head-of-line blocking), and calls run on goroutines of
// their own until handlers are fast again.
func (m *muxConn) takeOverLocked() bool {
	if m.broken {
		return false
	}
	// The goroutine in the handler is the reader no more: it sees reader
	// moved on, and the new reader is not inline. Its call becomes one a
	// cancel frame may name, unless it was answered (HandlerTimeout).
	if !m.inline.answered {
		m.calls[m.inline.id] = m.inline
	}
	if m.inline.place != nil {
		// The handler runs on its request in the read buffer: the new
		// reader reads into a buffer of its own.
		m.r.Detach()
	}
	m.reader++
	m.inline = nil
	m.slow.set()
	go func() {
		if ended, err := m.readLoop(); ended {
			m.ended <- err
		}
	}()
	return true
}

// dispatch runs mc on an idle worker of the connection, or a new one.
// Workers stay for the connection's life, so that calls do not each pay
// for a goroutine; there are at most as many as calls ever ran at once.
func (m *muxConn) dispatch(mc *muxCall) {
	select {
	case m.work <- mc:
	default:
		go m.worker(mc)
	}
}

func (m *muxConn) worker(mc *muxCall) {
	for {
		m.run(mc)
		select {
		case mc = <-m.work:
		case <-m.quit:
			return
		}
	}
}

// readFrame reads one frame and acts on it.
func (m *muxConn) readFrame() error {
	m.sinceWait++
	m.awaitRoom()
	if err := m.awaitFrame(); err != nil {
		return err
	}
	if err := m.armRead(); err != nil {
		return err
	}
	h, err := m.r.ReadHeader()
	if err != nil {
		if se, ok := errors.AsType[*frame.SizeError](err); ok && !se.Batch {
			return m.skipLarge(h.Len(), err)
		}
		return m.readError(err, false)
	}
	switch {
	case h.IsBatch():
		return m.protocolError(fmt.Errorf("%w: a batch header in the multiplexed mode", frame.ErrNegativeLength))
	case h.Len() < frame.MuxHeaderSize:
		return m.protocolError(fmt.Errorf("%w: %d bytes, shorter than its header", frame.ErrMuxMalformed, h.Len()))
	}
	f, err := m.readMuxHeader(h.Len())
	if err != nil {
		return err
	}
	switch f.Kind {
	case frame.KindRequest:
		return m.request(f.ID, h.Len()-frame.MuxHeaderSize)
	case frame.KindCancel:
		why := frame.CodeCancelled
		if n := h.Len() - frame.MuxHeaderSize; n == 2 {
			p, err := m.r.Peek(2)
			if err != nil {
				return m.readError(frame.Truncated(err), false)
			}
			why = frame.Code(uint16(p[0])<<8 | uint16(p[1]))
			_ = m.r.Discard(2)
		}
		m.cancelCall(f.ID, why)
		return nil
	case frame.KindAnswer, frame.KindError:
		if m.remote != nil {
			return m.remoteAnswer(f, h.Len()-frame.MuxHeaderSize)
		}
	case frame.KindOpen, frame.KindData, frame.KindEnd, frame.KindWindow:
		return m.streamFrame(f, h.Len()-frame.MuxHeaderSize)
	}
	return m.protocolError(fmt.Errorf("%w: a client sent %v", frame.ErrMuxMalformed, f.Kind))
}

// armRead prepares for reading the next frame unless it has arrived
// whole: the answers the reader held back go out first, as in v1, so that
// no finished answer waits for a later request's bytes, and the read
// deadline is set.
func (m *muxConn) armRead() error {
	if m.r.NextBuffered() {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.wbuf) > 0 {
		m.flushLocked()
	}
	// Set under mu, as startGraceLocked sets the grace's end: neither
	// overwrites the other's unseen. The grace bounds a frame too.
	deadline := m.graceEnd
	if m.cfg.ReadTimeout > 0 {
		if at := m.clock.at(m.clock.now(), m.cfg.ReadTimeout); deadline.IsZero() || at.Before(deadline) {
			deadline = at
		}
	}
	if deadline.IsZero() {
		return nil
	}
	m.conn.idle.disarm()
	return m.setReadDeadline(deadline)
}

// readMuxHeader reads and checks the mux header of a frame of n bytes.
func (m *muxConn) readMuxHeader(n int) (frame.MuxFrame, error) {
	p, err := m.r.Peek(frame.MuxHeaderSize)
	if err != nil {
		return frame.MuxFrame{}, m.readError(frame.Truncated(err), false)
	}
	f, err := frame.ParseMuxHeader(p, n-frame.MuxHeaderSize)
	if err != nil {
		return f, m.protocolError(err)
	}
	_ = m.r.Discard(frame.MuxHeaderSize) // cannot fail: peeked
	return f, nil
}

// skipLarge answers a request over the frame limit with CodeTooLarge and
// reads past it without keeping it, as a v1 connection cannot.
func (m *muxConn) skipLarge(n int, err error) error {
	f, herr := m.readMuxHeader(n)
	if herr != nil {
		return herr
	}
	if f.Kind != frame.KindRequest && (f.Kind != frame.KindOpen || m.muxVersion < 3) {
		return m.protocolError(err)
	}
	m.srv.count(StatErrFrameTooLarge)
	m.refuse(f.ID, frame.CodeTooLarge, err.Error())
	if derr := m.r.Discard(n - frame.MuxHeaderSize); derr != nil {
		return m.readError(frame.Truncated(derr), false)
	}
	return nil
}

// request reads a request's body of n bytes and starts its handler, or
// refuses it.
func (m *muxConn) request(id uint32, n int) error {
	m.mu.Lock()
	if _, dup := m.calls[id]; dup || m.streams[id] != nil {
		m.mu.Unlock()
		return m.protocolError(fmt.Errorf("%w: call id %d already in flight", frame.ErrMuxMalformed, id))
	}
	code, why := m.admitLocked()
	var mc *muxCall
	if code == 0 {
		mc = m.getLocked()
		// Counted from now: the go-away's grace must not cut its body.
		m.admitted++
	}
	// Only the reader adds running calls, so a call that may run inline
	// now still may once its body is read.
	mayInline := m.running < m.cfg.MaxInFlight && !m.slow.is()
	m.mu.Unlock()
	if mc == nil {
		if err := m.r.Discard(n); err != nil {
			return m.readError(frame.Truncated(err), false)
		}
		m.refuse(id, code, why)
		return nil
	}
	fresh := n > m.r.Buffered()
	inPlace := mayInline && !fresh && n <= maxInPlace
	err := m.readBody(mc, n, inPlace)
	if err != nil {
		m.mu.Lock()
		m.putLocked(mc)
		m.admitted--
		m.mu.Unlock()
		m.srv.releaseCall()
		if errors.Is(err, ErrMemoryBudget) || err == errStopping {
			return err
		}
		return m.readError(err, false)
	}
	mc.id = id
	mc.sp.Reset(span.NewID())
	if fresh {
		mc.start = m.clock.now()
	} else {
		mc.start = m.clock.recent()
	}
	if mc.ctx == nil {
		// onWait stays set for the context's life: when the call runs on
		// a worker, or the reading already moved, takeOver finds mc is
		// not the reader's inline call and does nothing.
		mc.ctx = &callCtx{Context: m.ctx, onWait: func() { m.takeOver(mc) }}
	}
	var tok uint64
	m.mu.Lock()
	start := m.running < m.cfg.MaxInFlight
	inline := inPlace || start && !m.slow.is()
	switch {
	case inline:
		// Published for the watcher with one atomic store; whether the
		// handler still runs is settled under mu (see handOff).
		tok = m.lead.Load() + 1
		m.lead.Store(tok)
		m.inline, m.inlineTok = mc, tok
	default:
		m.calls[id] = mc
	}
	if start {
		m.running++
	} else {
		m.parked = append(m.parked, mc)
		m.nparked.Store(int64(len(m.parked)))
	}
	gen := m.reader
	m.mu.Unlock()
	if m.srv.gauges {
		m.srv.inflight.Add(1)
	}
	switch {
	case inline:
		return m.runInline(mc, gen)
	case start:
		m.dispatch(mc)
	}
	return nil
}

// readBody reads mc's body of n bytes: in place in the read buffer when
// inPlace says mc will run inline and its bytes are at hand, as v1's
// readPayload does; else into mc's buffer, charged to the memory budget as
// in v1, waiting for room with the connection unread.
func (m *muxConn) readBody(mc *muxCall, n int, inPlace bool) error {
	if inPlace {
		mc.req, _ = m.r.Take(n) // cannot fail: the bytes are buffered
		mc.place = mc.req
		return nil
	}
	err := m.room(&mc.slot, n)
	if err == nil {
		mc.req, err = m.r.ReadPayload(mc.req, n)
	}
	return err
}

// runInline runs mc on the reader's goroutine, which costs no hand-off,
// while handlers are fast; should this one run on past the watcher's
// looks, handOff gives the reading to another goroutine.
// m.inline was set with gen, the reader's generation, as mc was admitted.
func (m *muxConn) runInline(mc *muxCall, gen uint64) error {
	m.srv.watch.started(m.conn)
	next, lost := m.runOne(mc, true, gen)
	if next != nil {
		m.dispatch(next)
	}
	if lost {
		return errHandedOff
	}
	return nil
}

// awaitRoom holds the reader while more than MaxInFlight requests wait
// for a handler: the peer is not read, which pushes back on it, as in v1.
// Not at MaxInFlight: a client keeps up to twice MaxInFlight calls on a
// connection (MaxInFlight running, as many waiting), and the reader must
// still read its cancels and its answers to calls from handlers
// (Remote.Call); stopped there, handlers waiting for either never ended.
func (m *muxConn) awaitRoom() {
	if m.nparked.Load() <= int64(m.cfg.MaxInFlight) {
		return // only the reader parks calls, so this cannot grow meanwhile
	}
	m.mu.Lock()
	for len(m.parked) > m.cfg.MaxInFlight && !m.broken {
		m.idle.Wait()
	}
	m.mu.Unlock()
}

// admitLocked says whether a request may run now, and if not, why.
func (m *muxConn) admitLocked() (frame.Code, string) {
	switch {
	case m.goAway:
		return frame.CodeShuttingDown, "shutting down"
	case !m.srv.acquireCall():
		m.srv.count(StatErrRefused)
		return frame.CodeOverloaded, "the server runs as many calls as it may"
	}
	return 0, ""
}

func (m *muxConn) getLocked() *muxCall {
	if n := len(m.free); n > 0 {
		mc := m.free[n-1]
		m.free = m.free[:n-1]
		return mc
	}
	return &muxCall{slot: slot{sp: span.New()}}
}

func (m *muxConn) putLocked(mc *muxCall) {
	// The body's buffer is kept for the next call, charged to the budget,
	// until the connection has ended; a large one goes back to the pool.
	// Its answer was copied to wbuf, or written by reference already.
	m.acct.Release(mc.respHeld)
	mc.returnLent(m.srv.large, m.acct)
	mc.reqBuffer.release(m.srv.large, m.acct, !m.gone)
	mc.resp, mc.tail, mc.respHeld, mc.err, mc.answered = nil, nil, 0, nil, false
	if mc.ctx != nil && !mc.ctx.reusable() {
		mc.ctx = nil
	}
	m.free = append(m.free, mc)
}

// run calls the handler for mc and queues its answer, unless the call was
// answered already (cancelled) or the connection is ending.
func (m *muxConn) run(mc *muxCall) {
	for mc != nil {
		mc, _ = m.runOne(mc, false, 0)
	}
}

// runOne runs mc and returns the parked call to run next, if any. inline
// says the reader runs it, as reader generation gen: if it still reads,
// its answer may wait in the buffer while more requests are at hand, so
// that a burst is answered with one write; lost says it reads no more.
func (m *muxConn) runOne(mc *muxCall, inline bool, gen uint64) (next *muxCall, lost bool) {
	// A worker may have waited its turn to run; only the handler's own
	// time says whether handlers are slow. The reader starts at once.
	began := mc.start
	if !inline {
		began = m.clock.now()
	}
	if mc.ctx.Err() == nil {
		var stop func()
		if d := m.cfg.HandlerTimeout; d > 0 {
			stop = m.limitCall(mc, d)
		}
		mc.resp, mc.err = m.respond(mc.ctx, &mc.slot)
		if stop != nil {
			stop()
		}
	} else {
		// Cancelled while it waited: answered already, not run.
		mc.err = mc.ctx.Err()
	}
	mc.leavePlace()
	end := m.clock.now()
	m.slow.note(end - began)
	mc.ctx.cancel(context.Canceled) // a handler's context ends with it
	m.srv.finishRequest(m.conn, &mc.slot, end-mc.start)
	m.srv.releaseCall()

	m.mu.Lock()
	defer m.mu.Unlock()
	if !mc.answered && !m.broken {
		// An answer in mc.place is copied, being smaller than
		// refAnswerMin (maxInPlace).
		m.queueAnswerLocked(mc)
	}
	mc.place = nil
	if inline {
		if lost = m.reader != gen; !lost {
			m.inline = nil
		}
	}
	if (!inline || lost) && m.calls[mc.id] == mc {
		delete(m.calls, mc.id)
	}
	m.admitted--
	if !mc.unsent {
		m.putLocked(mc)
	}
	if len(m.parked) > 0 {
		next = m.parked[0]
		m.parked = m.parked[1:]
		m.nparked.Store(int64(len(m.parked)))
		if len(m.parked) == 0 {
			m.parked = m.parked[:0:0] // let the drained backing array go
		}
		m.idle.Broadcast() // the reader may have room again
	} else {
		m.running--
	}
	if m.admitted == 0 {
		m.idle.Broadcast()
		m.startGraceLocked()
	}
	// The reader holds its answer back while it has more requests at
	// hand, unless the reading passed on meanwhile (then m.r is not its).
	if !inline || lost || m.r.Buffered() == 0 {
		m.flushLocked()
	}
	return next, lost
}

func (m *muxConn) queueAnswerLocked(mc *muxCall) {
	mc.answered = true
	if mc.err == nil {
		m.queueResultLocked(mc)
		return
	}
	if p, ok := m.encodeError(mc.ctx, &mc.slot); ok {
		m.appendAnswerLocked(mc.id, p)
		return
	}
	msg := mc.err.Error()
	if errors.Is(mc.err, ErrHandlerPanic) {
		msg = "handler panic"
	}
	m.wbuf = frame.AppendMuxError(m.wbuf, frame.KindError, mc.id, frame.CodeHandler, msg)
}

// appendAnswerLocked queues an answer. Its copy in wbuf is charged to the
// memory budget until written, as v1 charges the answers it holds, unless
// it is small (answerFree): it was allocated already, so it does not wait,
// but the connection's next large frames wait for it to be written.
func (m *muxConn) appendAnswerLocked(id uint32, p []byte) {
	m.wbuf = frame.AppendMuxHeader(m.wbuf, frame.KindAnswer, id, len(p))
	m.appendBodyLocked(p)
}

// appendBodyLocked copies p, (part of) an answer's body whose header was
// just queued, charging the copy as appendAnswerLocked says.
func (m *muxConn) appendBodyLocked(p []byte) {
	m.wbuf = append(m.wbuf, p...)
	if len(p) > answerFree {
		m.wbufHeld += int64(len(p))
		m.acct.Charge(int64(len(p)))
	}
}

// room readies mc's buffer for a body of n bytes, as conn.room does.
func (m *muxConn) room(s *slot, n int) error {
	return s.room(n, m.srv.large, m.acct, m.acquire)
}

// acquire is conn.acquire for the multiplexed mode: the answers the reader
// held back, charged to the budget, go out before it waits for room.
func (m *muxConn) acquire(n int64) error {
	if m.acct.TryAcquire(n) {
		return nil
	}
	m.mu.Lock()
	if len(m.wbuf) > 0 {
		m.flushLocked()
	}
	m.mu.Unlock()
	return m.conn.acquire(n)
}

// dropQueuedLocked drops what waits to be written: nobody will read it.
func (m *muxConn) dropQueuedLocked() {
	m.wbuf = nil
	m.acct.Release(m.wbufHeld)
	m.wbufHeld = 0
	m.putWrittenLocked(m.refs)
	m.refs = m.refs[:0]
}

func (m *muxConn) encodeError(ctx context.Context, s *slot) ([]byte, bool) {
	if m.cfg.EncodeError == nil {
		return nil, false
	}
	return m.cfg.EncodeError(ctx, s.err, s.sp)
}

// cancelCall acts on a cancel frame: the handler's context ends, with
// context.DeadlineExceeded when the client says its deadline passed, and
// the call is answered now, so the client's id and slot are free even if
// the handler takes its time to notice.
func (m *muxConn) cancelCall(id uint32, why frame.Code) {
	code, cause, msg := frame.CodeCancelled, context.Canceled, "cancelled"
	if why == frame.CodeDeadline {
		code, cause, msg = frame.CodeDeadline, context.DeadlineExceeded, "deadline exceeded"
	}
	m.mu.Lock()
	mc, ok := m.calls[id]
	if !ok {
		if m.cancelStreamLocked(id, code, cause, msg) {
			m.flushLocked()
			m.srv.count(StatRequestsCancelled)
		}
		m.mu.Unlock()
		return // answered already: the cancel crossed the answer
	}
	delete(m.calls, id)
	if !mc.answered && !m.broken {
		mc.answered = true
		m.wbuf = frame.AppendMuxError(m.wbuf, frame.KindError, id, code, msg)
	}
	mc.ctx.cancel(cause)
	m.flushLocked()
	m.mu.Unlock()
	m.srv.count(StatRequestsCancelled)
}

// refuse answers a request that will not run.
func (m *muxConn) refuse(id uint32, code frame.Code, msg string) {
	m.mu.Lock()
	if !m.broken {
		m.wbuf = frame.AppendMuxError(m.wbuf, frame.KindError, id, code, msg)
		m.flushLocked()
	}
	m.mu.Unlock()
}

// protocolError tells the client why the connection closes, then closes it.
func (m *muxConn) protocolError(err error) error {
	m.mu.Lock()
	if !m.broken {
		m.wbuf = frame.AppendMuxError(m.wbuf, frame.KindError, 0, frame.CodeProtocol, err.Error())
		m.flushLocked()
	}
	m.mu.Unlock()
	return err
}

// flushLocked writes the queued frames unless another goroutine is
// writing, which then writes them too. Called and returns with mu held.
func (m *muxConn) flushLocked() {
	if m.writing {
		return
	}
	m.writing = true
	for round := 0; len(m.wbuf) > 0 && !m.broken; round++ {
		if round == 0 && m.running > 1 {
			// Other handlers are about to answer: yielding once lets
			// their answers share this write.
			m.mu.Unlock()
			runtime.Gosched()
			m.mu.Lock()
			continue
		}
		buf, held, refs := m.wbuf, m.wbufHeld, m.refs
		m.wbuf, m.spare, m.wbufHeld = m.spare[:0], nil, 0
		m.refs, m.spareRefs = m.spareRefs[:0], nil
		m.mu.Unlock()
		m.armWrite()
		err := m.writeQueued(buf, refs)
		m.acct.Release(held)
		m.mu.Lock()
		m.putWrittenLocked(refs)
		m.spareRefs = refs[:0]
		if cap(buf) <= maxKeptWriteBuffer {
			m.spare = buf[:0]
		}
		if err != nil {
			m.breakLocked(writeError(err))
		}
	}
	m.writing = false
	m.idle.Broadcast()
}

// breakLocked drops every answer from now on and stops the reader: the
// peer can no longer be answered.
func (m *muxConn) breakLocked(err error) {
	if m.broken {
		return
	}
	m.broken = true
	m.dropQueuedLocked()
	m.conn.mu.Lock()
	m.conn.failLocked(err)
	m.conn.mu.Unlock()
}

// cancelAll cancels every running call, for a connection that ends.
func (m *muxConn) cancelAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mc := range m.calls {
		mc.ctx.cancel(context.Canceled)
	}
	if m.inline != nil {
		m.inline.ctx.cancel(context.Canceled)
	}
}

// awaitFrame waits for the first byte of the next frame, writing first
// the answers held back while requests were at hand. A connection with no
// call running closes after IdleTimeout, or, once sent a go-away, after
// goAwayGrace.
func (m *muxConn) awaitFrame() error {
	if m.r.Buffered() > 0 {
		return nil
	}
	for first := true; ; first = false {
		m.mu.Lock()
		m.flushLocked()
		// Deadlines are set under mu, as startGraceLocked sets the
		// grace's end: neither overwrites the other's unseen.
		var err error
		switch {
		case m.goAway && m.admitted == 0:
			m.startGraceLocked()
			m.conn.idle.disarm()
			err = m.setReadDeadline(m.graceEnd)
		default:
			// As v1 waits: the idle deadline, or with no IdleTimeout
			// none (a deadline a frame left, left set, failed every wait
			// at once: the reader spun and never read the next frame).
			err = m.armWait()
		}
		m.mu.Unlock()
		if err == nil {
			// Its answers are written.
			_, err = m.waitForBytes(first)
		}
		m.mu.Lock()
		idle, away, over := m.admitted == 0, m.goAway, m.graceOverLocked()
		// A connection the server is calling, or that listens, is not
		// idle for IdleTimeout, even if the client sends nothing.
		held := len(m.outCalls) > 0 || m.keepOpen.Load()
		m.mu.Unlock()
		switch {
		case err == nil:
			m.clock.now() // the requests about to be read start now
			return nil
		case !isTimeout(err) || m.isStopping():
			return m.readError(err, true)
		case over:
			return errStopping
		case idle && !away && m.cfg.IdleTimeout > 0 && !m.conn.idle.stale(&m.clock, m.cfg.IdleTimeout) && !held:
			return ErrIdleTimeout
		}
		// The grace began, or calls still run: wait on, with a fresh
		// deadline.
		m.conn.idle.disarm()
	}
}

// startGraceLocked starts the go-away's grace once the go-away is sent and
// no call is left. The reader's read ends with it, whether it waits for a
// frame or is inside one: the frame could only be refused by now.
func (m *muxConn) startGraceLocked() {
	if !m.goAway || m.admitted > 0 || !m.graceEnd.IsZero() {
		return
	}
	m.graceEnd = time.Now().Add(goAwayGrace)
	_ = m.setReadDeadline(m.graceEnd)
}

func (m *muxConn) graceOverLocked() bool {
	return !m.graceEnd.IsZero() && !time.Now().Before(m.graceEnd)
}

// readError is conn.readError, but a read the go-away's grace ended ends
// the connection as the shutdown does, not as a read timeout.
func (m *muxConn) readError(err error, idle bool) error {
	if isTimeout(err) {
		m.mu.Lock()
		over := m.graceOverLocked()
		m.mu.Unlock()
		if over {
			return errStopping
		}
	}
	return m.conn.readError(err, idle)
}

// sendGoAway starts a graceful shutdown of the connection: for Shutdown.
func (m *muxConn) sendGoAway() {
	m.mu.Lock()
	if m.goAway || m.broken {
		m.mu.Unlock()
		return
	}
	m.goAway = true
	m.wbuf = frame.AppendMuxError(m.wbuf, frame.KindGoAway, 0, frame.CodeShuttingDown, "shutting down")
	m.startGraceLocked()
	m.mu.Unlock()
	// Shutdown holds the server's lock: the write must not block it.
	go func() {
		m.mu.Lock()
		m.flushLocked()
		m.mu.Unlock()
	}()
}

// finish ends the connection after reading stopped: the calls still
// running are cancelled and waited for, and what is queued is written,
// unless the client is gone or cannot be trusted to read.
func (m *muxConn) finish(err error) {
	m.mu.Lock()
	m.failOutLocked()
	if err != errStopping && err != ErrIdleTimeout {
		// The client is gone, cannot be trusted to read, or broke the
		// protocol and was told so (protocolError wrote it): answers
		// would go nowhere. As in v1, handlers still running are not
		// waited for once their connection is broken.
		m.broken = true
		m.dropQueuedLocked()
	}
	for _, mc := range m.calls {
		mc.ctx.cancel(context.Canceled)
	}
	m.failStreamsLocked()
	for (m.admitted > 0 && !m.broken) || m.writing {
		m.idle.Wait()
	}
	m.flushLocked()
	m.gone = true
	for _, mc := range m.free {
		mc.reqBuffer.release(m.srv.large, m.acct, false)
	}
	m.free = nil
	m.mu.Unlock()
}
