package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/tcpez/tcpez/frame"
)

// Protocol chooses how a client speaks to its servers.
type Protocol int

const (
	// ProtocolAuto asks every new connection for the multiplexed mode and
	// falls back to v1 by itself against a server that does not speak it
	// (see docs/PROTOCOL.md, "Negotiation"). The default.
	ProtocolAuto Protocol = iota
	// ProtocolV1 speaks only v1, as the original clients do.
	ProtocolV1
	// ProtocolMux requires the multiplexed mode: a server that does not
	// speak it is a dial error matching ErrMuxRefused.
	ProtocolMux
)

func (p Protocol) String() string {
	switch p {
	case ProtocolAuto:
		return "auto"
	case ProtocolV1:
		return "v1"
	case ProtocolMux:
		return "mux"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

// StatFallbacks counts connections that asked for the multiplexed mode and
// went on in v1.
const StatFallbacks = "client.v1_fallbacks"

var (
	// ErrServer is matched by every *ServerError.
	ErrServer = errors.New("tcpez/client: server error")
	// ErrMuxRefused is the dial error of a ProtocolMux client whose server
	// does not speak the multiplexed mode.
	ErrMuxRefused = errors.New("tcpez/client: server does not speak the multiplexed mode")

	errGoAway   = errors.New("tcpez/client: server is going away")
	errOutOfIDs = errors.New("tcpez/client: out of call ids")
)

// ServerError is a call's failure as a server in the multiplexed mode
// reported it. Code says what happened; see frame.Code. A call refused
// with a code for which Code.NotRun is true never reached a handler, and
// is retried like a call that was never sent. A Pipeline batch fails with
// the error of its first failed member: the other members may have run,
// whatever that error's code says, so a batch is not retried on it.
type ServerError struct {
	Code    frame.Code
	Message string
}

func (e *ServerError) Error() string {
	return "tcpez/client: server: " + e.Code.String() + ": " + e.Message
}

// Is makes a ServerError match ErrServer, and frame.ErrFrameTooLarge for a
// request over the server's frame limit.
func (e *ServerError) Is(target error) bool {
	return target == ErrServer || (e.Code == frame.CodeTooLarge && target == frame.ErrFrameTooLarge)
}

// connect dials one connection to e's address and settles its protocol:
// the multiplexed mode when the server acknowledges the preface, else v1,
// on a second connection, when it answered otherwise, closed or kept
// silent (see v1Answer). Any other failure of the negotiation (a TLS
// alert) is a dial error.
func (c *Client) connect(ctx context.Context, e *endpoint) (*conn, error) {
	nc, err := c.dial(ctx, e.addr)
	if err != nil {
		return nil, err
	}
	cn := newConn(c, e, nc)
	p := c.cfg.Protocol
	// A Codec speaks its own protocol, not v1's preface.
	if p == ProtocolV1 || c.cfg.Codec != nil || (p == ProtocolAuto && e.speaksV1()) {
		return cn.authenticate(ctx)
	}
	// The preface goes first; the credential follows the acknowledgement
	// (docs/PROTOCOL.md), before the first mux frame.
	ack, isMux, err := cn.negotiate(ctx)
	if err != nil && ctx.Err() != nil {
		// Cut short by ctx, not refused: the address may well speak mux.
		_ = nc.Close()
		return nil, ctx.Err()
	}
	if resetByServer(err) {
		_ = nc.Close()
		return nil, err
	}
	if err != nil && !v1Answer(err) {
		// Not what a v1 server does with a preface: a TLS refusal (in TLS
		// 1.3 the server's alert about the client's certificate arrives
		// only now, on the first read), or any other I/O error. A dial
		// error, like one of the handshake.
		_ = nc.Close()
		if tlsAlert(err) {
			return nil, fmt.Errorf("tcpez/client: the server refused the TLS handshake: %w", err)
		}
		return nil, err
	}
	switch {
	case err == nil && isMux:
		if _, err := cn.authenticate(ctx); err != nil {
			return nil, err
		}
		cn.enableMux(ack)
		return cn, nil
	case p == ProtocolMux:
		_ = nc.Close()
		if err == nil {
			err = errors.New("it answered the preface as a v1 request")
		}
		// A TLS or HTTP port refuses the preface too; say which.
		return nil, fmt.Errorf("%w: %w", ErrMuxRefused, foreign(err))
	}
	e.setV1()
	c.cfg.Stats.Count(StatFallbacks, 1)
	// A v1 server answered the preface as a request, closed, or kept
	// silent. Its connection is not kept even when it answered: a v1
	// server may close after an answer (one request per connection, or
	// an error for a request it does not know), and the first call
	// written there would be lost; and one that authenticates took the
	// preface for the credential. Dial again, speaking v1 from the first
	// byte.
	_ = nc.Close()
	nc, err = c.dial(ctx, e.addr)
	if err != nil {
		return nil, err
	}
	cn = newConn(c, e, nc)
	return cn.authenticate(ctx)
}

// v1Answer reports whether err, a failed negotiation, is what a v1 server
// does with the preface (docs/PROTOCOL.md, "Negotiation"): close the
// connection (its handler failed), answer in v1 framing with a frame the
// preface's reader rejects (a batch, or a frame over the limit, as a TLS or
// HTTP port's answer is), or say nothing within DialTimeout (a server that
// ignores a request it does not know, as an HTTP server does a line with no
// end). A nil error, an answer that is not the acknowledgement, is one too.
func v1Answer(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, frame.ErrProtocol) || isTimeout(err)
}

// isTimeout reports a deadline that passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// handshakeDeadline bounds an exchange of a new connection (negotiation,
// credential) by DialTimeout and ctx, and returns what lifts the bound.
// ctx ending cuts the exchange short, so that Close or a removed address
// does not wait for a server that holds the preface or the credential.
func (cn *conn) handshakeDeadline(ctx context.Context) (lift func()) {
	deadline := time.Now().Add(cn.c.cfg.DialTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = cn.nc.SetDeadline(deadline)
	cut := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cut)
		_ = cn.nc.SetDeadline(time.Unix(1, 0))
	})
	return func() {
		if !stop() {
			<-cut // its deadline must not land after the one lifting it
		}
		_ = cn.nc.SetDeadline(time.Time{})
	}
}

