// Package stream holds what the client and the server share of a stream
// of the multiplexed mode (docs/PROTOCOL.md, "Streams"): the receive
// buffer a connection's reader fills and the application drains, message
// reassembly, and the credit windows of both directions. The engines
// (client and server) own the wire; a Core only tells them, through its
// Sink, which data and window frames to send.
//
// One goroutine may send while another receives, as with gRPC's streams;
// two goroutines must not send at once, nor two receive at once.
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/tcpez/tcpez/frame"
)

// DefaultWindow is the receive window a side grants each stream unless
// configured otherwise, and the most a stream buffers: the protocol's
// starting window. On loopback it ran one stream at 1.3-1.8× the raw
// loop's echo rate where 1 MiB ran at 0.7-0.85× and 4 MiB no faster: a
// window that fits the caches beats a larger one when the round trip is
// short (bench/ -stream). Raise Config.StreamWindow for long round trips.
const DefaultWindow = frame.StreamWindow

// MaxChunk is the largest data frame body a Core sends: large enough that
// a frame's header and the per-frame work are noise, small enough that
// streams sharing a connection interleave finely.
const MaxChunk = 128 << 10

// ErrSendClosed is the error of a send after CloseSend.
var ErrSendClosed = errors.New("tcpez: send on a stream closed for sending")

// Sink sends a stream's frames on its connection.
type Sink interface {
	// Data sends one data frame of the stream and returns once body may
	// be reused; ctx bounds a wait for the connection's writer.
	Data(ctx context.Context, body []byte, more bool) error
	// Window grants the peer n more bytes of credit. It never blocks.
	Window(n uint32)
}

// Config says how large a Core's buffers may grow.
type Config struct {
	// Window is the receive window the Core keeps open: it grants the
	// peer up to this much credit beyond frame.StreamWindow's start.
	// Zero means DefaultWindow; it is never below frame.StreamWindow.
	Window int
	// MaxMessage bounds what Recv reassembles; zero means no bound. Read
	// has none.
	MaxMessage int
	// MaxChunk bounds a data frame's body, for a peer with a smaller
	// frame limit; zero means MaxChunk.
	MaxChunk int
}

// Core is one stream's state on one side.
type Core struct {
	sink     Sink
	window   int
	maxMsg   int
	maxChunk int

	mu sync.Mutex
	// Receiving. ring holds size bytes from head; frames holds, for each
	// data frame not yet consumed whole, its body length << 1 | more.
	ring    []byte
	head    int
	size    int
	frames  []uint32
	fhead   int
	partial int   // bytes of frames[fhead] already consumed
	peer    int64 // credit the peer holds: what it may still send
	unacked int   // credit consumed here and not yet granted back
	ended   bool  // the peer sent its end: io.EOF after the data
	endErr  error // the peer's end was an error: it, not io.EOF, after the data
	trailer []byte
	msg     []byte // Recv's reassembly buffer
	// writing is set while the reader fills the ring outside mu.
	writing bool

	// Sending.
	credit     int64
	sendClosed bool
	sendErr    error // what a send returns once the peer finished

	err      error // the stream failed, both ways
	recvWake chan struct{}
	sendWake chan struct{}
}

// New returns a Core that sends through sink. The engine grants the
// extra window (InitialGrant) once the stream is open.
func New(sink Sink, cfg Config) *Core {
	c := &Core{
		sink:     sink,
		window:   max(cfg.Window, frame.StreamWindow),
		maxMsg:   cfg.MaxMessage,
		maxChunk: cfg.MaxChunk,
		peer:     frame.StreamWindow,
		credit:   frame.StreamWindow,
		recvWake: make(chan struct{}, 1),
		sendWake: make(chan struct{}, 1),
	}
	if cfg.Window == 0 {
		c.window = DefaultWindow
	}
	if c.maxChunk <= 0 || c.maxChunk > MaxChunk {
		c.maxChunk = MaxChunk
	}
	return c
}

// Window is the receive window: the most the Core buffers unread. Recv's
// reassembly buffer, up to Config.MaxMessage, comes besides.
func (c *Core) Window() int { return c.window }

// InitialGrant is the credit to grant the peer as the stream opens, on
// top of frame.StreamWindow, so that the window is Config.Window; 0 for
// none. The engine sends it with its first frame.
func (c *Core) InitialGrant() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.window - frame.StreamWindow
	c.peer += int64(g)
	return uint32(g)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// ReadFrom reads a data frame's body of n bytes from r into the buffer,
