package protoserver

import "sync"

// maxKeptBuffer bounds the buffers kept for reuse, so that one huge call
// does not pin its memory.
const maxKeptBuffer = 64 << 10

// buffers hold a call's encoded request and its answer. A call takes a pair
// from the pool and gives it back when the bytes are no longer needed;
// decoding copies what it keeps, so nothing aliases them afterwards.
type buffers struct {
	req, ans []byte
}

var bufferPool = sync.Pool{New: func() any { return new(buffers) }}

func getBuffers() *buffers { return bufferPool.Get().(*buffers) }

func putBuffers(b *buffers) {
	if cap(b.req) > maxKeptBuffer {
		b.req = nil
	}
	if cap(b.ans) > maxKeptBuffer {
		b.ans = nil
	}
	b.req, b.ans = b.req[:0], b.ans[:0]
	bufferPool.Put(b)
}
