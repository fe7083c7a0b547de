package server

import (
	"sync"
	"sync/atomic"
	"time"
)

// watchTick is how often the watcher looks at the connections whose reader
// is running a handler inline. A handler it finds running at two looks in
// a row has run for more than a tick: the reading passes to a fresh
// goroutine, so a slow handler holds up the reading for one to two ticks.
//
// A timer per connection, reset as each handler starts, did the same with
// a 50 µs budget, but arming a timer wakes the network poller: that cost
// a third of a 16 B round trip (BenchmarkEcho16B 14.5 µs → 19.2 µs). A
// tick of 500 µs rather than 200 µs halves the watcher's wake-ups while
// handlers run inline, and adds at most 0.6 ms to the wait of requests
// behind a slow handler.
const watchTick = 500 * time.Microsecond

// watchIdleTicks is how many looks in a row that find no handler started
// inline end the watcher's goroutine; the next handler to start inline
// starts it again. An idle server thus has no goroutine ticking.
const watchIdleTicks = 5

// watcher looks after a server's connections that run handlers on their
// reading goroutine (see conn.runInline, muxConn.runInline and conn.lead).
type watcher struct {
	running atomic.Bool // a goroutine runs watch

	mu sync.Mutex
	// conns are the connections that ran a handler inline, until they
	// close. Their seen fields are guarded by mu.
	conns map[*conn]struct{}
}

// started is called by c's reader as it starts a handler inline, after
// publishing its token in c.lead.
func (w *watcher) started(c *conn) {
	if !c.watched.Load() {
		w.mu.Lock()
		if w.conns == nil {
			w.conns = make(map[*conn]struct{})
		}
		w.conns[c] = struct{}{}
		c.watched.Store(true)
		w.mu.Unlock()
	}
	if !w.running.Load() && w.running.CompareAndSwap(false, true) {
		go w.watch()
	}
}

// forget stops watching c, which has closed.
func (w *watcher) forget(c *conn) {
	if !c.watched.Load() {
		return
	}
	w.mu.Lock()
	delete(w.conns, c)
	w.mu.Unlock()
}

func (w *watcher) watch() {
	for idle := 0; ; {
		time.Sleep(watchTick)
		if w.look() {
			idle = 0
			continue
		}
		if idle++; idle < watchIdleTicks {
			continue
		}
		// Stopped first, then one more look: either it sees a handler
		// that started meanwhile, or that handler's reader saw running
		// false and started another watcher.
		w.running.Store(false)
		if !w.look() || !w.running.CompareAndSwap(false, true) {
			return
		}
		idle = 0
	}
}

// look hands the reading of every connection whose reader has been in
// the same inline handler since the last look to a fresh goroutine. A
// connection whose token stands still is checked once under its lock: the
// handler may have ended, the connection then waiting for its next
// request. look reports whether any connection started a handler since
// the last look or had its reading handed on.
func (w *watcher) look() bool {
	busy := false
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.conns {
		v := c.lead.Load()
		switch {
		case v != c.seen:
			c.seen = v
			busy = true
		case v != c.checked:
			c.checked = v
			if handOff(c, v) {
				busy = true
			}
		}
	}
	return busy
}

// handOff passes c's reading on if the inline handler of token tok still
// runs, in whichever mode c speaks.
func handOff(c *conn, tok uint64) bool {
	if m := c.mux.Load(); m != nil {
		return m.handOff(tok)
	}
	return c.handOff(tok)
}