// negotiate sends the preface and reads the one answer frame, within the
// dial timeout. isMux false with a nil error: a v1 server answered.
func (cn *conn) negotiate(ctx context.Context) (ack frame.Ack, isMux bool, err error) {
	defer cn.handshakeDeadline(ctx)()
	if _, err := cn.nc.Write(frame.AppendPreface(nil)); err != nil {
		return ack, false, err
	}
	h, err := cn.in.r.ReadHeader()
	if err == nil && h.IsBatch() {
		err = fmt.Errorf("%w: a batch answered the preface", ErrUnexpectedAnswer)
	}
	if err != nil {
		return ack, false, err
	}
	p, err := cn.in.r.ReadPayload(nil, h.Len())
	if err != nil {
		return ack, false, err
	}
	ack, isMux = frame.ParseAck(p)
	// A server speaks the lower of the two versions, and every mux frame
	// holds a header: an acknowledgement that says otherwise is broken.
	if isMux && (ack.Version > frame.MuxVersion || ack.MaxFrameSize < frame.MuxHeaderSize) {
		return ack, false, fmt.Errorf("%w: an acknowledgement of version %d with frames up to %d bytes", ErrUnexpectedAnswer, ack.Version, ack.MaxFrameSize)
	}
	return ack, isMux, nil
}

// muxTable holds a mux connection's calls by id. An id is a table index
// and a generation, so that an id seen again after its call ended (a late
// cancel) never names the call that took the index next.
type muxTable struct {
	entries []muxEntry
	free    []uint32
	n       int // calls in the table
	// maxBody is the largest request body the server accepts.
	maxBody int
	// lim is what the frames read are checked against (muxLimits).
	lim frame.Limits
	// version is the mux version the server acknowledged.
	version uint8
}

type muxEntry struct {
	rq  *request
	id  uint32
	pos int32 // the request's place in its batch
}

const (
	idIndexBits = 20
	idIndexMask = 1<<idIndexBits - 1
)

func (t *muxTable) add(rq *request, pos int) (uint32, bool) {
	var i uint32
	if k := len(t.free); k > 0 {
		i = t.free[k-1]
		t.free = t.free[:k-1]
	} else {
		if len(t.entries) > idIndexMask {
			return 0, false
		}
		i = uint32(len(t.entries))
		t.entries = append(t.entries, muxEntry{})
	}
	e := &t.entries[i]
	e.id = ((e.id>>idIndexBits)+1)<<idIndexBits | i
	if e.id == 0 {
		// Index 0's generation wrapped: id 0 names no call (an error
		// frame of id 0 is the connection's, a cancel of id 0 none).
		e.id = 1 << idIndexBits
	}
	e.rq, e.pos = rq, int32(pos)
	t.n++
	return e.id, true
}

