package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpez/tcpez/frame"
	"github.com/tcpez/tcpez/stats"
)

// Client sends requests to a set of tcpez servers over pooled, pipelined
// connections. It is safe for concurrent use; share one per process and
// server set.
type Client struct {
	// Set by New, then read-only.
	cfg Config
	// timed is set when someone consumes per-call timings, so that the
	// common path does not read the clock for nobody.
	timed  bool
	ctx    context.Context // ends at Close
	cancel context.CancelFunc

	// Safe for concurrent use.
	requests sync.Pool                // *request, with their done channels
	shared   sharedDone               // watchers of contexts that calls share
	snap     atomic.Pointer[snapshot] // the usable connections, for balancing
	rr       atomic.Uint64            // RoundRobin's counter
	// pipeMux is how the next Pipeline batch lays out its frames (see
	// Pipeline.mux): as the client's last batch went out, or as Protocol
	// says before the first, so that batches are not copied every time
	// against v1 servers found by ProtocolAuto.
	pipeMux atomic.Bool
	// bulkQ gives bulk calls connections that carry no other (bulk.go).
	bulkQ bulkQueue

	mu sync.Mutex
	// Guarded by mu.
	eps        map[string]*endpoint
	order      []*endpoint // eps in the order they were added
	closed     bool
	resolved   bool // the first address set arrived, or the resolver gave up
	gotAddrs   bool // an address set arrived
	resolveErr error
	lazyGo     bool // a lazy client has had its first call
	// draining holds the connections of removed addresses that still have
	// answers due, so that Close can end them too.
	draining map[*conn]bool

	// active counts the calls between their start and their result, and
	// shuttingDown refuses new ones, for Shutdown; drained gets a token
	// when active drops to zero while shutting down.
	active       atomic.Int64
	shuttingDown atomic.Bool
	drained      chan struct{}

	spawnMu     sync.Mutex
	spawnClosed bool // guarded by spawnMu: no more goroutines start
	wg          sync.WaitGroup
	closeOnce   sync.Once
}

// New returns a client for addrs ("host:port", or "unix:/path" for a Unix
// socket), or for the addresses of cfg.Resolver when addrs is empty. The
// zero Config means every default (see Config). It fails only for an
// invalid configuration.
//
// New does not wait for the network: it starts dialling every address in
// the background (at the first call with LazyDial) and returns. A call
// that finds no connection yet waits, as long as its context allows, while
// an address is making its first connection: for DialTimeout from its first
// dial, refused dials being retried with ReconnectBackoff meanwhile. So a
// client made before its server listens simply works. The first calls also
// wait for every address of the first set to have been dialled once, so
// that they are spread over all the servers that answer. Once that window
// passes with no connection, calls fail with ErrNoConnection wrapping the
// last dial error, unless WaitForConnection is set. WaitConnected waits for
// the first connection, for a program that wants to fail at startup. With
// a Resolver, calls made before its first address set arrives wait for it.
func New(addrs []string, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case len(addrs) > 0 && cfg.Resolver != nil:
		return nil, fmt.Errorf("%w: both addresses and a Resolver given", ErrInvalidConfig)
	case len(addrs) == 0 && cfg.Resolver == nil:
		return nil, fmt.Errorf("%w: no addresses and no Resolver", ErrInvalidConfig)
	}
	for _, a := range addrs {
		if err := checkAddr(a); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}

	c := &Client{cfg: cfg.withDefaults(), eps: make(map[string]*endpoint), draining: make(map[*conn]bool),
		drained: make(chan struct{}, 1)}
	_, nop := c.cfg.Stats.(stats.Nop)
	c.timed = !nop || c.cfg.Observer != nil
	c.requests.New = func() any {
		rq := &request{done: make(chan struct{}, 1), pool: &c.requests, shared: &c.shared}
		c.shared.add(rq)
		return rq
	}
	c.pipeMux.Store(c.cfg.Protocol != ProtocolV1 && c.cfg.Codec == nil)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.shared.spawn, c.shared.stop, c.shared.idle = c.spawn, c.ctx.Done(), watchIdle
	c.snap.Store(&snapshot{changed: make(chan struct{}), pending: true})

	if c.cfg.HealthCheck.Interval > 0 {
		c.spawn(c.checkHealth)
	}
	if cfg.Resolver != nil {
		c.spawn(c.watch)
		return c, nil
	}
	c.setAddrs(addrs)
	return c, nil
}

// WaitConnected waits until the client has a usable connection. It fails
// with ErrNoConnection, wrapping the last dial error, when no address
// connected within its first-connection window (see New), or with ctx's
// error. A lazy client starts dialling. Calls need no WaitConnected: they
// wait for a connection too; it is for programs that want to fail at
// startup when their servers are unreachable. It returns at the first
// usable connection, while the first calls also wait for every address of
// the first set to have been dialled once (see New): up to DialTimeout
// for an address that accepts connections but does not answer the
// multiplexed mode's preface.
func (c *Client) WaitConnected(ctx context.Context) error {
	for {
		s := c.snap.Load()
		switch {
		case s.closed:
			return ErrClosed
		case len(s.conns) > 0:
			return nil
		case s.idle:
			c.startLazy()
		case !s.pending:
			return noConnection(s.err)
		}
		select {
		case <-s.changed:
		case <-ctx.Done():
			return ctxError(ctx)
		}
	}
}