// for the connection's reader. A frame beyond the credit the peer held
// breaks the protocol (frame.ErrStreamWindow); one for a stream that
// failed here is read and dropped.
func (c *Core) ReadFrom(r *frame.Reader, n int, more bool) error {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return frame.Truncated(r.Discard(n))
	}
	cost := int64(frame.DataCost(n))
	switch {
	case c.ended:
		c.mu.Unlock()
		return fmt.Errorf("%w: data after the stream's end", frame.ErrMuxMalformed)
	case cost > c.peer:
		c.mu.Unlock()
		return fmt.Errorf("%w: %d bytes with %d of credit", frame.ErrStreamWindow, cost, c.peer)
	}
	c.peer -= cost
	if n > 0 {
		if err := c.fill(r, n); err != nil || c.err != nil {
			c.mu.Unlock()
			return err
		}
	}
	c.size += n
	rec := uint32(n) << 1
	if more {
		rec |= 1
	}
	c.frames = append(c.frames, rec)
	c.mu.Unlock()
	signal(c.recvWake)
	return nil
}

// fill reads n bytes from r into the ring's free space, with mu held on
// entry and exit but not across the read: the reader fills space the
// application does not touch. A stream that failed meanwhile drops them.
func (c *Core) fill(r *frame.Reader, n int) error {
	c.growLocked(n)
	tail := (c.head + c.size) % len(c.ring)
	first := min(n, len(c.ring)-tail)
	ring := c.ring
	c.writing = true
	c.mu.Unlock()
	_, err := r.ReadPayload(ring[tail:tail:tail+first], first)
	if err == nil && first < n {
		_, err = r.ReadPayload(ring[0:0:n-first], n-first)
	}
	c.mu.Lock()
	c.writing = false
	if c.err != nil {
		c.ring = nil // failed meanwhile: nobody reads it
	}
	return frame.Truncated(err)
}

// growLocked makes room for n more bytes in the ring, which starts small
// and grows up to the window: credit bounds what is buffered.
func (c *Core) growLocked(n int) {
	if c.size+n <= len(c.ring) {
		return
	}
	size := max(2*len(c.ring), c.size+n, 4<<10)
	size = min(size, max(c.window, c.size+n))
	ring := make([]byte, size)
	c.copyOutLocked(ring[:c.size])
	c.ring, c.head = ring, 0
}

// copyOutLocked copies the first len(p) buffered bytes to p.
func (c *Core) copyOutLocked(p []byte) {
	if len(p) == 0 {
		return
	}
	n := copy(p, c.ring[c.head:min(c.head+len(p), len(c.ring))])
	copy(p[n:], c.ring)
}

// consumeLocked drops n buffered bytes of the head frame and returns the
// credit to grant back now, if any.
func (c *Core) consumeLocked(n int) uint32 {
	c.head = (c.head + n) % max(len(c.ring), 1)
	c.size -= n
	c.partial += n
	rec := c.frames[c.fhead]
	if c.partial < int(rec>>1) {
		return 0
	}
	c.partial = 0
	c.fhead++
	if c.fhead == len(c.frames) {
		c.frames, c.fhead = c.frames[:0], 0
	}
	c.unacked += frame.DataCost(int(rec >> 1))
	if c.unacked < c.window/4 || c.err != nil || c.ended {
		return 0
	}
	g := c.unacked
	c.unacked = 0
	c.peer += int64(g)
	return uint32(g)
}

// awaitRecvLocked waits, with mu held, until a frame is buffered; it
// returns io.EOF (or the peer's error) after the peer's end, or the
// stream's error.
func (c *Core) awaitRecvLocked() error {
	for c.fhead == len(c.frames) {
		switch {
		case c.err != nil:
			return c.err
		case c.ended && c.endErr != nil:
			return c.endErr
		case c.ended:
			return io.EOF
		}
		c.mu.Unlock()
		<-c.recvWake
		c.mu.Lock()
	}
	return nil
}

// Read reads the stream's bytes, whatever their messages.
func (c *Core) Read(p []byte) (int, error) {
	c.mu.Lock()
	if err := c.awaitRecvLocked(); err != nil {
		c.mu.Unlock()
		return 0, err
	}
	var n int
	var grant uint32
	for c.fhead < len(c.frames) {
		left := int(c.frames[c.fhead]>>1) - c.partial
		k := min(left, len(p)-n)
		if k == 0 && left > 0 {
			break
		}
		c.copyOutLocked(p[n : n+k])
		n += k
		grant += c.consumeLocked(k)
	}
	c.mu.Unlock()
	c.grant(grant)
	return n, nil
}

