package client

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Stats of routing around overdue connections.
const (
	StatOverdue     = "client.overdue"      // count, calls routed away from an overdue connection
	StatExtraDialed = "client.extra_dialed" // count, extra connections opened
	StatExtraClosed = "client.extra_closed" // count, idle extra connections closed
)

// epoch is the origin of mono's readings. It is set once, at start.
var epoch = time.Now()

// mono reads the monotonic clock, in nanoseconds since epoch, never 0:
// time.Since reads only the monotonic clock, where time.Now reads the wall
// clock too.
func mono() int64 { return max(int64(time.Since(epoch)), 1) }

// progress tracks how long a connection's oldest outstanding answer has
// been awaited. v1 answers come in request order, so one answer that is
// slow to come (a slow or stuck handler) holds up every call queued behind
// it on that connection; a call is better sent elsewhere.
type progress struct {
	// since is the mono reading from which the next answer has been
	// awaited: when the connection went from idle to busy, or when it
	// last delivered an answer with more due. 0 while none is due.
	since atomic.Int64
	// busy counts the times the connection went from idle to busy; an
	// extra connection whose count stands still is idle.
	busy atomic.Uint64
	// served: the connection delivered an answer. One that breaks after
	// serving says nothing against its address (see endpoint.connDown).
	served atomic.Bool
	// mark is busy as the endpoint last saw it (endpoint.retireIdle).
	mark uint64
}

// begin notes that a call was queued on an idle connection. Called with
// the connection's mu held.
func (p *progress) begin() {
	p.since.Store(mono())
	p.busy.Add(1)
}

// advance notes that an answer was delivered; more says whether others
// are still due. Called with the connection's mu held.
func (p *progress) advance(more bool) {
	p.markServed()
	if more {
		p.since.Store(mono())
	} else {
		p.since.Store(0)
	}
}

// markServed notes that the connection delivered an answer. The
// multiplexed mode, whose answers come in any order and are never overdue,
// calls only this.
func (p *progress) markServed() {
	if !p.served.Load() {
		p.served.Store(true)
	}
}

// overdue reports whether the next answer has been awaited longer than
// limit. It reads the clock only when an answer is due.
func (p *progress) overdue(limit time.Duration) bool {
	s := p.since.Load()
	return s != 0 && mono()-s > int64(limit)
}

func (cn *conn) overdue() bool {
	limit := cn.c.cfg.OverdueAfter
	return limit > 0 && cn.prog.overdue(limit)
}

// routeAround is called with a slot taken on cn, which the balancer chose.
// When cn is overdue it takes a slot instead, in this order, on: another
// connection to cn's address that is not overdue, so that the balancer's
// choice of address stands; a connection the balancers choose from, to
// another address, that is not overdue and carries fewer calls than cn
// (not for a keyed call, bound to its address); an extra connection to
// cn's address, dialled for it (wait is then true: the caller waits for
// the snapshot to change rather than queue behind the overdue answer).
// Failing all, it keeps cn. cn's slot is released unless cn is returned.
func (c *Client) routeAround(s *snapshot, cn *conn, keyed bool) (use *conn, wait bool) {
	if !cn.overdue() {
		return cn, false
	}
	sameAddr := func(alt *conn) bool { return alt.ep == cn.ep }
	if alt := c.alternative(s.conns, cn, sameAddr); alt != nil {
		return alt, false
	}
	if alt := c.alternative(s.extras, cn, sameAddr); alt != nil {
		return alt, false
	}
	if !keyed {
		own := s.load(cn) - 1 // without the caller's slot
		lighter := func(alt *conn) bool { return s.load(alt) < own }
		if alt := c.alternative(s.conns, cn, lighter); alt != nil {
			return alt, false
		}
	}
	if cn.ep.grow() {
		cn.release()
		return nil, true
	}
	return cn, false
}