// Shutdown closes the client gracefully: calls made from now on fail with
// ErrClosed, and Shutdown waits for the calls already made (Call,
// CallAppend, Go, Pipeline.Flush; Notify until its request is queued)
// to return before it closes the client as Close does. When ctx ends
// first, it closes the client at once, failing the calls left with
// ErrClosed, and returns ctx's error. Like http.Server.Shutdown beside
// Close.
func (c *Client) Shutdown(ctx context.Context) error {
	c.shuttingDown.Store(true)
	for c.active.Load() > 0 {
		select {
		case <-c.drained:
		case <-ctx.Done():
			c.Close()
			return ctx.Err()
		}
	}
	return c.Close()
}

// begin counts a call in, unless the client is shutting down.
func (c *Client) begin() error {
	c.active.Add(1)
	if c.shuttingDown.Load() {
		c.end()
		return ErrClosed
	}
	return nil
}

// end counts a call out, telling a waiting Shutdown when it was the last.
func (c *Client) end() {
	if c.active.Add(-1) == 0 && c.shuttingDown.Load() {
		select {
		case c.drained <- struct{}{}:
		default:
		}
	}
}

// Close fails the calls still waiting for answers with ErrClosed, closes
// every connection and waits for the client's goroutines to end. Later
// calls fail with ErrClosed. Close is idempotent and always returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.spawnMu.Lock()
		c.spawnClosed = true
		c.spawnMu.Unlock()

		c.mu.Lock()
		c.closed = true
		eps, draining := c.order, c.draining
		c.order, c.eps, c.draining = nil, nil, nil
		c.mu.Unlock()

		c.cancel()
		for _, e := range eps {
			e.shutdown(false)
		}
		for cn := range draining {
			cn.fail(ErrClosed, writeProgress{})
		}
		c.rebuild()
	})
	c.wg.Wait()
	return nil
}

// trackDrain registers a draining connection; false once the client is
// closed, when the connection must be closed instead.
func (c *Client) trackDrain(cn *conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.draining[cn] = true
	return true
}

func (c *Client) untrackDrain(cn *conn) {
	c.mu.Lock()
	delete(c.draining, cn)
	c.mu.Unlock()
}