// take removes the call of id from the table.
func (t *muxTable) take(id uint32) (*request, int, bool) {
	i := id & idIndexMask
	if int(i) >= len(t.entries) || t.entries[i].id != id || t.entries[i].rq == nil {
		return nil, 0, false
	}
	e := &t.entries[i]
	rq, pos := e.rq, int(e.pos)
	e.rq = nil
	t.free = append(t.free, i)
	t.n--
	return rq, pos, true
}

// holds reports whether id still names rq's unanswered request.
func (t *muxTable) holds(id uint32, rq *request) bool {
	i := id & idIndexMask
	return int(i) < len(t.entries) && t.entries[i].id == id && t.entries[i].rq == rq
}

// drain empties the table, returning each call once, except held, the
// batch the reader holds (conn.held).
func (t *muxTable) drain(held *request) []*request {
	var out []*request
	seen := map[*request]bool{held: true}
	for i := range t.entries {
		e := &t.entries[i]
		if e.rq != nil && !seen[e.rq] {
			seen[e.rq] = true
			out = append(out, e.rq)
		}
		e.rq = nil
	}
	t.free, t.n = t.free[:0], 0
	for i := range t.entries {
		t.free = append(t.free, uint32(i))
	}
	return out
}

// enableMux makes a negotiated connection speak the multiplexed mode.
// Reading works as in v1 (see readRole): a caller that finds nobody
// reading reads its own answer, as long as the next frame is its own.
func (cn *conn) enableMux(ack frame.Ack) {
	cn.mux = &muxTable{maxBody: int(ack.MaxFrameSize) - frame.MuxHeaderSize, version: ack.Version,
		lim: muxLimits(cn.c.cfg.Limits)}
	cn.in.r.SetLimits(cn.mux.lim)
	// The server runs MaxInFlight calls and lets as many more wait; past
	// that it stops reading, and a cancel would wait too. Callers beyond
	// wait here instead.
	if n := 2 * int(ack.MaxInFlight); n > 0 && n < cn.c.cfg.MaxInFlight {
		cn.slots = newSlots(n)
	}
}

// muxLimits is lim for a mux connection's frames: Limits.MaxFrameSize
// bounds an answer's body, as it bounds a v1 answer's payload, and a mux
// frame carries its own header besides. (Counting the header, an answer
// the server sent within 6 bytes of the limit ended the connection, where
// v1 took it.)
func muxLimits(lim frame.Limits) frame.Limits {
	max := lim.MaxFrameSize
	if max <= 0 {
		max = frame.DefaultMaxFrameSize
	}
	lim.MaxFrameSize = min(max+frame.MuxHeaderSize, frame.MaxFrameSize)
	return lim
}

// appendMuxRequest queues rq's request (a batch: each of its frames) as
// mux requests. Called with mu held.
func (cn *conn) appendMuxRequestLocked(rq *request, payload []byte) error {
	if !rq.mode.batch() {
		size := len(payload) + len(rq.tail)
		if size > cn.mux.maxBody {
			return &frame.SizeError{Limit: cn.mux.maxBody, Size: int64(size)}
		}
		kind := frame.KindRequest
		if rq.stream != nil {
			if cn.mux.version < 3 {
				return ErrNoStreams
			}
			kind = frame.KindOpen
		}
		id, ok := cn.mux.add(rq, 0)
		if !ok {
			return errOutOfIDs
		}
		rq.mc, rq.mid = cn, id
		if rq.stream != nil {
			rq.stream.bind(cn, id)
		}
		cn.out.buf = frame.AppendMuxHeader(cn.out.buf, kind, id, size)
		return nil
	}
	rq.startArena()
	// A batch has an id per frame: mid 0, which no call has, tells
	// cancelOnWire to cancel each of them.
	rq.mc, rq.mid = cn, 0
	if rq.muxFramed {
		return cn.numberBatchLocked(rq, payload)
	}
	lim := frame.Limits{MaxFrameSize: max(cn.mux.maxBody, 1)}
	for pos, rest := 0, payload; len(rest) > 0; pos++ {
		var p []byte
		var err error
		if rest, p, _, err = frame.ParseFrame(rest, lim); err != nil {
			cn.out.buf = cn.out.buf[:rq.off]
			cn.mux.dropRequest(rq)
			return err
		}
		id, ok := cn.mux.add(rq, pos)
		if !ok {
			cn.out.buf = cn.out.buf[:rq.off]
			cn.mux.dropRequest(rq)
			return errOutOfIDs
		}
		cn.out.buf = frame.AppendMux(cn.out.buf, frame.KindRequest, id, p)
	}
	return nil
}

