package client

import (
	"context"
	"errors"
	"fmt"
	"github.com/tcpez/tcpez/internal/defaults"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for passive outlier ejection; see Config.OutlierFailures.
const (
	DefaultOutlierFailures    = 5
	DefaultOutlierBackoffBase = time.Second
	DefaultOutlierBackoffMax  = 30 * time.Second
)

// Metric names of health checking, sent to Config.Stats.
const (
	StatEjected     = "client.ejected"      // count of Ejected events
	StatRestored    = "client.restored"     // count of Restored events
	StatProbeErrors = "client.probe_errors" // count, one per failed probe
)

// HealthCheck configures active health checking: every Interval each
// address with a connection is sent a Probe on that connection, and an
// address whose probe fails is ejected (see Ejected) until a later probe
// succeeds. A probe travels in band, behind the calls already sent on the
// connection, so it also fails when those hold the answers back past
// Timeout: it measures whether the connection answers, not whether the
// process is up.
type HealthCheck struct {
	// Interval between two probes of an address. Zero: no active checks.
	Interval time.Duration
	// Timeout bounds a probe. Default Interval.
	Timeout time.Duration
	// Probe checks one address. Default FrameProbe(nil): an empty frame,
	// which a byte server's echo-like handler answers. Servers whose
	// handler refuses an empty request need a Probe of their own; for
	// service mode, protoserver.HealthProbe calls its health method.
	Probe Probe
}

// A Probe checks the health of the address addr. call sends req on one of
// the address's connections, past the balancer and whether or not the
// address is ejected, and returns the answer; probes are neither counted
// as calls nor shown to the Observer. A non-nil error ejects the address;
// nil restores it. ctx ends after HealthCheck.Timeout, when the address is
// removed, or when the client closes; the Probe must return then, since
// Close waits for it.
type Probe func(ctx context.Context, addr string, call func(ctx context.Context, req []byte) ([]byte, error)) error

// FrameProbe returns a Probe that sends req and finds the address healthy
// when any answer comes back: proof that the server reads, runs its
// handler and writes. A nil req is an empty frame.
func FrameProbe(req []byte) Probe {
	req = slices.Clone(req)
	return func(ctx context.Context, _ string, call func(context.Context, []byte) ([]byte, error)) error {
		_, err := call(ctx, req)
		return err
	}
}

func (h HealthCheck) validate() error {
	if h.Interval < 0 || h.Timeout < 0 {
		return fmt.Errorf("%w: HealthCheck %+v is negative", ErrInvalidConfig, h)
	}
	return nil
}

func (h HealthCheck) withDefaults() HealthCheck {
	if h.Interval > 0 {
		h.Timeout = defaults.Or(h.Timeout, h.Interval)
		if h.Probe == nil {
			h.Probe = FrameProbe(nil)
		}
	}
	return h
}

// health is an endpoint's standing with the health checks. An address is
// out of balancing while its last probe failed (unhealthy) or while it
// serves a passive ejection (ejected).
type health struct {
	fails   atomic.Int32  // calls failed in a row, for passive ejection
	isOut   atomic.Bool   // unhealthy || ejected, for collect
	probing atomic.Bool   // a probe of the address is running
	probes  atomic.Uint64 // probes sent, to take the connections in turn

	mu        sync.Mutex
	unhealthy bool
	ejected   bool
	ejections int       // ejections in a row, for OutlierBackoff
	lastEnd   time.Time // when the last ejection ended
	timer     *time.Timer
	cause     error // why the address last went out
	stopped   bool  // the endpoint is gone
}

// refreshLocked publishes whether the address is out; it reports a change.
// Called with mu held.
func (h *health) refreshLocked() bool {
	out := h.unhealthy || h.ejected
	return h.isOut.Swap(out) != out
}

func (h *health) state() (out bool, cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.unhealthy || h.ejected, h.cause
}

func (h *health) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	if h.timer != nil {
		h.timer.Stop()
	}
}

// reportHealth emits Ejected or Restored when the address went out of
// balancing or back since the last report. It runs on the endpoint's
// goroutine, like report, so events stay one at a time per address.
func (e *endpoint) reportHealth(st *upState) {
	out, cause := e.health.state()
	switch {
	case out && !st.out:
		e.emit(Ejected, cause)
	case !out && st.out:
		e.emit(Restored, nil)
	default:
		return
	}
	st.out = out
}

// healthChanged publishes an address's new standing: a new snapshot for
// the balancer, and the endpoint's goroutine woken to report the event.
func (c *Client) healthChanged(e *endpoint) {
	c.rebuild()
	e.wake()
}

// noteOutcome feeds passive outlier ejection with the outcome of one
// attempt on e: err nil for an answer, or the attempt's error, or the
// caller's ctx.Err() when it gave up waiting for the answer.
func (c *Client) noteOutcome(e *endpoint, err error) {
	if e == nil || c.cfg.OutlierFailures < 0 {
		return
	}
	h := &e.health
	if err == nil {
		if h.fails.Load() != 0 { // read first: no write, no contention
			h.fails.Store(0)
		}
		return
	}
	if isOutlierFailure(err) && int(h.fails.Add(1)) >= c.cfg.OutlierFailures {
		c.eject(e, err)
	}
}

