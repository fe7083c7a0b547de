package server

import (
	"math/bits"
	"sync"
	"time"
	"unsafe"

	"github.com/tcpez/tcpez/internal/budget"
)

// poolIdle is how long a pooled large buffer may go unused before it is
// unmapped: after a burst, the memory of large requests leaves the process
// within twice this (see docs/SECURITY.md).
const poolIdle = 2 * time.Second

// mapThreshold is the size over which lent buffers are mapped from the
// system rather than taken from the Go heap: mappings cost a system call
// each and count against the system's limit on mappings, so they are for
// buffers large enough that returning them at once matters.
const mapThreshold = 64 << 10

const pageSize = 4 << 10

// maxPooled bounds the bytes of large buffers kept for reuse, whatever
// the budget: enough for a few hundred pipelined 1 MiB frames.
const maxPooled = 256 << 20

// largeBuffers lends request buffers too large for a slot to keep (over
// maxRetainedBuffer) and takes them back for reuse. Reusing them took
// BenchmarkEcho1MiB from 1144 to 468 µs.
//
// The buffers over mapThreshold are mapped from the operating system,
// outside the Go heap, so that the memory of a burst of large requests
// goes back to the system as soon as the pool lets go of it, not after the
// next garbage collection and the runtime's gradual scavenging. The pool
// lets go of buffers unused for poolIdle, those over its cap, and those
// the budget reclaims: parked in the pool they still count against it.
//
// Letting go of a mapping gives its memory back (madvise) but keeps its
// addresses until the server closes: a handler that kept a request past
// Respond, against the Handler contract, then reads zeros or a later
// request's bytes instead of faulting, which would end the process. Such
// "cold" mappings hold no memory and no budget, and are reused before a
// new mapping is made; at most as many bytes of them exist as the budget
// ever lent at once per size.
//
// A fresh mapping takes memory only as bytes are written to it, so a peer
// that announces a large frame and sends little holds little memory, even
// though the whole frame is charged to the budget.
type largeBuffers struct {
	budget *budget.Budget
	cap    int64 // most bytes kept

	mu     sync.Mutex
	free   map[int][]pooledBuffer // by capacity, most recently used last
	kept   int64
	cold   map[int][][]byte     // discarded mappings by capacity
	mapped map[uintptr]struct{} // first byte of every mapping
	timer  *time.Timer
	closed bool
}

type pooledBuffer struct {
	b    []byte
	used time.Time // when it was put back
}

// get returns an empty buffer of capacity size, one of largeSize's sizes,
// whose bytes the caller has acquired from the budget.
func (p *largeBuffers) get(size int) []byte {
	p.mu.Lock()
	list := p.free[size]
	if len(list) == 0 {
		defer p.mu.Unlock()
		return p.newLocked(size)
	}
	b := list[len(list)-1].b
	list[len(list)-1] = pooledBuffer{}
	p.free[size] = list[:len(list)-1] // keeps its array for the next put
	p.kept -= int64(size)
	p.mu.Unlock()
	// The caller acquired room for these bytes: they are no longer parked.
	p.budget.Unpark(int64(size))
	return b[:0]
}

// put takes back a buffer from get, whose bytes account a held: they stay
// in the budget, parked, while the buffer is kept.
func (p *largeBuffers) put(a *budget.Account, b []byte) {
	size := cap(b)
	if !a.Park(int64(size)) {
		p.mu.Lock()
		p.discardLocked(b)
		p.mu.Unlock()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.release(b)
		return
	}
	p.free[size] = append(p.free[size], pooledBuffer{b: b[:0], used: time.Now()})
	p.kept += int64(size)
	if p.timer == nil {
		p.timer = time.AfterFunc(poolIdle, p.trim)
	}
	over := p.kept - p.cap
	p.mu.Unlock()
	if over > 0 {
		p.drop(over, time.Time{})
	}
}

// reclaim frees at least n parked bytes, or all there are: the budget
// needs them for a request.
func (p *largeBuffers) reclaim(n int64) { p.drop(n, time.Time{}) }