// spawn runs f in a goroutine that Close waits for, unless the client is
// closing; it reports whether f runs.
func (c *Client) spawn(f func()) bool {
	c.spawnMu.Lock()
	defer c.spawnMu.Unlock()
	if c.spawnClosed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// Call sends req and returns its answer in a new slice. req may be
// reused as soon as Call returns.
//
// When ctx ends first, Call returns at once with an error matching
// ctx.Err(); the answer, when it comes, is read and dropped, and the
// connection stays usable. A request that provably never left the process
// is tried again on another connection; one that may have reached a server
// only when ctx is marked WithIdempotent.
func (c *Client) Call(ctx context.Context, req []byte) ([]byte, error) {
	return c.exchange(ctx, modeOwned, nil, req, nil)
}

// CallAppend is Call that appends the answer to dst and returns the
// extended slice, or dst and the error. With a dst of enough capacity the
// call allocates nothing. dst is not touched after CallAppend returns,
// even when it returns early because ctx ended.
func (c *Client) CallAppend(ctx context.Context, dst, req []byte) ([]byte, error) {
	ans, err := c.exchange(ctx, modeAppend, dst, req, nil)
	if err != nil {
		return dst, err
	}
	return ans, nil
}

// CallAppendTail is CallAppend for a request in two parts: req then tail,
// sent as one request. A large tail goes to the socket from its own slice
// (a gathering write), so a request that is mostly one big blob, such as a
// protobuf message's bytes field (package protoserver sends them so), is
// not copied to be joined with the bytes before it. Both may be reused as
// soon as CallAppendTail returns.
func (c *Client) CallAppendTail(ctx context.Context, dst, req, tail []byte) ([]byte, error) {
	ans, err := c.exchange(ctx, modeAppend, dst, req, tail)
	if err != nil {
		return dst, err
	}
	return ans, nil
}

func (c *Client) exchange(ctx context.Context, mode answerMode, dst, req, tail []byte) ([]byte, error) {
	if err := c.begin(); err != nil {
		return nil, err
	}
	defer c.end()
	var start time.Time
	if c.timed {
		start = time.Now()
	}
	var (
		o   outcome
		ans []byte
		err = c.checkRequest(len(req) + len(tail))
	)
	if err == nil {
		rq := c.getRequest(mode, dst)
		rq.tail = tail
		if err = c.roundTrip(ctx, rq, req, &o); err == nil {
			ans = rq.ans
		}
		if !o.abandoned {
			rq.recycle()
		}
	}
	if c.timed {
		c.record(OpCall, start, &o, len(req)+len(tail), len(ans)-len(dst), err)
	}
	return ans, err
}

func (c *Client) getRequest(mode answerMode, dst []byte) *request {
	rq := c.requests.Get().(*request)
	rq.mode, rq.dst = mode, dst
	return rq
}

// checkRequest refuses, before anything is written, a request over the
// client's own frame limit (Config.Limits, 16 MiB by default: the server's
// default too). Over v1 a server closes the connection on an oversize
// frame, failing every call on it with no word of why; refusing here gives
// the caller an error that says so and leaves the connection alone. A
// Codec's requests are bounded by the codec.
func (c *Client) checkRequest(size int) error {
	limit := frame.MaxFrameSize
	if c.cfg.Codec == nil {
		limit = c.cfg.Limits.MaxFrameSize
		if limit <= 0 {
			limit = frame.DefaultMaxFrameSize
		}
	}
	if size > limit {
		return &frame.SizeError{Limit: limit, Size: int64(size)}
	}
	return nil
}

// outcome is what the attempts of one call did, for retries and hooks.
type outcome struct {
	addr      string
	ep        *endpoint // where the last attempt went, for outlier ejection
	attempts  int
	abandoned bool // the caller gave up; the call is the reader's now
	// bulk: the call is routed as bulk; bulkOn is the connection that
	// carries it as its one bulk call until the call ends (see bulk.go).
	bulk   bool
	bulkOn *conn
}

// roundTrip sends rq's request and waits for its answer, retrying as
// Config.MaxRetries and WithIdempotent allow.
func (c *Client) roundTrip(ctx context.Context, rq *request, payload []byte, o *outcome) error {
	o.bulk = c.bulk(ctx, len(payload)+len(rq.tail))
	err := c.roundTrips(ctx, rq, payload, o)
	c.dropBulk(o)
	return err
}

func (c *Client) roundTrips(ctx context.Context, rq *request, payload []byte, o *outcome) error {
	for {
		if err := c.submit(ctx, rq, payload, o); err != nil {
			return err
		}
		if !rq.awaitOrCancel(ctx) {
			o.abandoned = true
			c.noteOutcome(o.ep, ctx.Err())
			return ctxError(ctx)
		}
		c.noteOutcome(o.ep, rq.err)
		if rq.err == nil {
			return nil
		}
		if err := c.retryWait(ctx, rq.err, rq.unsent, o.attempts); err != nil {
			return err
		}
		rq.reuse()
	}
}

// submit queues rq on a connection, trying again while the failures prove
// that nothing was sent.
func (c *Client) submit(ctx context.Context, rq *request, payload []byte, o *outcome) error {
	draining := 0
	for {
		if ctx.Err() != nil {
			// Do not send what nobody will wait for.
			return ctxError(ctx)
		}
		o.attempts++
		c.dropBulk(o) // the last attempt's
		cn, err := c.pick(ctx, o)
		if err == nil {
			o.addr, o.ep = cn.addr, cn.ep
			if err = cn.enqueue(ctx, rq, payload); err == nil {
				return nil
			}
			// A connection picked just as its server said it goes away
			// is left by the balancer a moment later: trying another is
			// not a retry the caller's budget should pay for, or a
			// graceful scale-in would fail calls that were never sent.
			if errors.Is(err, errDraining) && draining < maxDrainingPicks {
				draining++
				o.attempts--
			}
		}
		if err := c.retryWait(ctx, err, true, o.attempts); err != nil {
			return err
		}
	}
}

// maxDrainingPicks bounds how often one call may pick a connection that
// turns out to be draining without it counting as an attempt.
const maxDrainingPicks = 8

// retryWait decides whether a failed attempt is tried again and, if so,
// waits the backoff and returns nil; otherwise it returns the error to
// report.
func (c *Client) retryWait(ctx context.Context, err error, unsent bool, attempts int) error {
	if !c.mayRetry(ctx, err, unsent, attempts) {
		return err
	}
	if !sleep(ctx, c.ctx.Done(), c.cfg.RetryBackoff.wait(attempts)) {
		if c.ctx.Err() != nil {
			return ErrClosed
		}
		return fmt.Errorf("%w; last attempt: %w", ctxError(ctx), err)
	}
	c.cfg.Stats.Count(StatRetries, 1)
	return nil
}

func (c *Client) mayRetry(ctx context.Context, err error, unsent bool, attempts int) bool {
	switch {
	case attempts > c.cfg.MaxRetries, ctx.Err() != nil, errors.Is(err, ErrClosed),
		errors.Is(err, frame.ErrFrameTooLarge), errors.Is(err, ErrNoStreams):
		return false
	case unsent:
		return true
	}
	return errors.Is(err, ErrConnLost) && IsIdempotent(ctx)
}

// ctxError is the error of a call whose context ended.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("tcpez/client: call abandoned: %w (%w)", err, cause)
	}
	return fmt.Errorf("tcpez/client: call abandoned: %w", err)
}

func noConnection(last error) error {
	if last == nil {
		return ErrNoConnection
	}
	return fmt.Errorf("%w: %w", ErrNoConnection, last)
}