// alternative takes a slot, in place of cn's, on a connection of conns
// that ok accepts and that is not overdue, if any.
func (c *Client) alternative(conns []*conn, cn *conn, ok func(*conn) bool) *conn {
	n := len(conns)
	if n == 0 {
		return nil
	}
	start := rand.IntN(n)
	for k := range n {
		alt := conns[(start+k)%n]
		if alt == cn || !ok(alt) || alt.broken.Load() || alt.overdue() {
			continue
		}
		if alt.tryAcquire() {
			cn.release()
			c.cfg.Stats.Count(StatOverdue, 1)
			return alt
		}
	}
	return nil
}

// grow starts dialling an extra connection to the address, up to
// MaxExtraConns beyond ConnsPerAddr. It reports whether one is being
// dialled, now or already.
func (e *endpoint) grow() bool {
	cfg := &e.c.cfg
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.growing:
		return true
	case cfg.MaxExtraConns <= 0, e.removed, len(e.conns) >= cfg.ConnsPerAddr+cfg.MaxExtraConns,
		time.Now().Before(e.growAfter):
		return false
	}
	e.growing = true
	if !e.c.spawn(e.dialExtra) {
		e.growing = false
		return false
	}
	return true
}

// dialExtra dials an extra connection. A failed dial is not retried for
// ReconnectBackoff.Max: a call then waits on an overdue connection rather
// than on dials that fail.
func (e *endpoint) dialExtra() {
	var cn *conn
	nc, err := e.c.dial(e.ctx, e.addr)
	if err == nil {
		// Extras speak v1 (only v1 answers come in order), so the
		// credential, if any, is their first frame.
		cn, err = newConn(e.c, e, nc).authenticate(e.ctx)
	}
	e.mu.Lock()
	e.growing = false
	if err != nil {
		e.growAfter = time.Now().Add(e.c.cfg.ReconnectBackoff.Max)
	}
	e.mu.Unlock()
	if err != nil {
		e.c.cfg.Stats.Count(StatDialErrors, 1)
		e.c.rebuild() // wakes the calls that waited for it
		return
	}
	e.c.cfg.Stats.Count(StatExtraDialed, 1)
	e.add(cn)
	e.wake() // to watch the extra for idleness
}

// retireTimer returns the channel on which the endpoint's goroutine next
// looks for idle extra connections: nil while there are none.
func (e *endpoint) retireTimer(t **time.Timer) <-chan time.Time {
	e.mu.Lock()
	extra := len(e.conns) > e.c.cfg.ConnsPerAddr
	e.mu.Unlock()
	if !extra {
		return nil
	}
	d := e.c.cfg.ExtraIdleTimeout / 2
	if *t == nil {
		*t = time.NewTimer(d)
	} else {
		(*t).Reset(d)
	}
	return (*t).C
}

// retireIdle closes connections beyond ConnsPerAddr that have had nothing
// in flight since the last look, ExtraIdleTimeout/2 ago: idle for between
// half of ExtraIdleTimeout and all of it.
func (e *endpoint) retireIdle() {
	e.mu.Lock()
	var idle []*conn
	keep := e.conns[:0]
	for _, cn := range e.conns {
		busy := cn.prog.busy.Load()
		if cn.load() == 0 && busy == cn.prog.mark && len(e.conns)-len(idle) > e.c.cfg.ConnsPerAddr {
			idle = append(idle, cn)
			continue
		}
		cn.prog.mark = busy
		keep = append(keep, cn)
	}
	clear(e.conns[len(keep):])
	e.conns = keep
	e.mu.Unlock()
	if len(idle) == 0 {
		return
	}
	e.c.rebuild()
	for _, cn := range idle {
		e.c.cfg.Stats.Count(StatExtraClosed, 1)
		// A call that picked it from an older snapshot meanwhile is
		// answered before it closes, or, not yet queued, is refused and
		// tried elsewhere.
		if e.c.trackDrain(cn) {
			cn.drain(e.c.cfg.DrainTimeout)
		} else {
			cn.fail(ErrClosed, writeProgress{})
		}
	}
}

// awaitGrowth waits, for a call that found only overdue connections, until
// the snapshot changes: the extra connection is up, or its dial failed.
func awaitGrowth(ctx context.Context, s *snapshot) error {
	select {
	case <-s.changed:
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	}
}