// Recv returns the next whole message, valid until the next Recv.
func (c *Core) Recv() ([]byte, error) {
	c.msg = c.msg[:0]
	for {
		c.mu.Lock()
		if err := c.awaitRecvLocked(); err != nil {
			c.mu.Unlock()
			if err == io.EOF && len(c.msg) > 0 {
				err = fmt.Errorf("%w: the stream ended inside a message", frame.ErrTruncated)
			}
			return nil, err
		}
		rec := c.frames[c.fhead]
		k := int(rec>>1) - c.partial
		if c.maxMsg > 0 && len(c.msg)+k > c.maxMsg {
			c.mu.Unlock()
			err := &frame.SizeError{Limit: c.maxMsg, Size: int64(len(c.msg) + k)}
			c.Fail(err)
			return nil, err
		}
		start := len(c.msg)
		c.msg = slices.Grow(c.msg, k)[:start+k]
		c.copyOutLocked(c.msg[start:])
		grant := c.consumeLocked(k)
		c.mu.Unlock()
		c.grant(grant)
		if rec&1 == 0 {
			return c.msg, nil
		}
	}
}

func (c *Core) grant(n uint32) {
	if n > 0 {
		c.sink.Window(n)
	}
}

// Send sends msg as one message, in chunks as credit allows.
func (c *Core) Send(ctx context.Context, msg []byte) error {
	for first := true; first || len(msg) > 0; first = false {
		n, err := c.awaitCredit(len(msg))
		if err != nil {
			return err
		}
		if err := c.sink.Data(ctx, msg[:n], n < len(msg)); err != nil {
			c.Fail(err)
			return err
		}
		msg = msg[n:]
	}
	return nil
}

// Write sends p as a message, for io.Writer: a reader of the other end
// sees the bytes, whatever the messages.
func (c *Core) Write(ctx context.Context, p []byte) (int, error) {
	if err := c.Send(ctx, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// awaitCredit waits for credit to send the next chunk of a message with
// left bytes to go, takes it, and returns the chunk's length.
func (c *Core) awaitCredit(left int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		switch {
		case c.err != nil:
			return 0, c.err
		case c.sendErr != nil:
			return 0, c.sendErr
		case c.sendClosed:
			return 0, ErrSendClosed
		}
		room := c.credit - frame.MuxHeaderSize
		if room >= int64(min(left, 1)) {
			n := min(left, int(min(room, int64(c.maxChunk))))
			c.credit -= int64(frame.DataCost(n))
			return n, nil
		}
		c.mu.Unlock()
		<-c.sendWake
		c.mu.Lock()
	}
}

// AddCredit takes the peer's grant of n bytes.
func (c *Core) AddCredit(n uint32) error {
	c.mu.Lock()
	if c.credit+int64(n) > 1<<31-1 {
		c.mu.Unlock()
		return fmt.Errorf("%w: credit over 2^31-1", frame.ErrStreamWindow)
	}
	c.credit += int64(n)
	c.mu.Unlock()
	signal(c.sendWake)
	return nil
}

// Credit is the sending credit left, for tests.
func (c *Core) Credit() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.credit
}

// Buffered is the bytes received and not yet read, for tests.
func (c *Core) Buffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// CloseSend marks the sending side closed; it reports whether it was
// open, that is, whether the engine is to send the end frame.
func (c *Core) CloseSend() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sendClosed || c.err != nil {
		return false
	}
	c.sendClosed = true
	return true
}

// PeerEnd notes the peer's end frame, with its trailer: receiving ends
// with io.EOF once the buffered messages are read.
func (c *Core) PeerEnd(trailer []byte) error {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return fmt.Errorf("%w: a second end on one stream", frame.ErrMuxMalformed)
	}
	c.ended, c.trailer = true, trailer
	c.mu.Unlock()
	signal(c.recvWake)
	return nil
}

// PeerFail notes the peer's end with an error rather than an end frame
// (the server's error frame, for the client): as after PeerEnd, what the
// peer sent before it is still to read, and receiving then returns err
// instead of io.EOF. A stream that ended or failed already is left as it
// is. Sending is the engine's to stop (StopSending).
func (c *Core) PeerFail(err error) {
	c.mu.Lock()
	if c.err == nil && !c.ended {
		c.ended, c.endErr = true, err
	}
	c.mu.Unlock()
	signal(c.recvWake)
}

// Trailer is what the peer's end frame carried.
func (c *Core) Trailer() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trailer
}

// Fail ends the stream both ways with err, unless it failed already;
// what was buffered is dropped, and every wait returns err.
func (c *Core) Fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
		c.frames, c.fhead, c.partial, c.size = nil, 0, 0, 0
		if !c.writing {
			c.ring = nil // the reader may be filling it
		}
	}
	c.mu.Unlock()
	signal(c.recvWake)
	signal(c.sendWake)
}

// StopSending ends the sending side with err, for a stream whose peer
// finished (Send then returns err) while what it sent is still to read.
func (c *Core) StopSending(err error) {
	c.mu.Lock()
	c.sendClosed = true
	if c.sendErr == nil {
		c.sendErr = err
	}
	c.mu.Unlock()
	signal(c.sendWake)
}

// Err is the stream's failure, nil while it has none.
func (c *Core) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
