package server

import (
	"sync/atomic"
	"time"
)

// clock keeps the last time a connection read the clock. Reading the clock
// costs tens of nanoseconds (more on some virtual machines), and a request
// needs it for its duration, so the deadlines, which need no such
// precision, reuse the last reading instead of taking their own.
type clock struct {
	last atomic.Int64 // UnixNano of the last reading
}

func (c *clock) now() time.Time {
	t := time.Now()
	c.last.Store(t.UnixNano())
	return t
}

func (c *clock) recent() time.Time { return time.Unix(0, c.last.Load()) }

// deadline remembers a deadline that was set, so that re-arming it for
// every request can be skipped while it is still within slack of where it
// should be: setting a deadline modifies a runtime timer each time.
type deadline struct {
	armedAt time.Time
	armed   bool
}

// stale reports whether the deadline must be set again for timeout, at the
// clock's last reading: not armed, or armed more than slack ago.
func (d *deadline) stale(c *clock, timeout time.Duration) bool {
	return !d.armed || c.recent().Sub(d.armedAt) >= slack(timeout)
}

func (d *deadline) arm(at time.Time) { d.armed, d.armedAt = true, at }

func (d *deadline) disarm() { d.armed = false }

// slack is how early a deadline may fire: an eighth of its timeout, at most
// a second.
func slack(timeout time.Duration) time.Duration { return min(timeout/8, time.Second) }