// isOutlierFailure tells the failures that speak against an address: its
// connection broke under the call, or the call's deadline passed while the
// address held it. A caller that cancels says nothing about the server,
// nor does a removed address that did not drain in time.
func isOutlierFailure(err error) bool {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.Is(err, errDraining), errors.Is(err, errDrainTimeout):
		return false
	}
	return errors.Is(err, ErrConnLost)
}

// eject takes e out of balancing for the next OutlierBackoff wait. The
// count of ejections in a row, which the wait grows with, starts again
// once the address has stayed in for OutlierBackoff.Max.
func (c *Client) eject(e *endpoint, cause error) {
	h := &e.health
	h.mu.Lock()
	if h.ejected || h.stopped {
		h.mu.Unlock()
		return
	}
	if !h.lastEnd.IsZero() && time.Since(h.lastEnd) > c.cfg.OutlierBackoff.Max {
		h.ejections = 0
	}
	h.ejections++
	h.ejected = true
	h.fails.Store(0)
	h.cause = fmt.Errorf("tcpez/client: %d calls in a row failed, the last with: %w", c.cfg.OutlierFailures, cause)
	h.timer = time.AfterFunc(c.cfg.OutlierBackoff.wait(h.ejections), func() {
		c.spawn(func() { c.readmit(e) })
	})
	changed := h.refreshLocked()
	h.mu.Unlock()
	if changed {
		c.healthChanged(e)
	}
}

// readmit ends a passive ejection.
func (c *Client) readmit(e *endpoint) {
	h := &e.health
	h.mu.Lock()
	if !h.ejected || h.stopped {
		h.mu.Unlock()
		return
	}
	h.ejected = false
	h.lastEnd = time.Now()
	h.fails.Store(0)
	changed := h.refreshLocked()
	h.mu.Unlock()
	if changed {
		c.healthChanged(e)
	}
}

// setHealthy records the verdict of an active probe: err nil for healthy.
func (c *Client) setHealthy(e *endpoint, err error) {
	h := &e.health
	h.mu.Lock()
	if h.stopped || h.unhealthy == (err != nil) {
		h.mu.Unlock()
		return
	}
	h.unhealthy = err != nil
	if err != nil {
		h.cause = err
	}
	changed := h.refreshLocked()
	h.mu.Unlock()
	if changed {
		c.healthChanged(e)
	}
}

// checkHealth probes every address each HealthCheck.Interval, each probe
// in a goroutine of its own so that a silent address delays no other, and
// never two at once for one address.
func (c *Client) checkHealth() {
	t := time.NewTicker(c.cfg.HealthCheck.Interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-c.ctx.Done():
			return
		}
		c.mu.Lock()
		eps := slices.Clone(c.order)
		c.mu.Unlock()
		for _, e := range eps {
			if !e.health.probing.CompareAndSwap(false, true) {
				continue
			}
			if !c.spawn(func() {
				defer e.health.probing.Store(false)
				c.probe(e)
			}) {
				return
			}
		}
	}
}

// probe runs the Probe on one of e's connections. An address with none is
// left to the dialler, which already keeps it out of balancing.
func (c *Client) probe(e *endpoint) {
	cn := e.probeConn()
	if cn == nil {
		return
	}
	hc := c.cfg.HealthCheck
	ctx, cancel := context.WithTimeout(e.ctx, hc.Timeout)
	defer cancel()
	err := hc.Probe(ctx, e.addr, func(ctx context.Context, req []byte) ([]byte, error) {
		return c.callOn(ctx, cn, req)
	})
	if e.ctx.Err() != nil {
		return // the address was removed or the client closed: moot
	}
	if err != nil {
		c.cfg.Stats.Count(StatProbeErrors, 1)
		err = fmt.Errorf("tcpez/client: health probe failed: %w", err)
	}
	c.setHealthy(e, err)
}

// probeConn returns one of e's usable connections, each in turn.
func (e *endpoint) probeConn() *conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.conns)
	if n == 0 {
		return nil
	}
	start := int(e.health.probes.Add(1) % uint64(n))
	for k := range n {
		if cn := e.conns[(start+k)%n]; !cn.broken.Load() {
			return cn
		}
	}
	return nil
}

// callOn sends req on cn and waits for its answer, without balancing,
// retries or accounting: the transport of a Probe.
func (c *Client) callOn(ctx context.Context, cn *conn, req []byte) ([]byte, error) {
	if err := c.checkRequest(len(req)); err != nil {
		return nil, err
	}
	if _, err := cn.slots.acquire(ctx, nil); err != nil {
		return nil, err
	}
	rq := c.getRequest(modeOwned, nil)
	if err := cn.enqueue(ctx, rq, req); err != nil {
		rq.recycle() // never queued, so still ours
		return nil, err
	}
	if !rq.awaitOrCancel(ctx) {
		return nil, ctxError(ctx) // the reader drops the answer and the call
	}
	ans, err := rq.ans, rq.err
	rq.recycle()
	return ans, err
}
