package frame

import "sync"

// A BufferPool lends Readers and Writers a larger buffer while data comes
// faster than their own buffers take it, and takes it back once the burst
// is over. A server shares one among its connections: busy ones read and
// write in large chunks (a burst of 4 KiB frames is read with a syscall
// per sixteen frames rather than one per frame), while the many idle ones
// hold only their own small buffers.
type BufferPool struct {
	size int
	p    sync.Pool // of *[]byte, so that Put allocates nothing
}

// NewBufferPool returns a pool of buffers of size bytes.
func NewBufferPool(size int) *BufferPool {
	bp := &BufferPool{size: max(size, minBufferSize)}
	bp.p.New = func() any {
		b := make([]byte, bp.size)
		return &b
	}
	return bp
}

func (bp *BufferPool) get() *[]byte { return bp.p.Get().(*[]byte) }

func (bp *BufferPool) put(b *[]byte) { bp.p.Put(b) }

// loan is a buffer borrowed from a pool, if any, beside a Reader's or
// Writer's own.
type loan struct {
	pool *BufferPool
	box  *[]byte // non-nil while borrowed
}

func (l *loan) active() bool { return l.box != nil }

// take borrows a buffer; false without a pool or when one is borrowed.
func (l *loan) take() ([]byte, bool) {
	if l.pool == nil || l.box != nil {
		return nil, false
	}
	l.box = l.pool.get()
	return *l.box, true
}

// give returns the borrowed buffer.
func (l *loan) give() {
	if l.box != nil {
		l.pool.put(l.box)
		l.box = nil
	}
}