// numberBatchLocked gives each request of a batch laid out in mux frames
// (Pipeline.mux) its id, in place: the batch then goes out from the
// caller's buffer as it is.
func (cn *conn) numberBatchLocked(rq *request, payload []byte) error {
	for pos, rest := 0, payload; len(rest) > 0; pos++ {
		n := muxBodyLen(rest)
		if n > cn.mux.maxBody {
			cn.mux.dropRequest(rq)
			return &frame.SizeError{Limit: cn.mux.maxBody, Size: int64(n)}
		}
		id, ok := cn.mux.add(rq, pos)
		if !ok {
			cn.mux.dropRequest(rq)
			return errOutOfIDs
		}
		binary.BigEndian.PutUint32(rest[frame.HeaderSize+2:], id) // past kind and flags
		rest = rest[frame.HeaderSize+frame.MuxHeaderSize+n:]
	}
	return nil
}

// muxBodyLen is the body length of the mux frame b starts with, one that
// Pipeline laid out.
func muxBodyLen(b []byte) int {
	return int(binary.BigEndian.Uint32(b)) - frame.MuxHeaderSize
}

// appendV1Batch appends a batch laid out in mux frames (Pipeline.mux) to
// buf as a v1 batch, for a connection that speaks v1.
func appendV1Batch(buf []byte, n int, payload []byte) []byte {
	buf = frame.AppendHeader(buf, frame.BatchHeader(n))
	for rest := payload; len(rest) > 0; {
		body := rest[frame.HeaderSize+frame.MuxHeaderSize:][:muxBodyLen(rest)]
		buf = frame.AppendFrame(buf, body)
		rest = rest[frame.HeaderSize+frame.MuxHeaderSize+len(body):]
	}
	return buf
}

// dropCall takes a batch that could not be queued whole out of the table.
func (t *muxTable) dropRequest(rq *request) {
	for i := range t.entries {
		if t.entries[i].rq == rq {
			t.take(t.entries[i].id)
		}
	}
}

// cancelOnWire tells the server that the caller of rq gave up its request
// id, so that the handler's context ends; id 0 is a batch, whose every
// unanswered id is cancelled. The answers still come, and the reader drops
// them. cn and id were read by the caller before it let go of rq; holds
// checks that the id still names that call, and a batch is still the
// caller's while rq is abandoned: the reader recycles it, which makes it
// pending, before anyone can reuse it.
func (cn *conn) cancelOnWire(ctx context.Context, rq *request, id uint32) {
	// The reason travels, so that the handler's context ends with the
	// caller's error: context.DeadlineExceeded or context.Canceled.
	why := frame.CodeCancelled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		why = frame.CodeDeadline
	}
	cn.mu.Lock()
	sent := false
	switch {
	case cn.err != nil:
	case id != 0:
		if cn.mux.holds(id, rq) {
			cn.appendCancelLocked(id, why)
			sent = true
		}
	case rq.state.Load() == stateAbandoned:
		for i := range cn.mux.entries {
			if e := &cn.mux.entries[i]; e.rq == rq {
				cn.appendCancelLocked(e.id, why)
				sent = true
			}
		}
	}
	if !sent || cn.out.writing {
		cn.mu.Unlock()
		return
	}
	// The caller is leaving: a background writer sends the cancel.
	cn.out.writing = true
	cn.handOffUnlock(nil, 0, 0)
}

func (cn *conn) appendCancelLocked(id uint32, why frame.Code) {
	cn.out.buf = frame.AppendMuxHeader(cn.out.buf, frame.KindCancel, id, 2)
	cn.out.buf = append(cn.out.buf, byte(why>>8), byte(why))
}

// muxReadLoop reads a mux connection's frames and completes their calls,
// in whatever order the answers come, whenever it holds the reading.
func (cn *conn) muxReadLoop() {
	watch := time.NewTimer(idleWatch)
	defer watch.Stop()
	for reading := false; ; {
		if !reading && !cn.awaitRead(watch) {
			return
		}
		err := cn.readMuxFrame()
		if err == nil {
			reading, err = cn.settleRead(false)
		}
		if err != nil {
			cn.failAhead(err)
			return
		}
	}
}

