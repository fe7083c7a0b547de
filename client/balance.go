package client

import (
	"context"
	"math/rand/v2"
)

// snapshot is the set of usable connections, replaced whole on every
// change so that picking a connection takes no lock.
type snapshot struct {
	conns []*conn
	// ejected holds the connections of ejected addresses (see health.go),
	// used only when no other connection is: a client that ejected every
	// address would fail every call on a guess.
	ejected []*conn
	// extras holds the connections beyond ConnsPerAddr of each usable
	// address, opened while its connections were overdue (see
	// overdue.go). The balancers choose among conns alone, so that
	// traffic spreads as it did before extras were opened; routeAround
	// looks at extras when the connection chosen is overdue.
	extras []*conn
	// byAddr groups conns by address, for the Rendezvous balancer.
	byAddr []addrConns
	// connecting are the addresses still making their first connection
	// (see endpoint.connecting): Rendezvous holds their keys for them.
	connecting []string
	// starting: an address has not finished its first round of dials
	// (see endpoint.firstRound); calls wait for it.
	starting bool
	// changed is closed when this snapshot is replaced: calls waiting for
	// a connection or a slot wake and look again.
	changed chan struct{}
	pending bool // an address is being resolved or dialled: worth waiting
	idle    bool // a lazy client has addresses it has not dialled yet
	closed  bool
	err     error // the last dial or resolver error
}

// rebuild publishes a new snapshot of the endpoints' connections.
func (c *Client) rebuild() {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &snapshot{
		changed: make(chan struct{}),
		closed:  c.closed,
		pending: !c.resolved && !c.closed,
		err:     c.resolveErr,
	}
	for _, e := range c.order {
		e.collect(s)
	}
	if len(s.conns) == 0 {
		s.conns = s.ejected
	}
	if c.cfg.Balancer == Rendezvous {
		s.groupByAddr()
	}
	close(c.snap.Swap(s).changed)
	c.cfg.Stats.Gauge(StatConns, int64(len(s.conns)+len(s.extras)))
}

// pick returns a connection with a slot taken for the caller.
//
// With no usable connection, a call waits while some address is being
// dialled (a first dial, a probe of a failed address, or the redial of a
// connection that just broke) and otherwise fails with ErrNoConnection,
// which the retry loop treats as "not sent". WaitForConnection makes it
// wait until ctx ends instead.
//
// A bulk call (see Config.BulkThreshold) gets a connection that carries
// no other, which o holds for it until the call ends (dropBulk).
func (c *Client) pick(ctx context.Context, o *outcome) (*conn, error) {
	for {
		s := c.snap.Load()
		if s.closed {
			return nil, ErrClosed
		}
		if len(s.conns) > 0 && !s.starting {
			cn, alive := c.choose(ctx, s)
			if cn != nil {
				cn, wait := c.routeAround(s, cn, c.keyed(ctx))
				if !wait && o.bulk {
					var err error
					if cn, wait, err = c.bulkConn(ctx, s, cn, o); err != nil {
						return nil, err
					}
					if cn == nil && !wait {
						continue
					}
					o.bulkOn = cn
				}
				if !wait {
					return cn, nil
				}
				if err := awaitGrowth(ctx, s); err != nil {
					return nil, err
				}
				continue
			}
			// Every connection is at MaxInFlight, or broken and about to
			// leave the snapshot: wait for a slot or a new snapshot.
			if alive == nil {
				select {
				case <-s.changed:
					continue
				case <-ctx.Done():
					return nil, ctxError(ctx)
				}
			}
			ok, err := alive.slots.acquire(ctx, s.changed)
			if err != nil {
				return nil, err
			}
			if ok {
				return alive, nil
			}
			// The snapshot changed meanwhile (an address came or went, a
			// connection broke, the client closed): look again. Judged
			// by the old snapshot, a call waiting for a slot failed with
			// ErrNoConnection beside a usable connection.
			continue
		}
		if s.idle {
			c.startLazy()
		}
		if !s.pending && !c.cfg.WaitForConnection {
			return nil, noConnection(s.err)
		}
		select {
		case <-s.changed:
		case <-ctx.Done():
			return nil, ctxError(ctx)
		}
	}
}

// choose takes a slot on a connection as the balancer says. When all are
// full it returns nil and a connection that is at least not broken, if
// any, to wait on.
func (c *Client) choose(ctx context.Context, s *snapshot) (cn, alive *conn) {
	conns := s.conns
	n := len(conns)
	if c.cfg.Balancer == Rendezvous {
		if key, ok := keyOf(ctx); ok {
			return c.chooseByKey(s, key)
		}
	}
	switch {
	case n == 1:
		return acquireFrom(conns, 0)
	case c.cfg.Balancer == RoundRobin:
		return acquireFrom(conns, int(c.rr.Add(1)%uint64(n)))
	case c.cfg.Balancer == Random:
		return acquireFrom(conns, rand.IntN(n))
	}
	i, j := rand.IntN(n), rand.IntN(n-1)
	if j >= i {
		j++
	}
	if s.load(conns[j]) < s.load(conns[i]) {
		i = j
	}
	return acquireFrom(conns, i)
}

// load is the number of calls outstanding on cn and on the extra
// connections to its address (see overdue.go), so that calls routed to
// extras still count against the address they went to.
func (s *snapshot) load(cn *conn) int {
	n := cn.load()
	for _, x := range s.extras {
		if x.ep == cn.ep {
			n += x.load()
		}
	}
	return n
}

// keyed reports whether the call is bound to its key's address.
func (c *Client) keyed(ctx context.Context) bool {
	if c.cfg.Balancer != Rendezvous {
		return false
	}
	_, ok := keyOf(ctx)
	return ok
}

// acquireFrom takes a slot on the first connection from start on that has
// one; failing that it returns the first one not broken.
func acquireFrom(conns []*conn, start int) (cn, alive *conn) {
	for k := range conns {
		cn := conns[(start+k)%len(conns)]
		if cn.broken.Load() {
			continue
		}
		if cn.tryAcquire() {
			return cn, cn
		}
		if alive == nil {
			alive = cn
		}
	}
	return nil, alive
}

// startLazy starts dialling the addresses of a lazy client.
func (c *Client) startLazy() {
	c.mu.Lock()
	c.lazyGo = true
	eps := c.order
	c.mu.Unlock()
	started := false
	for _, e := range eps {
		started = e.start() || started
	}
	if started {
		c.rebuild()
	}
}
