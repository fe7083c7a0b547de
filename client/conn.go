package client

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpez/tcpez/frame"
)

// conn is one connection. It has two halves, each with one role that one
// goroutine holds at a time:
//
//   - the write half (out, writer.go): the writer role, the right to write
//     to nc, belongs to a caller that found nobody writing, or to the
//     background writer such a caller handed the rest of its write to;
//   - the read half (in, reader.go and direct.go): the reading role, the
//     right to read from nc, belongs to the reader goroutine, or to a
//     caller reading its own answer, or to nobody while nothing is in
//     flight.
//
// Requests go into q in wire order, under mu, and their answers complete
// them from q in the same order.
//
// Every field below says who may touch it. Functions named …Locked are
// called with mu held and return with it held; those named …Unlock are
// called with mu held and return with it released. Any other function
// takes mu itself when it needs it.
type conn struct {
	// The fields are grouped by who writes them, each group on cache lines
	// of its own: every call reads the first group, from either core, and
	// while it shared its lines with mu and with the reader's place in
	// ahead, written on every call, each of those reads missed. The
	// padding, about 200 bytes a connection, took 1.4% off a 16 B service
	// call at 256 callers (protoserver's BenchmarkOverhead), the most
	// CPU-bound of the calls measured; byte calls did not measurably move.

	// Set by newConn, then read-only.
	c    *Client
	ep   *endpoint
	addr string
	nc   net.Conn
	born time.Time
	// slots holds one slot per request queued or about to be, up to
	// MaxInFlight; it is safe for concurrent use.
	slots *slots
	// broken is set once, by fail, for the balancer to read without mu.
	broken atomic.Bool
	// mux holds the calls of a connection in the multiplexed mode by id;
	// nil for v1. Set before the connection is used; see mux.go.
	mux *muxTable
	// bulk: the connection carries a bulk call; guarded by the client's
	// bulkQ.mu (see bulk.go).
	bulk bool

	_ cacheLinePad
	// prog says how long the oldest answer due has been awaited; see
	// overdue.go. v1 moves it with every answer, the multiplexed mode
	// never: either way it is kept off the lines above and below.
	prog progress

	_  cacheLinePad
	mu sync.Mutex
	// Guarded by mu.
	q   queue // requests sent or being sent, not yet answered, in wire order
	err error // why the connection broke; set once, by fail
	// draining: the address was removed; no new requests, close once idle.
	draining   bool
	drainTimer *time.Timer
	// held is the mux batch one of whose answers the reader goroutine is
	// reading into the batch's arena. fail leaves it to the reader, which
	// completes it once it no longer touches it: completed underneath the
	// reader, the batch could be retried, or pooled and reused, while its
	// arena was still being written.
	held *request

	out writeSide

	_ cacheLinePad
	// ahead are the calls whose answers are the next frames, in frame
	// order, taken out of mux together by settleRead; ahead[aheadAt:] are
	// still to be read. Made on first use: a v1 connection has none.
	// Owned by whoever reads.
	ahead   []aheadCall
	aheadAt int
	in      readSide

	// served holds the server's calls to the client running; under mu.
	served servedCalls
}

// cacheLinePad keeps the fields before it and after it on different
// cache lines (64 bytes on amd64 and arm64).
type cacheLinePad [64]byte

func newConn(c *Client, ep *endpoint, nc net.Conn) *conn {
	cn := &conn{
		c:     c,
		ep:    ep,
		addr:  ep.addr,
		nc:    nc,
		born:  time.Now(),
		slots: newSlots(c.cfg.MaxInFlight),
		out: writeSide{
			// TLS state is lost when a write times out, so only a
			// deadline the caller set may cut a TLS write short.
			fragile: isTLS(nc),
		},
		in: readSide{
			wake: make(chan struct{}, 1),
			idle: newIdleCheck(nc),
		},
	}
	cn.in.r = frame.NewReaderSize(socketReader{cn}, readBufferSize, c.cfg.Limits)
	if c.cfg.Codec != nil {
		// Callers read their own answers by peeking at frame headers,
		// which another codec does not have.
		cn.in.idle = nil
	}
	if cn.in.idle == nil || c.pushReader() {
		// Nobody can tell a closed idle connection without reading it,
		// and what a server pushes must be read while nobody calls: the
		// reader goroutine always reads.
		cn.in.idle = nil
		cn.in.role = roleReader
	} else {
		cn.in.straight = newStraight(nc)
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

// fail breaks the connection for good: every queued request fails, the
// socket closes, and the endpoint is told so that it can dial a
// replacement.
//
// Each failed request is marked unsent when its bytes provably never
// reached the socket: they were still in the write buffer, or they lay past
// the point where a failed write stopped. Those are safe to retry on
// another connection.
func (cn *conn) fail(cause error, wp writeProgress) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	err := cause
	if cause != ErrClosed {
		err = &ConnError{Addr: cn.addr, Err: foreign(cause)}
	}
	cn.err = err
	cn.broken.Store(true)
	reqs := cn.q.drain()
	if cn.mux != nil {
		reqs = cn.mux.drain(cn.held)
	}
	unsent := make([]bool, len(reqs))
	for i, rq := range reqs {
		unsent[i] = cn.out.unsentLocked(rq, wp)
	}
	cn.out.buf, cn.out.spare = nil, nil
	if cn.served.cancel != nil {
		cn.served.cancel() // the server's calls to this connection end with it
	}
	timer, left, draining := cn.drainTimer, cn.out.leftTimer, cn.draining
	cn.mu.Unlock()
	cn.wakeReader() // to see the failure and exit

	if timer != nil {
		timer.Stop()
	}
	if left != nil {
		left.Stop()
	}
	if draining {
		cn.c.untrackDrain(cn)
	}
	_ = cn.nc.Close()
	// Out of the balancer before the requests learn of it, so that their
	// retries do not find it again.
	cn.ep.connDown(cn, cause)
	for i, rq := range reqs {
		if rq.stream != nil {
			rq.stream.finish(err)
		} else {
			rq.complete(nil, nil, err, unsent[i])
		}
		cn.release()
	}
}

// failure returns the error the connection broke with, nil if it has not.
func (cn *conn) failure() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.err
}

// drain stops new requests and closes the connection once the requests
// already on it are answered, or after timeout.
func (cn *conn) drain(timeout time.Duration) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		cn.c.untrackDrain(cn)
		return
	}
	cn.draining = true
	idle := cn.q.len() == 0 && (cn.mux == nil || cn.mux.n == 0)
	if !idle {
		cn.drainTimer = time.AfterFunc(timeout, func() { cn.fail(errDrainTimeout, writeProgress{}) })
	}
	cn.mu.Unlock()
	if idle {
		cn.fail(errDraining, writeProgress{})
	}
}
