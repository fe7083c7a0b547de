package server

import (
	"sync/atomic"
	"time"
)

// inlineBudget is the time over which handlers count as slow, so that
// requests already buffered start on goroutines of their own at once
// rather than each waiting for the watcher (see watchTick). Below it, a
// hand-off costs more than it saves.
const inlineBudget = 50 * time.Microsecond

// slowAfter is how many handlers in a row must run over inlineBudget for
// a connection's handlers to count as slow. One alone is as likely the
// host stalling the reader (a descheduled vCPU, a preemption) as a slow
// handler, and it sent the rest of a pipelined batch of fast requests to
// goroutines of their own (measured on a 2-vCPU VM with steal time: see
// the commit that made it 2). A handler that is really slow is also
// caught by the watcher within two ticks.
const slowAfter = 2

// slowness says whether a connection's handlers are slow. Handlers that
// end on several goroutines at once update it, so "in a row" is loose.
type slowness struct {
	slow atomic.Bool
	over atomic.Int32 // handlers in a row over inlineBudget
}

func (s *slowness) is() bool { return s.slow.Load() }

// note records a handler that ran for d.
func (s *slowness) note(d time.Duration) {
	if d <= inlineBudget {
		if s.over.Load() != 0 {
			s.over.Store(0)
		}
		if s.slow.Load() {
			s.slow.Store(false)
		}
		return
	}
	if s.over.Add(1) >= slowAfter && !s.slow.Load() {
		s.slow.Store(true)
	}
}

// set makes handlers slow at once: one ran long enough for the watcher to
// take the reading from it.
func (s *slowness) set() {
	s.over.Store(slowAfter)
	s.slow.Store(true)
}
