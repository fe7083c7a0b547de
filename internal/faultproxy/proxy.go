// Package faultproxy is an in-process TCP proxy for tests that injects
// network faults between a client and a server on loopback.
//
// A Proxy listens on 127.0.0.1:0 and forwards every connection it accepts
// to a target address. Faults are switched on and off while traffic flows:
//
//   - SetLatency delays every chunk of bytes by d, in each direction,
//     without limiting throughput (chunks are timestamped as they are
//     read and written once they are due).
//   - SetBandwidth limits each direction of each connection to a number of
//     bytes a second.
//   - CutAfter closes each connection after n more bytes have gone through
//     in a direction: n is usually chosen to fall inside a frame.
//   - SetBlackhole accepts connections and holds them: nothing is
//     forwarded, and new connections are not passed on to the target,
//     until the black hole is lifted, when what was held flows on (a
//     network partition that heals before TCP gives up).
//   - ResetAll resets every connection at both ends (SO_LINGER 0, then
//     close): both peers see ECONNRESET.
//
// Clear switches every fault off. Close stops the proxy and waits for all
// of its goroutines, so that leak checkers stay quiet.
//
// The proxy is for tests: it trades efficiency for simplicity (a chunk is
// copied once, four goroutines per connection).
package faultproxy

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Direction selects which way bytes flow.
type Direction uint8

const (
	// Upstream is from the client to the target.
	Upstream Direction = 1 << iota
	// Downstream is from the target to the client.
	Downstream
	// Both directions.
	Both = Upstream | Downstream
)

// chunkSize is the most bytes read at once; also the largest delay unit.
const chunkSize = 32 << 10

// queueLen bounds the chunks held per direction (latency, black hole), so
// a held direction pushes back on its sender instead of buffering without
// end: at most queueLen*chunkSize bytes.
const queueLen = 16

// faults is the proxy's current fault settings.
type faults struct {
	latency   time.Duration
	bandwidth int // bytes a second per direction; 0: unlimited
	blackhole bool
	cutDir    Direction
	cutN      int64  // bytes left before the cut, counted per connection
	cutEpoch  uint64 // bumped by every CutAfter, so connections restart their count
}

// Proxy forwards connections to a target, injecting faults.
type Proxy struct {
	target string
	ln     net.Listener
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	f       faults
	changed chan struct{} // closed and replaced whenever f changes
	conns   map[*pconn]struct{}

	accepted atomic.Int64
}