// settleRead decides, in one lock, what follows a frame read: a draining
// connection with no call left closes (errDraining); otherwise nobody
// reads when no call is left (the next caller then reads its own answer),
// else the reader goroutine. keep reports whether that is the reader
// goroutine and byCaller false, that is, whether the reader goes on.
//
// The reader goroutine needs no lock while calls it took ahead are left:
// their answers are the next frames, so it goes on reading, and nobody
// else changes its role meanwhile.
func (cn *conn) settleRead(byCaller bool) (keep bool, err error) {
	if !byCaller && cn.aheadAt < len(cn.ahead) {
		return true, nil
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	empty := cn.mux.n == 0
	switch {
	case cn.err != nil:
	case cn.draining && empty:
		return false, errDraining
	case empty && cn.in.idle != nil:
		cn.in.role = roleFree
	case byCaller:
		cn.in.role = roleReader
		cn.wakeReader()
	}
	keep = !byCaller && cn.in.role == roleReader
	if keep {
		cn.takeAheadLocked()
	}
	return keep, nil
}

// aheadMax bounds the calls settleRead takes ahead at once.
const aheadMax = 64

// aheadCall is a call taken ahead, with the id its answer carries.
type aheadCall struct {
	rq *request
	id uint32
}

// takeAheadLocked takes the calls of the next frames out of the table
// now, under the lock settleRead holds anyway, for as long as they are
// answers to single calls whose headers are at hand: answers arrive many
// to a read, and this saves the reader a lock per answer, which the
// callers queueing requests would contend for. Called with mu held.
func (cn *conn) takeAheadLocked() {
	const hs = frame.HeaderSize + frame.MuxHeaderSize
	if cn.ahead == nil {
		cn.ahead = make([]aheadCall, 0, aheadMax)
	}
	cn.ahead, cn.aheadAt = cn.ahead[:0], 0
	buf, _ := cn.in.r.Peek(cn.in.r.Buffered()) // cannot fail: buffered
	for len(buf) >= hs && len(cn.ahead) < aheadMax {
		n := int(binary.BigEndian.Uint32(buf)) - frame.MuxHeaderSize
		if n < 0 || n > frame.MaxFrameSize-frame.MuxHeaderSize {
			return // the reader reads it, and reports what is wrong
		}
		f, err := frame.ParseMuxHeader(buf[frame.HeaderSize:hs], n)
		if err != nil || f.Kind != frame.KindAnswer {
			return
		}
		if rq := cn.mux.get(f.ID); rq == nil || rq.mode.batch() {
			return
		}
		rq, _, _ := cn.mux.take(f.ID)
		cn.ahead = append(cn.ahead, aheadCall{rq: rq, id: f.ID})
		if hs+n > len(buf) {
			return
		}
		buf = buf[hs+n:]
	}
}

// takeAhead returns the call taken ahead for the frame with id, if the
// next one taken ahead is that.
func (cn *conn) takeAhead(id uint32) (*request, bool) {
	if cn.aheadAt == len(cn.ahead) || cn.ahead[cn.aheadAt].id != id {
		return nil, false
	}
	rq := cn.ahead[cn.aheadAt].rq
	cn.ahead[cn.aheadAt] = aheadCall{}
	cn.aheadAt++
	return rq, true
}

// failAhead fails the connection for err, and with it the calls the
// reader took ahead, whose answers it will not read.
func (cn *conn) failAhead(err error) {
	cn.fail(err, writeProgress{})
	for ; cn.aheadAt < len(cn.ahead); cn.aheadAt++ {
		cn.failWith(cn.ahead[cn.aheadAt].rq, err)
		cn.ahead[cn.aheadAt] = aheadCall{}
	}
}

// muxReadOwn reads the answer of rq on its caller's goroutine, if it is
// the next frame and arrives within readGrace; otherwise the reading
// passes to the reader goroutine.
func (cn *conn) muxReadOwn(ctx context.Context, rq *request) {
	if rq.mode.batch() {
		cn.muxReadOwnBatch(ctx, rq)
		return
	}
	n, err := cn.peekOwn(ctx, rq.mid)
	if cn.ownReadFailed(err) {
		return
	}
	_ = cn.in.r.Discard(frame.HeaderSize + frame.MuxHeaderSize) // peeked
	err = cn.muxAnswer(rq.mid, n)
	if err == nil {
		_, err = cn.settleRead(true)
	}
	if err != nil {
		cn.fail(err, writeProgress{})
	}
}

// peekOwn waits until the next frame is buffered whole and is the answer
// to id, and returns its body's length.
func (cn *conn) peekOwn(ctx context.Context, id uint32) (int, error) {
	got, n, err := cn.peekMuxAnswer(ctx)
	if err == nil && got != id {
		err = errNotOwn
	}
	return n, err
}

// peekMuxAnswer waits until the next frame is buffered whole, and returns
// its id and body's length if it is an answer that fits in the read
// buffer; anything else is the reader goroutine's to read: errNotOwn.
func (cn *conn) peekMuxAnswer(ctx context.Context) (uint32, int, error) {
	// As in peekFrame, a frame at hand needs no deadline.
	if !cn.in.r.NextBuffered() {
		if err := cn.armRead(ctx); err != nil {
			return 0, 0, err
		}
	}
	p, err := cn.in.r.Peek(muxHeadersSize)
	if err != nil {
		return 0, 0, err
	}
	id, n, ok := cn.ownMuxAnswer(p)
	if !ok {
		return 0, 0, errNotOwn
	}
	if _, err := cn.in.r.Peek(muxHeadersSize + n); err != nil {
		return 0, 0, err
	}
	return id, n, nil
}

// muxHeadersSize is the size of a multiplexed frame's headers: the frame
// header, then the mux header.
const muxHeadersSize = frame.HeaderSize + frame.MuxHeaderSize

// ownMuxAnswer parses p, a frame's headers, as those of an answer that
// fits in the read buffer, which a caller may read itself: its id and
// body's length.
func (cn *conn) ownMuxAnswer(p []byte) (id uint32, n int, ok bool) {
	h := frame.Header(binary.BigEndian.Uint32(p))
	if h.IsBatch() || h.Len() > readBufferSize-frame.HeaderSize || cn.mux.lim.CheckHeader(h) != nil || h.Len() < frame.MuxHeaderSize {
		return 0, 0, false
	}
	f, err := frame.ParseMuxHeader(p[frame.HeaderSize:], h.Len()-frame.MuxHeaderSize)
	if err != nil || f.Kind != frame.KindAnswer {
		return 0, 0, false
	}
	return f.ID, h.Len() - frame.MuxHeaderSize, true
}

// muxAnswerBody is ownMuxAnswer for a straight read.
func muxAnswerBody(cn *conn, p []byte) (int, bool) {
	_, n, ok := cn.ownMuxAnswer(p)
	return n, ok
}

func (cn *conn) readMuxFrame() error {
	h, err := cn.in.r.ReadHeader()
	switch {
	case err != nil:
		return err
	case h.IsBatch():
		return fmt.Errorf("%w: a batch header in the multiplexed mode", frame.ErrNegativeLength)
	case h.Len() < frame.MuxHeaderSize:
		return fmt.Errorf("%w: %d bytes, shorter than its header", frame.ErrMuxMalformed, h.Len())
	}
	p, err := cn.in.r.Peek(frame.MuxHeaderSize)
	if err != nil {
		return frame.Truncated(err)
	}
	n := h.Len() - frame.MuxHeaderSize
	f, err := frame.ParseMuxHeader(p, n)
	if err != nil {
		return err
	}
	_ = cn.in.r.Discard(frame.MuxHeaderSize) // cannot fail: peeked
	switch f.Kind {
	case frame.KindAnswer:
		return cn.muxAnswer(f.ID, n)
	case frame.KindError:
		return cn.muxError(f.ID, n)
	case frame.KindGoAway:
		if err := cn.in.r.Discard(n); err != nil {
			return frame.Truncated(err)
		}
		cn.goAway()
		return nil
	case frame.KindNotify:
		return cn.notified(n)
	case frame.KindCall:
		return cn.called(f.ID, n)
	case frame.KindCancel:
		return cn.cancelled(f.ID, n)
	case frame.KindData, frame.KindEnd, frame.KindWindow:
		return cn.streamFrame(f, n)
	}
	return fmt.Errorf("%w: a server sent %v", ErrUnexpectedAnswer, f.Kind)
}

// muxAnswer reads an answer of n bytes for id.
func (cn *conn) muxAnswer(id uint32, n int) error {
	pos := 0
	rq, ok := cn.takeAhead(id)
	if !ok {
		cn.mu.Lock()
		rq, pos, ok = cn.mux.take(id)
		if ok && rq.mode.batch() {
			cn.held = rq
		}
		cn.mu.Unlock()
	}
	if !ok {
		return fmt.Errorf("%w: answer for id %d, which is not in flight", ErrUnexpectedAnswer, id)
	}
	if rq.stream != nil {
		err := fmt.Errorf("%w: an answer for stream %d", ErrUnexpectedAnswer, id)
		rq.stream.finish(&ConnError{Addr: cn.addr, Err: err})
		cn.release()
		return err
	}
	if !rq.mode.batch() {
		if err := cn.answer(rq, frame.Header(n)); err != nil {
			rq.complete(nil, nil, &ConnError{Addr: cn.addr, Err: err}, false)
			cn.release()
			return err
		}
		cn.release()
		cn.prog.markServed()
		return nil
	}
	return cn.heldAnswer(rq, pos, n)
}

// heldAnswer reads the answer to the member at pos of rq, a batch held
// by the reader (conn.held), and counts it. Should the connection fail
// meanwhile, fail leaves rq to it, as it does when this read fails: rq
// then fails here, once the reader is done with it, unless this was its
// last answer.
func (cn *conn) heldAnswer(rq *request, pos, n int) error {
	err := cn.batchAnswer(rq, pos, n)
	if err != nil {
		cn.fail(err, writeProgress{})
	}
	cn.mu.Lock()
	cn.held = nil
	failed := cn.err
	if err == nil && (failed == nil || rq.left == 1) {
		last := cn.countLocked(rq, nil)
		cn.mu.Unlock()
		if last {
			cn.completeBatch(rq)
		}
		return nil
	}
	cn.mu.Unlock()
	rq.complete(nil, nil, failed, false)
	cn.release()
	if err == nil {
		err = failed
	}
	return err
}

// muxError reads an error frame of n bytes for id (0: the connection).
func (cn *conn) muxError(id uint32, n int) error {
	body, err := cn.in.r.ReadPayload(nil, n)
	if err != nil {
		return err
	}
	code, msg := frame.MuxFrame{Body: body}.ErrorCode()
	serr := &ServerError{Code: code, Message: msg}
	if id == 0 {
		return serr
	}
	cn.mu.Lock()
	rq, _, ok := cn.mux.take(id)
	last := ok && rq.mode.batch() && cn.countLocked(rq, serr)
	cn.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: error for id %d, which is not in flight", ErrUnexpectedAnswer, id)
	}
	if rq.stream != nil {
		rq.stream.serverFailed(serr)
		cn.release()
		return nil
	}
	if rq.mode.batch() {
		if last {
			cn.completeBatch(rq)
		}
		return nil
	}
	rq.complete(nil, nil, serr, code.NotRun())
	cn.release()
	return nil
}

