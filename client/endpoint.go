package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"sync"
	"time"
)

// State is what a StateEvent reports about an address.
type State int

const (
	// Connected: the address has its first usable connection.
	Connected State = iota + 1
	// Disconnected: the address lost its last connection, or its first
	// dial failed. Calls no longer go to it; it is dialled again with
	// backoff. Err says why.
	Disconnected
	// Reconnected: the address is usable again after Disconnected.
	Reconnected
	// Ejected: the address failed its health check, or too many calls
	// in a row (see Config.HealthCheck and Config.OutlierFailures).
	// Calls avoid it, unless no other address is usable, until it is
	// Restored. Err says why.
	Ejected
	// Restored: an Ejected address is back in use.
	Restored
)

func (s State) String() string {
	switch s {
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	case Reconnected:
		return "reconnected"
	case Ejected:
		return "ejected"
	case Restored:
		return "restored"
	}
	return "unknown"
}

// StateEvent is a change in whether an address is usable.
type StateEvent struct {
	Addr  string
	State State
	Err   error // the cause of Disconnected; nil otherwise
}

// endpoint keeps ConnsPerAddr connections to one address. Its goroutine
// dials, replaces connections that break, backs off while the address
// refuses, and reports state changes in order.
type endpoint struct {
	c      *Client
	addr   string
	ctx    context.Context // ends when the address is removed or the client closes
	cancel context.CancelFunc
	kick   chan struct{} // wakes the goroutine: a connection broke, or a lazy start

	mu      sync.Mutex
	conns   []*conn
	started bool // false while a lazy endpoint waits for its first call
	dialing bool
	// redial: the last connection broke and no dial has been tried since.
	// Calls wait for that dial rather than fail: a broken connection says
	// little about whether the server is still there.
	redial bool
	// connecting: the address has never connected and its first dial
	// began less than DialTimeout ago. Calls wait for it rather than fail,
	// so that a client made before its server listens just works; the
	// window timer ends it.
	connecting bool
	window     *time.Timer
	// firstRound: an address of the first set has not ended its first
	// round of dials. Calls wait for it even when other addresses are
	// connected, as New once did, so that the first calls are spread over
	// every address that answers rather than piled on the first one to
	// connect. Addresses a Resolver adds later do not hold calls up.
	firstRound bool
	removed    bool
	lastErr    error
	// quick counts the connections in a row that broke within
	// ReconnectBackoff.Max of being dialled without delivering an answer:
	// a server that accepts and then drops connections is backed off like
	// one that refuses them. One that closes a connection after serving
	// on it (as a tcpez server does after a handler error) is not.
	quick int
	// growing: an extra connection is being dialled (see grow); none is
	// tried before growAfter, set when one failed.
	growing   bool
	growAfter time.Time

	health health // standing with the health checks; see health.go

	// v1Until: the address answered a preface as a v1 server, so new
	// connections speak v1 at once until then (see v1Memory).
	v1Until time.Time
}

// v1Memory is how long an address that answered a preface as a v1 server
// is dialled in v1 without a preface. Not for good: it may come back
// upgraded. Not only while it keeps a connection either: a v1 server that
// closes each connection after an answer would then be sent a preface,
// and cost a second dial, for every call.
const v1Memory = time.Minute

func (e *endpoint) speaksV1() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return time.Now().Before(e.v1Until)
}

func (e *endpoint) setV1() {
	e.mu.Lock()
	e.v1Until = time.Now().Add(v1Memory)
	e.mu.Unlock()
}

// newEndpoint makes the endpoint of addr; initial says that it belongs to
// the client's first address set, whose first dials calls wait for.
func newEndpoint(c *Client, addr string, started, initial bool) *endpoint {
	ctx, cancel := context.WithCancel(c.ctx)
	return &endpoint{
		c:       c,
		addr:    addr,
		ctx:     ctx,
		cancel:  cancel,
		kick:    make(chan struct{}, 1),
		started: started,
		dialing: started, // calls wait for the first dial, not fail
		// Set here, not as run starts, so that no snapshot taken before
		// run is scheduled leaves the address out.
		connecting: started,
		firstRound: started && initial,
	}
}

