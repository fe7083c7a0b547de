package client

import (
	"context"
	"fmt"
	"slices"
)

// Resolver supplies the set of server addresses and its changes.
//
// Watch runs until ctx ends, telling the client what it finds through u:
// u.Update with the full address set whenever the set changes, the first
// time as soon as it knows it, and u.Error with each failure it recovers
// from by itself (a lookup it will try again). Calls to u do not overlap
// and stop when Watch returns. A non-nil error from Watch while ctx is
// still live is reported to calls that find no connection, wrapped in
// ErrNoConnection. The client keeps the last set it was given after Watch
// returns.
//
// Addresses that leave the set are drained: calls already sent on them
// get their answers, then the connections close. New addresses are
// dialled at once.
type Resolver interface {
	Watch(ctx context.Context, u Updater) error
}

// Updater is how a Resolver's Watch reports to the client.
type Updater interface {
	// Update makes addrs the address set. Update keeps no reference to
	// addrs.
	Update(addrs []string)
	// Error reports a failure Watch goes on after. It is counted under
	// StatResolveErrors; until the first Update, calls that wait for an
	// address set fail with ErrNoConnection wrapping it (the latest
	// one), as when every first dial failed. Once a set has arrived the
	// set stays and the error is only counted.
	Error(err error)
}

// StaticResolver is a fixed address set; New uses one for its addrs.
type StaticResolver []string

// Watch reports the set once and waits for ctx to end.
func (r StaticResolver) Watch(ctx context.Context, u Updater) error {
	u.Update(r)
	<-ctx.Done()
	return nil
}

// updater is the client's Updater.
type updater struct{ c *Client }

func (u updater) Update(addrs []string) { u.c.setAddrs(slices.Clone(addrs)) }

func (u updater) Error(err error) { u.c.resolveFailed(err) }

// watch runs the configured Resolver.
func (c *Client) watch() {
	err := c.cfg.Resolver.Watch(c.ctx, updater{c})
	if c.ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	c.resolved = true
	if err != nil {
		c.resolveErr = fmt.Errorf("tcpez/client: resolver: %w", err)
	}
	c.mu.Unlock()
	c.rebuild()
}

// setAddrs makes addrs the address set: new addresses get an endpoint,
// removed ones are drained.
func (c *Client) setAddrs(addrs []string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	initial := !c.gotAddrs
	c.resolved, c.gotAddrs = true, true
	// An address set supersedes the failures reported before it.
	c.resolveErr = nil
	want := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		want[a] = true
	}
	var removed []*endpoint
	kept := c.order[:0:0]
	for _, e := range c.order {
		if want[e.addr] {
			kept = append(kept, e)
			continue
		}
		delete(c.eps, e.addr)
		removed = append(removed, e)
	}
	started := !c.cfg.LazyDial || c.lazyGo
	for _, a := range addrs {
		if _, ok := c.eps[a]; ok {
			continue
		}
		e := newEndpoint(c, a, started, initial)
		if !c.spawn(e.run) {
			break
		}
		c.eps[a] = e
		kept = append(kept, e)
	}
	c.order = kept
	c.mu.Unlock()

	for _, e := range removed {
		e.shutdown(true)
	}
	c.rebuild()
}

// resolveFailed takes a failure the Resolver goes on after. Before the
// first address set it makes waiting calls fail, wrapping it, as they do
// when every first dial failed; a later one is only counted, the set
// staying as it was.
func (c *Client) resolveFailed(err error) {
	if err == nil {
		return
	}
	c.cfg.Stats.Count(StatResolveErrors, 1)
	c.mu.Lock()
	if c.closed || c.gotAddrs {
		c.mu.Unlock()
		return
	}
	c.resolved = true
	c.resolveErr = fmt.Errorf("tcpez/client: resolver: %w", err)
	c.mu.Unlock()
	c.rebuild()
}