// countLocked counts one answer of batch rq, err for a member's error
// frame, and reports whether it was the last. Called with mu held: until
// the last, rq has members in the table, and fail, which takes mu, may
// complete it as soon as mu is released; after the last it has none, and
// only completeBatch touches it.
func (cn *conn) countLocked(rq *request, err error) bool {
	if err != nil && rq.err == nil {
		rq.err = err
	}
	rq.left--
	return rq.left == 0
}

// completeBatch completes rq, all of whose answers have been counted:
// with its first member's error, or its answers.
func (cn *conn) completeBatch(rq *request) {
	if rq.err != nil {
		err := rq.err
		rq.err = nil
		rq.complete(nil, nil, err, false)
	} else {
		cn.completeArena(rq)
	}
	cn.release()
}

// goAway stops new calls on a connection whose server shuts down, asks
// the endpoint for a replacement, and closes the connection once its calls
// are answered.
func (cn *conn) goAway() {
	cn.mu.Lock()
	if cn.draining || cn.err != nil {
		cn.mu.Unlock()
		return
	}
	cn.draining = true
	idle := cn.mux.n == 0
	cn.mu.Unlock()
	if !cn.c.trackDrain(cn) {
		cn.fail(ErrClosed, writeProgress{})
		return
	}
	cn.ep.connDown(cn, errGoAway)
	if idle {
		cn.fail(errDraining, writeProgress{})
	}
}