// New starts a proxy on 127.0.0.1:0 that forwards to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		target:  target,
		ln:      ln,
		ctx:     ctx,
		cancel:  cancel,
		changed: make(chan struct{}),
		conns:   make(map[*pconn]struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the address clients dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted is the number of connections accepted so far.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Open is the number of connections currently proxied.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// SetLatency delays every chunk by d in each direction; 0 switches it off.
func (p *Proxy) SetLatency(d time.Duration) { p.update(func(f *faults) { f.latency = d }) }

// SetBandwidth limits each direction of each connection to bytesPerSec;
// 0 switches the limit off.
func (p *Proxy) SetBandwidth(bytesPerSec int) {
	p.update(func(f *faults) { f.bandwidth = max(bytesPerSec, 0) })
}

// SetBlackhole holds (on) or releases (off) all traffic and new
// connections.
func (p *Proxy) SetBlackhole(on bool) { p.update(func(f *faults) { f.blackhole = on }) }

// CutAfter closes every connection, open now or accepted later, once n
// more bytes have been forwarded in dir (each direction counted on its
// own when dir is Both). The cut stays in force until Clear or another
// CutAfter; a connection accepted later is cut after its first n bytes.
func (p *Proxy) CutAfter(dir Direction, n int64) {
	p.update(func(f *faults) {
		f.cutDir, f.cutN = dir, max(n, 0)
		f.cutEpoch++
	})
}

// Clear switches every fault off.
func (p *Proxy) Clear() {
	p.update(func(f *faults) {
		epoch := f.cutEpoch
		*f = faults{cutEpoch: epoch + 1}
	})
}

// ResetAll resets every open connection at both ends: each peer sees
// ECONNRESET (or, for one that was not reading, EPIPE on its next write).
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	conns := make([]*pconn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.reset()
	}
}

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.cancel()
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) update(change func(*faults)) {
	p.mu.Lock()
	change(&p.f)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// state returns the current faults and a channel closed when they change.
func (p *Proxy) state() (faults, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.f, p.changed
}

// waitOpen waits while the black hole is on; false when done ends first.
func (p *Proxy) waitOpen(done <-chan struct{}) bool {
	for {
		f, changed := p.state()
		if !f.blackhole {
			return true
		}
		select {
		case <-changed:
		case <-done:
			return false
		}
	}
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		c := &pconn{p: p, client: nc.(*net.TCPConn), done: make(chan struct{})}
		p.mu.Lock()
		if p.ctx.Err() != nil {
			p.mu.Unlock()
			_ = nc.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go c.run()
	}
}

// pconn is one proxied connection.
type pconn struct {
	p      *Proxy
	client *net.TCPConn

	mu      sync.Mutex
	server  *net.TCPConn // nil until dialled
	closed  bool
	rst     bool          // closed by reset: a target dialled late is reset too
	done    chan struct{} // closed by close
	pumpsWG sync.WaitGroup
}

func (c *pconn) run() {
	defer c.p.wg.Done()
	defer c.forget()
	// A black hole holds new connections before they reach the target.
	if !c.p.waitOpen(c.done) {
		c.close()
		return
	}
	var d net.Dialer
	ctx, cancel := context.WithTimeout(c.p.ctx, 5*time.Second)
	nc, err := d.DialContext(ctx, "tcp", c.p.target)
	cancel()
	if err != nil {
		// The target refuses: so does the proxy, as near as it can.
		c.reset()
		return
	}
	c.mu.Lock()
	if c.closed {
		if c.rst {
			_ = nc.(*net.TCPConn).SetLinger(0)
		}
		c.mu.Unlock()
		_ = nc.Close()
		return
	}
	c.server = nc.(*net.TCPConn)
	c.mu.Unlock()

	c.pumpsWG.Add(2)
	go c.pump(c.client, c.server, Upstream)
	go c.pump(c.server, c.client, Downstream)
	c.pumpsWG.Wait()
	c.close()
}

func (c *pconn) forget() {
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
}

// close closes both ends (FIN); idempotent.
func (c *pconn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	close(c.done)
	_ = c.client.Close()
	if c.server != nil {
		_ = c.server.Close()
	}
}

// reset closes both ends with SO_LINGER 0, which sends RST.
func (c *pconn) reset() {
	c.mu.Lock()
	c.rst = true
	_ = c.client.SetLinger(0)
	if c.server != nil {
		_ = c.server.SetLinger(0)
	}
	c.mu.Unlock()
	c.close()
}

type chunk struct {
	b  []byte
	at time.Time // when it was read
}

// pump forwards src to dst in direction dir: a reader goroutine timestamps
// chunks, this goroutine writes them when due and as the faults allow. At
// the end of src, dst's write side is shut down; on any error or cut, the
// whole connection closes.
func (c *pconn) pump(src, dst *net.TCPConn, dir Direction) {
	defer c.pumpsWG.Done()
	q := make(chan chunk, queueLen)
	var readErr error // set before q is closed
	c.pumpsWG.Add(1)
	go func() {
		defer c.pumpsWG.Done()
		defer close(q)
		for {
			buf := make([]byte, chunkSize)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case q <- chunk{buf[:n], time.Now()}:
				case <-c.done:
					return
				}
			}
			if err != nil {
				readErr = err
				return
			}
		}
	}()

	var (
		epoch uint64
		left  int64     = -1 // bytes before the cut; -1: no cut
		free  time.Time      // when the bandwidth budget allows the next byte
	)
	for ch := range q {
		b := ch.b
		for len(b) > 0 {
			if !c.p.waitOpen(c.done) {
				return
			}
			f, changed := c.p.state()
			if f.cutEpoch != epoch {
				epoch, left = f.cutEpoch, -1
				if f.cutDir&dir != 0 {
					left = f.cutN
				}
			}
			if left == 0 {
				c.close()
				return
			}
			if due := ch.at.Add(f.latency); time.Now().Before(due) {
				// Wake early if the faults change (a latency lifted).
				if !c.sleepUntil(due, changed) {
					return
				}
				continue
			}
			n := len(b)
			if left > 0 {
				n = int(min(int64(n), left))
			}
			if f.bandwidth > 0 {
				// Send in slices of 20 ms worth, each when the budget
				// allows it.
				n = min(n, max(f.bandwidth/50, 1))
				now := time.Now()
				if free.Before(now) {
					free = now
				}
				if now.Before(free) {
					if !c.sleepUntil(free, changed) {
						return
					}
					continue
				}
				free = free.Add(time.Duration(n) * time.Second / time.Duration(f.bandwidth))
			}
			if _, err := dst.Write(b[:n]); err != nil {
				c.close()
				return
			}
			b = b[n:]
			if left > 0 {
				left -= int64(n)
			}
			if left == 0 {
				c.close()
				return
			}
		}
	}
	// src ended: pass the end on, unless the connection is gone. A clean
	// end becomes a half-close; a reset resets the other peer too.
	select {
	case <-c.done:
	default:
		if readErr != io.EOF {
			c.reset()
		} else if err := dst.CloseWrite(); err != nil {
			c.close()
		}
	}
}

// sleepUntil waits for t, a change of faults, or the connection's end;
// false on the end.
func (c *pconn) sleepUntil(t time.Time, changed <-chan struct{}) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-changed:
		return true
	case <-c.done:
		return false
	}
}
