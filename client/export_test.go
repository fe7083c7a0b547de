package client

import "time"

// PipelineLaysOutMux reports whether p's batch, once something is
// enqueued, lays its frames out for the multiplexed mode.
func PipelineLaysOutMux(p *Pipeline) bool { return p.mux }

// WatchedContexts counts the done channels c has watchers for.
func WatchedContexts(c *Client) int {
	n := 0
	for i := range c.shared.slots {
		if c.shared.slots[i].Load() != nil {
			n++
		}
	}
	return n
}

// SetWatchIdle sets how long c's context watchers stay with no call
// waiting on their channel; before any call.
func SetWatchIdle(c *Client, d time.Duration) { c.shared.idle = d }

// WaitingWithWatcher counts c's calls that wait for their answers with a
// watcher of their context.
func WaitingWithWatcher(c *Client) int {
	c.shared.mu.Lock()
	defer c.shared.mu.Unlock()
	n := 0
	for _, p := range c.shared.reqs {
		if rq := p.Value(); rq != nil && rq.watch.Load() != nil && rq.state.Load() == statePending {
			n++
		}
	}
	return n
}

// WatchedFutures counts the futures c's context watchers hold.
func WatchedFutures(c *Client) int {
	n := 0
	for i := range c.shared.slots {
		w := c.shared.slots[i].Load()
		if w == nil {
			continue
		}
		for j := range w.futures {
			l := &w.futures[j]
			l.mu.Lock()
			for f := l.head; f != nil; f = f.next {
				n++
			}
			l.mu.Unlock()
		}
	}
	return n
}