func (e *endpoint) wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// start begins dialling a lazy endpoint; it reports whether it was idle.
func (e *endpoint) start() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return false
	}
	e.started, e.dialing, e.connecting, e.firstRound = true, true, true, true
	e.wake()
	return true
}

func (e *endpoint) run() {
	if !e.waitStart() {
		return
	}
	e.openWindow()
	defer e.closeWindow()
	var (
		st         upState
		failures   int
		firstRound = true
		retire     *time.Timer
	)
	defer func() {
		if retire != nil {
			retire.Stop()
		}
	}()
	for {
		live, quick, lastErr := e.status()
		e.report(&st, live, lastErr)
		e.reportHealth(&st)
		var derr error
		if want := e.c.cfg.ConnsPerAddr; live < want {
			if !firstRound && !sleep(e.ctx, nil, e.c.cfg.ReconnectBackoff.wait(failures+quick)) {
				return
			}
			if derr = e.dialMissing(want - live); derr != nil {
				failures++
				if refusedByServer(derr) && e.closeWindow() {
					// Waiting out the window would not change the answer.
					e.c.rebuild()
				}
			} else {
				failures = 0
			}
			live, _, _ = e.status()
			e.report(&st, live, derr)
		}
		if firstRound {
			firstRound = false
			e.mu.Lock()
			e.firstRound = false
			e.mu.Unlock()
			e.c.rebuild()
		}
		if derr != nil {
			continue // back off, then dial again
		}
		select {
		case <-e.kick:
		case <-e.retireTimer(&retire):
			e.retireIdle()
		case <-e.ctx.Done():
			return
		}
	}
}

// upState is what the endpoint last reported.
type upState struct {
	up, everUp bool
	// down: Disconnected was reported and nothing since, so that a
	// string of failed probes makes one event, not one each.
	down bool
	out  bool // Ejected was reported and Restored not since
}

// report emits the event, if any, that live connections and err make.
func (e *endpoint) report(st *upState, live int, err error) {
	switch {
	case live > 0 && !st.up:
		if st.everUp {
			e.emit(Reconnected, nil)
		} else {
			e.emit(Connected, nil)
		}
		st.up, st.everUp, st.down = true, true, false
	case live == 0 && (st.up || (!st.down && err != nil)):
		e.emit(Disconnected, err)
		st.up, st.down = false, true
	}
}

// openWindow starts the time the address has to make its first
// connection, during which calls wait for it.
func (e *endpoint) openWindow() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.connecting = true
	e.window = time.AfterFunc(e.c.cfg.DialTimeout, func() {
		if e.closeWindow() {
			e.c.rebuild() // waiting calls look again, and fail
		}
	})
}

// closeWindow ends the first-connection window; it reports whether it was
// open.
func (e *endpoint) closeWindow() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	was := e.connecting
	e.connecting = false
	if e.window != nil {
		e.window.Stop()
	}
	return was
}

// waitStart waits for the first call of a lazy client.
func (e *endpoint) waitStart() bool {
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if started {
		return true
	}
	select {
	case <-e.kick:
		return true
	case <-e.ctx.Done():
		return false
	}
}

func (e *endpoint) status() (live, quick int, lastErr error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conns), e.quick, e.lastErr
}

// dialMissing dials k connections, stopping at the first failure.
func (e *endpoint) dialMissing(k int) error {
	e.setDialing(true)
	defer e.setDialing(false)
	for range k {
		cn, err := e.c.connect(e.ctx, e)
		if err != nil {
			e.mu.Lock()
			e.lastErr = err
			e.mu.Unlock()
			e.c.cfg.Stats.Count(StatDialErrors, 1)
			return err
		}
		e.add(cn)
	}
	return nil
}

func (e *endpoint) setDialing(v bool) {
	e.mu.Lock()
	e.dialing = v
	if v {
		// Cleared as the dial starts, not as it ends: a connection that
		// breaks meanwhile must leave its own redial pending.
		e.redial = false
	}
	e.mu.Unlock()
	e.c.rebuild()
}