// trim frees the buffers unused for poolIdle, and runs again while any are
// left.
func (p *largeBuffers) trim() {
	p.drop(-1, time.Now().Add(-poolIdle))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.kept > 0 && !p.closed {
		p.timer.Reset(poolIdle)
		return
	}
	p.timer = nil
}

// drop frees pooled buffers, least recently used first: at least n bytes
// (n < 0: no such bound) of those put back before idleSince (zero: any).
func (p *largeBuffers) drop(n int64, idleSince time.Time) {
	var out [][]byte
	p.mu.Lock()
	for n != 0 {
		size, ok := p.oldestLocked(idleSince)
		if !ok {
			break
		}
		list := p.free[size]
		out = append(out, list[0].b)
		list[0] = pooledBuffer{}
		if len(list) == 1 {
			delete(p.free, size)
		} else {
			p.free[size] = list[1:]
		}
		p.kept -= int64(size)
		if n > 0 {
			n = max(n-int64(size), 0)
		}
	}
	p.mu.Unlock()
	for _, b := range out {
		p.release(b)
	}
}

// oldestLocked is the size class whose least recently used buffer is the
// oldest, if it was put back before idleSince.
func (p *largeBuffers) oldestLocked(idleSince time.Time) (int, bool) {
	best, found := 0, false
	var at time.Time
	for size, list := range p.free {
		if len(list) == 0 {
			continue
		}
		if u := list[0].used; !found || u.Before(at) {
			best, at, found = size, u, true
		}
	}
	if !found || (!idleSince.IsZero() && !at.Before(idleSince)) {
		return 0, false
	}
	return best, true
}

// release gives a parked buffer's memory back and takes its bytes out of
// the budget.
func (p *largeBuffers) release(b []byte) {
	p.mu.Lock()
	p.discardLocked(b)
	p.mu.Unlock()
	p.budget.Unpark(int64(cap(b)))
}

// newLocked returns an empty buffer of capacity size: a cold mapping
// if there is one, else a new buffer, mapped when it is large.
func (p *largeBuffers) newLocked(size int) []byte {
	if list := p.cold[size]; len(list) > 0 {
		b := list[len(list)-1]
		list[len(list)-1] = nil
		p.cold[size] = list[:len(list)-1]
		return b[:0]
	}
	if size <= mapThreshold {
		return make([]byte, 0, size)
	}
	b, ok := mapBuffer(size)
	if ok {
		if p.mapped == nil {
			p.mapped = make(map[uintptr]struct{})
		}
		p.mapped[firstByte(b)] = struct{}{}
	}
	return b
}

// discardLocked lets go of a buffer: a mapping's memory goes back to the
// system and its addresses wait, cold, for reuse (unmapped once the
// server has closed); a buffer of the Go heap is left to the collector.
func (p *largeBuffers) discardLocked(b []byte) {
	addr := firstByte(b)
	if _, ok := p.mapped[addr]; !ok {
		return
	}
	if p.closed {
		delete(p.mapped, addr)
		unmapBuffer(b)
		return
	}
	discardBuffer(b)
	if p.cold == nil {
		p.cold = make(map[int][][]byte)
	}
	p.cold[cap(b)] = append(p.cold[cap(b)], b[:0])
}

func firstByte(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// close unmaps every pooled and cold buffer; buffers put back later are
// unmapped at once. A handler still running after Close may then fault if
// it reads its request past returning, which the Handler contract forbids.
func (p *largeBuffers) close() {
	p.mu.Lock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	for size, list := range p.cold {
		for _, b := range list {
			delete(p.mapped, firstByte(b))
			unmapBuffer(b)
		}
		delete(p.cold, size)
	}
	p.mu.Unlock()
	p.drop(-1, time.Time{})
}

// largeSize is the capacity of the buffer lent for a frame of n bytes: up
// to 64 KiB, n rounded up to a whole number of 4 KiB pages; above, to a
// quarter of its power of two, so that at most a fifth of a buffer goes
// unused and sizes repeat enough to be reused.
func largeSize(n int) int {
	if n <= mapThreshold {
		return (max(n, 1) + pageSize - 1) / pageSize * pageSize
	}
	k := bits.Len(uint(n-1)) - 1 // 1<<k < n <= 1<<(k+1)
	step := 1 << (k - 2)
	return (n + step - 1) / step * step
}
