package client

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Stats of bulk calls (see Config.BulkThreshold).
const (
	StatBulkWaits     = "client.bulk_waits"     // count, bulk calls that waited for a connection free of bulk
	StatBulkImpatient = "client.bulk_impatient" // count, waits ended as no bulk call ended for OverdueAfter
)

// Bulk calls: a connection carries one at a time (Config.BulkThreshold).
// Bulk requests queued on one connection are moved one after another, by
// one reader a side, and the client's reader goroutine copies every
// answer but the first into its caller's buffer; their working set
// outgrows the CPU's cache. 16 callers of Pipelines of 64×4 KiB made 0.30
// of a raw loop's throughput over one connection, 0.86 one bulk call to a
// connection (docs/DESIGN.md, "Bulk calls").

// bulkQueue hands connections free of bulk to bulk calls, in the order
// the calls came. A connection's share is its bulk field, which only the
// queue touches, under mu.
type bulkQueue struct {
	mu      sync.Mutex
	waiters []*bulkWaiter // in arrival order
	ended   int64         // mono reading of the last bulk call's end; 0: none yet
	pool    sync.Pool     // *bulkWaiter, so that waiting allocates nothing
}

// bulkWaiter is a bulk call waiting for a connection: got receives one,
// already marked as carrying the call's bulk. timer measures its patience.
type bulkWaiter struct {
	got   chan *conn
	timer *time.Timer
}

// take marks cn as carrying a bulk call, if it carries none and no call
// waits for one: a newcomer does not overtake the calls in line.
func (q *bulkQueue) take(cn *conn) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if cn.bulk || len(q.waiters) > 0 {
		return false
	}
	cn.bulk = true
	return true
}

// give ends the bulk call on cn: cn goes to the first call in line, or
// is free of bulk.
func (q *bulkQueue) give(cn *conn) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ended = mono()
	if len(q.waiters) == 0 {
		cn.bulk = false
		return
	}
	w := q.waiters[0]
	q.waiters = slices.Delete(q.waiters, 0, 1)
	w.got <- cn // room for one, and each waiter gets one
}

// wait queues a bulk call for a connection and returns the one given. It
// returns nil when changed is closed first (connections came or went: the
// caller looks again), or ctx's error. With patience > 0 it also returns
// nil, and impatient true, once no bulk call has ended for patience: the
// calls that hold the connections may be waiting for those in line (a
// handler that waits for a later call), so the caller sends its call
// anyway, behind another.
func (q *bulkQueue) wait(ctx context.Context, changed <-chan struct{}, patience time.Duration) (cn *conn, impatient bool, err error) {
	w, _ := q.pool.Get().(*bulkWaiter)
	if w == nil {
		w = &bulkWaiter{got: make(chan *conn, 1), timer: time.NewTimer(time.Hour)}
		w.timer.Stop()
	}
	defer q.pool.Put(w)
	q.mu.Lock()
	q.waiters = append(q.waiters, w)
	q.mu.Unlock()
	var timeout <-chan time.Time
	if patience > 0 {
		w.timer.Reset(patience)
		defer w.timer.Stop()
		timeout = w.timer.C
	}
	for waiting := true; waiting; {
		select {
		case cn := <-w.got:
			return cn, false, nil
		case <-changed:
			waiting = false
		case <-ctx.Done():
			err, waiting = ctxError(ctx), false
		case <-timeout:
			if quiet := q.quietFor(); quiet < patience {
				w.timer.Reset(patience - quiet)
				continue
			}
			impatient, waiting = true, false
		}
	}
	if !q.leave(w) {
		// A connection was given as the wait ended.
		cn := <-w.got
		if err == nil {
			return cn, false, nil
		}
		q.give(cn)
	}
	return nil, impatient, err
}

// quietFor is how long it has been since a bulk call last ended.
func (q *bulkQueue) quietFor() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	return time.Duration(mono() - q.ended)
}

// leave takes w out of the line; false when it was not in it: a
// connection was given to it.
func (q *bulkQueue) leave(w *bulkWaiter) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := slices.Index(q.waiters, w)
	if i >= 0 {
		q.waiters = slices.Delete(q.waiters, i, i+1)
	}
	return i >= 0
}

// bulk reports whether a request of size bytes, made with ctx, is routed
// as bulk. The size comes first: most calls are small, and need no look
// at ctx for a key.
func (c *Client) bulk(ctx context.Context, size int) bool {
	// A keyed call is bound to its key's address, where the queue hands
	// out any; a Codec's requests are not measured as bulk.
	t := c.cfg.BulkThreshold
	return t > 0 && size >= t && c.cfg.Codec == nil && !c.keyed(ctx)
}

// routeBulk is called, for a bulk call, with a slot taken on cn, which
// the balancer chose. It takes, with a slot, a connection free of bulk:
// cn, or another one, or failing both an extra connection to cn's
// address, dialled for it (wait is then true: the caller waits for the
// snapshot to change); failing all, it returns nil, and the caller waits
// in line. cn's slot is released unless cn is returned.
func (c *Client) routeBulk(s *snapshot, cn *conn) (use *conn, wait bool) {
	if c.bulkQ.take(cn) {
		return cn, false
	}
	for _, conns := range [][]*conn{s.conns, s.extras} {
		for _, alt := range conns {
			if alt == cn || alt.broken.Load() || alt.overdue() || !c.bulkQ.take(alt) {
				continue
			}
			if alt.tryAcquire() {
				cn.release()
				return alt, false
			}
			c.bulkQ.give(alt)
		}
	}
	cn.release()
	return nil, cn.ep.grow()
}

// bulkConn is routeBulk, then awaitBulk when that found nothing: it
// returns nil and wait false when the caller is to look again.
func (c *Client) bulkConn(ctx context.Context, s *snapshot, cn *conn, o *outcome) (use *conn, wait bool, err error) {
	if use, wait = c.routeBulk(s, cn); use != nil || wait {
		return use, wait, nil
	}
	use, err = c.awaitBulk(ctx, s, o)
	return use, false, err
}

// awaitBulk waits in line for a connection free of bulk, then for a slot
// on it. It returns nil when the caller is to look again: the snapshot
// changed meanwhile, or no bulk call ended for OverdueAfter, and the call
// is then no longer routed as bulk (o.bulk).
func (c *Client) awaitBulk(ctx context.Context, s *snapshot, o *outcome) (*conn, error) {
	c.cfg.Stats.Count(StatBulkWaits, 1)
	cn, impatient, err := c.bulkQ.wait(ctx, s.changed, c.cfg.OverdueAfter)
	if impatient {
		c.cfg.Stats.Count(StatBulkImpatient, 1)
		o.bulk = false
	}
	if cn == nil || err != nil {
		return nil, err
	}
	if cn.broken.Load() {
		// Given back by a call it failed: the snapshot has changed, or
		// is about to, and the caller looks again.
		c.bulkQ.give(cn)
		return nil, nil
	}
	if cn.tryAcquire() {
		return cn, nil
	}
	ok, err := cn.slots.acquire(ctx, s.changed)
	if !ok {
		c.bulkQ.give(cn)
		return nil, err
	}
	return cn, nil
}

// dropBulk ends the bulk call o holds a connection for, if any.
func (c *Client) dropBulk(o *outcome) {
	if o.bulkOn != nil {
		c.bulkQ.give(o.bulkOn)
		o.bulkOn = nil
	}
}
