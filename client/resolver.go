package client

import (
	"context"
	"fmt"
	"slices"
)

// Resolver supplies the set of server addresses and its changes.
//
// Watch runs until ctx ends. It calls update with the full address set
// whenever the set changes, the first time as soon as it knows it; calls
// to update do not overlap and stop when Watch returns. A non-nil error
// from Watch while ctx is still live is reported to calls that find no
// connection, wrapped in ErrNoConnection. The client keeps the last set it
// was given after Watch returns.
//
// Addresses that leave the set are drained: calls already sent on them
// get their answers, then the connections close. New addresses are
// dialled at once.
type Resolver interface {
	Watch(ctx context.Context, update func(addrs []string)) error
}

// StaticResolver is a fixed address set; New uses one for its addrs.
type StaticResolver []string

// Watch reports the set once and waits for ctx to end.
func (r StaticResolver) Watch(ctx context.Context, update func([]string)) error {
	update(slices.Clone(r))
	<-ctx.Done()
	return nil
}

// watch runs the configured Resolver.
func (c *Client) watch() {
	err := c.cfg.Resolver.Watch(c.ctx, c.setAddrs)
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
	c.resolved = true
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
		e := newEndpoint(c, a, started)
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