// add offers a new connection to the balancer and starts its reader. The
// connection is listed first, so that a reader failing at once finds it
// there to take out again.
func (e *endpoint) add(cn *conn) {
	e.mu.Lock()
	if e.removed {
		e.mu.Unlock()
		_ = cn.nc.Close()
		return
	}
	e.conns = append(e.conns, cn)
	e.connecting = false
	e.mu.Unlock()
	if !e.c.spawn(cn.readLoop) {
		cn.fail(ErrClosed, writeProgress{})
		return
	}
	e.c.rebuild()
}

// connDown takes a broken connection out of service and wakes the
// goroutine to replace it.
func (e *endpoint) connDown(cn *conn, cause error) {
	e.mu.Lock()
	i := slices.Index(e.conns, cn)
	if i < 0 {
		e.mu.Unlock()
		return
	}
	e.conns = slices.Delete(e.conns, i, i+1)
	e.lastErr = cause
	e.redial = len(e.conns) == 0
	if time.Since(cn.born) < e.c.cfg.ReconnectBackoff.Max && !cn.prog.served.Load() {
		e.quick++
	} else {
		e.quick = 0
	}
	e.mu.Unlock()
	e.c.rebuild()
	e.wake()
}

// shutdown stops the endpoint. Its connections are drained (the address
// was removed: calls on them finish) or failed with ErrClosed.
func (e *endpoint) shutdown(drain bool) {
	e.cancel()
	e.health.stop()
	e.mu.Lock()
	e.removed = true
	conns := e.conns
	e.conns = nil
	e.mu.Unlock()
	for _, cn := range conns {
		if drain && e.c.trackDrain(cn) {
			cn.drain(e.c.cfg.DrainTimeout)
		} else {
			cn.fail(ErrClosed, writeProgress{})
		}
	}
}

// collect adds the endpoint's usable connections and state to s.
func (e *endpoint) collect(s *snapshot) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.health.isOut.Load()
	for i, cn := range e.conns {
		switch {
		case cn.broken.Load():
		case out:
			s.ejected = append(s.ejected, cn)
		case i >= e.c.cfg.ConnsPerAddr:
			s.extras = append(s.extras, cn)
		default:
			s.conns = append(s.conns, cn)
		}
	}
	if !e.started {
		s.idle, s.pending = true, true
	}
	if e.dialing || e.redial || e.connecting {
		s.pending = true
	}
	if e.connecting && len(e.conns) == 0 {
		s.connecting = append(s.connecting, e.addr)
	}
	if e.firstRound {
		// Between its last dial ending and firstRound being cleared, the
		// address is neither dialling nor connecting, yet calls must
		// still wait for it: starting makes pick skip the connections.
		s.starting, s.pending = true, true
	}
	if e.lastErr != nil {
		s.err = e.lastErr
	}
}

func (e *endpoint) emit(st State, err error) {
	switch st {
	case Connected:
		e.c.cfg.Stats.Count(StatConnected, 1)
	case Disconnected:
		e.c.cfg.Stats.Count(StatDisconnected, 1)
	case Reconnected:
		e.c.cfg.Stats.Count(StatReconnected, 1)
	case Ejected:
		e.c.cfg.Stats.Count(StatEjected, 1)
	case Restored:
		e.c.cfg.Stats.Count(StatRestored, 1)
	}
	if f := e.c.cfg.OnStateChange; f != nil {
		f(StateEvent{Addr: e.addr, State: st, Err: err})
	}
}

// refusedByServer reports a dial that reached a server which refused the
// connection: the wrong protocol, credentials or certificate. Calls need
// not wait for such an address's first connection.
func refusedByServer(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		aerr tls.AlertError
		rerr tls.RecordHeaderError
	)
	return errors.Is(err, ErrMuxRefused) || errors.Is(err, ErrAuthFailed) ||
		errors.As(err, &verr) || errors.As(err, &aerr) || errors.As(err, &rerr) ||
		tlsAlert(err)
}

// tlsAlert reports an alert the server sent during or right after the
// TLS handshake: it refused the client's certificate, or the client's
// version or ciphers. Over TCP, crypto/tls reports a peer's alert as a
// *net.OpError whose Op is "remote error" around an unexported type, not
// as a tls.AlertError (which only QUIC connections return).
func tlsAlert(err error) bool {
	var oerr *net.OpError
	return errors.As(err, &oerr) && oerr.Op == "remote error"
}
